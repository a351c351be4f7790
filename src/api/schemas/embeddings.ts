/**
 * POST /v1/embeddings (and /embeddings), Jina's request shape with OpenAI's encoding_format.
 * `input` and the encoding fields are unions the route's parser checks (request.ts), with
 * messages naming the item; the scalar fields are checked here. Unknown fields are ignored,
 * as Jina's and OpenAI's clients send some of their own.
 */
import { ENCODINGS } from '../../encoding/encode.ts';
import { ALWAYS, AUTH, BODY, ITEMS, KEYED, MODEL, RATE, errorResponses, ref, type Schema } from './common.ts';

const encoding: Schema = {
  description: `One of ${ENCODINGS.join(', ')} (default float), or a non-empty list of them: then each vector is an object keyed by encoding name.`,
  anyOf: [
    { type: 'string', enum: [...ENCODINGS] },
    { type: 'array', minItems: 1, items: { type: 'string', enum: [...ENCODINGS] } },
    { type: 'null' },
  ],
  'x-handler-checked': true,
};

const flag = (description: string): Schema => ({ type: ['boolean', 'null'], description });

export const embeddingsBody: Schema = {
  type: 'object',
  'x-messages': 'must',
  required: ['model', 'input'],
  properties: {
    model: {
      type: 'string',
      minLength: 1,
      description: 'A served name (GET /v1/models) or an alias of one; anything else is 400 MODEL_MISMATCH.',
      'x-expected': 'a non-empty string naming a served model',
    },
    input: { ...ref('Input'), 'x-handler-checked': true },
    embedding_type: encoding,
    encoding_type: { ...encoding, description: 'Another name of embedding_type.' },
    encoding_format: { ...encoding, description: "OpenAI's name of embedding_type." },
    normalized: flag('true (default): unit-length vectors.'),
    truncate: flag('true: texts longer than the model reads are cut; false (default): 422 TEXT_TOO_LONG.'),
    task: { type: ['string', 'null'], description: "Jina's task (retrieval.query, retrieval.passage, ...), applied where the model has task instructions; 422 TASK_UNSUPPORTED where it has none for it." },
    dimensions: {
      type: ['integer', 'null'],
      minimum: 1,
      description: "Matryoshka truncation to this many dimensions (normalised again) where the model's vectors can be cut; 422 DIMENSIONS_INVALID otherwise.",
      'x-expected': 'a positive integer',
    },
    late_chunking: flag('Only false: no served model can do late chunking (422 LATE_CHUNKING_UNSUPPORTED).'),
  },
  // Jina's and OpenAI's clients send fields of their own (user, ...): ignored.
  additionalProperties: true,
  examples: [{ model: 'jina-clip-v1', input: [{ text: 'a photo of a cat' }, { image: 'https://example.com/cat.jpg' }] }],
};

export const embeddingsSchema: Schema = {
  summary: 'Embed texts and images',
  description: "Jina's Embeddings API: one vector per input item, in order. OpenAI's clients work too (encoding_format).",
  tags: ['embeddings'],
  security: KEYED,
  body: embeddingsBody,
  response: {
    200: {
      description: 'One embedding per input item.',
      type: 'object',
      required: ['model', 'object', 'usage', 'data'],
      properties: {
        model: { type: 'string', description: 'The served name of the model that ran.' },
        object: { type: 'string', enum: ['list'] },
        usage: ref('Usage'),
        data: { type: 'array', items: ref('Embedding') },
      },
    },
    ...errorResponses(ALWAYS, AUTH, BODY, RATE, MODEL, ITEMS, ['DIMENSIONS_INVALID', 'TASK_UNSUPPORTED', 'LATE_CHUNKING_UNSUPPORTED']),
  },
};
