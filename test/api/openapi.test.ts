// The published API description (/openapi.json, /docs) against the real server: every answer
// the routes give, good and bad, matches the schema published for it (closed: a field the
// server sends that the schema does not name fails); the README's route tables, the spec and
// the error registry agree; empty JSON bodies where none is needed are accepted.
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { loadApiKeys } from '../../src/api/auth.ts';
import { ERRORS } from '../../src/errors.ts';
import { openStore } from '../../src/store/open.ts';
import type { VectorStore } from '../../src/store/store.ts';
import { solidImage } from '../helpers/images.ts';
import { tempDir } from '../helpers/models.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

type Json = Record<string, unknown>;
interface OpenApi {
  openapi: string;
  paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, { schema: Json }> }>; requestBody?: { required: boolean; content: Record<string, { schema: Json }> }; security?: unknown[] }>>;
  components: { schemas: Record<string, Json>; securitySchemes: Record<string, Json> };
}

let api: TestServer;
let store: VectorStore;
let spec: OpenApi;
let ajv: Ajv2020;

const dataUri = async (rgb: [number, number, number]) => `data:image/png;base64,${(await solidImage(48, 48, rgb)).toString('base64')}`;

/**
 * The spec with every object schema that names its properties and says nothing of others
 * closed (additionalProperties: false): answers are checked for fields the spec does not name.
 */
function closed(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(closed);
  if (value === null || typeof value !== 'object') return value;
  const out: Json = {};
  for (const [k, v] of Object.entries(value)) out[k] = k === 'enum' || k === 'examples' || k === 'required' ? v : closed(v);
  if (out.properties && typeof out.properties === 'object' && !('additionalProperties' in out) && !('allOf' in out)) out.additionalProperties = false;
  return out;
}

