import './ort-telemetry.ts';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type * as ort from 'onnxruntime-node';
import { invalidArgument, TesseraError } from '../errors.ts';
import type { CpuInt8Features } from './int8/cpu.ts';
import type { Int8Setting } from './int8/prepare.ts';
import { DEFAULT_PASSES, logOnce, markRefused, passesNamed, PASSES, prepareModel, type RewriteReport } from './rewrite/index.ts';

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
  /**
   * The load-time graph rewrite (src/model/rewrite: attention and GELU into ONNX Runtime's
   * contrib ops, and the other passes when named), cached beside the model. Default: the
   * environment's TESSERA_GRAPH_REWRITE (`0` off, `all`, or pass names separated by commas),
   * else the default passes. false (`--no-graph-rewrite`) turns it off; a list names the passes.
   */
  graphRewrite?: boolean | readonly string[];
  /** Where the rewrite says what it left alone or could not do (default: standard error). */
  log?: (line: string) => void;
  /**
   * Which form of a q8 graph to run (src/model/int8/prepare.ts): `auto` (by the CPU, measured
   * on CPUs without VNNI), or a form forced. Default: the environment's TESSERA_INT8, else auto.
   * Only q8 graphs are affected.
   */
  int8?: Int8Setting;
  /** The CPU's int8 features the int8 step plans for (default: this machine's, /proc/cpuinfo). */
  cpuFeatures?: CpuInt8Features;
  /**
   * Whether ONNX Runtime's intra-op threads spin while waiting for work (default true, its
   * own default). Off for the int8 measurement, which times by CPU time: spinning would count
   * waiting as work.
   */
  spinning?: boolean;
}

/**
 * The passes the graph rewrite runs (undefined: none) for a session's setting, from the
 * environment's TESSERA_GRAPH_REWRITE when the setting is not given.
 */
export function graphRewritePasses(setting: SessionSettings['graphRewrite'], env: NodeJS.ProcessEnv = process.env): readonly string[] | undefined {
  if (setting === false) return undefined;
  if (Array.isArray(setting)) return setting;
  const value = env.TESSERA_GRAPH_REWRITE?.trim().toLowerCase();
  if (setting === true || value === undefined || value === '' || value === '1' || value === 'on' || value === 'true' || value === 'yes') return DEFAULT_PASSES;
  if (value === '0' || value === 'false' || value === 'off' || value === 'no') return undefined;
  if (value === 'all') return PASSES.map((p) => p.name);
  const names = value.split(',').map((n) => n.trim()).filter(Boolean);
  try {
    return passesNamed(names).map((p) => p.name);
  } catch {
    throw invalidArgument('TESSERA_GRAPH_REWRITE', `0, 1, all or pass names separated by commas (${PASSES.map((p) => p.name).join(', ')})`, env.TESSERA_GRAPH_REWRITE);
  }
}

const stderrLog = (line: string): void => void process.stderr.write(`tessera: ${line}\n`);

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
  /** What the graph rewrite did to this session's model (undefined when it did not run). */
  readonly rewrite?: RewriteReport;
  /** Runs the graph; with `fetches`, only those outputs are computed and returned. */
  run(feeds: Record<string, TensorData>, fetches?: readonly string[]): Promise<Record<string, TensorData>>;
  release(): Promise<void>;
}

type Reply = { id: number; result?: unknown; error?: string; dying?: true };
type Waiting = { resolve(value: unknown): void; reject(err: Error): void };

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
 * A thread that dies more often than this within the window is not restarted again: a
 * model that kills its thread on every batch would otherwise restart forever while every
 * request fails. The server then exits so that its supervisor sees the failure.
 */
export const RESTART_LIMIT = { deaths: 5, windowMs: 60_000 } as const;

/** What a listener hears when the thread dies: why, and whether it is being restarted. */
export interface ThreadDeath {
  error: TesseraError;
  /** True: a new thread is re-creating the sessions. False: the thread stays dead. */
  restarting: boolean;
}

/**
 * One worker thread per process runs every session: onnxruntime-node executes run() on the
 * calling thread, which would freeze the event loop (HTTP, image decoding) for the length of
 * each batch. The worker is referenced only while calls are pending, so an idle one never
 * keeps the process alive.
 *
 * If it dies (an uncaught error, terminated, out of memory), its sessions die with it. The
 * calls it was running fail with INFERENCE_THREAD_DIED (nobody can know how far they got);
 * a new worker is started and every live session is created again in it, from the same file
 * and options, under the same id, so Session objects held by callers keep working. Calls
 * made while that happens wait for it and then run on the new thread. After RESTART_LIMIT
 * deaths, or when the model cannot be loaded again, the thread stays dead and every call
 * fails with INFERENCE_THREAD_DIED. Listeners hear each death and each finished restart.
 */
