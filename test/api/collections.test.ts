// Collections and search over HTTP, on a real server, a real LanceDB store on disk and the
// forged colour model, so the right answers are known: "red" finds the red image.
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { mkdir, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { loadApiKeys } from '../../src/api/auth.ts';
import { embedDocuments } from '../../src/index/document.ts';
import { indexSources } from '../../src/index/pipeline.ts';
import { resolveSource } from '../../src/index/sources.ts';
import { modelRefOf } from '../../src/search/collection.ts';
import { openStore } from '../../src/store/open.ts';
import type { VectorStore } from '../../src/store/store.ts';
import { solidImage } from '../helpers/images.ts';
import { forged, tempDir } from '../helpers/models.ts';
import { sample, startServer, type TestServer } from '../helpers/server.ts';

type Hit = { id: string; score: number; text?: string; image?: string; metadata: Record<string, unknown> };
type Usage = { total_tokens: number; prompt_tokens: number; image_tokens: number };
type ErrorBody = { detail: string; code: string; request_id: string };

const RGB = {
  red: [255, 0, 0],
  green: [0, 128, 0],
  blue: [0, 0, 255],
  yellow: [255, 255, 0],
  purple: [128, 0, 128],
  white: [255, 255, 255],
} as const;
type Colour = keyof typeof RGB;
const IMAGES = Object.keys(RGB) as Colour[];
const dataUri = (png: Buffer) => `data:image/png;base64,${png.toString('base64')}`;
const png = (c: Colour, w = 64, h = 48) => solidImage(w, h, RGB[c]);

/** Texts name colours (the model reads nothing else); none is red, so "red" has one right answer. */
const TEXTS: Record<string, { text: string; colour: string }> = {
  'texts/meadow.txt': { text: 'a green meadow in spring', colour: 'green' },
  'texts/sea.txt': { text: 'the blue sea under a blue sky', colour: 'blue' },
  'texts/flowers.txt': { text: 'yellow sunflowers by the road', colour: 'yellow' },
  'texts/gasket.txt': { text: 'gasket XK-2231 for the white pump', colour: 'white' },
  'texts/pump.txt': { text: 'the white pump in the cellar', colour: 'white' },
  'texts/stone.txt': { text: 'a gray stone on the path', colour: 'gray' },
  'texts/wall.txt': { text: 'white paint, white trim and a yellow door', colour: 'white' },
};

async function documents() {
  const docs: object[] = [];
  for (const [n, c] of IMAGES.entries()) docs.push({ id: `images/${c}.png`, image: dataUri(await png(c)), metadata: { colour: c, kind: 'photo', n } });
  for (const [n, [id, t]] of Object.entries(TEXTS).entries()) docs.push({ id, text: t.text, metadata: { colour: t.colour, kind: 'note', n: n + 10 } });
  return docs;
}

let api: TestServer;
let store: VectorStore;
let storeDir: string;

async function json<T>(response: Response): Promise<T> {
  const text = await response.text();
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new Error(`not JSON (${response.status}): ${text.slice(0, 200)}`);
  }
}

async function search(body: Record<string, unknown>, collection = 'colours'): Promise<{ status: number; data: Hit[]; usage: Usage; error: ErrorBody }> {
  const response = await api.post(`/v1/collections/${collection}/search`, body);
  const answer = await json<{ data: Hit[]; usage: Usage } & ErrorBody>(response);
  return { status: response.status, data: answer.data, usage: answer.usage, error: answer };
}

const ids = (hits: Hit[]) => hits.map((h) => h.id);

/** Everything the store holds, to check a refused request changed nothing. */
async function snapshot(): Promise<string> {
  const collections = await store.listCollections();
  const parts: unknown[] = [];
  for (const c of collections.sort((a, b) => a.name.localeCompare(b.name))) {
    parts.push([c.name, c.model, c.count, [...(await store.hashes(c.name))].sort()]);
  }
  return JSON.stringify(parts);
}

before(async () => {
  storeDir = await tempDir('tessera-collections-');
  store = await openStore(storeDir);
  api = await startServer({ model: 'colour', store, args: ['--max-text-chars', '2000', '--max-items', '50'] });
  const created = await api.post('/v1/collections', { name: 'colours' });
  assert.equal(created.status, 200, await created.clone().text());
  const upserted = await api.post('/v1/collections/colours/documents', { documents: await documents() });
  assert.equal(upserted.status, 200, await upserted.clone().text());
});
after(async () => {
  await api.close();
  await store.close();
});

