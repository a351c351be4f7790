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
 * One worker thread per process runs every session: onnxruntime-node executes run() on the
 * calling thread, which would freeze the event loop (HTTP, image decoding) for the length of
 * each batch. The worker is referenced only while calls are pending, so an idle one never
 * keeps the process alive.
 */
class InferenceThread {
  private worker: Worker | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve(value: unknown): void; reject(err: Error): void }>();

  call(message: Record<string, unknown>): Promise<unknown> {
    const worker = this.start();
    const id = this.nextId++;
    if (this.pending.size === 0) worker.ref();
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.postMessage({ ...message, id });
    });
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(new URL('./session-worker.mjs', import.meta.url));
    worker.unref();
    worker.on('message', (reply: Reply) => {
      const waiting = this.pending.get(reply.id);
      if (!waiting) return;
      this.pending.delete(reply.id);
      if (this.pending.size === 0) worker.unref();
      if (reply.error !== undefined) waiting.reject(new Error(reply.error));
      else waiting.resolve(reply.result);
    });
    const fail = (err: Error) => {
      this.worker = undefined;
      for (const waiting of this.pending.values()) waiting.reject(err);
      this.pending.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`the inference thread exited (code ${code})`)));
    this.worker = worker;
    return worker;
  }
}

const thread = new InferenceThread();
let nextSession = 1;

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
      await thread.call({ op: 'release', session: id });
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
