import './ort-telemetry.ts';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type * as ort from 'onnxruntime-node';
import { TesseraError } from '../errors.ts';

export type GraphOptimizationLevel = 'disabled' | 'basic' | 'extended' | 'all';

export interface SessionSettings {
  /** Threads one session may use for one operator. Default: all cores. */
  intraOpThreads?: number;
  /**
   * Default 'basic': a production user of the real jina-clip-v1 graphs found that
   * aggressive fusions (SimplifiedLayerNormFusion) broke them (REFERENCE section 1).
   */
  graphOptimizationLevel?: GraphOptimizationLevel;
  /** ONNX Runtime execution providers in order of preference, e.g. ['cuda', 'cpu']. */
  executionProviders?: string[];
}

/** A tensor as it crosses threads: what ort.Tensor holds, as plain data. */
export interface TensorData {
  type: ort.Tensor.Type;
  data: ort.Tensor.DataType;
  dims: readonly number[];
}

/** An ONNX Runtime session living on the inference thread. */
export interface Session {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  run(feeds: Record<string, TensorData>): Promise<Record<string, TensorData>>;
  release(): Promise<void>;
}

type Reply = { id: number; result?: unknown; error?: string };

/**
 * The inference thread's stack. Measured with scripts/measure-inference-stack.mjs
 * (docs/measurements/inference-stack.json): creating and running the sessions of the tiny,
 * clip-tiny and full forged models needs at most 0.31 MB of worker stack (the bisection's
 * floor, mostly Node's own reserve) with ONNX Runtime's telemetry off, whatever the command
 * line; with it on, 18 MB for a 64 KiB command line (see ort-telemetry.ts). 8 MB, the usual
 * main-thread stack on Linux, is a 25x margin for graphs, execution providers and ONNX
 * Runtime versions not measured here. Unused stack is only reserved address space.
 */
export const INFERENCE_STACK_MB = 8;

/**
 * One worker thread per process runs every session: onnxruntime-node executes run() on the
 * calling thread, which would freeze the event loop (HTTP, image decoding) for the length of
 * each batch. The worker is referenced only while calls are pending, so an idle one never
 * keeps the process alive. If it dies (an uncaught error, terminated, out of memory), its
 * sessions die with it: every call from then on fails with INFERENCE_THREAD_DIED and the
 * death listeners hear why, so nothing waits forever and nobody is silently served by a
 * thread that has lost its model.
 */
class InferenceThread {
  private worker: Worker | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve(value: unknown): void; reject(err: Error): void }>();
  private death: TesseraError | undefined;
  readonly deathListeners = new Set<(err: TesseraError) => void>();

  call(message: Record<string, unknown>): Promise<unknown> {
    if (this.death) return Promise.reject(this.death);
    const worker = this.start();
    const id = this.nextId++;
    if (this.pending.size === 0) worker.ref();
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.postMessage({ ...message, id });
    });
  }

  /** Stops the thread as a crash would (tests, and operators who want it gone). */
  async terminate(): Promise<void> {
    await this.worker?.terminate();
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(new URL('./session-worker.mjs', import.meta.url), { resourceLimits: { stackSizeMb: INFERENCE_STACK_MB } });
    worker.unref();
    worker.on('message', (reply: Reply) => {
      const waiting = this.pending.get(reply.id);
      if (!waiting) return;
      this.pending.delete(reply.id);
      if (this.pending.size === 0) worker.unref();
      if (reply.error !== undefined) waiting.reject(new Error(reply.error));
      else waiting.resolve(reply.result);
    });
    const die = (reason: string, cause?: unknown) => {
      if (this.death) return;
      this.death = new TesseraError('INFERENCE_THREAD_DIED', `the inference thread (ONNX Runtime) died: ${reason}; the model is gone until the process restarts`, { cause });
      for (const waiting of this.pending.values()) waiting.reject(this.death);
      this.pending.clear();
      for (const listener of this.deathListeners) listener(this.death);
    };
    worker.on('error', (err) => die(err.message, err));
    worker.on('exit', (code) => die(`it exited with code ${code}`));
    this.worker = worker;
    return worker;
  }
}

const thread = new InferenceThread();
let nextSession = 1;

/** Calls `listener` once if the inference thread dies; returns the unsubscribe function. */
export function onInferenceThreadDeath(listener: (err: TesseraError) => void): () => void {
  thread.deathListeners.add(listener);
  return () => thread.deathListeners.delete(listener);
}