describe('collections', () => {
  test('GET /v1/collections lists name, model, the served name of that model, dimensions and count', async () => {
    const answer = await json<{ data: { name: string; model: string; model_name: string | null; dimensions: number; count: number }[] }>(await fetch(`${api.url}/v1/collections`));
    const colours = answer.data.find((c) => c.name === 'colours');
    assert.deepEqual(Object.keys(colours!).sort(), ['count', 'dimensions', 'model', 'model_name', 'name']);
    assert.equal(colours!.count, IMAGES.length + Object.keys(TEXTS).length);
    // A model folder is shown by its name: its path would tell clients where the server keeps files.
    assert.equal(colours!.model, basename(await forged('colour')));
    assert.ok(!JSON.stringify(answer).includes(await forged('colour')), 'no model path in the listing');
    assert.equal(colours!.model_name, 'jina-clip-v1');
    assert.equal(colours!.dimensions, (await api.embedder.embedTexts(['red']))[0]!.embedding.length);
  });

  test('POST /v1/collections records the served model; the served name is accepted, another model is not', async () => {
    const made = await json<{ name: string; model: string; count: number }>(await api.post('/v1/collections', { name: 'by-name', model: 'jina-clip-v1' }));
    assert.deepEqual([made.name, made.model, made.count], ['by-name', basename(await forged('colour')), 0]);
    const other = await api.post('/v1/collections', { name: 'other', model: 'gpt-4' });
    assert.equal(other.status, 400);
    assert.equal((await json<ErrorBody>(other)).code, 'MODEL_MISMATCH');
    assert.equal(await store.getCollection('other'), undefined);
    const gone = await fetch(`${api.url}/v1/collections/by-name`, { method: 'DELETE' });
    assert.deepEqual(await json(gone), { name: 'by-name', deleted: true });
    assert.equal(await store.getCollection('by-name'), undefined);
  });

  test('upsert answers ids, counts and usage billed as the embeddings API bills; a second upsert updates', async () => {
    await api.post('/v1/collections', { name: 'upserts' });
    const image = await png('blue', 300, 200); // 2 x 1 tiles of 224: 2000 image tokens
    const first = await json<{ ids: string[]; added: number; updated: number; count: number; usage: Usage }>(
      await api.post('/v1/collections/upserts/documents', { documents: [{ id: 'a', text: 'a red car' }, { id: 'b', image: image.toString('base64') }] }),
    );
    assert.deepEqual([first.ids, first.added, first.updated, first.count], [['a', 'b'], 2, 0, 2]);
    const embedded = await json<{ usage: Usage }>(await api.post('/v1/embeddings', { model: 'jina-clip-v1', input: ['a red car', { image: image.toString('base64') }] }));
    assert.deepEqual(first.usage, embedded.usage);
    assert.equal(first.usage.image_tokens, 2000);

    const second = await json<{ added: number; updated: number; count: number }>(
      await api.post('/v1/collections/upserts/documents', { documents: [{ id: 'a', text: 'a blue car', metadata: { year: 2024 } }, { id: 'c', text: 'green' }] }),
    );
    assert.deepEqual([second.added, second.updated, second.count], [1, 1, 3]);
    const a = await json<{ id: string; modality: string; text: string; metadata: object; hash: string }>(await fetch(`${api.url}/v1/collections/upserts/documents/a`));
    assert.deepEqual([a.id, a.modality, a.text, a.metadata], ['a', 'text', 'a blue car', { year: 2024 }]);
    const b = await json<{ image: string }>(await fetch(`${api.url}/v1/collections/upserts/documents/b`));
    assert.match(b.image, /^data:image\/png;base64,/);

    const deleted = await fetch(`${api.url}/v1/collections/upserts/documents/a`, { method: 'DELETE' });
    assert.deepEqual(await json(deleted), { id: 'a', deleted: true });
    assert.equal((await fetch(`${api.url}/v1/collections/upserts/documents/a`)).status, 404);
    assert.equal((await store.getCollection('upserts'))!.count, 2);
  });

  test('ids with slashes travel URL-encoded', async () => {
    const response = await fetch(`${api.url}/v1/collections/colours/documents/${encodeURIComponent('images/red.png')}`);
    assert.equal(response.status, 200);
    assert.equal((await json<{ id: string }>(response)).id, 'images/red.png');
  });
});

