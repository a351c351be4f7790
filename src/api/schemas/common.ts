/**
 * What every route's schema shares: the error answers (each status with the registry codes a
 * route can answer it with), the groups of codes the routes have in common, and small helpers.
 *
 * Response schemas document the answers; they do not serialize them (the server keeps
 * JSON.stringify, see server.ts), so a field missing here is never dropped from an answer:
 * test/api/openapi.test.ts checks real answers against these schemas, closed, instead.
 */
import { ERRORS, type ErrorCode } from '../../errors.ts';

export type Schema = Record<string, unknown>;

/** A reference to a shared schema (components.schemas in /openapi.json). */
export const ref = (id: string): Schema => ({ $ref: `${id}#` });

/** A type that may also be null (Python clients send None for "not given"). */
export const nullable = (schema: Schema): Schema => ({ ...schema, type: [schema.type, 'null'] });

/** Codes any route can answer with. */
export const ALWAYS: readonly ErrorCode[] = ['SHUTTING_DOWN', 'INTERNAL_ERROR'];
/** /v1/* and /embeddings, when keys are configured. */
export const AUTH: readonly ErrorCode[] = ['AUTH_API_KEY_MISSING', 'AUTH_API_KEY_INVALID'];
/** Routes that read a JSON body. */
export const BODY: readonly ErrorCode[] = ['REQUEST_INVALID', 'PAYLOAD_TOO_LARGE', 'UNSUPPORTED_MEDIA_TYPE'];
/** Routes admitted against the key's rate limits. */
export const RATE: readonly ErrorCode[] = ['RATE_REQUEST_LIMIT_EXCEEDED', 'RATE_TOKEN_LIMIT_EXCEEDED', 'RATE_CONCURRENCY_LIMIT_EXCEEDED'];
/** Routes that run a model. */
export const MODEL: readonly ErrorCode[] = ['MODEL_MISMATCH', 'NOT_READY', 'INFERENCE_THREAD_DIED', 'QUEUE_FULL', 'REQUEST_CANCELLED'];
/** An image given by URL, base64 or data URI. */
export const IMAGES: readonly ErrorCode[] = [
  'IMAGE_SOURCE_INVALID',
  'IMAGE_UNDECODABLE',
  'IMAGE_TOO_LARGE',
  'IMAGE_FORMAT_UNSUPPORTED',
  'IMAGE_URL_INVALID',
  'IMAGE_URL_BLOCKED',
  'IMAGE_FETCH_FAILED',
  'IMAGE_FETCH_TIMEOUT',
];
/** Routes that embed a request's texts and images. */
export const ITEMS: readonly ErrorCode[] = ['TOO_MANY_ITEMS', 'TEXT_TOO_LONG', ...IMAGES];
/** Routes that read or write the store. */
export const STORE: readonly ErrorCode[] = ['STORE_UNAVAILABLE', 'STORE_INVALID'];

/** The `security` of a route that needs a key when keys are configured. */
export const KEYED = [{ apiKey: [] }];
/** The `security` of a route that never needs one. */
export const OPEN: unknown[] = [];

/**
 * The error answers of a route that can fail with `codes`: one response per status, its
 * body `{detail, code, request_id}` with `code` one of that status's codes.
 */
export function errorResponses(...groups: (readonly ErrorCode[])[]): Record<string, Schema> {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of new Set(groups.flat())) {
    const status = ERRORS[code].status;
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  const responses: Record<string, Schema> = {};
  for (const [status, codes] of [...byStatus].sort(([a], [b]) => a - b)) {
    responses[String(status)] = {
      description: codes.map((code) => `\`${code}\`: ${ERRORS[code].summary}`).join('; '),
      type: 'object',
      required: ['detail', 'code', 'request_id'],
      properties: {
        detail: { type: 'string', description: 'What was wrong, naming the field or item (`input[i]: ...`).' },
        code: { type: 'string', enum: codes, description: 'The registry code (docs/server.md, Errors).' },
        request_id: { type: 'string', description: 'Also in the `x-request-id` header; finds the request in the server log.' },
      },
    };
  }
  return responses;
}

/** `{name}` of /v1/collections/{name}/...: COLLECTION_NAME_INVALID naming "collection". */
export const collectionName: Schema = {
  type: 'string',
  pattern: '^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$',
  description: 'The collection: 1-63 letters, digits, "_" or "-" starting with a letter or digit.',
  'x-field': 'collection',
  'x-error-code': 'COLLECTION_NAME_INVALID',
  'x-expected': '1-63 letters, digits, "_" or "-" starting with a letter or digit',
};

/** `{id}` of a document: checked by the route (a limit in UTF-8 bytes, which a schema cannot state). */
export const documentId: Schema = {
  type: 'string',
  description: 'The document id, URL-encoded: a non-empty string of at most 512 UTF-8 bytes.',
  'x-handler-checked': true,
};
