import type { FastifyPluginAsync } from 'fastify';
import { TesseraError } from '../errors.ts';
import type { StoreAvailability, StoreState } from '../store/availability.ts';
import type { ApiContext } from './context.ts';
import { errorBody } from './error-handler.ts';
import { liveSchema, metricsSchema, modelsSchema, readySchema } from './schemas/health.ts';

/**
 * Models and health: GET /v1/models, /live (and /health), /ready, /metrics.
 *
 * The probes follow Kubernetes' split, and what each one fails on is what a replica cannot
 * do, nothing more:
 * - /live (and its older name /health): the process is up and answers HTTP (after SIGTERM the
 *   drain answers it 503 like every route). A liveness probe: failing it asks for a restart,
 *   which cures none of the outages below.
 * - /ready: this replica can serve embeddings and classification now: every model loaded and
 *   warmed up, the inference thread running, not draining (503 SHUTTING_DOWN from the drain,
 *   like every route). The store's state is in the body and never fails it: the embeddings
 *   and zero-shot classify need no store, and a load balancer that took every replica out
 *   because their shared database is down would refuse those too.
 * - /ready?store=1: the same, and the store answers a ping made now (503 STORE_UNAVAILABLE
 *   within about a second otherwise), for a deployment that only serves collections.
 */
export const healthRoutes: FastifyPluginAsync<{ ctx: ApiContext; availability?: StoreAvailability }> = async (app, { ctx, availability }) => {
  const live = async () => ({ status: 'ok' });
  app.get('/live', { schema: liveSchema }, live);
  app.get('/health', { schema: liveSchema }, live);

  app.get<{ Querystring: { store?: string } }>('/ready', { schema: readySchema }, async (request, reply) => {
    // The schema allows only 1, true, 0, false or a bare ?store (validation.ts).
    const needStore = request.query.store !== undefined && request.query.store !== '0' && request.query.store !== 'false';
    const models = ctx.models.unavailable;
    if (models) return reply.code(models.status).send(errorBody(request, models.code, models.message));
    let state = availability?.state;
    if (needStore) {
      if (!availability) throw new TesseraError('STORE_UNAVAILABLE', 'this server was started without a store; /ready?store=1 cannot be ready');
      state = await availability.probe();
      if (!state.available) throw new TesseraError('STORE_UNAVAILABLE', state.reason ?? `the store at ${availability.store.location} did not answer`);
    }
    return { status: 'ready', model: ctx.models.default.name, models: ctx.models.names, ...(state ? { store: storeView(state) } : {}) };
  });

  // Jina's and OpenAI's list shape, with what a client needs to know of each model; facts
  // are null until the model has been warmed up.
  app.get('/v1/models', { schema: modelsSchema }, async () => {
    return {
      object: 'list',
      data: ctx.models.slots.map((slot) => ({
        id: slot.name,
        object: 'model',
        created: slot.created,
        owned_by: 'tessera',
        dimensions: slot.known?.dimensions ?? null,
        max_tokens: slot.known?.maxTokens ?? null,
        image_size: slot.known?.imageSize ?? null,
        dtype: slot.known?.dtype ?? null,
        int8: slot.known?.int8 ?? null,
        ready: slot.ready,
      })),
    };
  });

  app.get('/metrics', { schema: metricsSchema }, async (_request, reply) => {
    reply.header('content-type', ctx.metrics.registry.contentType);
    return ctx.metrics.registry.metrics();
  });
};

/** The store as /ready shows it: its state, since when, when last checked, and why it is down. */
function storeView(state: StoreState) {
  return {
    status: state.available ? 'available' : 'unavailable',
    since: state.since.toISOString(),
    checked_at: state.checkedAt?.toISOString() ?? null,
    ...(state.reason === undefined ? {} : { detail: state.reason }),
  };
}