describe('search', () => {
  test('"red" finds the red image first; the answer has id, score, image and metadata', async () => {
    const { status, data, usage } = await search({ query: 'red' });
    assert.equal(status, 200);
    assert.equal(data[0]!.id, 'images/red.png');
    assert.ok(data[0]!.score > 0.9, String(data[0]!.score));
    assert.deepEqual(Object.keys(data[0]!).sort(), ['id', 'image', 'metadata', 'score']);
    // The document's own metadata, and what the image file says of itself (its size).
    assert.deepEqual(data[0]!.metadata, { colour: 'red', kind: 'photo', n: 0, width: 64, height: 48 });
    assert.equal(data.length, 10);
    for (let i = 1; i < data.length; i++) assert.ok(data[i - 1]!.score >= data[i]!.score, 'best first');
    assert.ok(usage.total_tokens > 0 && usage.image_tokens === 0);
  });

  test('by text object, by image (base64 and data URI): the same colour comes first', async () => {
    assert.equal((await search({ query: { text: 'blue' }, modality: 'image' })).data[0]!.id, 'images/blue.png');
    const yellow = await png('yellow', 100, 100);
    const byImage = await search({ query: { image: yellow.toString('base64') }, k: 3 });
    assert.equal(byImage.status, 200);
    assert.equal(byImage.data[0]!.id, 'images/yellow.png');
    assert.equal(byImage.usage.image_tokens, 1000);
    const byUri = await search({ query: { image: dataUri(await png('green')) }, modality: 'text' });
    assert.equal(byUri.data[0]!.id, 'texts/meadow.txt');
    assert.equal(byUri.data[0]!.text, TEXTS['texts/meadow.txt']!.text);
  });

  test('more like this: a document id finds its kind, without itself, and bills nothing', async () => {
    const { status, data, usage } = await search({ query: { id: 'texts/sea.txt' }, k: 3 });
    assert.equal(status, 200);
    assert.ok(!ids(data).includes('texts/sea.txt'));
    assert.equal(data[0]!.id, 'images/blue.png');
    assert.equal(usage.total_tokens, 0);
  });

  test('a weighted mix: a negative weight pushes that colour to the bottom', async () => {
    const both = await search({ query: [{ text: 'red', weight: 1 }, { text: 'blue', weight: 1 }], modality: 'image', k: 6 });
    assert.deepEqual(new Set(ids(both.data).slice(0, 2)), new Set(['images/red.png', 'images/blue.png']));
    const away = await search({ query: [{ text: 'red', weight: 1 }, { text: 'blue', weight: -1 }], modality: 'image', k: 6 });
    assert.equal(away.data[0]!.id, 'images/red.png');
    assert.equal(away.data.at(-1)!.id, 'images/blue.png');
    assert.ok(away.data.at(-1)!.score < 0, String(away.data.at(-1)!.score));
    const mixed = await search({ query: [{ id: 'images/purple.png' }, { text: 'purple', weight: 0.5 }, 'white'], k: 2 });
    assert.ok(!ids(mixed.data).includes('images/purple.png'));
  });

  test('filters: equality, ranges, $in, combined with and', async () => {
    const notes = await search({ query: 'white', filter: { kind: 'note' } });
    assert.ok(notes.data.length > 0 && notes.data.every((h) => h.metadata.kind === 'note'));
    assert.deepEqual(new Set(ids(notes.data).slice(0, 2)), new Set(['texts/gasket.txt', 'texts/pump.txt']));
    const range = await search({ query: 'white', filter: { n: { $gte: 2, $lt: 5 } }, k: 50 });
    assert.deepEqual(new Set(ids(range.data)), new Set(['images/blue.png', 'images/yellow.png', 'images/purple.png']));
    const any = await search({ query: 'green', filter: { colour: { $in: ['green', 'gray'] }, kind: 'note' }, k: 50 });
    assert.deepEqual(new Set(ids(any.data)), new Set(['texts/meadow.txt', 'texts/stone.txt']));
    // An injection attempt in a value is just a value: it matches nothing.
    const injected = await search({ query: 'red', filter: { colour: "red' OR 1=1 --" } });
    assert.deepEqual([injected.status, injected.data.length], [200, 0]);
  });

  test('modality, min_score and offset', async () => {
    const texts = await search({ query: 'yellow', modality: 'text', k: 50 });
    assert.ok(texts.data.every((h) => h.text !== undefined && h.image === undefined));
    assert.equal(texts.data.length, Object.keys(TEXTS).length);
    const strong = await search({ query: 'yellow', min_score: 0.3, k: 50 });
    assert.deepEqual(new Set(ids(strong.data)), new Set(['images/yellow.png', 'texts/flowers.txt', 'texts/wall.txt']));
    assert.ok(strong.data.every((h) => h.score >= 0.3));
    const all = await search({ query: 'yellow', k: 6 });
    const page = await search({ query: 'yellow', k: 3, offset: 3 });
    assert.deepEqual(ids(page.data), ids(all.data).slice(3, 6));
  });

  test('hybrid: a rare exact term (a part number) only the lexical side can find', async () => {
    // The colour model reads nothing in "XK-2231": vector search alone has nothing to go on.
    const vector = await search({ query: 'XK-2231' });
    assert.equal(vector.status, 422);
    assert.equal(vector.error.code, 'QUERY_INVALID');
    const hybrid = await search({ query: 'XK-2231', mode: 'hybrid', k: 3 });
    assert.equal(hybrid.status, 200, JSON.stringify(hybrid.error));
    assert.equal(hybrid.data[0]!.id, 'texts/gasket.txt');
    // With a colour word too, vectors cannot tell the two white pump texts apart (the same
    // vector), and words alone would put "white paint, white trim" before the pump; fused,
    // the part number lifts the gasket above both.
    const plain = await search({ query: 'white XK-2231', k: 2, modality: 'text' });
    assert.deepEqual(new Set(ids(plain.data)), new Set(['texts/gasket.txt', 'texts/pump.txt']));
    assert.ok(Math.abs(plain.data[0]!.score - plain.data[1]!.score) < 1e-5);
    const fused = await search({ query: 'white XK-2231', k: 2, modality: 'text', mode: 'hybrid' });
    assert.equal(fused.data[0]!.id, 'texts/gasket.txt');
  });

  test('hybrid: a synonym only the vector side can find ("grey" for "gray"), and images words cannot', async () => {
    const hybrid = await search({ query: 'grey', mode: 'hybrid', k: 3 });
    assert.equal(hybrid.status, 200);
    assert.equal(hybrid.data[0]!.id, 'texts/stone.txt'); // no document has the word "grey"
    const redImage = await search({ query: 'red', mode: 'hybrid', k: 1 });
    assert.equal(redImage.data[0]!.id, 'images/red.png'); // images have no words at all
  });
});

