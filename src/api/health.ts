import type { FastifyPluginAsync } from 'fastify';
import type { ApiContext } from './context.ts';
import { errorBody } from './error-handler.ts';

/** Models and health: GET /v1/models, /health, /ready, /metrics. */
export const healthRoutes: FastifyPluginAsync<{ ctx: ApiContext }> = async (app, { ctx }) => {
  app.get('/health', async () => ({ status: 'ok' }));

  app.get('/ready', async (request, reply) => {
    if (!ctx.ready) return reply.code(503).send(errorBody(request, 'NOT_READY', 'the model is still loading or warming up'));
    return { status: 'ready', model: ctx.servedName };
  });

  app.get('/v1/models', async () => {
    return { object: 'list', data: [{ id: ctx.servedName, object: 'model', created: 0, owned_by: 'tessera', ready: ctx.ready }] };
  });

  app.get('/metrics', async (_request, reply) => {
    reply.header('content-type', ctx.metrics.registry.contentType);
    return ctx.metrics.registry.metrics();
  });
};
