// Cross-request batching under concurrency, the bounded queue, and dropped work.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { maxAbsDiff } from '../helpers/models.ts';
import { noiseImage } from '../helpers/images.ts';
import { batchInThread, engineHolds, sample, startServer } from '../helpers/server.ts';

type Body = { data: { embedding: number[] }[]; code?: string; detail?: string };

test('32 concurrent clients: batches form, and each client gets exactly its own vectors', async () => {
  // The tiny model runs a batch in a millisecond or two, faster than images decode, so give
  // concurrent requests a longer moment to meet than a real model would need.
  const api = await startServer({ args: ['--batch-wait-ms', '200'] });
  const images = await Promise.all(Array.from({ length: 8 }, (_, i) => noiseImage(160 + i * 10, 120, 100 + i)));
  const inputs = Array.from({ length: 32 }, (_, i) =>
    i % 4 === 3 ? { image: images[i % 8]!.toString('base64') } : `client ${i} says ${'hello '.repeat(i % 7)}`,
  );
  const alone = await Promise.all(inputs.map((input) => api.embedder.embed([typeof input === 'string' ? { text: input } : { image: images[inputs.indexOf(input) % 8]! }])));
  const before = await (await fetch(`${api.url}/metrics`)).text();
  const responses = await Promise.all(inputs.map((input) => api.post('/v1/embeddings', { model: 'jina-clip-v1', input: [input] })));
  const after = await (await fetch(`${api.url}/metrics`)).text();
  for (const [i, response] of responses.entries()) {
    assert.equal(response.status, 200);
    const body = (await response.json()) as Body;
    assert.ok(maxAbsDiff(body.data[0]!.embedding, alone[i]![0]!.embedding) <= 1e-5, `client ${i} got another vector`);
  }
  for (const modality of ['text', 'image']) {
    const runs = sample(after, 'tessera_batch_size_count', { modality }) - sample(before, 'tessera_batch_size_count', { modality });
    const items = sample(after, 'tessera_batch_size_sum', { modality }) - sample(before, 'tessera_batch_size_sum', { modality });
    assert.ok(runs > 0 && items / runs > 1, `${modality}: ${items} items in ${runs} runs, so batches of more than one formed`);
  }
});

test('beyond the queue bound, 429 with a clear detail; the rest are served', async () => {
  // The first request's three items wait a second for company; once the engine holds them, the
  // other five arrive: one more fits the bound of six, the rest do not.
  const api = await startServer({ args: ['--max-pending-items', '6', '--batch-wait-ms', '1000'] });
  const first = api.post('/v1/embeddings', { model: 'jina-clip-v1', input: ['a first', 'b first', 'c first'] });
  await engineHolds(api.embedder, 3);
  const responses = [await first, ...(await Promise.all(Array.from({ length: 5 }, (_, i) => api.post('/v1/embeddings', { model: 'jina-clip-v1', input: [`a ${i}`, `b ${i}`, `c ${i}`] }))))];
  const statuses = responses.map((r) => r.status);
  assert.equal(statuses[0], 200, `the first, admitted, is served: ${statuses}`);
  assert.ok(statuses.slice(1).includes(200), `one more fits: ${statuses}`);
  const refused = responses.filter((r) => r.status === 429);
  assert.ok(refused.length > 0, `some refused: ${statuses}`);
  const body = (await refused[0]!.json()) as Body;
  assert.equal(body.code, 'QUEUE_FULL');
  assert.match(body.detail!, /busy .* retry/);
});

test('work of a client that disconnected is dropped before it reaches the model', async () => {
  // An idle model waits a second for company; the client gives up once the engine holds its work.
  const api = await startServer({ args: ['--batch-wait-ms', '1000'] });
  const before = sample(await (await fetch(`${api.url}/metrics`)).text(), 'tessera_items_total', { modality: 'text' });
  const controller = new AbortController();
  const request = api.post('/v1/embeddings', { model: 'jina-clip-v1', input: ['never', 'run', 'these'] }, {});
  void request.catch(() => undefined);
  const aborted = fetch(`${api.url}/v1/embeddings`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'jina-clip-v1', input: ['gone 1', 'gone 2'] }),
    signal: controller.signal,
  }).catch((err: unknown) => err);
  await engineHolds(api.embedder, 5);
  controller.abort();
  await aborted;
  assert.equal((await request).status, 200);
  // Done with the gone client's work too, whether dropped or (wrongly) run.
  await engineHolds(api.embedder, 0);
  const afterText = await (await fetch(`${api.url}/metrics`)).text();
  const ran = sample(afterText, 'tessera_items_total', { modality: 'text' }) - before;
  assert.equal(ran, 3, 'only the connected client\'s three texts ran');
});

test('a request whose deadline passed is dropped with 499', async () => {
  const api = await startServer({ args: ['--batch-wait-ms', '200', '--request-timeout-ms', '50'] });
  const response = await api.post('/v1/embeddings', { model: 'jina-clip-v1', input: ['too late'] });
  assert.equal(response.status, 499);
  assert.match(((await response.json()) as Body).detail!, /deadline passed/);
});

test('the server answers other requests while a batch is running (inference is off the main thread)', async () => {
  const api = await startServer();
  const long = 'many words make a long text '.repeat(500); // ~3,000 tokens: the longest batch the tiny model runs
  let embeddedAt = 0;
  const embedding = api.post('/v1/embeddings', { model: 'jina-clip-v1', input: [long] }).then((r) => {
    embeddedAt = performance.now();
    return r;
  });
  // From the moment the batch is in the inference thread until it is answered, /health again
  // and again: inference on the main thread would hold every answer back until the batch ends.
  await batchInThread(api.embedder);
  let healthAt = Infinity;
  while (embeddedAt === 0) {
    const health = await fetch(`${api.url}/health`);
    assert.equal(health.status, 200);
    healthAt = Math.min(healthAt, performance.now());
  }
  assert.equal((await embedding).status, 200);
  assert.ok(healthAt < embeddedAt, '/health was answered while the batch ran, not after it');
});