describe('duplicates', () => {
  type Group = { ids: string[]; score: number };
  type Job = {
    id: string;
    collection: string;
    threshold: number;
    modality: string | null;
    status: string;
    scanned: number;
    total: number;
    groups: number;
    error: { code: string; message: string } | null;
  };
  type JobPage = Job & { data: Group[]; offset: number; next_offset: number | null };

  /** Starts a scan (202, a Location to poll) and polls it until it has finished. */
  async function scanned(body: Record<string, unknown>, collection = 'dups'): Promise<{ job: JobPage; location: string }> {
    const started = await api.post(`/v1/collections/${collection}/duplicates`, body);
    assert.equal(started.status, 202, await started.clone().text());
    const location = started.headers.get('location')!;
    const job = await json<Job>(started);
    assert.equal(location, `/v1/collections/${collection}/duplicates/${job.id}`);
    assert.ok(['queued', 'running'].includes(job.status), job.status);
    const deadline = Date.now() + 30_000;
    for (;;) {
      const polled = await json<JobPage>(await fetch(`${api.url}${location}`));
      if (polled.status !== 'queued' && polled.status !== 'running') return { job: polled, location };
      assert.ok(Date.now() < deadline, `the scan did not finish: ${JSON.stringify(polled)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  test('a background job groups documents at least `threshold` similar; others stay out', async () => {
    await api.post('/v1/collections', { name: 'dups' });
    const docs = [
      { id: 'red-1', image: (await png('red')).toString('base64') },
      { id: 'red-2', image: (await png('red', 80, 80)).toString('base64') },
      { id: 'red-3', image: (await solidImage(64, 64, [235, 10, 10])).toString('base64') },
      { id: 'blue-1', image: (await png('blue')).toString('base64') },
      { id: 'blue-2', text: 'blue' },
      { id: 'green-1', image: (await png('green')).toString('base64') },
      { id: 'yellow-1', text: 'yellow' },
    ];
    assert.equal((await api.post('/v1/collections/dups/documents', { documents: docs })).status, 200);
    const { job: answer, location } = await scanned({ threshold: 0.9 });
    assert.equal(answer.status, 'done', JSON.stringify(answer));
    assert.deepEqual(answer.data.map((g) => g.ids), [['red-1', 'red-2', 'red-3'], ['blue-1', 'blue-2']]);
    assert.ok(answer.data.every((g) => g.score >= 0.9 && g.score <= 1));
    assert.deepEqual([answer.threshold, answer.modality, answer.scanned, answer.total, answer.groups, answer.error, answer.next_offset], [0.9, null, 7, 7, 2, null, null]);

    // The results in pages: largest group first.
    const first = await json<JobPage>(await fetch(`${api.url}${location}?limit=1`));
    assert.deepEqual([first.data.map((g) => g.ids), first.offset, first.next_offset], [[['red-1', 'red-2', 'red-3']], 0, 1]);
    const second = await json<JobPage>(await fetch(`${api.url}${location}?offset=1&limit=1`));
    assert.deepEqual([second.data.map((g) => g.ids), second.next_offset], [[['blue-1', 'blue-2']], null]);

    const images = (await scanned({ threshold: 0.9, modality: 'image' })).job;
    assert.deepEqual(images.data.map((g) => g.ids), [['red-1', 'red-2', 'red-3']]);
    assert.equal(images.modality, 'image');
    // The default threshold (0.95), also for a POST without a body (curl -X POST).
    const strict = await fetch(`${api.url}/v1/collections/dups/duplicates`, { method: 'POST' });
    assert.equal(strict.status, 202);
    assert.equal((await json<Job>(strict)).threshold, 0.95);

    // The collection's jobs, oldest first.
    const listed = await json<{ data: Job[] }>(await fetch(`${api.url}/v1/collections/dups/duplicates`));
    assert.deepEqual(listed.data.slice(0, 2).map((j) => j.id), [answer.id, images.id]);
    assert.equal(listed.data.length, 3);

    for (const [body, code] of [
      [{ threshold: 1.5 }, 'SEARCH_PARAMETER_INVALID'],
      [{ threshold: 'high' }, 'SEARCH_PARAMETER_INVALID'],
      [{ modality: 'video' }, 'SEARCH_PARAMETER_INVALID'],
      [{ treshold: 0.9 }, 'REQUEST_INVALID'],
    ] as const) {
      const bad = await api.post('/v1/collections/dups/duplicates', body);
      assert.equal(bad.status, 422, JSON.stringify(body));
      assert.equal((await json<ErrorBody>(bad)).code, code);
    }
    const badPage = await fetch(`${api.url}${location}?limit=0`);
    assert.equal(badPage.status, 422);
    assert.match((await json<ErrorBody>(badPage)).detail, /limit: expected an integer from 1 to 1000/);

    // Deleted, a job is gone; another collection's path does not find it either.
    const elsewhere = await fetch(`${api.url}/v1/collections/colours/duplicates/${answer.id}`);
    assert.equal(elsewhere.status, 404);
    assert.equal((await json<ErrorBody>(elsewhere)).code, 'DUPLICATES_JOB_NOT_FOUND');
    const deleted = await fetch(`${api.url}${location}`, { method: 'DELETE' });
    assert.deepEqual(await json(deleted), { id: answer.id, deleted: true });
    for (const response of [await fetch(`${api.url}${location}`), await fetch(`${api.url}${location}`, { method: 'DELETE' }), await fetch(`${api.url}/v1/collections/dups/duplicates/not-a-job`)]) {
      assert.equal(response.status, 404);
      const error = await json<ErrorBody>(response);
      assert.equal(error.code, 'DUPLICATES_JOB_NOT_FOUND');
      assert.match(error.detail, /no duplicates job .* for collection "dups" on this server/);
    }
  });
});

describe('thumbnails', () => {
  let root: string;
  let outside: string;

  /** Indexes files as the folder indexer does: absolute path, real root. */
  async function indexFiles(entries: { id: string; path: string }[]) {
    const embedder = api.embedder;
    const outcomes = await embedDocuments(embedder, entries.map((e) => ({ id: e.id, image: e.path, metadata: {}, root })), { allowPaths: true });
    const records = outcomes.map((o) => {
      assert.ok(o.ok, JSON.stringify(o));
      return o.record;
    });
    await store.upsert('photos', records, modelRefOf(await forged('colour'), 'fp32'));
  }

  const thumb = (id: string) => fetch(`${api.url}/v1/collections/photos/documents/${encodeURIComponent(id)}/thumbnail`);

  before(async () => {
    const base = await tempDir('tessera-thumbs-');
    await mkdir(join(base, 'photos'));
    root = await realpath(join(base, 'photos'));
    outside = join(base, 'secret');
    await mkdir(outside);
    await mkdir(join(root, 'sub'));
    await writeFile(join(root, 'big.png'), await solidImage(800, 600, RGB.red));
    await writeFile(join(root, 'sub', 'small.png'), await png('green', 40, 30));
    await writeFile(join(root, 'swap.png'), await png('blue'));
    await writeFile(join(outside, 'private.png'), await png('white'));
    await symlink(join(outside, 'private.png'), join(root, 'link.png'));
    await api.post('/v1/collections', { name: 'photos' });
    await indexFiles([
      { id: 'big.png', path: join(root, 'big.png') },
      { id: 'sub/small.png', path: join(root, 'sub', 'small.png') },
      { id: 'swap.png', path: join(root, 'swap.png') },
      { id: 'link.png', path: join(root, 'link.png') },
    ]);
    await api.post('/v1/collections/photos/documents', { documents: [{ id: 'inline', image: dataUri(await png('purple')) }, { id: 'note', text: 'a red note' }] });
  });

  test('a small WebP of an image document, made once and cached', async () => {
    const first = await thumb('big.png');
    assert.equal(first.status, 200);
    assert.equal(first.headers.get('content-type'), 'image/webp');
    const bytes = Buffer.from(await first.arrayBuffer());
    const meta = await sharp(bytes).metadata();
    assert.deepEqual([meta.format, meta.width, meta.height], ['webp', 256, 192]);
    // The file changes on disk: the cached thumbnail (of the indexed content) is what comes back.
    await writeFile(join(root, 'big.png'), await solidImage(400, 400, RGB.blue));
    const second = Buffer.from(await (await thumb('big.png')).arrayBuffer());
    assert.deepEqual(second, bytes);
    const small = await sharp(Buffer.from(await (await thumb('sub/small.png')).arrayBuffer())).metadata();
    assert.deepEqual([small.width, small.height], [40, 30]); // never enlarged
    const etag = first.headers.get('etag')!;
    assert.equal((await fetch(`${api.url}/v1/collections/photos/documents/big.png/thumbnail`, { headers: { 'if-none-match': etag } })).status, 304);
    assert.equal((await thumb('inline')).status, 200);
  });

  test('search results show a folder document by its relative id, never the server path', async () => {
    const { data } = await search({ query: 'green', k: 1 }, 'photos');
    assert.deepEqual([data[0]!.id, data[0]!.image], ['sub/small.png', 'sub/small.png']);
    const doc = await json<{ image: string }>(await fetch(`${api.url}/v1/collections/photos/documents/${encodeURIComponent('sub/small.png')}`));
    assert.equal(doc.image, 'sub/small.png');
    const body = JSON.stringify(await json(await api.post('/v1/collections/photos/search', { query: 'red', k: 10 })));
    assert.ok(!body.includes(root), 'no server path in answers');
  });

  test('a folder indexed by the indexer: no answer, on search or by id, shows the server\'s path', async () => {
    await api.post('/v1/collections', { name: 'walked' });
    const indexed = await indexSources({ store, collection: 'walked', embedder: api.embedder, writer: modelRefOf(await forged('colour'), 'fp32'), sources: [await resolveSource(root)] });
    assert.ok(indexed.added >= 3, JSON.stringify(indexed));
    // The store keeps where each document came from (for --prune); clients never see it.
    assert.equal((await store.get('walked', ['big.png']))[0]!.metadata._source, root);
    const answers = [
      await (await api.post('/v1/collections/walked/search', { query: 'red', k: 10 })).text(),
      await (await api.post('/v1/collections/walked/search', { query: 'red', k: 10, mode: 'hybrid', sort: '-mtime', cutoff: 'auto' })).text(),
      await (await fetch(`${api.url}/v1/collections/walked/documents/big.png`)).text(),
      await (await fetch(`${api.url}/v1/collections/walked/documents/${encodeURIComponent('sub/small.png')}`)).text(),
    ];
    for (const answer of answers) {
      assert.ok(answer.includes('big.png') || answer.includes('small.png'), answer);
      assert.ok(!answer.includes(root) && !answer.includes('_source'), answer);
    }
  });

  test('a symlink out of the root, a file swapped for one, text documents and made-up paths: all 404', async () => {
    assert.equal((await thumb('link.png')).status, 404);
    assert.equal((await thumb('swap.png')).status, 200);
    await rm(join(root, 'swap.png'));
    await symlink(join(outside, 'private.png'), join(root, 'swap.png'));
    assert.equal((await thumb('swap.png')).status, 404); // cached or not, it is checked again
    assert.equal((await thumb('note')).status, 404);
    for (const id of ['../secret/private.png', '..%2Fsecret%2Fprivate.png', join(outside, 'private.png'), '/etc/passwd', 'sub/../big.png']) {
      const response = await thumb(id);
      assert.equal(response.status, 404, id);
      assert.equal((await json<ErrorBody>(response)).code, 'DOCUMENT_NOT_FOUND', id);
    }
  });

  test('raw paths with .. or encoded .. never reach a file', async () => {
    const raw = (path: string) =>
      new Promise<number>((resolve, reject) => {
        const url = new URL(api.url);
        const req = httpRequest({ host: url.hostname, port: url.port, path, method: 'GET' }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.end();
      });
    for (const path of [
      '/v1/collections/photos/documents/../../../etc/passwd/thumbnail',
      '/v1/collections/photos/documents/%2e%2e%2f%2e%2e%2fsecret%2fprivate.png/thumbnail',
      '/v1/collections/photos/documents/..%2f..%2fsecret%2fprivate.png/thumbnail',
      `/v1/collections/photos/documents/${encodeURIComponent(join(outside, 'private.png'))}/thumbnail`,
      '/v1/collections/../collections/photos/documents/link.png/thumbnail',
    ]) {
      assert.equal(await raw(path), 404, path);
    }
  });
});

describe('bad input: a specific 4xx naming the field, and nothing stored changes', () => {
  const long = 'x'.repeat(2001);
  const SEARCHES: [string, string, Record<string, unknown>, number, string, RegExp][] = [
    ['unknown collection', 'nope', { query: 'red' }, 404, 'COLLECTION_NOT_FOUND', /"nope"/],
    ['bad collection name', 'no%20pe', { query: 'red' }, 422, 'COLLECTION_NAME_INVALID', /collection/],
    ['no query', 'colours', {}, 422, 'QUERY_INVALID', /query is required/],
    ['empty query', 'colours', { query: '  ' }, 422, 'QUERY_INVALID', /query: the query text is empty/],
    ['empty list', 'colours', { query: [] }, 422, 'QUERY_INVALID', /empty/],
    ['over-long query', 'colours', { query: long }, 422, 'QUERY_INVALID', /2001 characters/],
    ['term with two kinds', 'colours', { query: [{ text: 'red', id: 'x' }] }, 422, 'QUERY_INVALID', /query\[0\]: expected exactly one/],
    ['zero weight', 'colours', { query: [{ text: 'red', weight: 0 }] }, 422, 'QUERY_INVALID', /query\[0\]\.weight/],
    ['weights cancel', 'colours', { query: [{ text: 'red' }, { text: 'red', weight: -1 }] }, 422, 'QUERY_INVALID', /zero vector/],
    ['image path', 'colours', { query: { image: 'file:///etc/passwd' } }, 422, 'QUERY_INVALID', /query\.image/],
    ['server file path', 'colours', { query: { image: '/etc/passwd' } }, 422, 'IMAGE_SOURCE_INVALID', /^query\.image: /],
    ['not an image', 'colours', { query: [{ text: 'red' }, { image: 'aGVsbG8gd29ybGQgdGhpcyBpcyBub3QgYW4gaW1hZ2U=' }] }, 422, 'IMAGE_SOURCE_INVALID', /^query\[1\]\.image: /],
    ['blocked image URL', 'colours', { query: { image: 'http://169.254.169.254/latest/meta-data/' } }, 422, 'IMAGE_URL_BLOCKED', /query\.image/],
    ['unknown query document', 'colours', { query: { id: 'no/such.png' } }, 422, 'QUERY_DOCUMENT_NOT_FOUND', /query\.id: .*"no\/such\.png"/],
    ['over-long query id', 'colours', { query: { id: 'é'.repeat(300) } }, 422, 'QUERY_INVALID', /query\.id: an id is at most 512/],
    ['k zero', 'colours', { query: 'red', k: 0 }, 422, 'SEARCH_PARAMETER_INVALID', /^k: expected an integer from 1 to 1000/],
    ['k too large', 'colours', { query: 'red', k: 1001 }, 422, 'SEARCH_PARAMETER_INVALID', /^k: /],
    ['k a string', 'colours', { query: 'red', k: '10' }, 422, 'SEARCH_PARAMETER_INVALID', /^k: /],
    ['negative offset', 'colours', { query: 'red', offset: -1 }, 422, 'SEARCH_PARAMETER_INVALID', /^offset: /],
    ['min_score out of range', 'colours', { query: 'red', min_score: 2 }, 422, 'SEARCH_PARAMETER_INVALID', /^min_score: /],
    ['bad modality', 'colours', { query: 'red', modality: 'video' }, 422, 'SEARCH_PARAMETER_INVALID', /^modality: /],
    ['bad mode', 'colours', { query: 'red', mode: 'semantic' }, 422, 'SEARCH_PARAMETER_INVALID', /^mode: /],
    ['hybrid without text', 'colours', { query: { id: 'images/red.png' }, mode: 'hybrid' }, 422, 'SEARCH_PARAMETER_INVALID', /mode: "hybrid" needs a text/],
    ['unknown operator', 'colours', { query: 'red', filter: { colour: { $regex: 'r.*' } } }, 422, 'FILTER_INVALID', /filter\.colour: unknown operator "\$regex"/],
    ['injection in a field name', 'colours', { query: 'red', filter: { "colour = 'red' OR 1=1 --": 1 } }, 422, 'FILTER_INVALID', /filter: field/],
    ['filter not an object', 'colours', { query: 'red', filter: "colour = 'red'" }, 422, 'FILTER_INVALID', /^filter: /],
    ['unknown field', 'colours', { query: 'red', top_k: 3 }, 422, 'REQUEST_INVALID', /unknown field "top_k"/],
  ];
  for (const [name, collection, body, status, code, detail] of SEARCHES) {
    test(`search, ${name}: ${status} ${code}`, async () => {
      const before = await snapshot();
      const response = await api.post(`/v1/collections/${collection}/search`, body);
      const answer = await json<ErrorBody>(response);
      assert.equal(response.status, status, JSON.stringify(answer));
      assert.equal(answer.code, code);
      assert.match(answer.detail, detail);
      assert.equal(await snapshot(), before);
    });
  }

  const good = { id: 'new-1', text: 'a red kite' };
  const UPSERTS: [string, string, unknown, number, string, RegExp][] = [
    ['unknown collection', 'nope', { documents: [good] }, 404, 'COLLECTION_NOT_FOUND', /"nope"/],
    ['no documents', 'colours', { documents: [] }, 422, 'REQUEST_INVALID', /documents must be a non-empty list/],
    ['both text and image', 'colours', { documents: [good, { id: 'x', text: 'red', image: 'aGk=' }] }, 422, 'DOCUMENT_INVALID', /documents\[1\] must have exactly one of "text" or "image", got both/],
    ['neither', 'colours', { documents: [good, { id: 'x', metadata: {} }] }, 422, 'DOCUMENT_INVALID', /documents\[1\] .*neither/],
    ['duplicate ids', 'colours', { documents: [good, { id: 'new-1', text: 'blue' }] }, 422, 'DOCUMENT_ID_DUPLICATE', /documents\[1\]\.id: "new-1" is also the id of documents\[0\]/],
    ['over-long id', 'colours', { documents: [good, { id: 'x'.repeat(513), text: 'red' }] }, 422, 'DOCUMENT_ID_INVALID', /documents\[1\]\.id: an id is at most 512 UTF-8 bytes but this one has 513/],
    ['empty id', 'colours', { documents: [{ id: '', text: 'red' }] }, 422, 'DOCUMENT_ID_INVALID', /documents\[0\]\.id/],
    ['nested metadata', 'colours', { documents: [good, { id: 'x', text: 'red', metadata: { exif: { iso: 100 } } }] }, 422, 'METADATA_INVALID', /documents\[1\]\.metadata\.exif/],
    ['metadata a list', 'colours', { documents: [{ id: 'x', text: 'red', metadata: ['a'] }] }, 422, 'METADATA_INVALID', /documents\[0\]\.metadata/],
    ['a server file path', 'colours', { documents: [good, { id: 'x', image: '/etc/passwd' }] }, 422, 'IMAGE_SOURCE_INVALID', /documents\[1\] \(id "x"\)/],
    ['an undecodable image', 'colours', { documents: [good, { id: 'x', image: 'aGVsbG8gd29ybGQgdGhpcyBpcyBub3QgYW4gaW1hZ2U=' }] }, 422, 'IMAGE_SOURCE_INVALID', /documents\[1\]/],
    ['a blocked URL', 'colours', { documents: [good, { id: 'x', image: 'http://127.0.0.1:9/x.png' }] }, 422, 'IMAGE_URL_BLOCKED', /documents\[1\]/],
    ['a text over the limit', 'colours', { documents: [good, { id: 'x', text: long }] }, 422, 'TEXT_TOO_LONG', /documents\[1\]\.text/],
    ['unknown field', 'colours', { documents: [good], upsert: true }, 422, 'REQUEST_INVALID', /unknown field "upsert"/],
    ['body not an object', 'colours', '[1]', 422, 'REQUEST_INVALID', /JSON object/],
  ];
  for (const [name, collection, body, status, code, detail] of UPSERTS) {
    test(`upsert, ${name}: ${status} ${code}`, async () => {
      const before = await snapshot();
      const response = await api.post(`/v1/collections/${collection}/documents`, body);
      const answer = await json<ErrorBody>(response);
      assert.equal(response.status, status, JSON.stringify(answer));
      assert.equal(answer.code, code);
      assert.match(answer.detail, detail);
      assert.equal(await snapshot(), before);
    });
  }

  test('collections and documents: bad names, existing names, unknown ids', async () => {
    const before = await snapshot();
    const cases: [Promise<Response>, number, string][] = [
      [api.post('/v1/collections', { name: '-bad name' }), 422, 'COLLECTION_NAME_INVALID'],
      [api.post('/v1/collections', { name: 'colours' }), 409, 'COLLECTION_EXISTS'],
      [api.post('/v1/collections', {}), 422, 'COLLECTION_NAME_INVALID'],
      [api.post('/v1/collections', { name: 'x', dtype: 'q8' }), 400, 'MODEL_MISMATCH'],
      [fetch(`${api.url}/v1/collections/nope`, { method: 'DELETE' }), 404, 'COLLECTION_NOT_FOUND'],
      [fetch(`${api.url}/v1/collections/colours/documents/nope`), 404, 'DOCUMENT_NOT_FOUND'],
      [fetch(`${api.url}/v1/collections/colours/documents/nope`, { method: 'DELETE' }), 404, 'DOCUMENT_NOT_FOUND'],
      [fetch(`${api.url}/v1/collections/colours/documents/${'x'.repeat(600)}`), 422, 'DOCUMENT_ID_INVALID'],
      [fetch(`${api.url}/v1/collections/nope/documents/a`), 404, 'COLLECTION_NOT_FOUND'],
      [fetch(`${api.url}/v1/collections/nope/duplicates`), 404, 'COLLECTION_NOT_FOUND'],
      [api.post('/v1/collections/nope/duplicates', { threshold: 0.9 }), 404, 'COLLECTION_NOT_FOUND'],
    ];
    for (const [pending, status, code] of cases) {
      const response = await pending;
      const answer = await json<ErrorBody>(response);
      assert.equal(response.status, status, JSON.stringify(answer));
      assert.equal(answer.code, code, answer.detail);
    }
    assert.equal(await snapshot(), before);
  });

  test('a collection of another model is listed, but searching or writing it is COLLECTION_MODEL_MISMATCH', async () => {
    await store.createCollection({ name: 'foreign', model: 'jinaai/jina-clip-v1', dtype: 'fp32', dimensions: 768 });
    const listed = await json<{ data: { name: string; model: string; model_name: string | null }[] }>(await fetch(`${api.url}/v1/collections`));
    assert.equal(listed.data.find((c) => c.name === 'foreign')?.model, 'jinaai/jina-clip-v1');
    assert.equal(listed.data.find((c) => c.name === 'foreign')?.model_name, null);
    const before = await snapshot();
    for (const response of [
      await api.post('/v1/collections/foreign/search', { query: 'red' }),
      await api.post('/v1/collections/foreign/documents', { documents: [{ id: 'a', text: 'red' }] }),
    ]) {
      const answer = await json<ErrorBody>(response);
      assert.equal(response.status, 409);
      assert.equal(answer.code, 'COLLECTION_MODEL_MISMATCH');
      assert.match(answer.detail, /jinaai\/jina-clip-v1 \(fp32\), which this server does not serve; it serves "jina-clip-v1" \(/);
    }
    assert.equal(await snapshot(), before);
  });

  test('after all of that, metrics count the routes and the server still searches', async () => {
    assert.equal((await search({ query: 'red', k: 1 })).data[0]!.id, 'images/red.png');
    const metrics = await (await fetch(`${api.url}/metrics`)).text();
    assert.ok(sample(metrics, 'tessera_requests_total', { route: '/v1/collections/:name/search', status: '200' }) > 0);
    assert.ok(sample(metrics, 'tessera_requests_total', { route: '/v1/collections/:name/search', status: '422' }) > 0);
  });
});

describe('auth and limits apply to the new routes', () => {
  let locked: TestServer;
  let lockedStore: VectorStore;
  before(async () => {
    lockedStore = await openStore(await tempDir('tessera-locked-'));
    const apiKeys = await loadApiKeys({ env: 'alice:tk-alice' });
    locked = await startServer({ model: 'colour', store: lockedStore, apiKeys, args: ['--rate-limit-tpm', '2500'] });
  });
  after(async () => {
    await locked.close();
    await lockedStore.close();
  });

  test('no key: 401 on every collection route; with the key, upserts are charged against the token limit', async () => {
    const key = { authorization: 'Bearer tk-alice' };
    for (const [method, path] of [
      ['GET', '/v1/collections'],
      ['POST', '/v1/collections'],
      ['DELETE', '/v1/collections/c'],
      ['POST', '/v1/collections/c/documents'],
      ['GET', '/v1/collections/c/documents/a'],
      ['GET', '/v1/collections/c/documents/a/thumbnail'],
      ['POST', '/v1/collections/c/search'],
      ['GET', '/v1/collections/c/duplicates'],
      ['POST', '/v1/collections/c/duplicates'],
      ['GET', '/v1/collections/c/duplicates/00000000-0000-4000-8000-000000000000'],
    ] as const) {
      const response = await fetch(`${locked.url}${path}`, { method, headers: method === 'POST' ? { 'content-type': 'application/json' } : {}, body: method === 'POST' ? '{}' : undefined });
      assert.equal(response.status, 401, `${method} ${path}`);
      assert.equal((await json<ErrorBody>(response)).code, 'AUTH_API_KEY_MISSING');
    }
    assert.equal((await locked.post('/v1/collections', { name: 'c' }, key)).status, 200);
    const image = (await png('red', 448, 224)).toString('base64'); // 2000 tokens
    const upsert = await locked.post('/v1/collections/c/documents', { documents: [{ id: 'a', image }] }, key);
    assert.equal(upsert.status, 200);
    // 2,500 tokens a minute: the first 2,000-token image leaves about 500, too few for another.
    assert.ok(Number(upsert.headers.get('x-ratelimit-remaining-tokens')) < 600);
    const refused = await locked.post('/v1/collections/c/documents', { documents: [{ id: 'b', image }] }, key);
    assert.equal(refused.status, 429);
    assert.equal((await json<ErrorBody>(refused)).code, 'RATE_TOKEN_LIMIT_EXCEEDED');
    assert.equal((await lockedStore.getCollection('c'))!.count, 1);
    const searched = await locked.post('/v1/collections/c/search', { query: 'red' }, key);
    assert.equal(searched.status, 200);
    assert.equal((await fetch(`${locked.url}/v1/collections/c/documents/a/thumbnail`, { headers: key })).status, 200);
  });
});
