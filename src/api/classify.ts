import type { FastifyPluginAsync } from 'fastify';
import { classify } from '../engine/classify.ts';
import { admit, estimateTokens } from './admission.ts';
import { bill } from './billing.ts';
import type { ApiContext } from './context.ts';
import { embedRequestItems } from './embed-items.ts';
import { parseClassifyRequest } from './request.ts';

/** Zero-shot classification in the shape of Jina's Classifier API: POST /v1/classify. */
export const classifyRoutes: FastifyPluginAsync<{ ctx: ApiContext }> = async (app, { ctx }) => {
  app.post('/v1/classify', async (request, reply) => {
    const body = parseClassifyRequest(request.body, ctx.limits);
    admit(ctx, request, estimateTokens(body.items) + estimateTokens(body.labels.map((text) => ({ kind: 'text', text }))));
    ctx.checkModel(body.model);
    const labels = await ctx.engine().embedTexts(body.labels);
    const results = await embedRequestItems(ctx, request, reply, body.items, { normalize: true, truncate: false });
    const usage = bill(ctx, request, [...results, ...labels]);
    const labelVectors = labels.map((l) => l.embedding);
    return {
      model: ctx.servedName,
      object: 'list',
      usage,
      data: results.map((r, index) => ({ object: 'classification', index, ...classify(r.embedding, labelVectors, body.labels) })),
    };
  });
};