/** JSON Pointer escaping of one path segment. */
const pointer = (s: string) => s.replace(/~/g, '~0').replace(/\//g, '~1');

/** The Fastify route as OpenAPI writes it: /v1/collections/:name -> /v1/collections/{name}. */
const openapiPath = (route: string) => route.replace(/:([A-Za-z_]+)/g, '{$1}');

const checked = new Set<string>();

/** Checks one answer against the published response schema of its route, method and status. */
async function conforms(response: Response, method: string, route: string): Promise<unknown> {
  const path = openapiPath(route);
  const status = String(response.status);
  const operation = spec.paths[path]?.[method.toLowerCase()];
  assert.ok(operation, `${method} ${path} is not in /openapi.json`);
  const described = operation.responses[status];
  assert.ok(described, `${method} ${path} answered ${status}, which /openapi.json does not list (it lists ${Object.keys(operation.responses).join(', ')})`);
  const text = await response.text();
  const type = response.headers.get('content-type') ?? '';
  if (!type.includes('json')) return text;
  const body = JSON.parse(text) as unknown;
  const ref = `openapi.json#/paths/${pointer(path)}/${method.toLowerCase()}/responses/${status}/content/application~1json/schema`;
  const validate = ajv.getSchema(ref) ?? ajv.compile({ $ref: ref });
  assert.ok(validate(body), `${method} ${path} ${status}: ${ajv.errorsText(validate.errors)}\n${text.slice(0, 600)}`);
  checked.add(`${method} ${path} ${status}`);
  return body;
}

/** Checks a request body against the published request schema (the precise one, as documented). */
function acceptedBySpec(method: string, route: string, body: unknown): boolean {
  const path = openapiPath(route);
  const ref = `openapi.json#/paths/${pointer(path)}/${method.toLowerCase()}/requestBody/content/application~1json/schema`;
  const validate = ajv.getSchema(ref) ?? ajv.compile({ $ref: ref });
  return validate(body) as boolean;
}

const post = (route: string, path: string, body: unknown) => api.post(path, body).then((r) => conforms(r, 'POST', route));
const get = (route: string, path: string, init?: RequestInit) => fetch(api.url + path, init).then((r) => conforms(r, 'GET', route));
const del = (route: string, path: string) => fetch(api.url + path, { method: 'DELETE' }).then((r) => conforms(r, 'DELETE', route));

before(async () => {
  store = await openStore(await tempDir('tessera-openapi-'));
  api = await startServer({ model: 'colour', store, args: ['--max-items', '8'] });
  const response = await fetch(`${api.url}/openapi.json`);
  assert.equal(response.status, 200);
  spec = (await response.json()) as OpenApi;
  ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
  ajv.addSchema(closed(spec) as Json, 'openapi.json');
});
after(async () => {
  await api.close();
  await store.close();
});

describe('/openapi.json', () => {
  test('is OpenAPI 3.1 with the shared schemas as named components and a bearer key scheme', () => {
    assert.equal(spec.openapi, '3.1.0');
    for (const name of ['Usage', 'Embedding', 'SearchHit', 'Document', 'DuplicateJob', 'Collection']) assert.ok(spec.components.schemas[name], name);
    assert.deepEqual(spec.components.securitySchemes.apiKey, { ...spec.components.securitySchemes.apiKey, type: 'http', scheme: 'bearer' });
    assert.deepEqual(spec.paths['/v1/embeddings']!.post!.security, [{ apiKey: [] }]);
    assert.deepEqual(spec.paths['/live']!.get!.security, []);
    // The page's own files and the documentation page are not API routes.
    for (const path of Object.keys(spec.paths)) assert.ok(!path.startsWith('/web/') && !path.startsWith('/docs') && !path.startsWith('/mcp'), path);
  });

  test('every error code a route lists is in the registry, under its status', () => {
    for (const [path, item] of Object.entries(spec.paths)) {
      for (const [method, operation] of Object.entries(item)) {
        for (const [status, response] of Object.entries(operation.responses)) {
          if (Number(status) < 400) continue;
          const schema = response.content?.['application/json']?.schema as { properties: { code: { enum: string[] } } };
          assert.ok(schema?.properties?.code?.enum?.length, `${method} ${path} ${status} lists no codes`);
          for (const code of schema.properties.code.enum) {
            assert.ok(code in ERRORS, `${method} ${path} ${status}: ${code} is not in the registry`);
            assert.equal(ERRORS[code as keyof typeof ERRORS].status, Number(status), `${method} ${path}: ${code} is listed under ${status}`);
          }
        }
        // Every route that takes a body can be refused for it, and every /v1 route for its key.
        if (operation.requestBody) assert.ok(operation.responses['422'] && operation.responses['413'] && operation.responses['415'], `${method} ${path}`);
        if (path.startsWith('/v1/')) assert.ok(operation.responses['401'], `${method} ${path} lists no 401`);
      }
    }
  });

  test("the README's route tables list exactly the routes of /openapi.json, and link /docs and /openapi.json", async () => {
    const readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8');
    // Route tables may also live in the manual's chapters under docs/ (linked from the README).
    const docs = new URL('../../docs/', import.meta.url);
    const chapters = await Promise.all((await readdir(docs)).filter((f) => f.endsWith('.md')).map((f) => readFile(new URL(f, docs), 'utf8')));
    const documented = new Set<string>();
    for (const line of [readme, ...chapters].join('\n').split('\n')) {
      if (!/^\| `(GET|POST|DELETE|PUT|PATCH)\b/.test(line)) continue;
      const cell = line.split(' | ')[0]!;
      // "`GET /a`", "`GET`, `DELETE /a`" (both methods), "`POST /a` (also `/b`)" (POST /b too).
      let pending: string[] = [];
      let methods: string[] = [];
      for (const [, code] of cell.matchAll(/`([^`]+)`/g)) {
        const match = /^((?:GET|POST|DELETE|PUT|PATCH)(?:, ?(?:GET|POST|DELETE|PUT|PATCH))*)?\s*(\/\S*)?$/.exec(code!);
        assert.ok(match && (match[1] || match[2]), `unreadable route ${JSON.stringify(code)} in the README: ${line}`);
        if (!match[2]) {
          pending.push(...match[1]!.split(/, ?/));
          continue;
        }
        if (match[1]) methods = [...pending, ...match[1].split(/, ?/)];
        pending = [];
        assert.ok(methods.length, `no method for ${match[2]} in the README: ${line}`);
        for (const m of methods) documented.add(`${m} ${match[2].replace(/\?.*$/, '')}`);
      }
    }
    const published = new Set(Object.entries(spec.paths).flatMap(([path, item]) => Object.keys(item).map((m) => `${m.toUpperCase()} ${path}`)));
    // The documentation page is a route of the README's table, not of the API it documents.
    documented.delete('GET /docs');
    assert.deepEqual([...published].filter((r) => !documented.has(r)).sort(), [], 'routes missing from the README');
    assert.deepEqual([...documented].filter((r) => !published.has(r)).sort(), [], 'README routes missing from /openapi.json');
    const manual = [readme, ...chapters].join('\n');
    assert.match(manual, /\[`\/docs`\]\([^)]*#the-api-description/, 'no link to the API description');
    assert.ok(readme.includes('/openapi.json') && readme.includes('/docs'), 'the README names neither /openapi.json nor /docs');
  });

  test('the request examples it publishes, and real requests, are accepted by its request schemas; malformed ones are not', async () => {
    for (const [path, item] of Object.entries(spec.paths)) {
      for (const [method, operation] of Object.entries(item)) {
        const schema = operation.requestBody?.content['application/json']?.schema as { examples?: unknown[] } | undefined;
        for (const example of schema?.examples ?? []) assert.ok(acceptedBySpec(method, path, example), `${method} ${path}: ${JSON.stringify(example)}`);
      }
    }
    const good: [string, string, unknown][] = [
      ['POST', '/v1/embeddings', { model: 'jina-clip-v1', input: 'one text', encoding_format: ['float', 'base64'], normalized: null }],
      ['POST', '/v1/embeddings', { model: 'jina-clip-v1', input: [{ url: 'https://example.com/a.png' }, { bytes: 'aGk=' }], user: 'x' }],
      ['POST', '/v1/classify', { classifier_id: 'c', input: { text: 'a' } }],
      ['POST', '/v1/train', { classifier_id: 'c', input: { image: 'https://example.com/a.png', label: 'x' }, num_iters: 3 }],
      ['POST', '/v1/collections/:name/search', { query: [{ text: 'red' }, { image: 'https://example.com/a.png', weight: -0.5 }], cutoff: { relative: 0.9 }, sort: '-taken_at' }],
      ['POST', '/v1/collections/:name/duplicates', null],
    ];
    for (const [method, path, body] of good) assert.ok(acceptedBySpec(method, path, body), `${method} ${path}: ${JSON.stringify(body)}`);
    const bad: [string, string, unknown][] = [
      ['POST', '/v1/embeddings', { model: 'jina-clip-v1', input: ['ok', 42] }],
      ['POST', '/v1/embeddings', { model: 'jina-clip-v1', input: [] }],
      ['POST', '/v1/embeddings', { model: 'jina-clip-v1', input: ['x'], embedding_type: 'int4' }],
      ['POST', '/v1/train', { model: 'm', input: [{ text: 'red', label: 'warm', colour: 'x' }] }],
      ['POST', '/v1/collections/:name/search', { query: [] }],
      ['POST', '/v1/collections/:name/search', { query: { text: 'red', id: 'x', weight: 1, extra: 1 } }],
      ['POST', '/v1/collections/:name/search', { query: 'red', cutoff: { relative: 2 } }],
      ['POST', '/v1/collections/:name/documents', { documents: [{ id: 'x', text: 'red', metadata: { exif: { iso: 100 } } }] }],
    ];
    for (const [method, path, body] of bad) assert.ok(!acceptedBySpec(method, path, body), `${method} ${path} accepts ${JSON.stringify(body)}`);
  });
});

describe('real answers match the published schemas', () => {
  test('health, models, the page and the spec itself', async () => {
    await get('/live', '/live');
    await get('/health', '/health');
    await get('/ready', '/ready');
    await get('/ready', '/ready?store=1');
    await get('/ready', '/ready?store=maybe');
    await get('/v1/models', '/v1/models');
    await get('/metrics', '/metrics');
    await get('/openapi.json', '/openapi.json');
    await get('/', '/');
  });

  test('embeddings in every encoding, and their errors', async () => {
    const image = await dataUri([255, 0, 0]);
    for (const route of ['/v1/embeddings', '/embeddings']) await post(route, route, { model: 'jina-clip-v1', input: ['red', { image }] });
    await post('/v1/embeddings', '/v1/embeddings', { model: 'jina-clip-v1', input: 'red', encoding_format: 'base64' });
    // None from Python clients is "not given", as it always was.
    const nulls = { embedding_type: null, encoding_format: null, normalized: null, truncate: null, task: null, dimensions: null, late_chunking: null };
    const answered = (await post('/v1/embeddings', '/v1/embeddings', { model: 'jina-clip-v1', input: ['red'], ...nulls })) as { data: unknown[] };
    assert.equal(answered.data.length, 1);
    await post('/v1/embeddings', '/v1/embeddings', { model: 'jina-clip-v1', input: ['red'], embedding_type: ['float', 'base64', 'binary', 'ubinary'] });
    for (const body of [
      '{"model": ',
      [1],
      { input: ['x'] },
      { model: 'gpt-4', input: ['x'] },
      { model: 'jina-clip-v1', input: ['x'], dimensions: 0 },
      { model: 'jina-clip-v1', input: ['x'], late_chunking: true },
      { model: 'jina-clip-v1', input: Array(9).fill('x') },
      { model: 'jina-clip-v1', input: [{ image: 'aGVsbG8=' }] },
      { model: 'jina-clip-v1', input: [{ image: 'http://127.0.0.1:9/x.png' }] },
    ]) {
      await post('/v1/embeddings', '/v1/embeddings', body);
    }
    const wrongType = await fetch(`${api.url}/v1/embeddings`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'x' });
    assert.equal(wrongType.status, 415);
    await conforms(wrongType, 'POST', '/v1/embeddings');
  });

  test('classification, zero-shot and few-shot, and the classifiers', async () => {
    await post('/v1/classify', '/v1/classify', { model: 'jina-clip-v1', input: ['red', { image: await dataUri([0, 0, 255]) }], labels: ['red', 'blue'] });
    const zeroShot = (await post('/v1/classify', '/v1/classify', { model: 'jina-clip-v1', classifier_id: null, input: ['red'], labels: ['red', 'blue'] })) as { data: { prediction: string }[] };
    assert.equal(zeroShot.data[0]!.prediction, 'red');
    const trained = (await post('/v1/train', '/v1/train', { model: 'jina-clip-v1', input: [{ text: 'red', label: 'warm' }, { text: 'blue', label: 'cool' }], access: 'public' })) as { classifier_id: string };
    await post('/v1/train', '/v1/train', { classifier_id: trained.classifier_id, input: { text: 'orange', label: 'warm' } });
    await post('/v1/classify', '/v1/classify', { classifier_id: trained.classifier_id, input: ['yellow'] });
    const trainedNulls = await api.post('/v1/train', { classifier_id: trained.classifier_id, model: null, access: null, num_iters: null, input: { text: 'red', label: 'warm' } });
    assert.equal(trainedNulls.status, 200, await trainedNulls.clone().text());
    await get('/v1/classifiers', '/v1/classifiers');
    await post('/v1/classify', '/v1/classify', { model: 'jina-clip-v1', input: ['x'], labels: ['a'] });
    await post('/v1/train', '/v1/train', { model: 'jina-clip-v1', input: [{ text: 'x', label: 'a' }], access: 'shared' });
    await post('/v1/train', '/v1/train', { model: 'jina-clip-v1', input: [{ text: 'x', label: 'a' }], labels: ['a'] });
    await post('/v1/classify', '/v1/classify', { classifier_id: 'no-such-classifier', input: ['x'] });
    await del('/v1/classifiers/:id', `/v1/classifiers/${trained.classifier_id}`);
    await del('/v1/classifiers/:id', `/v1/classifiers/${trained.classifier_id}`);
  });

  test('collections, documents, search with moments, pages and collapsed results, duplicates', async () => {
    const red = await solidImage(48, 48, [255, 0, 0]);
    await post('/v1/collections', '/v1/collections', { name: 'spec' });
    await post('/v1/collections', '/v1/collections', { name: 'spec' });
    await post('/v1/collections', '/v1/collections', { name: '-bad' });
    await post('/v1/collections', '/v1/collections', { name: 'x', colour: 'red' });
    await get('/v1/collections', '/v1/collections');
    const documents = [
      { id: 'red.png', image: `data:image/png;base64,${red.toString('base64')}`, metadata: { colour: 'red', n: 1, photo: true } },
      { id: 'red-copy.png', image: red.toString('base64'), metadata: { colour: 'red' } },
      { id: 'note', text: 'a red note', metadata: { colour: 'red' } },
      { id: 'clip.mp4#t=1', image: red.toString('base64'), metadata: { video: 'clip.mp4', t: 1 } },
      { id: 'clip.mp4#t=2', image: (await solidImage(48, 48, [250, 0, 0])).toString('base64'), metadata: { video: 'clip.mp4', t: 2 } },
      { id: 'doc.pdf#page=1', text: 'red page one', metadata: { pdf: 'doc.pdf', page: 1 } },
      { id: 'doc.pdf#page=2', text: 'red page two', metadata: { pdf: 'doc.pdf', page: 2 } },
    ];
    await post('/v1/collections/:name/documents', '/v1/collections/spec/documents', { documents });
    await post('/v1/collections/:name/documents', '/v1/collections/spec/documents', { documents: [{ id: 'x', text: 'a', image: 'b' }] });
    await post('/v1/collections/:name/documents', '/v1/collections/spec/documents', { documents: [] });
    await post('/v1/collections/:name/documents', '/v1/collections/nope/documents', { documents: [{ id: 'x', text: 'a' }] });
    await get('/v1/collections/:name/documents/:id', '/v1/collections/spec/documents/red.png');
    await get('/v1/collections/:name/documents/:id', '/v1/collections/spec/documents/note');
    await get('/v1/collections/:name/documents/:id', '/v1/collections/spec/documents/missing');
    await get('/v1/collections/:name/documents/:id/thumbnail', '/v1/collections/spec/documents/red.png/thumbnail');
    await get('/v1/collections/:name/documents/:id/file', '/v1/collections/spec/documents/red.png/file');

    const hits = (await post('/v1/collections/:name/search', '/v1/collections/spec/search', { query: 'red', k: 10, collapse: true })) as { data: Json[] };
    for (const field of ['moments', 'pages', 'collapsed']) assert.ok(hits.data.some((h) => field in h), `no hit with ${field}: ${JSON.stringify(hits.data)}`);
    await post('/v1/collections/:name/search', '/v1/collections/spec/search', { query: [{ id: 'note' }, { text: 'red', weight: 2 }], group: false, mode: 'hybrid', filter: { colour: 'red' } });
    for (const body of [{ query: 'red', k: 0 }, { query: '' }, { query: 'red', filter: { colour: { $regex: 'r' } } }, { query: 'red', top_k: 1 }, { query: { id: 'missing' } }]) {
      await post('/v1/collections/:name/search', '/v1/collections/spec/search', body);
    }

    const job = (await post('/v1/collections/:name/duplicates', '/v1/collections/spec/duplicates', { threshold: 0.9 })) as { id: string };
    await post('/v1/collections/:name/duplicates', '/v1/collections/spec/duplicates', { threshold: 2 });
    await get('/v1/collections/:name/duplicates', '/v1/collections/spec/duplicates');
    for (let i = 0; i < 200; i++) {
      const answer = (await fetch(`${api.url}/v1/collections/spec/duplicates/${job.id}`).then((r) => r.json())) as { status: string };
      if (answer.status === 'done') break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const done = (await get('/v1/collections/:name/duplicates/:job', `/v1/collections/spec/duplicates/${job.id}?limit=1`)) as { data: unknown[]; status: string };
    assert.equal(done.status, 'done');
    assert.ok(done.data.length > 0);
    await get('/v1/collections/:name/duplicates/:job', `/v1/collections/spec/duplicates/${job.id}?limit=0`);
    await get('/v1/collections/:name/duplicates/:job', `/v1/collections/spec/duplicates/${job.id}?offset=&limit=`);
    await del('/v1/collections/:name/duplicates/:job', `/v1/collections/spec/duplicates/${job.id}`);
    await del('/v1/collections/:name/duplicates/:job', `/v1/collections/spec/duplicates/${job.id}`);

    await del('/v1/collections/:name/documents/:id', '/v1/collections/spec/documents/note');
    await del('/v1/collections/:name/documents/:id', '/v1/collections/spec/documents/note');
    await del('/v1/collections/:name', '/v1/collections/spec');
    await del('/v1/collections/:name', '/v1/collections/spec');
    await del('/v1/collections/:name', '/v1/collections/no%20pe');
  });

  test('every route of the spec was answered and checked', () => {
    const routes = Object.entries(spec.paths).flatMap(([path, item]) => Object.keys(item).map((m) => `${m.toUpperCase()} ${path}`));
    const answered = new Set([...checked].map((c) => c.split(' ').slice(0, 2).join(' ')));
    // Thumbnails and files answer images and files, checked by their content type only.
    const binary = ['GET /v1/collections/{name}/documents/{id}/thumbnail', 'GET /v1/collections/{name}/documents/{id}/file', 'GET /metrics', 'GET /'];
    assert.deepEqual(routes.filter((r) => !answered.has(r) && !binary.includes(r)), []);
  });
});

describe('validation errors keep the registry codes and name the field', () => {
  test('each part of a request: body, query string, path', async () => {
    const cases: [Promise<Response>, number, string, RegExp][] = [
      [api.post('/v1/embeddings', { model: 'jina-clip-v1', input: ['x'], task: 3 }), 422, 'REQUEST_INVALID', /^task must be a string, got number 3$/],
      [api.post('/v1/embeddings', { model: '', input: ['x'] }), 422, 'REQUEST_INVALID', /^model must be a non-empty string/],
      [api.post('/v1/train', { model: 'jina-clip-v1', input: [{ text: 'x', label: 'a' }], num_iters: 1.5 }), 422, 'REQUEST_INVALID', /^num_iters must be an integer from 1 to 1000, got number 1.5$/],
      [api.post('/v1/classify', { model: 'jina-clip-v1', input: ['x'], labels: ['a', 'a'] }), 422, 'REQUEST_INVALID', /^labels must be a list of at least two strings, each non-empty and distinct/],
      [api.post('/v1/classify', { model: 'jina-clip-v1', input: ['x'], labels: ['a', ' '] }), 422, 'REQUEST_INVALID', /^labels\[1\] must be a non-empty string/],
      [api.post('/v1/collections', {}), 422, 'COLLECTION_NAME_INVALID', /^name is required/],
      [api.post('/v1/collections', { name: 'ok', model: 5 }), 422, 'REQUEST_INVALID', /^model: expected a string but received number 5$/],
      [api.post('/v1/collections/nope/search', { query: 'red', group: 'yes' }), 422, 'SEARCH_PARAMETER_INVALID', /^group: expected true or false but received "yes"$/],
      [api.post('/v1/collections/nope/search', { query: 'red', sort: 'a b' }), 422, 'SEARCH_PARAMETER_INVALID', /^sort: expected "score", or a metadata key/],
      [api.post('/v1/collections/nope/duplicates', [1]), 422, 'REQUEST_INVALID', /^the body must be a JSON object, got an array$/],
      [fetch(`${api.url}/ready?store=maybe`), 422, 'REQUEST_INVALID', /^store must be 1, true, 0 or false/],
      [fetch(`${api.url}/v1/collections/nope/duplicates/j?offset=-1`), 422, 'SEARCH_PARAMETER_INVALID', /^offset: expected an integer from 0 to/],
      [fetch(`${api.url}/v1/collections/nope/duplicates/j?limit=ten`), 422, 'SEARCH_PARAMETER_INVALID', /^limit: expected an integer from 1 to 1000 but received "ten"$/],
      [fetch(`${api.url}/v1/collections/a%20b/duplicates`), 422, 'COLLECTION_NAME_INVALID', /^collection: expected 1-63 letters/],
    ];
    for (const [pending, status, code, detail] of cases) {
      const response = await pending;
      const body = (await response.json()) as { code: string; detail: string; request_id: string };
      assert.equal(response.status, status, JSON.stringify(body));
      assert.equal(body.code, code, JSON.stringify(body));
      assert.match(body.detail, detail);
      assert.equal(body.request_id, response.headers.get('x-request-id'));
    }
  });
});

describe('empty JSON bodies', () => {
  const empty = (method: string, path: string) => fetch(api.url + path, { method, headers: { 'content-type': 'application/json', 'content-length': '0' } });

  test('are no body on GET and DELETE, as clients and generated SDKs send them', async () => {
    const trained = (await (await api.post('/v1/train', { model: 'jina-clip-v1', input: [{ text: 'red', label: 'warm' }] })).json()) as { classifier_id: string };
    const removed = await empty('DELETE', `/v1/classifiers/${trained.classifier_id}`);
    assert.equal(removed.status, 200, await removed.clone().text());
    assert.deepEqual(await removed.json(), { classifier_id: trained.classifier_id, deleted: true });
    assert.equal((await empty('GET', '/v1/models')).status, 200);
    assert.equal((await empty('GET', '/v1/classifiers')).status, 200);
    await api.post('/v1/collections', { name: 'emptybody' });
    assert.equal((await empty('DELETE', '/v1/collections/emptybody')).status, 200);
    // A JSON body on a DELETE is still read (and ignored), a malformed one still refused.
    const withBody = await fetch(`${api.url}/v1/classifiers/none`, { method: 'DELETE', headers: { 'content-type': 'application/json' }, body: '{}' });
    assert.equal(withBody.status, 404);
    const malformed = await fetch(`${api.url}/v1/classifiers/none`, { method: 'DELETE', headers: { 'content-type': 'application/json' }, body: '{' });
    assert.equal(((await malformed.json()) as { code: string }).code, 'REQUEST_INVALID');
  });

  test('are refused where a body is needed, and are no body where it is optional', async () => {
    for (const path of ['/v1/embeddings', '/v1/classify', '/v1/train', '/v1/collections', '/v1/collections/x/search']) {
      const response = await empty('POST', path);
      const body = (await response.json()) as { code: string; detail: string };
      assert.equal(response.status, 422, path);
      assert.equal(body.code, 'REQUEST_INVALID');
      assert.match(body.detail, /not valid JSON/);
    }
    await api.post('/v1/collections', { name: 'emptyscan' });
    const scan = await empty('POST', '/v1/collections/emptyscan/duplicates');
    assert.equal(scan.status, 202, await scan.clone().text());
    assert.equal(((await scan.json()) as { threshold: number }).threshold, 0.95);
  });
});

describe('keys', () => {
  test('/openapi.json and /docs need none; the API does', async () => {
    const keyed = await startServer({ apiKeys: await loadApiKeys({ env: 'alice:tk-openapi-test-key' }) });
    for (const path of ['/openapi.json', '/docs', '/docs/json', '/docs/static/swagger-ui-bundle.js']) {
      const response = await fetch(keyed.url + path);
      await response.arrayBuffer(); // read whole: an unread body keeps its connection busy
      assert.equal(response.status, 200, path);
    }
    const refused = await fetch(`${keyed.url}/v1/models`);
    assert.equal(refused.status, 401);
    assert.equal(((await refused.json()) as { code: string }).code, 'AUTH_API_KEY_MISSING');
    await keyed.close();
  });
});
