// The Jina Embeddings API contract over real HTTP, against a forged model.
import assert from 'node:assert/strict';
import { createServer as createHttpServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { maxAbsDiff } from '../helpers/models.ts';
import { noiseImage } from '../helpers/images.ts';
import { sample, startServer, type TestServer } from '../helpers/server.ts';

interface EmbeddingResponse {
  model: string;
  object: string;
  usage: { total_tokens: number; prompt_tokens: number; image_tokens: number };
  data: { object: string; index: number; embedding: unknown }[];
}

let api: TestServer;
let images: Server;
let imageUrl: string;
let png: Buffer;
let photo: Buffer;

before(async () => {
  // Image URLs point at a loopback server, so this server allows private URLs.
  api = await startServer({ args: ['--allow-private-urls'] });
  png = await noiseImage(300, 200, 5, 'png');
  photo = await noiseImage(750, 500, 6, 'jpeg');
  images = createHttpServer((req, res) => {
    res.writeHead(200, { 'content-type': req.url === '/photo.jpg' ? 'image/jpeg' : 'image/png' });
    res.end(req.url === '/photo.jpg' ? photo : png);
  }).listen(0, '127.0.0.1');
  await new Promise((r) => images.once('listening', r));
  imageUrl = `http://127.0.0.1:${(images.address() as AddressInfo).port}`;
});
after(() => new Promise<void>((r) => images.close(() => r())));

async function embed(body: Record<string, unknown>): Promise<EmbeddingResponse> {
  const response = await api.post('/v1/embeddings', { model: 'jina-clip-v1', ...body });
  assert.equal(response.status, 200, await response.clone().text());
  return (await response.json()) as EmbeddingResponse;
}

function floats(value: unknown): Float32Array {
  return Float32Array.from(value as number[]);
}

describe('POST /v1/embeddings', () => {
  test('every input form gives the engine\'s own vectors, in input order', async () => {
    const base64 = png.toString('base64');
    const input = [
      'a plain string',
      { text: 'a text item' },
      { image: base64 },
      { image: `data:image/png;base64,${base64}` },
      { image: `${imageUrl}/image.png` },
      { url: `${imageUrl}/image.png` },
      { bytes: base64 },
    ];
    const response = await embed({ input });
    assert.equal(response.object, 'list');
    assert.equal(response.model, 'jina-clip-v1');
    assert.deepEqual(response.data.map((d) => [d.object, d.index]), input.map((_, i) => ['embedding', i]));
    const [plain, text, image] = await api.embedder.embed([{ text: 'a plain string' }, { text: 'a text item' }, { image: png }]);
    assert.ok(maxAbsDiff(floats(response.data[0]!.embedding), plain!.embedding) <= 1e-6);
    assert.ok(maxAbsDiff(floats(response.data[1]!.embedding), text!.embedding) <= 1e-6);
    for (let i = 2; i < input.length; i++) {
      assert.ok(maxAbsDiff(floats(response.data[i]!.embedding), image!.embedding) <= 1e-6, `input[${i}] differs`);
    }
  });

  test('a single string or item as input', async () => {
    assert.equal((await embed({ input: 'just one' })).data.length, 1);
    assert.equal((await embed({ input: { text: 'just one' } })).data.length, 1);
  });

  test('the hub id is accepted as model; the served name comes back', async () => {
    const response = await api.post('/v1/embeddings', { model: 'jinaai/jina-clip-v1', input: ['x'] });
    assert.equal(response.status, 200);
    assert.equal(((await response.json()) as EmbeddingResponse).model, 'jina-clip-v1');
  });

  test('every encoding decodes back to the float vector', async () => {
    const input = ['encode me', { image: png.toString('base64') }];
    const reference = (await embed({ input })).data.map((d) => floats(d.embedding));
    const keyed = await embed({ input, embedding_type: ['float', 'base64', 'binary', 'ubinary'] });
    for (const [i, item] of keyed.data.entries()) {
      const e = item.embedding as { float: number[]; base64: string; binary: number[]; ubinary: number[] };
      assert.ok(maxAbsDiff(floats(e.float), reference[i]!) === 0);
      const bytes = Buffer.from(e.base64, 'base64');
      assert.ok(maxAbsDiff(new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4), reference[i]!) === 0);
      assert.equal(e.ubinary.length, Math.ceil(reference[i]!.length / 8));
      reference[i]!.forEach((x, d) => {
        const bit = (e.ubinary[d >> 3]! >> (7 - (d & 7))) & 1;
        assert.equal(bit, x > 0 ? 1 : 0, `dimension ${d}`);
      });
      assert.deepEqual(e.binary, e.ubinary.map((b) => b - 128));
    }
    // One encoding by name: the bare value, under any of the three field names.
    for (const field of ['embedding_type', 'encoding_type', 'encoding_format']) {
      const single = await embed({ input, [field]: 'base64' });
      assert.equal(typeof single.data[0]!.embedding, 'string', field);
    }
  });

  test('usage: model tokens for texts, 1,000 per 224x224 tile for images', async () => {
    const texts = ['short', 'a somewhat longer text with more words in it'];
    const response = await embed({ input: [...texts, { image: photo.toString('base64') }] });
    const textTokens = texts.reduce((sum, t) => sum + api.embedder.tokenize(t).tokenCount, 0);
    assert.equal(response.usage.image_tokens, 12_000); // 750x500 -> 4 x 3 tiles
    assert.equal(response.usage.prompt_tokens, textTokens + 12_000);
    assert.equal(response.usage.total_tokens, textTokens + 12_000);
  });

  test('normalized, truncate, dimensions, task and late_chunking', async () => {
    const norm = (v: Float32Array) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
    const raw = floats((await embed({ input: ['x'], normalized: false })).data[0]!.embedding);
    assert.ok(Math.abs(norm(raw) - 1) > 1e-3);
    const full = floats((await embed({ input: ['x'] })).data[0]!.embedding);
    const same = await embed({ input: ['x'], dimensions: 1024, task: 'retrieval.query', late_chunking: false });
    assert.equal(floats(same.data[0]!.embedding).length, full.length);
    const small = floats((await embed({ input: ['x'], dimensions: 8 })).data[0]!.embedding);
    assert.equal(small.length, 8);
    assert.ok(Math.abs(norm(small) - 1) < 1e-5);
    const long = 'word '.repeat(9000);
    const truncated = await embed({ input: [long], truncate: true });
    assert.equal(truncated.usage.total_tokens, 8192);
  });

  test('late_chunking: true is 422 LATE_CHUNKING_UNSUPPORTED naming the field and the model; false is accepted', async () => {
    const accepted = await embed({ input: ['a text'], late_chunking: false });
    assert.equal(accepted.data.length, 1);
    for (const input of [['a text'], ['one text', 'another'], [{ image: photo.toString('base64') }]]) {
      const response = await api.post('/v1/embeddings', { model: 'jina-clip-v1', input, late_chunking: true });
      assert.equal(response.status, 422);
      const body = (await response.json()) as { code: string; detail: string };
      assert.equal(body.code, 'LATE_CHUNKING_UNSUPPORTED');
      assert.match(body.detail, /^late_chunking: jina-clip-v1 cannot do late chunking/);
      assert.match(body.detail, /"late_chunking": false/);
    }
    // A value of the wrong type is a malformed field, as for the other booleans.
    const wrong = await api.post('/v1/embeddings', { model: 'jina-clip-v1', input: ['x'], late_chunking: 'yes' });
    assert.equal(wrong.status, 422);
    assert.equal(((await wrong.json()) as { code: string }).code, 'REQUEST_INVALID');
  });

  test('timing headers and a request id on every answer', async () => {
    const response = await api.post('/v1/embeddings', { model: 'jina-clip-v1', input: ['time me'] }, { 'x-request-id': 'my-id-1' });
    assert.equal(response.headers.get('x-request-id'), 'my-id-1');
    for (const header of ['x-queue-time', 'x-inference-time', 'x-total-time']) {
      assert.ok(Number(response.headers.get(header)) >= 0, header);
    }
    const failed = await api.post('/v1/embeddings', { model: 'nope', input: ['x'] });
    assert.ok(failed.headers.get('x-request-id'));
    assert.equal(((await failed.json()) as { request_id: string }).request_id, failed.headers.get('x-request-id'));
  });
});

