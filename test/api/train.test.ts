// Few-shot classifiers over HTTP: POST /v1/train, classify by classifier_id, GET and DELETE
// /v1/classifiers, on the colour model with a real embedded store.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadApiKeys } from '../../src/api/auth.ts';
import { warmCoolItems, type LabelledItem } from '../../src/eval/warm-cool.ts';
import { openLanceStore } from '../../src/store/lance.ts';
import type { VectorStore } from '../../src/store/store.ts';
import { solidImage } from '../helpers/images.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

type Classified = { object: string; index: number; prediction: string; score: number; predictions: { label: string; score: number }[] };
type ClassifyBody = { model: string; usage: { total_tokens: number }; data: Classified[] };
type Listed = { classifier_id: string; model_name: string; labels: string[]; access: string; updated_number: number; used_number: number; created_at: string; updated_at: string; used_at: string | null; metadata: object };

const dirs: string[] = [];
const stores: VectorStore[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-train-'));
  dirs.push(dir);
  return dir;
}
async function store(dir = tempDir()): Promise<VectorStore> {
  const s = await openLanceStore(dir);
  stores.push(s);
  return s;
}
after(async () => {
  for (const s of stores) await s.close();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const asInput = (items: readonly LabelledItem[]) => items.map((x) => (x.text !== undefined ? { text: x.text } : { image: x.image! }));
const asExamples = (items: readonly LabelledItem[]) => items.map((x) => (x.text !== undefined ? { text: x.text, label: x.label } : { image: x.image!, label: x.label }));

async function json<T>(response: Response, status = 200): Promise<T> {
  const body = (await response.json()) as T;
  assert.equal(response.status, status, JSON.stringify(body));
  return body;
}

async function trainNew(api: TestServer, input: unknown, extra: Record<string, unknown> = {}, headers: Record<string, string> = {}): Promise<string> {
  const body = await json<{ classifier_id: string }>(await api.post('/v1/train', { model: 'jina-clip-v1', input, ...extra }, headers));
  return body.classifier_id;
}

async function errorOf(response: Response, status: number, code: string, detail?: RegExp): Promise<void> {
  const body = (await response.json()) as { code: string; detail: string };
  assert.equal(response.status, status, JSON.stringify(body));
  assert.equal(body.code, code);
  if (detail) assert.match(body.detail, detail);
}

/**
 * The same predictions and scores within 1e-6: ONNX Runtime's float results can differ in the
 * last bits with how items are batched, which no classifier can undo.
 */
function sameClassifications(a: Classified[], b: Classified[]): void {
  assert.deepEqual(a.map((d) => d.prediction), b.map((d) => d.prediction));
  a.forEach((d, i) => d.predictions.forEach((p, j) => assert.ok(Math.abs(p.score - b[i]!.predictions[j]!.score) < 1e-6)));
}

let api: TestServer;
let held: LabelledItem[];
before(async () => {
  api = await startServer({ model: 'colour', store: await store() });
  held = await warmCoolItems(99, 3, 'heldOut'); // 36 held-out items, none of them a training item
});

test('a classifier learns labels the model has no words for (warm / cool), where zero-shot can only guess', async () => {
  const zeroShot = await json<ClassifyBody>(await api.post('/v1/classify', { model: 'jina-clip-v1', input: asInput(held), labels: ['warm', 'cool'] }));
  for (const d of zeroShot.data) assert.ok(Math.abs(d.predictions[0]!.score - 0.5) < 1e-6, 'zero-shot has nothing to go on');

  const train = await warmCoolItems(1, 2); // 2 of each colour: 6 examples a class
  const response = await json<{ classifier_id: string; num_samples: number; usage: { total_tokens: number } }>(await api.post('/v1/train', { model: 'jina-clip-v1', input: asExamples(train) }));
  assert.match(response.classifier_id, /^[0-9a-f-]{36}$/);
  assert.equal(response.num_samples, train.length);
  assert.deepEqual(Object.keys(response.usage), ['total_tokens']);

  const body = await json<ClassifyBody>(await api.post('/v1/classify', { classifier_id: response.classifier_id, input: asInput(held) }));
  assert.equal(body.model, 'jina-clip-v1');
  assert.equal(body.data.length, held.length);
  body.data.forEach((d, i) => {
    assert.equal(d.object, 'classification');
    assert.equal(d.index, i);
    assert.deepEqual(d.predictions.map((p) => p.label), ['warm', 'cool'], 'labels in their trained order');
    assert.ok(Math.abs(d.predictions.reduce((s, p) => s + p.score, 0) - 1) < 1e-9);
    assert.equal(d.score, Math.max(...d.predictions.map((p) => p.score)));
    assert.equal(d.prediction, held[i]!.label, `${held[i]!.colour} ${held[i]!.text ?? 'image'}`);
  });
});

test('a classifier of words starts out as zero-shot on them; one of other labels starts from nothing', async () => {
  const images = await Promise.all([[230, 30, 30], [30, 40, 230], [40, 150, 40]].map((rgb) => solidImage(64, 64, rgb as [number, number, number])));
  const input = images.map((b) => ({ image: b.toString('base64') }));
  const labels = ['red', 'blue', 'green'];
  // Texts that zero-shot already gets right by a wide margin: the passive-aggressive updates leave the start as it is.
  const id = await trainNew(api, labels.map((l) => ({ text: l, label: l })), { num_iters: 1 });
  const few = await json<ClassifyBody>(await api.post('/v1/classify', { classifier_id: id, input }));
  const zero = await json<ClassifyBody>(await api.post('/v1/classify', { model: 'jina-clip-v1', input, labels }));
  assert.deepEqual(few.data.map((d) => d.prediction), labels);
  few.data.forEach((d, i) => d.predictions.forEach((p, j) => assert.ok(Math.abs(p.score - zero.data[i]!.predictions[j]!.score) < 1e-5, `${p.label}: ${p.score} vs zero-shot ${zero.data[i]!.predictions[j]!.score}`)));

  // Labels that are not words: no zero-shot start, learnt from the examples alone (and one
  // example may come as a single object).
  const sku = await trainNew(api, [{ image: input[0]!.image, label: 'SKU-1182' }, { image: input[1]!.image, label: 'A' }]);
  await json(await api.post('/v1/train', { classifier_id: sku, input: { image: input[2]!.image, label: 'A' } }));
  const got = await json<ClassifyBody>(await api.post('/v1/classify', { classifier_id: sku, input }));
  assert.deepEqual(got.data.map((d) => d.prediction), ['SKU-1182', 'A', 'A']);
  assert.deepEqual(got.data[0]!.predictions.map((p) => p.label), ['SKU-1182', 'A']);
});

test('the same calls in the same order give the same classifier, bit for bit', async () => {
  const s = await store();
  // One item per batch: ONNX Runtime's floats can differ in the last bits with the batch an
  // item runs in, and this test is about the learning, which must add no variation of its own.
  const replica = await startServer({ model: 'colour', store: s, args: ['--max-text-batch', '1', '--max-image-batch', '1'] });
  const items = await warmCoolItems(5, 2);
  const ids: string[] = [];
  for (let run = 0; run < 2; run++) {
    const id = await trainNew(replica, asExamples(items.slice(0, 6)), { num_iters: 3 });
    await json(await replica.post('/v1/train', { classifier_id: id, input: asExamples(items.slice(6)), num_iters: 2 }));
    ids.push(id);
  }
  const [a, b] = await Promise.all(ids.map((id) => s.classifiers.get(id)));
  assert.deepEqual(Array.from(a!.weights), Array.from(b!.weights));
  assert.ok(a!.weights.some((w) => w !== 0));
  const scores: Classified[][] = [];
  for (const id of ids) scores.push((await json<ClassifyBody>(await replica.post('/v1/classify', { classifier_id: id, input: asInput(held) }))).data);
  sameClassifications(scores[0]!, scores[1]!);
  await replica.close();
});

test('billing: training is the inputs\' tokens x num_iters, classifying the inputs\' tokens', async () => {
  const items = await warmCoolItems(3, 1);
  const embedded = await json<{ usage: { total_tokens: number } }>(await api.post('/v1/embeddings', { model: 'jina-clip-v1', input: asInput(items) }));
  const tokens = embedded.usage.total_tokens;
  assert.ok(tokens > 1000);
  const trained = await json<{ classifier_id: string; usage: { total_tokens: number } }>(await api.post('/v1/train', { model: 'jina-clip-v1', input: asExamples(items), num_iters: 7 }));
  assert.equal(trained.usage.total_tokens, 7 * tokens);
  const defaulted = await json<{ usage: { total_tokens: number } }>(await api.post('/v1/train', { classifier_id: trained.classifier_id, input: asExamples(items) }));
  assert.equal(defaulted.usage.total_tokens, 10 * tokens, 'num_iters defaults to 10');
  const classified = await json<ClassifyBody>(await api.post('/v1/classify', { classifier_id: trained.classifier_id, input: asInput(items) }));
  assert.equal(classified.usage.total_tokens, tokens);
});

test('GET /v1/classifiers lists the caller\'s classifiers; DELETE removes one; a deleted id is 404', async () => {
  const s = await store();
  const own = await startServer({ model: 'colour', store: s });
  const before = Date.now();
  const id = await trainNew(own, [{ text: 'red', label: 'warm' }, { text: 'blue', label: 'cool' }], { access: 'public' });
  let [listed] = await json<Listed[]>(await fetch(`${own.url}/v1/classifiers`));
  assert.deepEqual({ ...listed!, created_at: undefined, updated_at: undefined }, {
    classifier_id: id, model_name: 'jina-clip-v1', labels: ['warm', 'cool'], access: 'public', updated_number: 1, used_number: 0,
    created_at: undefined, updated_at: undefined, used_at: null, num_samples: 2, metadata: {},
  });
  assert.ok(Date.parse(listed!.created_at) >= before - 1000);
  await json(await own.post('/v1/train', { classifier_id: id, input: [{ text: 'yellow', label: 'warm' }, { text: 'green', label: 'fresh' }], access: 'private' }));
  await json(await own.post('/v1/classify', { classifier_id: id, input: ['purple'] }));
  [listed] = await json<Listed[]>(await fetch(`${own.url}/v1/classifiers`));
  assert.equal(listed!.updated_number, 2);
  assert.equal(listed!.access, 'public', 'access is ignored on update');
  assert.deepEqual(listed!.labels, ['warm', 'cool', 'fresh'], 'a new label is appended');
  assert.equal(listed!.used_number, 1);
  assert.ok(listed!.used_at !== null && listed!.updated_at >= listed!.created_at);

  const removed = await fetch(`${own.url}/v1/classifiers/${id}`, { method: 'DELETE' });
  assert.deepEqual(await json(removed), { classifier_id: id, deleted: true });
  assert.deepEqual(await json(await fetch(`${own.url}/v1/classifiers`)), []);
  await errorOf(await own.post('/v1/classify', { classifier_id: id, input: ['red'] }), 404, 'CLASSIFIER_NOT_FOUND');
  await errorOf(await own.post('/v1/train', { classifier_id: id, input: [{ text: 'red', label: 'warm' }] }), 404, 'CLASSIFIER_NOT_FOUND');
  await errorOf(await fetch(`${own.url}/v1/classifiers/${id}`, { method: 'DELETE' }), 404, 'CLASSIFIER_NOT_FOUND');
  await errorOf(await own.post('/v1/classify', { classifier_id: 'no-such-id', input: ['red'] }), 404, 'CLASSIFIER_NOT_FOUND');
  await own.close();
});

test('request errors are 422s naming the field', async () => {
  const example = { text: 'red', label: 'warm' };
  const cases: [unknown, RegExp][] = [
    [{ model: 'jina-clip-v1', classifier_id: '6db95bec-0000-4000-8000-000000000000', input: [example] }, /model and classifier_id cannot both be given/],
    [{ input: [example] }, /model .* or classifier_id .* is required/],
    [{ model: 'jina-clip-v1', input: [example], labels: ['a'] }, /labels is not a field/],
    [{ model: 'jina-clip-v1', input: [{ text: 'red', label: 'warm' }, { text: 'blue' }] }, /input\[1\]\.label is required/],
    [{ model: 'jina-clip-v1', input: [{ text: 'red', label: 'warm', colour: 'x' }] }, /input\[0\]\.colour is not a field/],
    [{ model: 'jina-clip-v1', input: [{ text: 'red', label: '' }] }, /input\[0\]\.label must be a non-empty string/],
    [{ model: 'jina-clip-v1', input: [{ label: 'warm' }] }, /input\[0\] must have exactly one of/],
    [{ model: 'jina-clip-v1', input: ['red'] }, /input\[0\] must be an object with "label"/],
    [{ model: 'jina-clip-v1', input: [example], access: 'shared' }, /access must be "private" or "public"/],
    [{ model: 'jina-clip-v1', input: [example], num_iters: 0 }, /num_iters must be an integer from 1 to 1000/],
    [{ model: 'jina-clip-v1', input: [] }, /input must not be an empty list/],
  ];
  for (const [body, detail] of cases) await errorOf(await api.post('/v1/train', body), 422, 'REQUEST_INVALID', detail);
  await errorOf(await api.post('/v1/train', { model: 'gpt-4', input: [example] }), 400, 'MODEL_MISMATCH');
  const classify: [unknown, RegExp][] = [
    [{ classifier_id: '6db95bec-0000-4000-8000-000000000000', model: 'jina-clip-v1', input: ['red'] }, /model and classifier_id/],
    [{ classifier_id: '6db95bec-0000-4000-8000-000000000000', labels: ['a', 'b'], input: ['red'] }, /labels and classifier_id/],
    [{ classifier_id: '6db95bec-0000-4000-8000-000000000000', input: ['red'], extra: 1 }, /extra is not a field/],
  ];
  for (const [body, detail] of classify) await errorOf(await api.post('/v1/classify', body), 422, 'REQUEST_INVALID', detail);
});

test('limits: classes per classifier, classifiers per key, inputs per request, each with its own code', async () => {
  const limited = await startServer({ model: 'colour', store: await store(), args: ['--classifier-max-classes', '2', '--classifier-max-per-key', '2', '--classifier-max-inputs', '3'] });
  const ex = (label: string, text = 'red') => ({ text, label });
  await errorOf(await limited.post('/v1/train', { model: 'jina-clip-v1', input: [ex('a'), ex('b'), ex('c')] }), 422, 'CLASSIFIER_CLASS_LIMIT', /3 classes .* at most 2/);
  await errorOf(await limited.post('/v1/train', { model: 'jina-clip-v1', input: [ex('a'), ex('a'), ex('a'), ex('b')] }), 413, 'CLASSIFIER_INPUT_LIMIT', /4 items .* at most 3/);
  const id = await trainNew(limited, [ex('a'), ex('b', 'blue')]);
  await errorOf(await limited.post('/v1/train', { classifier_id: id, input: [ex('c')] }), 422, 'CLASSIFIER_CLASS_LIMIT');
  await errorOf(await limited.post('/v1/classify', { classifier_id: id, input: ['a', 'b', 'c', 'd'] }), 413, 'CLASSIFIER_INPUT_LIMIT');
  await trainNew(limited, [ex('a')]);
  await errorOf(await limited.post('/v1/train', { model: 'jina-clip-v1', input: [ex('a')] }), 409, 'CLASSIFIER_COUNT_LIMIT', /delete one/);
  await limited.close();
});

describe('ownership', () => {
  let keyed: TestServer;
  const alice = { authorization: 'Bearer tk-alice-0123456789' };
  const bob = { authorization: 'Bearer tk-bob-0123456789' };
  before(async () => {
    keyed = await startServer({ model: 'colour', store: await store(), apiKeys: await loadApiKeys({ env: 'alice:tk-alice-0123456789,bob:tk-bob-0123456789' }) });
  });
  const list = async (headers: Record<string, string>) => (await json<Listed[]>(await fetch(`${keyed.url}/v1/classifiers`, { headers }))).map((c) => c.classifier_id);
  const del = (id: string, headers: Record<string, string>) => fetch(`${keyed.url}/v1/classifiers/${id}`, { method: 'DELETE', headers });
  const examples = [{ text: 'red', label: 'warm' }, { text: 'blue', label: 'cool' }];

  test('a private classifier is seen and used only with the key that made it', async () => {
    const id = await trainNew(keyed, examples, {}, alice);
    assert.deepEqual(await list(alice), [id]);
    assert.deepEqual(await list(bob), []);
    await errorOf(await keyed.post('/v1/classify', { classifier_id: id, input: ['red'] }, bob), 404, 'CLASSIFIER_NOT_FOUND');
    await errorOf(await keyed.post('/v1/train', { classifier_id: id, input: examples }, bob), 404, 'CLASSIFIER_NOT_FOUND');
    await errorOf(await del(id, bob), 404, 'CLASSIFIER_NOT_FOUND');
    await errorOf(await keyed.post('/v1/classify', { classifier_id: id, input: ['red'] }), 401, 'AUTH_API_KEY_MISSING');
    assert.equal((await json<ClassifyBody>(await keyed.post('/v1/classify', { classifier_id: id, input: ['red'] }, alice))).data[0]!.prediction, 'warm');
  });

  test('a public one is used by any key but trained and deleted only by its owner', async () => {
    const id = await trainNew(keyed, examples, { access: 'public' }, alice);
    assert.equal((await json<ClassifyBody>(await keyed.post('/v1/classify', { classifier_id: id, input: ['blue'] }, bob))).data[0]!.prediction, 'cool');
    assert.ok(!(await list(bob)).includes(id), 'listed for its owner only');
    await errorOf(await keyed.post('/v1/train', { classifier_id: id, input: examples }, bob), 403, 'CLASSIFIER_FORBIDDEN');
    await errorOf(await del(id, bob), 403, 'CLASSIFIER_FORBIDDEN');
    assert.equal((await del(id, alice)).status, 200);
  });
});

test('classifiers outlive the server; another model\'s server will not use them; no store, no classifiers', async () => {
  const dir = tempDir();
  const first = await startServer({ model: 'colour', store: await store(dir) });
  const items = await warmCoolItems(2, 2);
  const id = await trainNew(first, asExamples(items));
  const before = await json<ClassifyBody>(await first.post('/v1/classify', { classifier_id: id, input: asInput(held) }));
  await first.close();
  const second = await startServer({ model: 'colour', store: await store(dir) });
  const after = await json<ClassifyBody>(await second.post('/v1/classify', { classifier_id: id, input: asInput(held) }));
  sameClassifications(after.data, before.data);
  await second.close();
  const tiny = await startServer({ model: 'tiny', store: await store(dir) });
  await errorOf(await tiny.post('/v1/classify', { classifier_id: id, input: ['red'] }), 409, 'CLASSIFIER_MODEL_MISMATCH', /trained on/);
  await errorOf(await tiny.post('/v1/train', { classifier_id: id, input: [{ text: 'red', label: 'warm' }] }), 409, 'CLASSIFIER_MODEL_MISMATCH');
  await tiny.close();
  const bare = await startServer({ model: 'colour' });
  await errorOf(await bare.post('/v1/classify', { classifier_id: id, input: ['red'] }), 404, 'CLASSIFIER_NOT_FOUND', /no store/);
  await errorOf(await bare.post('/v1/train', { model: 'jina-clip-v1', input: [{ text: 'red', label: 'warm' }] }), 404, 'NOT_FOUND');
  await bare.close();
});

test('concurrent trainings of one classifier through two servers on one store are serialised, none lost', async () => {
  const dir = tempDir();
  const [one, two] = await Promise.all([startServer({ model: 'colour', store: await store(dir) }), startServer({ model: 'colour', store: await store(dir) })]);
  const items = await warmCoolItems(7, 4);
  const id = await trainNew(one, asExamples(items.slice(0, 2)));
  const calls = 10;
  const responses = await Promise.all(Array.from({ length: calls }, (_, i) => (i % 2 ? two : one).post('/v1/train', { classifier_id: id, input: asExamples(items.slice(2 + 2 * i, 4 + 2 * i)) })));
  for (const r of responses) await json(r);
  const [listed] = await json<Listed[]>(await fetch(`${two.url}/v1/classifiers`));
  assert.equal(listed!.updated_number, 1 + calls);
  assert.equal((listed as Listed & { num_samples: number }).num_samples, 2 + 2 * calls, 'every call\'s examples are in');
  await Promise.all([one.close(), two.close()]);
});
