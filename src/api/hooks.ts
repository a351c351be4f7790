import type { FastifyInstance } from 'fastify';
import { authenticate, type ApiKeys } from './auth.ts';
import type { Drain } from './drain.ts';
import type { Admission } from './limits.ts';
import type { ServerMetrics } from './metrics.ts';

/** What the server tracks about one request, from arrival to the metrics line. */
export interface RequestState {
  started: number;
  keyId: string;
  admission?: Admission;
  queueMs: number;
  inferenceMs: number;
}

declare module 'fastify' {
  interface FastifyRequest {
    tessera: RequestState;
  }
}

/** Routes that need a key when keys are configured: the whole API, not health or the page. */
export function needsKey(url: string): boolean {
  return url.startsWith('/v1/') || url.startsWith('/embeddings');
}

/**
 * Hooks every route shares: the drain (SHUTTING_DOWN while the server stops) and
 * authentication before anything else is looked at, the timing and rate-limit headers on
 * every answer, releasing the admission, and the request metrics.
 */
export function installRequestHooks(app: FastifyInstance, apiKeys: ApiKeys | null, metrics: ServerMetrics, drain: Drain): void {
  app.decorateRequest('tessera', null as unknown as RequestState);

  app.addHook('onRequest', async (request, reply) => {
    request.tessera = { started: performance.now(), keyId: '', queueMs: 0, inferenceMs: 0 };
    reply.header('x-request-id', request.id);
    drain.admit(reply);
    if (needsKey(request.url)) request.tessera.keyId = authenticate(apiKeys, request.headers.authorization);
  });

  app.addHook('onSend', async (request, reply) => {
    const state = request.tessera;
    if (!state) return;
    reply.header('x-queue-time', state.queueMs.toFixed(1));
    reply.header('x-inference-time', state.inferenceMs.toFixed(1));
    reply.header('x-total-time', (performance.now() - state.started).toFixed(1));
    if (state.admission) reply.headers(state.admission.headers);
    // Answers finished during a drain end their kept-alive connection: the client reconnects elsewhere.
    if (drain.closing) reply.header('connection', 'close');
  });

  app.addHook('onResponse', async (request, reply) => {
    const admission = request.tessera?.admission;
    if (admission && reply.statusCode >= 400) admission.commitTokens(0); // failed requests are not billed
    admission?.release();
    const route = request.routeOptions.url ?? 'unknown';
    metrics.request(route, reply.statusCode, (performance.now() - request.tessera.started) / 1000);
  });
}