describe('service routes', () => {
  test('/live, /health, /ready, /v1/models, /metrics', async () => {
    assert.deepEqual(await (await fetch(`${api.url}/live`)).json(), { status: 'ok' });
    assert.deepEqual(await (await fetch(`${api.url}/health`)).json(), { status: 'ok' });
    const ready = await fetch(`${api.url}/ready`);
    assert.equal(ready.status, 200);
    // No store: nothing about one in the body, and /ready?store=1 cannot be ready.
    assert.deepEqual(await ready.json(), { status: 'ready', model: 'jina-clip-v1', models: ['jina-clip-v1'] });
    const withStore = await fetch(`${api.url}/ready?store=1`);
    assert.equal(withStore.status, 503);
    assert.equal(((await withStore.json()) as { code: string }).code, 'STORE_UNAVAILABLE');
    const models = (await (await fetch(`${api.url}/v1/models`)).json()) as { object: string; data: { id: string; object: string }[] };
    assert.equal(models.object, 'list');
    assert.equal(models.data[0]!.id, 'jina-clip-v1');
    assert.equal(models.data[0]!.object, 'model');
    const metrics = await (await fetch(`${api.url}/metrics`)).text();
    assert.ok(sample(metrics, 'tessera_requests_total', { route: '/v1/embeddings', status: '200' }) > 0);
    assert.ok(sample(metrics, 'tessera_items_total', { modality: 'text' }) > 0);
  });

  test('/ready is 503 until the model is attached and warmed up', async () => {
    const { parseServerConfig } = await import('../../src/api/config.ts');
    const { createServer } = await import('../../src/api/server.ts');
    const server = createServer({ config: parseServerConfig([], {}), servedName: 'jina-clip-v1', apiKeys: null });
    const url = await server.app.listen({ host: '127.0.0.1', port: 0 });
    try {
      assert.equal((await fetch(`${url}/health`)).status, 200);
      assert.equal((await fetch(`${url}/live`)).status, 200);
      const notReady = await fetch(`${url}/ready`);
      assert.equal(notReady.status, 503);
      assert.equal(((await notReady.json()) as { code: string }).code, 'NOT_READY');
      const early = await fetch(`${url}/v1/embeddings`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'jina-clip-v1', input: ['x'] }) });
      assert.equal(early.status, 503);
      await server.attach(api.embedder);
      assert.equal((await fetch(`${url}/ready`)).status, 200);
    } finally {
      await server.app.close();
    }
  });
});
