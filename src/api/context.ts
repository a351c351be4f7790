import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Classifiers } from '../classifier/classifiers.ts';
import type { FetchPolicy } from '../image/fetch.ts';
import type { VectorStore } from '../store/store.ts';
import type { ServerConfig } from './config.ts';
import type { Limiter } from './limits.ts';
import type { ServerMetrics } from './metrics.ts';
import type { ClassifierRequestLimits } from './classifier-request.ts';
import type { ModelHandle, ModelRegistry } from './models.ts';

/**
 * What every route plugin gets from the server: the settings, the served models (each once
 * ready), the store, limits and metrics. Plugins read it; only the server changes it.
 */
export interface ApiContext {
  readonly config: ServerConfig;
  /** The served models by name; the first is the default. */
  readonly models: ModelRegistry;
  readonly metrics: ServerMetrics;
  readonly limiter: Limiter;
  readonly fetchPolicy: Partial<FetchPolicy>;
  readonly limits: ClassifierRequestLimits;
  /** The collections served; absent when the server was made without a store. */
  readonly store?: VectorStore;
  /** The few-shot classifiers (kept in the store); absent when the server was made without one. */
  readonly classifiers?: Classifiers;
  /**
   * The served model `requested` names (a served name or an alias; none: the default, the
   * first served), loaded and warmed up: MODEL_MISMATCH listing the served names, NOT_READY.
   */
  model(requested?: string): ModelHandle;
}

/** Aborts when the client goes away before its answer is sent, or the request deadline passes. */
export function requestSignal(ctx: ApiContext, _request: FastifyRequest, reply: FastifyReply): AbortSignal {
  const gone = new AbortController();
  reply.raw.on('close', () => {
    if (!reply.raw.writableFinished) gone.abort(new Error('client disconnected'));
  });
  return AbortSignal.any([gone.signal, AbortSignal.timeout(ctx.config['request-timeout-ms'])]);
}
