// Several models served by one server: the forged colour model (knows colour words and
// coloured images) and the forged tiny model (seeded random weights), over real HTTP, real
// ONNX sessions and a real store (and, for task and dimensions, a forged jina-clip-v2 beside
// a v1). Each request, collection and classifier goes to its model; the models never run a
// batch at the same time.
import { basename } from 'node:path';
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { parseServerConfig } from '../../src/api/config.ts';
import { createServer } from '../../src/api/server.ts';
import type { BatchReport } from '../../src/engine/scheduler.ts';
import { forgeModel } from '../../src/forge/index.ts';
import { modelRefOf } from '../../src/search/collection.ts';
import { openStore } from '../../src/store/open.ts';
import type { VectorStore } from '../../src/store/store.ts';
import { noiseImage, solidImage } from '../helpers/images.ts';
import { cosine, forged, maxAbsDiff, tempDir } from '../helpers/models.ts';
import { sample, startServer, type TestServer } from '../helpers/server.ts';

type ErrorBody = { detail: string; code: string };
type ModelEntry = { id: string; object: string; created: number; owned_by: string; dimensions: number; max_tokens: number; image_size: number; dtype: string; int8: unknown; ready: boolean };
type Embedded = { model: string; data: { embedding: number[] }[] };
type Hit = { id: string; score: number };

let api: TestServer;
let store: VectorStore;

async function json<T>(response: Response, status = 200): Promise<T> {
  const text = await response.text();
  assert.equal(response.status, status, text);
  return JSON.parse(text) as T;
}

const dataUri = (png: Buffer) => `data:image/png;base64,${png.toString('base64')}`;

before(async () => {
  store = await openStore(await tempDir('tessera-models-store-'));
  api = await startServer({ models: [{ model: 'colour', name: 'colour' }, { model: 'tiny', name: 'tiny' }], store });
});
after(async () => {
  await api.close();
  await store.close();
});

