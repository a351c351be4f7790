import type { FastifyPluginAsync } from 'fastify';
import { describeClassifier, type Classifiers, type ServedModel } from '../classifier/classifiers.ts';
import { labelsOf } from '../classifier/learn.ts';
import { TesseraError } from '../errors.ts';
import type { ClassifierRecord } from '../store/classifiers.ts';
import { admit, estimateTokens } from './admission.ts';
import { bill } from './billing.ts';
import { parseTrainRequest } from './classifier-request.ts';
import type { ApiContext } from './context.ts';
import { embedRequestItems } from './embed-items.ts';
import type { ModelHandle } from './models.ts';
import { deleteClassifierSchema, listClassifiersSchema, trainSchema } from './schemas/classify.ts';

/** A served model as classifiers record it. */
export function servedModel(model: ModelHandle): ServedModel {
  return { ...model.ref, name: model.name, dimensions: model.dimensions };
}

/**
 * The served model classifier `record` was trained on, whichever model the server serves
 * first: CLASSIFIER_MODEL_MISMATCH when it serves no such model (or its dimensions differ).
 */
export function classifierModel(ctx: ApiContext, classifiers: Classifiers, record: ClassifierRecord): ModelHandle {
  const slot = ctx.models.serving(record);
  if (!slot) {
    throw new TesseraError(
      'CLASSIFIER_MODEL_MISMATCH',
      `classifier ${record.id} was trained on ${JSON.stringify(record.model)} (${record.dtype}, ${record.dimensions} dimensions), which this server does not serve; it serves ${ctx.models.describe()}. Use a server of that model or train a new classifier`,
    );
  }
  const model = slot.handle();
  classifiers.checkModel(record, servedModel(model));
  return model;
}

/**
 * Few-shot classifiers in the shape of Jina's Classifier API: POST /v1/train (create or train),
 * GET /v1/classifiers (the caller's), DELETE /v1/classifiers/{id}. Classifying by
 * classifier_id is POST /v1/classify (classify.ts).
 */
export const classifierRoutes: FastifyPluginAsync<{ ctx: ApiContext; classifiers: Classifiers }> = async (app, { ctx, classifiers }) => {
  app.post('/v1/train', { schema: trainSchema }, async (request, reply) => {
    const body = parseTrainRequest(request.body, ctx.limits);
    const owner = request.tessera.keyId;
    const labels = labelsOf(body.labels.map((label) => ({ label })));
    await admit(ctx, request, estimateTokens(body.items) * body.numIters);
    // Ownership, model and limits before any embedding work. A classifier is trained further
    // on the model it was made with; a new one on the model the request names.
    let model: ModelHandle;
    if (body.classifierId !== undefined) {
      model = classifierModel(ctx, classifiers, await classifiers.owned(body.classifierId, owner));
      await classifiers.checkUpdate(body.classifierId, owner, labels, servedModel(model));
    } else {
      model = ctx.model(body.model!);
      await classifiers.checkCreate(owner, labels);
    }
    const results = await embedRequestItems(ctx, model.engine, request, reply, body.items, { normalize: true, truncate: false });
    const examples = results.map((r, i) => ({ vector: r.embedding, label: body.labels[i]! }));
    const embedLabels = async (texts: string[]) => (await model.engine.embedTexts(texts)).map((r) => r.embedding);
    const options = { owner, served: servedModel(model), examples, numIters: body.numIters, embedLabels };
    const record = body.classifierId !== undefined ? await classifiers.train(body.classifierId, options) : await classifiers.create({ ...options, access: body.access });
    const usage = bill(ctx, request, results, body.numIters);
    return { classifier_id: record.id, num_samples: examples.length, usage: { total_tokens: usage.total_tokens } };
  });

  app.get('/v1/classifiers', { schema: listClassifiersSchema }, async (request) => {
    return (await classifiers.list(request.tessera.keyId)).map(describeClassifier);
  });

  app.delete<{ Params: { id: string } }>('/v1/classifiers/:id', { schema: deleteClassifierSchema }, async (request) => {
    await classifiers.delete(request.params.id, request.tessera.keyId);
    return { classifier_id: request.params.id, deleted: true };
  });
};
