import type { FastifyPluginAsync } from 'fastify';
import { TesseraError } from '../errors.ts';
import type { VectorStore } from '../store/store.ts';
import type { ApiContext } from './context.ts';
import { errorBody } from './error-handler.ts';

/** How long /ready waits for the store: a load balancer's probe must get an answer before its own timeout. */
export const STORE_PING_DEADLINE_MS = 1000;

/** Models and health: GET /v1/models, /health, /ready, /metrics. */
export const healthRoutes: FastifyPluginAsync<{ ctx: ApiContext }> = async (app, { ctx }) => {
  app.get('/health', async () => ({ status: 'ok' }));

  // Ready means a request would be served now: every model answers and so does the store.
  app.get('/ready', async (request, reply) => {
    const why = ctx.models.unavailable ?? (ctx.store ? await storeUnavailable(ctx.store) : undefined);
    if (why) return reply.code(why.status).send(errorBody(request, why.code, why.message));
    return { status: 'ready', model: ctx.models.default.name, models: ctx.models.names };
  });

  // Jina's and OpenAI's list shape, with what a client needs to know of each model; facts
  // are null until the model has been warmed up.
  app.get('/v1/models', async () => {
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
        ready: slot.ready,
      })),
    };
  });

  app.get('/metrics', async (_request, reply) => {
    reply.header('content-type', ctx.metrics.registry.contentType);
    return ctx.metrics.registry.metrics();
  });
};

/** STORE_UNAVAILABLE when the store does not answer its ping within the deadline; undefined when it does. */
async function storeUnavailable(store: VectorStore): Promise<TesseraError | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new TesseraError('STORE_UNAVAILABLE', `the store at ${store.location} did not answer within ${STORE_PING_DEADLINE_MS} ms`)),
      STORE_PING_DEADLINE_MS,
    );
  });
  try {
    await Promise.race([store.ping(), deadline]);
    return undefined;
  } catch (err) {
    if (err instanceof TesseraError && err.code === 'STORE_UNAVAILABLE') return err;
    return new TesseraError('STORE_UNAVAILABLE', `the store at ${store.location} cannot be reached: ${(err as Error).message}`, { cause: err });
  } finally {
    clearTimeout(timer);
  }
}
