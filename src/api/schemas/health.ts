/** GET /v1/models, /live (/health), /ready, /metrics, and the documentation routes. */
import { ALWAYS, AUTH, KEYED, OPEN, errorResponses, type Schema } from './common.ts';

export const modelsSchema: Schema = {
  summary: 'The served models',
  description: "Jina's and OpenAI's list shape; a model's facts are null until it has been warmed up.",
  tags: ['models'],
  security: KEYED,
  response: {
    200: {
      description: 'Every served model, the default first.',
      type: 'object',
      required: ['object', 'data'],
      properties: {
        object: { type: 'string', enum: ['list'] },
        data: {
          type: 'array',
          items: {
            type: 'object',
            required: ['id', 'object', 'created', 'owned_by', 'dimensions', 'max_tokens', 'image_size', 'dtype', 'int8', 'ready'],
            properties: {
              id: { type: 'string', description: 'The served name: what `model` names.' },
              object: { type: 'string', enum: ['model'] },
              created: { type: 'integer', description: 'When it was handed to the server, in Unix seconds (0 before).' },
              owned_by: { type: 'string' },
              dimensions: { type: ['integer', 'null'] },
              max_tokens: { type: ['integer', 'null'] },
              image_size: { type: ['integer', 'null'] },
              dtype: { type: ['string', 'null'], enum: ['fp32', 'fp16', 'q8', null], description: 'The weight precision of the files run (--dtype).' },
              int8: {
                type: ['object', 'null'],
                description: 'q8: the int8 form each tower runs on this CPU (--int8: as-is, signed, unsigned or signed-7bit; null where the graph has no integer weights); null for other dtypes.',
                required: ['text', 'vision'],
                properties: { text: { type: ['string', 'null'] }, vision: { type: ['string', 'null'] } },
                additionalProperties: false,
              },
              ready: { type: 'boolean' },
            },
          },
        },
      },
    },
    ...errorResponses(ALWAYS, AUTH),
  },
};

export const liveSchema: Schema = {
  summary: 'Liveness',
  description: 'The process is up and answers HTTP (503 SHUTTING_DOWN once it drains).',
  tags: ['health'],
  security: OPEN,
  response: {
    200: { description: 'Alive.', type: 'object', required: ['status'], properties: { status: { type: 'string', enum: ['ok'] } } },
    ...errorResponses(ALWAYS),
  },
};

export const readySchema: Schema = {
  summary: 'Readiness',
  description:
    'Every model loaded and warmed up and the inference thread running; the store is reported without failing it, unless `store=1` asks for a ping of it now.',
  tags: ['health'],
  security: OPEN,
  querystring: {
    type: 'object',
    'x-messages': 'must',
    properties: {
      store: {
        type: 'string',
        enum: ['', '1', 'true', '0', 'false'],
        description: '1, true or bare `?store`: the store must answer a ping made now (503 STORE_UNAVAILABLE otherwise).',
        'x-expected': '1, true, 0 or false (e.g. /ready?store=1)',
      },
    },
  },
  response: {
    200: {
      description: 'Ready.',
      type: 'object',
      required: ['status', 'model', 'models'],
      properties: {
        status: { type: 'string', enum: ['ready'] },
        model: { type: 'string', description: 'The default model.' },
        models: { type: 'array', items: { type: 'string' } },
        store: {
          type: 'object',
          description: 'Absent on a server without a store.',
          required: ['status', 'since', 'checked_at'],
          properties: {
            status: { type: 'string', enum: ['available', 'unavailable'] },
            since: { type: 'string', format: 'date-time' },
            checked_at: { type: ['string', 'null'], format: 'date-time' },
            detail: { type: 'string', description: 'Why it is unavailable.' },
          },
        },
      },
    },
    ...errorResponses(ALWAYS, ['REQUEST_INVALID', 'NOT_READY', 'INFERENCE_THREAD_DIED', 'STORE_UNAVAILABLE']),
  },
};

export const metricsSchema: Schema = {
  summary: 'Prometheus metrics',
  tags: ['health'],
  security: OPEN,
  response: {
    200: { description: 'The Prometheus text format.', content: { 'text/plain': { schema: { type: 'string' } } } },
    ...errorResponses(ALWAYS),
  },
};

export const openapiSchema: Schema = {
  summary: 'This API as OpenAPI 3.1',
  description: 'What /docs shows; generate a client from it (openapi-typescript, openapi-generator, ...).',
  tags: ['documentation'],
  security: OPEN,
  response: {
    200: { description: 'The OpenAPI document.', type: 'object', additionalProperties: true },
  },
};

export const pageSchema: Schema = {
  summary: 'The search page',
  tags: ['documentation'],
  security: OPEN,
  response: {
    200: { description: 'The page (HTML; its scripts and styles are under /web/).', content: { 'text/html': { schema: { type: 'string' } } } },
    304: { description: 'Not modified (If-None-Match).', type: 'null' },
  },
};
