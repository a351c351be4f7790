/**
 * Classification in the shape of Jina's Classifier API: POST /v1/classify (zero-shot with
 * `labels`, few-shot with `classifier_id`), POST /v1/train, GET /v1/classifiers and
 * DELETE /v1/classifiers/{id}. Which fields go together (model or classifier_id, labels or
 * not), and the examples of /v1/train, are checked by the routes' parsers
 * (classifier-request.ts, request.ts); the scalar fields here.
 */
import { MAX_NUM_ITERS } from '../classifier-request.ts';
import { ALWAYS, AUTH, BODY, ITEMS, KEYED, MODEL, RATE, STORE, errorResponses, ref, type Schema } from './common.ts';

const FEW_SHOT = ['CLASSIFIER_NOT_FOUND', 'CLASSIFIER_INPUT_LIMIT', 'CLASSIFIER_MODEL_MISMATCH'] as const;

const classifyBody: Schema = {
  type: 'object',
  'x-messages': 'must',
  description: 'Zero-shot: `model`, `input` and `labels`. Few-shot: `classifier_id` and `input` only (the classifier knows its model and labels).',
  required: ['input'],
  properties: {
    model: { type: ['string', 'null'], minLength: 1, description: 'Zero-shot: a served model name or alias.', 'x-expected': 'a non-empty string naming a served model' },
    classifier_id: { type: ['string', 'null'], minLength: 1, description: 'Few-shot: a classifier made with POST /v1/train.' },
    input: { ...ref('Input'), 'x-handler-checked': true },
    labels: {
      type: ['array', 'null'],
      minItems: 2,
      uniqueItems: true,
      description: 'Zero-shot: the labels to choose from.',
      'x-expected': 'a list of at least two strings, each non-empty and distinct',
      items: { type: 'string', pattern: '\\S', 'x-expected': 'a non-empty string' },
    },
  },
  // Zero-shot requests may carry other fields (ignored); few-shot ones may not (checked by the route).
  additionalProperties: true,
  examples: [{ model: 'jina-clip-v1', input: ['a red rose', { image: 'https://example.com/rose.jpg' }], labels: ['flower', 'car'] }],
};

export const classifySchema: Schema = {
  summary: 'Classify texts and images',
  description: 'Zero-shot on `labels` with a served model, or few-shot with a trained classifier (`classifier_id`).',
  tags: ['classification'],
  security: KEYED,
  body: classifyBody,
  response: {
    200: {
      description: 'One classification per input item.',
      type: 'object',
      required: ['model', 'object', 'usage', 'data'],
      properties: {
        model: { type: 'string' },
        object: { type: 'string', enum: ['list'] },
        usage: ref('Usage'),
        data: { type: 'array', items: ref('Classification') },
      },
    },
    ...errorResponses(ALWAYS, AUTH, BODY, RATE, MODEL, ITEMS, FEW_SHOT, STORE),
  },
};

const example: Schema = {
  description: 'A labelled example: {"label"} and exactly one of "text", "image", "url" or "bytes" (and an optional "id", ignored).',
  type: 'object',
  required: ['label'],
  properties: {
    label: { type: 'string', minLength: 1 },
    text: { type: 'string' },
    image: { type: 'string', description: 'An http(s) URL, raw base64 or a data URI.' },
    url: { type: 'string' },
    bytes: { type: 'string' },
    id: { type: 'string' },
  },
  additionalProperties: false,
};

const trainBody: Schema = {
  type: 'object',
  'x-messages': 'must',
  description: 'Create a classifier (`model`) or train one further (`classifier_id`): exactly one of them.',
  required: ['input'],
  properties: {
    model: { type: ['string', 'null'], minLength: 1, description: 'Create a classifier for this served model.', 'x-expected': 'a non-empty string' },
    classifier_id: { type: ['string', 'null'], description: 'Train this classifier further (its own model; new labels are added).' },
    access: { type: ['string', 'null'], enum: ['private', 'public', null], description: 'private (default): only this key uses it; public: any key may classify with it. Ignored on update.', 'x-expected': '"private" or "public"' },
    num_iters: {
      type: ['integer', 'null'],
      minimum: 1,
      maximum: MAX_NUM_ITERS,
      description: 'Passes over the examples (default 10); billed as input tokens x num_iters.',
      'x-expected': `an integer from 1 to ${MAX_NUM_ITERS}`,
    },
    input: {
      description: 'One labelled example or a non-empty list of them.',
      anyOf: [example, { type: 'array', minItems: 1, items: example }],
      'x-handler-checked': true,
    },
  },
  additionalProperties: false,
  examples: [{ model: 'jina-clip-v1', input: [{ text: 'a sunset', label: 'warm' }, { text: 'the sea', label: 'cool' }] }],
};

const classifier: Schema = {
  type: 'object',
  required: ['classifier_id', 'model_name', 'labels', 'access', 'updated_number', 'used_number', 'created_at', 'updated_at', 'used_at', 'num_samples', 'metadata'],
  properties: {
    classifier_id: { type: 'string' },
    model_name: { type: 'string' },
    labels: { type: 'array', items: { type: 'string' } },
    access: { type: 'string', enum: ['private', 'public'] },
    updated_number: { type: 'integer', description: '1 when made, +1 per training call.' },
    used_number: { type: 'integer', description: 'Classify calls that used it.' },
    created_at: { type: 'string', format: 'date-time' },
    updated_at: { type: 'string', format: 'date-time' },
    used_at: { type: ['string', 'null'], format: 'date-time' },
    num_samples: { type: 'integer', description: 'Examples trained on, all calls together.' },
    metadata: { type: 'object', additionalProperties: true },
  },
};

export const trainSchema: Schema = {
  summary: 'Create or train a few-shot classifier',
  tags: ['classification'],
  security: KEYED,
  body: trainBody,
  response: {
    200: {
      description: 'The classifier, trained.',
      type: 'object',
      required: ['classifier_id', 'num_samples', 'usage'],
      properties: {
        classifier_id: { type: 'string' },
        num_samples: { type: 'integer', description: 'Examples in this call.' },
        usage: { type: 'object', required: ['total_tokens'], properties: { total_tokens: { type: 'integer' } } },
      },
    },
    ...errorResponses(ALWAYS, AUTH, BODY, RATE, MODEL, ITEMS, FEW_SHOT, STORE, ['CLASSIFIER_FORBIDDEN', 'CLASSIFIER_CLASS_LIMIT', 'CLASSIFIER_COUNT_LIMIT']),
  },
};

export const listClassifiersSchema: Schema = {
  summary: "The caller's classifiers",
  description: 'The classifiers made with this key (public ones of other keys are usable, not listed).',
  tags: ['classification'],
  security: KEYED,
  response: {
    200: { description: 'The classifiers, as Jina lists them.', type: 'array', items: classifier },
    ...errorResponses(ALWAYS, AUTH, STORE),
  },
};

export const deleteClassifierSchema: Schema = {
  summary: 'Delete a classifier',
  tags: ['classification'],
  security: KEYED,
  params: {
    type: 'object',
    required: ['id'],
    properties: { id: { type: 'string', description: 'The classifier id.' } },
  },
  response: {
    200: {
      description: 'Deleted.',
      type: 'object',
      required: ['classifier_id', 'deleted'],
      properties: { classifier_id: { type: 'string' }, deleted: { type: 'boolean', enum: [true] } },
    },
    ...errorResponses(ALWAYS, AUTH, STORE, ['CLASSIFIER_NOT_FOUND', 'CLASSIFIER_FORBIDDEN']),
  },
};
