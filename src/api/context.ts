import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Embedder } from '../engine/embedder.ts';
import type { Classifiers } from '../classifier/classifiers.ts';
import { TesseraError } from '../errors.ts';
import type { FetchPolicy } from '../image/fetch.ts';
import type { ModelRef, VectorStore } from '../store/store.ts';
import type { ServerConfig } from './config.ts';
import type { RateLimiter } from './limits.ts';
import type { ServerMetrics } from './metrics.ts';
import type { ClassifierRequestLimits } from './classifier-request.ts';

/**
 * What every route plugin gets from the server: the settings, the loaded model (once
 * ready), the store, limits and metrics. Plugins read it; only the server changes it.
 */
export interface ApiContext {
  readonly config: ServerConfig;
  /** What clients put in `model`, e.g. jina-clip-v1. */
  readonly servedName: string;
  /** The model the server runs, as collections record it (what --model was given, and the dtype). */
  readonly modelRef: ModelRef;
  readonly metrics: ServerMetrics;
  readonly limiter: RateLimiter;
  readonly fetchPolicy: Partial<FetchPolicy>;
  readonly limits: ClassifierRequestLimits;
  /** The collections served; absent when the server was made without a store. */
  readonly store?: VectorStore;
  /** The few-shot classifiers (kept in the store); absent when the server was made without one. */
  readonly classifiers?: Classifiers;
  readonly ready: boolean;
  /** Why the model cannot answer now (NOT_READY, INFERENCE_THREAD_DIED), or undefined: what /ready reports. */
  readonly unavailable: TesseraError | undefined;
  /** The model, or NOT_READY while it loads. */
  engine(): Embedder;
  /** Length of the model's vectors (NOT_READY while it loads). */
  dimensions(): number;
  /** MODEL_MISMATCH unless `requested` is the served name or an alias. */
  checkModel(requested: string): void;
}

export class ModelSlot {
  private embedder: Embedder | undefined;
  /** Learnt from the warm-up embedding. */
  dimensions = 0;
  /** Why the model cannot answer now, or undefined when it can. */
  unavailable: TesseraError | undefined = new TesseraError('NOT_READY', 'the model is still loading or warming up');
  /** Set by the first warm-up: from then on requests reach the engine, even while a dead inference thread restarts. */
  private warmed = false;

  constructor(private readonly servedName: string, private readonly names: ReadonlySet<string>) {}

  get ready(): boolean {
    return this.unavailable === undefined;
  }

  set(embedder: Embedder): void {
    this.embedder = embedder;
  }

  /** The model answers (after a warm-up). */
  markReady(): void {
    this.warmed = true;
    this.unavailable = undefined;
  }

  /** The model cannot answer for now, and why. */
  markUnavailable(why: TesseraError): void {
    this.unavailable = why;
  }

  /**
   * Once warmed up, the engine is handed out even while the inference thread restarts: its
   * calls wait for the new thread (or fail with INFERENCE_THREAD_DIED if it stays dead).
   */
  engine(): Embedder {
    if (!this.embedder || !this.warmed) throw new TesseraError('NOT_READY', 'the model is still loading; retry when GET /ready answers 200');
    return this.embedder;
  }

  checkModel(requested: string): void {
    if (!this.names.has(requested)) {
      throw new TesseraError('MODEL_MISMATCH', `model ${JSON.stringify(requested)} is not served here; this server serves ${JSON.stringify(this.servedName)}`);
    }
  }
}

/** Aborts when the client goes away before its answer is sent, or the request deadline passes. */
export function requestSignal(ctx: ApiContext, _request: FastifyRequest, reply: FastifyReply): AbortSignal {
  const gone = new AbortController();
  reply.raw.on('close', () => {
    if (!reply.raw.writableFinished) gone.abort(new Error('client disconnected'));
  });
  return AbortSignal.any([gone.signal, AbortSignal.timeout(ctx.config['request-timeout-ms'])]);
}