/** Terminates the inference thread as a crash would: every session with it. */
export function terminateInferenceThread(): Promise<void> {
  return thread.terminate();
}

export async function createSession(path: string, settings: SessionSettings): Promise<Session> {
  const id = nextSession++;
  const options: ort.InferenceSession.SessionOptions = {
    intraOpNumThreads: settings.intraOpThreads ?? availableParallelism(),
    interOpNumThreads: 1,
    graphOptimizationLevel: settings.graphOptimizationLevel ?? 'basic',
    executionProviders: settings.executionProviders ?? ['cpu'],
  };
  let names: { inputNames: string[]; outputNames: string[] };
  try {
    names = (await thread.call({ op: 'create', path, options, session: id })) as typeof names;
  } catch (err) {
    if (err instanceof TesseraError) throw err;
    const message = (err as Error).message;
    const code = /no such file|not exist|ENOENT|Load model from .* failed:.*(open|exist)/i.test(message) ? 'MODEL_FILE_MISSING' : 'MODEL_FILE_INVALID';
    throw new TesseraError(code, `${path}: ONNX Runtime cannot load it (${message.split('\n')[0]})`, { cause: err });
  }
  return {
    inputNames: names.inputNames,
    outputNames: names.outputNames,
    run: async (feeds) => {
      const plain = Object.fromEntries(Object.entries(feeds).map(([name, t]) => [name, { type: t.type, data: t.data, dims: [...t.dims] }]));
      return (await thread.call({ op: 'run', session: id, feeds: plain })) as Record<string, TensorData>;
    },
    release: async () => {
      try {
        await thread.call({ op: 'release', session: id });
      } catch (err) {
        // A dead thread took its sessions with it: nothing is left to release.
        if (!(err instanceof TesseraError && err.code === 'INFERENCE_THREAD_DIED')) throw err;
      }
    },
  };
}

/** How an embedding is read off a session's outputs. */
export interface OutputPlan {
  name: string;
  /** 'pooled': [batch, dim] already; 'mean' / 'cls': [batch, seq, dim], pooled by us. */
  pooling: 'pooled' | 'mean' | 'cls';
  /** The graph normalises already (l2norm_* outputs), so unnormalised vectors are not available. */
  normalized: boolean;
}

/**
 * Picks the embedding output by name, in the order real exports use: `text_embeds` /
 * `image_embeds`, then `*_embeddings`, then `l2norm_*`, then a `last_hidden_state` to pool.
 */
export function planOutput(session: Session, modality: 'text' | 'image', file: string): OutputPlan {
  const names = session.outputNames;
  const prefer = [`${modality}_embeds`, `${modality}_embeddings`, 'embeddings', 'sentence_embedding', 'pooler_output'];
  for (const name of prefer) {
    if (names.includes(name)) return { name, pooling: 'pooled', normalized: false };
  }
  const embeds = names.find((n) => /_embed(s|dings)$/.test(n) && !n.startsWith('l2norm'));
  if (embeds) return { name: embeds, pooling: 'pooled', normalized: false };
  const normalized = names.find((n) => n.startsWith('l2norm') && n.includes(modality)) ?? names.find((n) => n.startsWith('l2norm'));
  if (normalized) return { name: normalized, pooling: 'pooled', normalized: true };
  if (names.includes('last_hidden_state')) {
    return { name: 'last_hidden_state', pooling: modality === 'text' ? 'mean' : 'cls', normalized: false };
  }
  throw new TesseraError('MODEL_FILE_INVALID', `${file}: no embedding output among [${names.join(', ')}]; expected ${modality}_embeds, *_embeddings, l2norm_* or last_hidden_state`);
}

/** Names of the input a session needs, checked against what the modality can feed. */
export function requireInputs(session: Session, known: readonly string[], required: string, file: string): void {
  const names = session.inputNames;
  if (!names.includes(required)) {
    throw new TesseraError('MODEL_FILE_INVALID', `${file}: expected an input named ${required} but the graph takes [${names.join(', ')}]`);
  }
  const unknown = names.filter((n) => !known.includes(n));
  if (unknown.length > 0) {
    throw new TesseraError('MODEL_FILE_INVALID', `${file}: cannot feed input(s) [${unknown.join(', ')}]; supported inputs are [${known.join(', ')}]`);
  }
}
