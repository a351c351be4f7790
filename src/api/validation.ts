/**
 * Request validation by the routes' JSON Schemas (src/api/schemas/), with every failure
 * answered through the error registry: the code the route used before its schema existed
 * (REQUEST_INVALID, SEARCH_PARAMETER_INVALID, COLLECTION_NAME_INVALID, ...) and a message
 * naming the field, never Fastify's default 400 body.
 *
 * The schemas carry a few annotations besides JSON Schema (published in /openapi.json as
 * OpenAPI extensions):
 * - `x-error-code`: the registry code of a failure at this node or below it (the nearest wins;
 *   a missing required property takes its own node's code).
 * - `x-expected`: what a value must be, in words, for the message ("an integer from 1 to 1000").
 * - `x-messages`: on a schema's root, the wording of its messages: `must` ("normalized must be
 *   true or false, got string \"yes\"", the Jina-shaped routes) or `expected` ("k: expected an
 *   integer from 1 to 1000 but received 0", the search and store routes, as src/search/ words them).
 * - `x-field`: how messages name a path parameter (the collection's `name` is "collection").
 * - `x-handler-checked`: the node is documented here but checked by the route's own parser,
 *   whose messages are better or whose rules a schema cannot state (unions such as Jina's
 *   `input`, byte lengths, limits from the server's flags). Validation skips it: the
 *   validated copy of the schema has `{}` there, and the property is not required.
 *
 * Bodies are validated as sent (no type coercion, no defaults, nothing removed); query
 * strings and path parameters are coerced (`?limit=10` is the integer 10), and an empty
 * numeric query value (`?offset=`) counts as absent.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import type { FastifyInstance, FastifySchema, FastifySchemaCompiler } from 'fastify';
import { describeValue, TesseraError, type ErrorCode } from '../errors.ts';
import { describe } from './request.ts';

/** The annotations validation reads, registered as keywords so Ajv's strict mode knows them. */
export const ANNOTATIONS = ['x-error-code', 'x-expected', 'x-messages', 'x-field', 'x-handler-checked', 'x-body-optional'] as const;

type Schema = Record<string, unknown>;
type MessageStyle = 'must' | 'expected';

function ajvFor(coerce: boolean, shared: readonly Schema[]): Ajv {
  const ajv = new Ajv({
    allErrors: false,
    coerceTypes: coerce ? 'array' : false,
    useDefaults: false,
    removeAdditional: false,
    strict: true,
    allowUnionTypes: true,
    // `format` (date-time, binary) describes answers; no request field relies on one.
    validateFormats: false,
  });
  for (const keyword of ANNOTATIONS) ajv.addKeyword({ keyword });
  // OpenAPI's own annotations, allowed in its Schema Objects.
  for (const keyword of ['example', 'discriminator', 'xml', 'externalDocs']) ajv.addKeyword({ keyword });
  for (const schema of shared) ajv.addSchema(loosen(schema) as Schema);
  return ajv;
}

/** A copy of `schema` whose `x-handler-checked` nodes accept anything and are not required. */
export function loosen(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(loosen);
  if (schema === null || typeof schema !== 'object') return schema;
  const node = schema as Schema;
  if (node['x-handler-checked'] === true) return {};
  const out: Schema = {};
  for (const [key, value] of Object.entries(node)) {
    if (key === 'properties' || key === 'patternProperties' || key === '$defs') {
      out[key] = Object.fromEntries(Object.entries(value as Schema).map(([k, v]) => [k, loosen(v)]));
    } else if (key === 'enum' || key === 'const' || key === 'examples' || key === 'required' || key === 'default') {
      out[key] = value;
    } else {
      out[key] = loosen(value);
    }
  }
  if (Array.isArray(node.required) && node.properties) {
    const props = node.properties as Record<string, Schema>;
    out.required = (node.required as string[]).filter((name) => props[name]?.['x-handler-checked'] !== true);
  }
  return out;
}