class InferenceThread {
  private worker: Worker | undefined;
  private nextId = 1;
  /** Calls sent to the current worker and not yet answered. */
  private readonly pending = new Map<number, Waiting>();
  /** The live sessions, by id: what a restart re-creates. */
  readonly sessions = new Map<number, { path: string; options: ort.InferenceSession.SessionOptions }>();
  /** Set while a new worker re-creates the sessions. Never rejects. */
  private restarting: Promise<void> | undefined;
  /** Set once the thread is not restarted any more. */
  private gaveUp: TesseraError | undefined;
  private deaths: number[] = [];
  /** Each worker's kill flag, shared with it (see session-worker.mjs). */
  private readonly killed = new WeakMap<Worker, Int32Array>();
  readonly deathListeners = new Set<(death: ThreadDeath) => void>();
  readonly restartListeners = new Set<() => void>();

  async call(message: Record<string, unknown>): Promise<unknown> {
    // A death during a restart starts another one: wait for the last.
    while (this.restarting) await this.restarting;
    if (this.gaveUp) throw this.gaveUp;
    return this.send(this.start(), message);
  }

  /**
   * Kills the thread as a crash would (tests, and operators who want it gone): at once when
   * it is idle, else as soon as its native call returns, whose answer is then lost.
   */
  async terminate(): Promise<void> {
    const worker = this.worker;
    if (!worker) return;
    const exited = new Promise((resolve) => worker.once('exit', resolve));
    Atomics.store(this.killed.get(worker)!, 0, 1);
    worker.ref(); // until it is gone: the caller waits for that
    worker.postMessage({ op: 'die' }); // wakes an idle thread
    await exited;
  }

  private send(worker: Worker, message: Record<string, unknown>): Promise<unknown> {
    const id = this.nextId++;
    if (this.pending.size === 0) worker.ref();
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.postMessage({ ...message, id });
    });
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    const killed = new Int32Array(new SharedArrayBuffer(4));
    const worker = new Worker(new URL('./session-worker.mjs', import.meta.url), {
      workerData: { killed: killed.buffer },
      resourceLimits: { stackSizeMb: INFERENCE_STACK_MB },
    });
    this.killed.set(worker, killed);
    worker.unref();
    worker.on('message', (reply: Reply) => {
      if (reply.dying) return void worker.terminate(); // see terminate()
      const waiting = this.pending.get(reply.id);
      if (!waiting) return;
      this.pending.delete(reply.id);
      if (this.pending.size === 0) worker.unref();
      if (reply.error !== undefined) waiting.reject(new Error(reply.error));
      else waiting.resolve(reply.result);
    });
    worker.on('error', (err) => this.died(worker, err.message, err));
    worker.on('exit', (code) => this.died(worker, `it exited with code ${code}`));
    this.worker = worker;
    return worker;
  }

  private died(worker: Worker, reason: string, cause?: unknown): void {
    if (worker !== this.worker) return; // 'error' then 'exit', or a worker already given up on
    this.worker = undefined;
    const now = Date.now();
    this.deaths = [...this.deaths.filter((t) => now - t < RESTART_LIMIT.windowMs), now];
    const crashLoop = this.deaths.length > RESTART_LIMIT.deaths;
    const restarting = this.sessions.size > 0 && !crashLoop;
    const what = `the inference thread (ONNX Runtime) died: ${reason}`;
    const error = new TesseraError(
      'INFERENCE_THREAD_DIED',
      restarting
        ? `${what}; it is being restarted with the model`
        : crashLoop
          ? `${what}; it died ${this.deaths.length} times within ${RESTART_LIMIT.windowMs / 1000} s, so it is not restarted again`
          : what,
      { cause },
    );
    if (crashLoop) this.gaveUp = error;
    for (const waiting of this.pending.values()) waiting.reject(error);
    this.pending.clear();
    if (restarting) {
      const restart = this.restart().catch((err: unknown) => {
        // No new worker could even be started: stay dead.
        this.gaveUp = new TesseraError('INFERENCE_THREAD_DIED', `the inference thread (ONNX Runtime) could not be restarted: ${(err as Error).message}`, { cause: err });
        for (const listener of this.deathListeners) listener({ error: this.gaveUp, restarting: false });
      });
      this.restarting = restart;
      void restart.finally(() => {
        if (this.restarting === restart) this.restarting = undefined;
      });
    }
    for (const listener of this.deathListeners) listener({ error, restarting });
  }

  private async restart(): Promise<void> {
    const worker = this.start();
    // allSettled: the thread may be terminated only once no create runs in native code.
    const created = await Promise.allSettled(
      [...this.sessions].map(([session, { path, options }]) => this.send(worker, { op: 'create', session, path, options })),
    );
    const failed = created.find((c) => c.status === 'rejected');
    if (!failed) {
      for (const listener of this.restartListeners) listener();
      return;
    }
    // The new worker died too: died() has counted it and decided what comes next.
    if (this.worker !== worker) return;
    // It lives but cannot load the model again (its files are gone or changed): stay dead.
    this.worker = undefined;
    const reason = (failed.reason as Error).message.split('\n')[0];
    this.gaveUp = new TesseraError('INFERENCE_THREAD_DIED', `the inference thread (ONNX Runtime) was restarted but could not load the model again: ${reason}`, { cause: failed.reason });
    void worker.terminate();
    for (const listener of this.deathListeners) listener({ error: this.gaveUp, restarting: false });
  }
}