describe('two models in one server', () => {
  test('each request picks its model by served name or alias; the answer names it', async () => {
    const [colourRed] = await api.embedders.colour!.embedTexts(['a red car']);
    const [tinyRed] = await api.embedders.tiny!.embedTexts(['a red car']);
    assert.ok(maxAbsDiff(colourRed!.embedding, tinyRed!.embedding) > 1e-3, 'the two models differ');
    for (const [requested, name, expected] of [
      ['colour', 'colour', colourRed!],
      ['tiny', 'tiny', tinyRed!],
      [await forged('tiny'), 'tiny', tinyRed!], // the folder, as --model named it
    ] as const) {
      const answer = await json<Embedded>(await api.post('/v1/embeddings', { model: requested, input: ['a red car'] }));
      assert.equal(answer.model, name);
      assert.ok(maxAbsDiff(answer.data[0]!.embedding, expected.embedding) <= 1e-6, `${requested} answered with another model's vector`);
    }
    const classified = await json<{ model: string; data: { prediction: string }[] }>(
      await api.post('/v1/classify', { model: 'colour', input: [{ image: dataUri(await solidImage(32, 32, [0, 0, 255])) }], labels: ['red', 'blue'] }),
    );
    assert.equal(classified.model, 'colour');
    assert.equal(classified.data[0]!.prediction, 'blue');
  });

  test('an unknown model is 400 MODEL_MISMATCH naming every served model', async () => {
    for (const path of ['/v1/embeddings', '/v1/classify']) {
      const body = await json<ErrorBody>(await api.post(path, { model: 'jina-clip-v1', input: ['x'], labels: ['a', 'b'] }), 400);
      assert.equal(body.code, 'MODEL_MISMATCH');
      assert.match(body.detail, /"jina-clip-v1" is not served here; this server serves "colour", "tiny"/);
    }
  });

  test('GET /v1/models lists both, with their facts, ready; /ready names them', async () => {
    const models = await json<{ object: string; data: ModelEntry[] }>(await fetch(`${api.url}/v1/models`));
    assert.equal(models.object, 'list');
    assert.deepEqual(models.data.map((m) => m.id), ['colour', 'tiny']);
    for (const entry of models.data) {
      const engine = api.embedders[entry.id]!;
      const [probe] = await engine.embedTexts(['probe']);
      assert.deepEqual(Object.keys(entry).sort(), ['created', 'dimensions', 'dtype', 'id', 'image_size', 'int8', 'max_tokens', 'object', 'owned_by', 'ready']);
      assert.deepEqual([entry.dtype, entry.int8], ['fp32', null]);
      assert.equal(entry.object, 'model');
      assert.equal(entry.owned_by, 'tessera');
      assert.ok(Number.isInteger(entry.created) && entry.created > 1_600_000_000, `created is a Unix time: ${entry.created}`);
      assert.equal(entry.dimensions, probe!.embedding.length);
      assert.equal(entry.max_tokens, engine.maxTokens);
      assert.equal(entry.image_size, engine.model.image.size);
      assert.equal(entry.ready, true);
    }
    const ready = await json<{ status: string; model: string; models: string[]; store?: { status: string } }>(await fetch(`${api.url}/ready`));
    assert.deepEqual({ status: ready.status, model: ready.model, models: ready.models }, { status: 'ready', model: 'colour', models: ['colour', 'tiny'] });
    // With a store, /ready reports it (and does not fail on it).
    if (ready.store) assert.equal(ready.store.status, 'available');
  });

  test('a collection is created for the model the request names (default: the first), and searched and written with it', async () => {
    const made = await json<{ model: string; model_name: string }>(await api.post('/v1/collections', { name: 'by-colour' }));
    assert.deepEqual([made.model, made.model_name], [basename(await forged('colour')), 'colour']);
    const tinyMade = await json<{ model: string; model_name: string }>(await api.post('/v1/collections', { name: 'by-tiny', model: 'tiny' }));
    assert.deepEqual([tinyMade.model, tinyMade.model_name], [basename(await forged('tiny')), 'tiny']);
    const unknown = await json<ErrorBody>(await api.post('/v1/collections', { name: 'by-nobody', model: 'gpt-4' }), 400);
    assert.match(unknown.detail, /this server serves "colour", "tiny"/);

    const documents = [
      { id: 'red', image: dataUri(await solidImage(48, 32, [255, 0, 0])) },
      { id: 'blue', image: dataUri(await solidImage(48, 32, [0, 0, 255])) },
      { id: 'note', text: 'a green meadow' },
      { id: 'noise', image: dataUri(await noiseImage(40, 30, 7)) },
    ];
    for (const name of ['by-colour', 'by-tiny']) await json(await api.post(`/v1/collections/${name}/documents`, { documents }));

    // The colour model knows red: its collection finds the red image first.
    const colourHits = await json<{ data: Hit[] }>(await api.post('/v1/collections/by-colour/search', { query: 'red', k: 4 }));
    assert.equal(colourHits.data[0]!.id, 'red');
    // Each collection's scores are the cosines of its own model's vectors.
    for (const [name, engine] of [['by-colour', api.embedders.colour!], ['by-tiny', api.embedders.tiny!]] as const) {
      const hits = await json<{ data: Hit[] }>(await api.post(`/v1/collections/${name}/search`, { query: 'a red car', k: 4 }));
      const [query, ...docs] = await engine.embed([{ text: 'a red car' }, ...documents.map((d) => ('text' in d ? { text: d.text! } : { image: d.image! }))]);
      for (const hit of hits.data) {
        const doc = docs[documents.findIndex((d) => d.id === hit.id)]!;
        assert.ok(Math.abs(hit.score - cosine(query!.embedding, doc.embedding)) < 1e-4, `${name}/${hit.id}: ${hit.score} is not the ${name} cosine`);
      }
    }
    const listed = await json<{ data: { name: string; model_name: string | null }[] }>(await fetch(`${api.url}/v1/collections`));
    assert.deepEqual(
      listed.data.filter((c) => c.name.startsWith('by-')).map((c) => [c.name, c.model_name]).sort(),
      [['by-colour', 'colour'], ['by-tiny', 'tiny']],
    );
  });

  test('a collection of a model not served is listed but refused, naming the served models', async () => {
    await store.createCollection({ name: 'elsewhere', model: 'jinaai/jina-clip-v1', dtype: 'fp32', dimensions: 768 });
    const listed = await json<{ data: { name: string; model_name: string | null }[] }>(await fetch(`${api.url}/v1/collections`));
    assert.equal(listed.data.find((c) => c.name === 'elsewhere')?.model_name, null);
    const refused = await json<ErrorBody>(await api.post('/v1/collections/elsewhere/search', { query: 'red' }), 409);
    assert.equal(refused.code, 'COLLECTION_MODEL_MISMATCH');
    assert.match(refused.detail, /jinaai\/jina-clip-v1 \(fp32\), which this server does not serve; it serves "colour" \(.*\), "tiny" \(/);
  });

  test('a classifier of the second model is trained and used while the first is served too', async () => {
    const examples = [
      { text: 'alpha one', label: 'A' },
      { text: 'alpha two', label: 'A' },
      { text: 'beta one', label: 'B' },
      { text: 'beta two', label: 'B' },
    ];
    const made = await json<{ classifier_id: string }>(await api.post('/v1/train', { model: 'tiny', input: examples, num_iters: 20 }));
    const record = (await store.classifiers.get(made.classifier_id))!;
    assert.deepEqual([record.model, record.modelName, record.dimensions], [await forged('tiny'), 'tiny', 32]);
    // Trained further and used with no model named: the classifier's own model answers.
    await json(await api.post('/v1/train', { classifier_id: made.classifier_id, input: [{ text: 'alpha three', label: 'A' }] }));
    const answer = await json<{ model: string; data: { prediction: string }[] }>(
      await api.post('/v1/classify', { classifier_id: made.classifier_id, input: examples.map((e) => e.text) }),
    );
    assert.equal(answer.model, 'tiny');
    assert.deepEqual(answer.data.map((d) => d.prediction), ['A', 'A', 'B', 'B']);
    // The same examples trained on the colour model give another classifier (its own model and vectors).
    const other = await json<{ classifier_id: string }>(await api.post('/v1/train', { model: 'colour', input: examples }));
    assert.equal((await store.classifiers.get(other.classifier_id))!.modelName, 'colour');
  });

  test('one batch at a time across both models, under concurrent load on both', async () => {
    const spans: { model: string; start: number; end: number }[] = [];
    const offs = Object.entries(api.embedders).map(([model, engine]) =>
      engine.onBatch((report: BatchReport) => {
        const end = performance.now();
        spans.push({ model, start: end - report.inferenceMs, end });
      }),
    );
    try {
      const images = await Promise.all(Array.from({ length: 4 }, (_, i) => noiseImage(120 + 10 * i, 90, 40 + i)));
      const requests = Array.from({ length: 24 }, (_, i) =>
        api.post('/v1/embeddings', {
          model: i % 2 ? 'tiny' : 'colour',
          input: [`request ${i} ${'words '.repeat(i * 20)}`, { image: images[i % 4]!.toString('base64') }],
        }),
      );
      for (const response of await Promise.all(requests)) assert.equal(response.status, 200);
    } finally {
      offs.forEach((off) => off());
    }
    assert.ok(spans.some((s) => s.model === 'colour') && spans.some((s) => s.model === 'tiny'), 'both models ran');
    spans.sort((a, b) => a.start - b.start);
    for (let i = 1; i < spans.length; i++) {
      const [previous, next] = [spans[i - 1]!, spans[i]!];
      assert.ok(next.start >= previous.end, `a ${next.model} batch started at ${next.start.toFixed(2)} while a ${previous.model} batch ran until ${previous.end.toFixed(2)}`);
    }
  });

  test('/metrics: each model\'s resident size, and batch metrics by model', async () => {
    const metrics = await (await fetch(`${api.url}/metrics`)).text();
    assert.match(metrics, /# HELP tessera_model_resident_bytes .*estimate/);
    for (const model of ['colour', 'tiny']) {
      assert.match(metrics, new RegExp(`^tessera_model_resident_bytes\\{model="${model}"\\} \\d+$`, 'm'));
      assert.ok(sample(metrics, 'tessera_batch_size_count', { model, modality: 'text' }) > 0, `${model} text batches`);
      assert.ok(sample(metrics, 'tessera_items_total', { model, modality: 'image' }) > 0, `${model} images`);
      assert.match(metrics, new RegExp(`^tessera_queued_jobs\\{model="${model}",modality="text"\\} 0$`, 'm'));
    }
    // The first model loaded brings ONNX Runtime's own memory with it: that much is certain.
    assert.ok(sample(metrics, 'tessera_model_resident_bytes', { model: 'colour' }) > 0);
  });
});

test('/ready waits for every model; a ready model answers while another still loads', async () => {
  const [colour, tiny] = await Promise.all([forged('colour'), forged('tiny')]);
  const specs = [
    { name: 'colour', aliases: [], ref: modelRefOf(colour, 'fp32'), source: colour },
    { name: 'tiny', aliases: [], ref: modelRefOf(tiny, 'fp32'), source: tiny },
  ];
  const server = createServer({ config: parseServerConfig([], {}), models: specs, apiKeys: null });
  const url = await server.app.listen({ host: '127.0.0.1', port: 0 });
  const embed = (model: string) => fetch(`${url}/v1/embeddings`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model, input: ['x'] }) });
  const listing = async () => (await json<{ data: ModelEntry[] }>(await fetch(`${url}/v1/models`))).data.map((m) => [m.id, m.ready, m.dimensions]);
  try {
    assert.deepEqual(await listing(), [['colour', false, null], ['tiny', false, null]]);
    await server.attach(api.embedders.tiny!, { model: 'tiny' });
    const notReady = await json<ErrorBody>(await fetch(`${url}/ready`), 503);
    assert.equal(notReady.code, 'NOT_READY');
    assert.match(notReady.detail, /"colour"/);
    assert.deepEqual(await listing(), [['colour', false, null], ['tiny', true, 32]]);
    assert.equal((await embed('tiny')).status, 200);
    assert.equal((await json<ErrorBody>(await embed('colour'), 503)).code, 'NOT_READY');
    await server.attach(api.embedders.colour!, { model: 'colour' });
    assert.equal((await fetch(`${url}/ready`)).status, 200);
    assert.equal((await embed('colour')).status, 200);
  } finally {
    await server.app.close();
  }
});

