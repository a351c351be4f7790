import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Embedder } from '../engine/embedder.ts';
import { TesseraError } from '../errors.ts';
import type { FetchPolicy } from '../image/fetch.ts';
import type { ModelRef, VectorStore } from '../store/store.ts';
import type { ServerConfig } from './config.ts';
import type { RateLimiter } from './limits.ts';
import type { ServerMetrics } from './metrics.ts';
import type { RequestLimits } from './request.ts';

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
  readonly limits: RequestLimits;
  /** The collections served; absent when the server was made without a store. */
  readonly store?: VectorStore;
  readonly ready: boolean;
  /** The model, or NOT_READY while it loads. */
  engine(): Embedder;
  /** Length of the model's vectors (NOT_READY while it loads). */
  dimensions(): number;
  /** MODEL_MISMATCH unless `requested` is the served name or an alias. */
  checkModel(requested: string): void;
}

export class ModelSlot {
  private embedder: Embedder | undefined;
  ready = false;
  /** Learnt from the warm-up embedding. */
  dimensions = 0;

  constructor(private readonly servedName: string, private readonly names: ReadonlySet<string>) {}

  set(embedder: Embedder): void {
    this.embedder = embedder;
  }

  engine(): Embedder {
    if (!this.embedder || !this.ready) throw new TesseraError('NOT_READY', 'the model is still loading; retry when GET /ready answers 200');
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