const thread = new InferenceThread();
let nextSession = 1;

/** Calls `listener` each time the inference thread dies; returns the unsubscribe function. */
export function onInferenceThreadDeath(listener: (death: ThreadDeath) => void): () => void {
  thread.deathListeners.add(listener);
  return () => thread.deathListeners.delete(listener);
}

/** Calls `listener` each time a restarted thread has every session back; returns the unsubscribe function. */
export function onInferenceThreadRestart(listener: () => void): () => void {
  thread.restartListeners.add(listener);
  return () => thread.restartListeners.delete(listener);
}

/** Terminates the inference thread as a crash would: every session with it (it is then restarted). */
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
    ...(settings.spinning === false ? { extra: { session: { intra_op: { allow_spinning: '0' } } } } : {}),
  };
  const log = settings.log ?? stderrLog;
  // The rewrite never stops a model from loading: whatever goes wrong, the original runs.
  let rewrite: RewriteReport | undefined;
  let rewriteFailure: string | undefined;
  const passes = graphRewritePasses(settings.graphRewrite);
  if (passes && passes.length > 0) {
    try {
      rewrite = await prepareModel(path, { passes });
    } catch (err) {
      rewriteFailure = (err as Error).message.split('\n')[0];
    }
  }
  let loadPath = rewrite?.rewritten ?? path;
  let refused = false;
  let names: { inputNames: string[]; outputNames: string[] };
  try {
    try {
      names = (await thread.call({ op: 'create', path: loadPath, options, session: id })) as typeof names;
    } catch (err) {
      if (loadPath === path || err instanceof TesseraError) throw err;
      const reason = (err as Error).message.split('\n')[0]!;
      logOnce(log, `${path}: ONNX Runtime refused the rewritten graph (${reason}); running the original`);
      await markRefused(rewrite!, reason).catch(() => undefined);
      rewrite = { ...rewrite!, rewritten: null, fused: {}, note: `ONNX Runtime refused the rewritten graph: ${reason}` };
      refused = true;
      loadPath = path;
      names = (await thread.call({ op: 'create', path: loadPath, options, session: id })) as typeof names;
    }
  } catch (err) {
    if (err instanceof TesseraError) throw err;
    const message = (err as Error).message;
    const code = /no such file|not exist|ENOENT|Load model from .* failed:.*(open|exist)/i.test(message) ? 'MODEL_FILE_MISSING' : 'MODEL_FILE_INVALID';
    throw new TesseraError(code, `${path}: ONNX Runtime cannot load it (${message.split('\n')[0]})`, { cause: err });
  }
  if (rewriteFailure !== undefined) logOnce(log, `${path}: graph rewrite failed (${rewriteFailure}); running the graph as it is`);
  else if (rewrite && rewrite.rewritten === null && rewrite.note && !refused) logOnce(log, `${path}: graph rewrite left the graph as it is: ${rewrite.note}`);
  thread.sessions.set(id, { path: loadPath, options });
  return {
    inputNames: names.inputNames,
    outputNames: names.outputNames,
    ...(rewrite ? { rewrite } : {}),
    run: async (feeds, fetches) => {
      const plain = Object.fromEntries(Object.entries(feeds).map(([name, t]) => [name, { type: t.type, data: t.data, dims: [...t.dims] }]));
      return (await thread.call({ op: 'run', session: id, feeds: plain, fetches: fetches && [...fetches] })) as Record<string, TensorData>;
    },
    release: async () => {
      thread.sessions.delete(id); // a restart from now on leaves it out
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

/** Checks a session takes every `required` input and nothing but what the modality can feed (`known`). */
export function requireInputs(session: Session, known: readonly string[], required: readonly string[], file: string): void {
  const names = session.inputNames;
  const lacking = required.filter((n) => !names.includes(n));
  if (lacking.length > 0) {
    throw new TesseraError('MODEL_FILE_INVALID', `${file}: expected input(s) named ${lacking.join(' and ')} but the graph takes [${names.join(', ')}]`);
  }
  const unknown = names.filter((n) => !known.includes(n));
  if (unknown.length > 0) {
    throw new TesseraError('MODEL_FILE_INVALID', `${file}: cannot feed input(s) [${unknown.join(', ')}]; supported inputs are [${known.join(', ')}]`);
  }
}