test('two models may not share a served name, and the same model is not served twice', async () => {
  const tiny = await forged('tiny');
  const spec = { name: 'x', aliases: [], ref: modelRefOf(tiny, 'fp32'), source: tiny };
  const config = parseServerConfig([], {});
  assert.throws(() => createServer({ config, models: [spec, { ...spec, ref: modelRefOf(tiny, 'q8') }], apiKeys: null }), /two models are served as "x"/);
  assert.throws(() => createServer({ config, models: [spec, { ...spec, name: 'y' }], apiKeys: null }), /is given twice/);
});

test('task and dimensions reach the model each request picks: a v2 model applies them, a v1 model beside it keeps its ways', async () => {
  const v2dir = await tempDir('tessera-models-v2-');
  await forgeModel({ preset: 'v2-tiny', outDir: v2dir });
  const server = await startServer({ models: [{ model: 'tiny', name: 'v1' }, { model: v2dir, name: 'v2' }] });
  const v2 = server.embedders.v2!;
  const embed = async (body: Record<string, unknown>, status = 200) => json<Embedded & ErrorBody>(await server.post('/v1/embeddings', { input: ['red roses'], ...body }), status);

  const listed = await json<{ data: ModelEntry[] }>(await fetch(`${server.url}/v1/models`));
  assert.deepEqual(listed.data.map((m) => [m.id, m.dimensions, m.image_size]), [['v1', 32, 224], ['v2', v2.info.dimensions, v2.info.imageSize]]);

  // The v2 model's instruction and Matryoshka cut, as its engine gives them.
  const smallest = Math.max(v2.info.matryoshkaDimensions[0]!, Math.ceil(v2.info.dimensions / 16));
  const [expected] = await v2.embedTexts(['red roses'], { task: 'retrieval.query', dimensions: smallest });
  const answer = await embed({ model: 'v2', task: 'retrieval.query', dimensions: smallest });
  assert.equal(answer.data[0]!.embedding.length, smallest);
  assert.ok(maxAbsDiff(answer.data[0]!.embedding, expected!.embedding) <= 1e-6);
  const [plain] = await v2.embedTexts(['red roses']);
  assert.ok(maxAbsDiff((await embed({ model: 'v2' })).data[0]!.embedding, plain!.embedding) <= 1e-6);
  assert.equal((await embed({ model: 'v2', task: 'retrieval.passage' }, 422)).code, 'TASK_UNSUPPORTED');
  assert.equal((await embed({ model: 'v2', dimensions: smallest - 1 }, 422)).code, 'DIMENSIONS_INVALID');

  // The v1 model ignores tasks and cuts to any size, as tessera always did.
  const [v1plain] = await server.embedders.v1!.embedTexts(['red roses']);
  assert.ok(maxAbsDiff((await embed({ model: 'v1', task: 'retrieval.passage' })).data[0]!.embedding, v1plain!.embedding) <= 1e-6);
  const cut = (await embed({ model: 'v1', dimensions: 3 })).data[0]!.embedding;
  assert.equal(cut.length, 3);
  assert.ok(Math.abs(Math.hypot(...cut) - 1) < 1e-5);
});