/** `/input/1/text` -> ['input', '1', 'text']. */
function segmentsOf(instancePath: string): string[] {
  if (instancePath === '') return [];
  return instancePath.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** ['input', '1', 'text'] -> input[1].text */
function fieldOf(segments: readonly string[]): string {
  let field = '';
  for (const s of segments) field += /^\d+$/.test(s) ? `[${s}]` : field === '' ? s : `.${s}`;
  return field;
}

/** What Ajv's error is about, at the schema nodes along the path to it. */
class SchemaPath {
  readonly nodes: Schema[];
  constructor(root: Schema, segments: readonly string[], private readonly shared: ReadonlyMap<string, Schema>) {
    this.nodes = [this.resolve(root)];
    for (const segment of segments) {
      const node = this.nodes.at(-1)!;
      const props = node.properties as Record<string, Schema> | undefined;
      const next = props?.[segment] ?? (/^\d+$/.test(segment) ? (node.items as Schema | undefined) : undefined)
        ?? (typeof node.additionalProperties === 'object' ? (node.additionalProperties as Schema) : undefined);
      this.nodes.push(this.resolve(next ?? {}));
    }
  }

  private resolve(node: Schema): Schema {
    const ref = node.$ref;
    if (typeof ref !== 'string') return node;
    return this.shared.get(ref.replace(/#$/, '')) ?? node;
  }

  get node(): Schema {
    return this.nodes.at(-1)!;
  }

  code(fallback: ErrorCode, from: Schema[] = this.nodes): ErrorCode {
    for (let i = from.length - 1; i >= 0; i--) {
      const code = from[i]!['x-error-code'];
      if (typeof code === 'string') return code as ErrorCode;
    }
    return fallback;
  }
}

function typesOf(node: Schema): string[] {
  const t = node.type;
  return (Array.isArray(t) ? t : t === undefined ? [] : [t]).filter((x) => x !== 'null') as string[];
}

/** What a node accepts, in words, when it says nothing itself. */
function expectedOf(node: Schema): string {
  if (typeof node['x-expected'] === 'string') return node['x-expected'];
  if (Array.isArray(node.enum)) return `one of ${node.enum.filter((v) => v !== null).map((v) => JSON.stringify(v)).join(', ')}`;
  const [type] = typesOf(node);
  const min = node.minimum ?? node.exclusiveMinimum;
  const max = node.maximum ?? node.exclusiveMaximum;
  switch (type) {
    case 'integer':
      return min !== undefined && max !== undefined ? `an integer from ${min} to ${max}` : min === 1 ? 'a positive integer' : 'an integer';
    case 'number':
      return min !== undefined && max !== undefined ? `a number from ${min} to ${max}` : 'a number';
    case 'boolean':
      return 'true or false';
    case 'string':
      return node.minLength === 1 ? 'a non-empty string' : 'a string';
    case 'array':
      return node.minItems === 1 ? 'a non-empty list' : 'a list';
    case 'object':
      return 'a JSON object';
    default:
      return 'a valid value';
  }
}

function valueAt(data: unknown, segments: readonly string[]): unknown {
  let value = data;
  for (const s of segments) value = value !== null && typeof value === 'object' ? (value as Record<string, unknown>)[s] : undefined;
  return value;
}

const PART_NAMES: Record<string, string> = { body: 'the body', querystring: 'the query string', params: 'the path', headers: 'the headers' };

/**
 * The TesseraError for Ajv's first error on `data` (a request's `part`) against `root`:
 * the registry code its schema names and a message naming the field.
 */
export function schemaError(error: ErrorObject, data: unknown, part: string, root: Schema, shared: ReadonlyMap<string, Schema>): TesseraError {
  const style: MessageStyle = root['x-messages'] === 'must' ? 'must' : 'expected';
  const segments = segmentsOf(error.instancePath);
  const path = new SchemaPath(root, segments, shared);
  const fallback: ErrorCode = 'REQUEST_INVALID';
  const label = (segs: readonly string[], node?: Schema) =>
    typeof node?.['x-field'] === 'string' ? node['x-field'] : segs.length === 0 ? PART_NAMES[part] ?? part : fieldOf(segs);

  if (error.keyword === 'required') {
    const missing = String((error.params as { missingProperty: string }).missingProperty);
    const node = (path.node.properties as Record<string, Schema> | undefined)?.[missing] ?? {};
    const code = path.code(fallback, [...path.nodes, node]);
    const expected = typeof node['x-expected'] === 'string' ? `: ${node['x-expected']}` : '';
    return new TesseraError(code, `${label([...segments, missing], node)} is required${expected}`);
  }
  if (error.keyword === 'additionalProperties') {
    const extra = String((error.params as { additionalProperty: string }).additionalProperty);
    const fields = Object.keys((path.node.properties as Schema | undefined) ?? {}).join(', ');
    const code = path.code(fallback);
    if (style === 'must') return new TesseraError(code, `${fieldOf([...segments, extra])} is not a field of this request; expected ${fields}`);
    const where = segments.length === 0 ? '' : `${fieldOf(segments)}: `;
    return new TesseraError(code, `${where}unknown field ${JSON.stringify(extra)}; the fields are ${fields}`);
  }
  const value = valueAt(data, segments);
  const node = path.node;
  const code = path.code(fallback);
  if (segments.length === 0 && part === 'body' && error.keyword === 'type') {
    return new TesseraError(code, `the body must be a JSON object, got ${describe(value)}`);
  }
  const field = label(segments, node);
  const expected = expectedOf(node);
  if (style === 'must') return new TesseraError(code, `${field} must be ${expected}, got ${describe(value)}`);
  return new TesseraError(code, `${field}: expected ${expected} but received ${describeValue(value)}`);
}

/** Query values of numeric properties that are empty strings: absent, as the routes always read them. */
function dropEmptyNumbers(schema: Schema, data: unknown): void {
  if (data === null || typeof data !== 'object') return;
  const props = (schema.properties ?? {}) as Record<string, Schema>;
  for (const [name, prop] of Object.entries(props)) {
    const types = typesOf(prop);
    if ((types.includes('integer') || types.includes('number')) && (data as Record<string, unknown>)[name] === '') {
      delete (data as Record<string, unknown>)[name];
    }
  }
}

/**
 * Fastify's validator compiler for every route: one Ajv for bodies (as sent) and one for query
 * strings, path parameters and headers (coerced), both knowing the shared schemas.
 */
export function validatorCompiler(shared: readonly Schema[]): FastifySchemaCompiler<FastifySchema> {
  const byId = new Map(shared.map((s) => [String(s.$id), s]));
  const bodies = ajvFor(false, shared);
  const others = ajvFor(true, shared);
  return ({ schema, httpPart }) => {
    const root = schema as Schema;
    const part = httpPart ?? 'body';
    const validate: ValidateFunction = (part === 'body' ? bodies : others).compile(loosen(root) as Schema);
    return (data: unknown) => {
      if (part === 'querystring') dropEmptyNumbers(root, data);
      if (validate(data)) return { value: data };
      return { error: schemaError(validate.errors![0]!, data, part, root, byId) };
    };
  };
}

/**
 * JSON bodies: Fastify's parser (prototype poisoning refused), except that an empty body is
 * no body where none is needed: on GET, HEAD, DELETE and OPTIONS, which many HTTP clients and
 * generated SDKs send with `Content-Type: application/json` anyway, and on routes whose body
 * is optional (`x-body-optional` in their schema). An empty body where one is needed stays
 * a 422 REQUEST_INVALID ("the body is not valid JSON").
 */
export function installJsonParser(app: FastifyInstance): void {
  const parse = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const text = body as string;
    const empty = text === '' || (bodyless(request.method) && text.trim() === '');
    if (empty && (bodyless(request.method) || (request.routeOptions.schema as Schema | undefined)?.['x-body-optional'] === true)) {
      done(null, undefined);
      return;
    }
    parse(request, text, done);
  });
}

function bodyless(method: string): boolean {
  return method === 'GET' || method === 'HEAD' || method === 'DELETE' || method === 'OPTIONS';
}
