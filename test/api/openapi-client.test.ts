// A client generated from /openapi.json (openapi-typescript) and used through openapi-fetch
// against a live server, as a user of the API would: typechecked against the generated types
// with tsc, then run for embeddings, a collection's search and a few-shot classifier.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import openapiTS, { astToString } from 'openapi-typescript';
import { openStore } from '../../src/store/open.ts';
import type { VectorStore } from '../../src/store/store.ts';
import { solidImage } from '../helpers/images.ts';
import { tempDir } from '../helpers/models.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

const ROOT = join(import.meta.dirname, '..', '..');
/** Inside the repository (git-ignored), so the client resolves openapi-fetch from its node_modules. */
const DIR = join(ROOT, 'test-output', 'openapi-client');

/** What the client does, written as a user would write it against the generated types. */
const CLIENT = `import createClient from 'openapi-fetch';
import type { components, paths } from './schema.ts';

type Hit = components['schemas']['SearchHit'];

export async function run(baseUrl: string, image: string) {
  const tessera = createClient<paths>({ baseUrl });

  const embedded = await tessera.POST('/v1/embeddings', { body: { model: 'jina-clip-v1', input: ['a red car', { image }], normalized: true } });
  if (!embedded.data) throw new Error(JSON.stringify(embedded.error));
  const vectors = embedded.data.data.map((item) => item.embedding);
  const usage: components['schemas']['Usage'] = embedded.data.usage;

  const made = await tessera.POST('/v1/collections', { body: { name: 'client' } });
  if (!made.data) throw new Error(JSON.stringify(made.error));
  const path = { params: { path: { name: made.data.name } } };
  const written = await tessera.POST('/v1/collections/{name}/documents', {
    ...path,
    body: { documents: [{ id: 'red.png', image, metadata: { colour: 'red' } }, { id: 'sea', text: 'the blue sea', metadata: { year: 2024 } }] },
  });
  if (!written.data) throw new Error(JSON.stringify(written.error));
  const found = await tessera.POST('/v1/collections/{name}/search', { ...path, body: { query: [{ text: 'red', weight: 1 }], k: 2 } });
  if (!found.data) throw new Error(JSON.stringify(found.error));
  const hits: Hit[] = found.data.data;
  const refused = await tessera.POST('/v1/collections/{name}/search', { ...path, body: { query: 'red', k: 0 } });
  const refusal: string | undefined = refused.error?.code;

  const trained = await tessera.POST('/v1/train', {
    body: { model: 'jina-clip-v1', input: [{ text: 'red', label: 'warm' }, { text: 'orange', label: 'warm' }, { text: 'blue', label: 'cool' }] },
  });
  if (!trained.data) throw new Error(JSON.stringify(trained.error));
  const classified = await tessera.POST('/v1/classify', { body: { classifier_id: trained.data.classifier_id, input: [{ image }] } });
  if (!classified.data) throw new Error(JSON.stringify(classified.error));
  const listed = await tessera.GET('/v1/classifiers');
  const deleted = await tessera.DELETE('/v1/classifiers/{id}', { params: { path: { id: trained.data.classifier_id } } });

  return {
    dimensions: vectors.map((v) => (Array.isArray(v) ? v.length : 0)),
    tokens: usage.total_tokens,
    written: [written.data.added, written.data.count],
    hits: hits.map((h) => h.id),
    refused: [refused.response.status, refusal],
    classifier: trained.data.classifier_id,
    prediction: classified.data.data[0]?.prediction,
    listed: listed.data?.map((c) => c.classifier_id),
    deleted: deleted.data?.deleted,
  };
}
`;

let api: TestServer;
let store: VectorStore;

before(async () => {
  store = await openStore(await tempDir('tessera-client-'));
  api = await startServer({ model: 'colour', store });
  await rm(DIR, { recursive: true, force: true });
  await mkdir(DIR, { recursive: true });
});
after(async () => {
  await api.close();
  await store.close();
});

test('a client generated from /openapi.json typechecks and embeds, searches and trains against the server', async () => {
  const spec = (await (await fetch(`${api.url}/openapi.json`)).json()) as Parameters<typeof openapiTS>[0];
  const types = astToString(await openapiTS(spec));
  assert.match(types, /"\/v1\/collections\/\{name\}\/search"/);
  await writeFile(join(DIR, 'schema.ts'), types);
  await writeFile(join(DIR, 'client.ts'), CLIENT);
  await writeFile(
    join(DIR, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, allowImportingTsExtensions: true, verbatimModuleSyntax: true, skipLibCheck: true, types: [] },
      files: ['client.ts'],
    }),
  );
  // The generated types and the client agree (a wrong field or path would not compile).
  const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  await promisify(execFile)(process.execPath, [tsc, '-p', join(DIR, 'tsconfig.json')]).catch((err: { stdout?: string; message: string }) => {
    assert.fail(`the generated client does not typecheck:\n${err.stdout ?? err.message}`);
  });

  const { run } = (await import(pathToFileURL(join(DIR, 'client.ts')).href)) as { run(baseUrl: string, image: string): Promise<Record<string, unknown>> };
  const red = `data:image/png;base64,${(await solidImage(64, 48, [255, 0, 0])).toString('base64')}`;
  const result = await run(api.url, red);
  const dimensions = (await api.embedder.embedTexts(['red']))[0]!.embedding.length;
  assert.deepEqual(result.dimensions, [dimensions, dimensions]);
  assert.ok((result.tokens as number) > 1000);
  assert.deepEqual(result.written, [2, 2]);
  assert.deepEqual(result.hits, ['red.png', 'sea']);
  assert.deepEqual(result.refused, [422, 'SEARCH_PARAMETER_INVALID']);
  assert.equal(result.prediction, 'warm');
  assert.deepEqual(result.listed, [result.classifier]);
  assert.equal(result.deleted, true);
});
