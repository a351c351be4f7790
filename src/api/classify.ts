import type { FastifyPluginAsync } from 'fastify';
import { classify } from '../engine/classify.ts';
import { admit, estimateTokens } from './admission.ts';
import { bill } from './billing.ts';
import type { ApiContext } from './context.ts';
import { embedRequestItems } from './embed-items.ts';
import { parseClassifyRequest } from './request.ts';
import { parseClassifyByIdRequest } from './classifier-request.ts';
import { classifierModel } from './classifiers.ts';
import { TesseraError } from '../errors.ts';
import { classifySchema } from './schemas/classify.ts';

/** POST /v1/classify in the shape of Jina's Classifier API: zero-shot on `labels`, or few-shot with a `classifier_id`. */
export const classifyRoutes: FastifyPluginAsync<{ ctx: ApiContext }> = async (app, { ctx }) => {
  app.post('/v1/classify', { schema: classifySchema }, async (request, reply) => {
    const byId = parseClassifyByIdRequest(request.body, ctx.limits);
    if (byId) {
      // Few-shot: the classifier's weights instead of label embeddings; billed for the inputs only.
      if (!ctx.classifiers) throw new TesseraError('CLASSIFIER_NOT_FOUND', `no classifier ${JSON.stringify(byId.classifierId)}: this server has no store, so no classifiers (serve it with --store)`);
      await admit(ctx, request, estimateTokens(byId.items));
      const record = await ctx.classifiers.usable(byId.classifierId, request.tessera.keyId);
      const model = classifierModel(ctx, ctx.classifiers, record); // the model it was trained on, whichever is asked for
      const results = await embedRequestItems(ctx, model.engine, request, reply, byId.items, { normalize: true, truncate: false });
      const classified = await ctx.classifiers.classify(record, results.map((r) => r.embedding));
      const usage = bill(ctx, request, results);
      return { model: model.name, object: 'list', usage, data: classified.map((c, index) => ({ object: 'classification', index, ...c })) };
    }
    const body = parseClassifyRequest(request.body, ctx.limits);
    await admit(ctx, request, estimateTokens(body.items) + estimateTokens(body.labels.map((text) => ({ kind: 'text', text }))));
    const model = ctx.model(body.model);
    const labels = await model.engine.embedTexts(body.labels);
    const results = await embedRequestItems(ctx, model.engine, request, reply, body.items, { normalize: true, truncate: false });
    const usage = bill(ctx, request, [...results, ...labels]);
    const labelVectors = labels.map((l) => l.embedding);
    return {
      model: model.name,
      object: 'list',
      usage,
      data: results.map((r, index) => ({ object: 'classification', index, ...classify(r.embedding, labelVectors, body.labels) })),
    };
  });
};
