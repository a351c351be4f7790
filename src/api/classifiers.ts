import type { FastifyPluginAsync } from 'fastify';
import { describeClassifier, type Classifiers, type ServedModel } from '../classifier/classifiers.ts';
import { labelsOf } from '../classifier/learn.ts';
import { admit, estimateTokens } from './admission.ts';
import { bill } from './billing.ts';
import { parseTrainRequest } from './classifier-request.ts';
import type { ApiContext } from './context.ts';
import { embedRequestItems } from './embed-items.ts';

/** The model this server runs, as classifiers record it. */
export function servedModel(ctx: ApiContext): ServedModel {
  return { ...ctx.modelRef, name: ctx.servedName, dimensions: ctx.dimensions() };
}

/**
 * Few-shot classifiers in the shape of Jina's Classifier API: POST /v1/train (create or train),
 * GET /v1/classifiers (the caller's), DELETE /v1/classifiers/{id}. Classifying by
 * classifier_id is POST /v1/classify (classify.ts).
 */
export const classifierRoutes: FastifyPluginAsync<{ ctx: ApiContext; classifiers: Classifiers }> = async (app, { ctx, classifiers }) => {
  app.post('/v1/train', async (request, reply) => {
    const body = parseTrainRequest(request.body, ctx.limits);
    const owner = request.tessera.keyId;
    const labels = labelsOf(body.labels.map((label) => ({ label })));
    admit(ctx, request, estimateTokens(body.items) * body.numIters);
    // Ownership, model and limits before any embedding work.
    if (body.classifierId !== undefined) await classifiers.checkUpdate(body.classifierId, owner, labels, servedModel(ctx));
    else {
      ctx.checkModel(body.model!);
      await classifiers.checkCreate(owner, labels);
    }
    const results = await embedRequestItems(ctx, request, reply, body.items, { normalize: true, truncate: false });
    const examples = results.map((r, i) => ({ vector: r.embedding, label: body.labels[i]! }));
    const embedLabels = async (texts: string[]) => (await ctx.engine().embedTexts(texts)).map((r) => r.embedding);
    const options = { owner, served: servedModel(ctx), examples, numIters: body.numIters, embedLabels };
    const record = body.classifierId !== undefined ? await classifiers.train(body.classifierId, options) : await classifiers.create({ ...options, access: body.access });
    const usage = bill(ctx, request, results, body.numIters);
    return { classifier_id: record.id, num_samples: examples.length, usage: { total_tokens: usage.total_tokens } };
  });

  app.get('/v1/classifiers', async (request) => {
    return (await classifiers.list(request.tessera.keyId)).map(describeClassifier);
  });

  app.delete<{ Params: { id: string } }>('/v1/classifiers/:id', async (request) => {
    await classifiers.delete(request.params.id, request.tessera.keyId);
    return { classifier_id: request.params.id, deleted: true };
  });
};
