// Zero-shot classification on the colour model, over HTTP and from the command line.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { before, test } from 'node:test';
import { solidImage } from '../helpers/images.ts';
import { tempDir } from '../helpers/models.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

const COLOURS: Record<string, [number, number, number]> = { red: [220, 20, 20], green: [30, 160, 40], blue: [20, 40, 220], yellow: [240, 220, 30] };
const labels = Object.keys(COLOURS);
type Classified = { object: string; index: number; prediction: string; score: number; predictions: { label: string; score: number }[] };

let api: TestServer;
before(async () => {
  api = await startServer({ model: 'colour' });
});

test('POST /v1/classify picks the right colour for images and texts; scores sum to 1', async () => {
  const images = await Promise.all(labels.map((c) => solidImage(120, 90, COLOURS[c]!)));
  const input = [...images.map((b) => ({ image: b.toString('base64') })), 'the sky is blue today', { text: 'a yellow taxi' }];
  const response = await api.post('/v1/classify', { model: 'jina-clip-v1', input, labels });
  assert.equal(response.status, 200);
  const body = (await response.json()) as { usage: { total_tokens: number }; data: Classified[] };
  assert.deepEqual(body.data.map((d) => d.prediction), [...labels, 'blue', 'yellow']);
  for (const item of body.data) {
    assert.equal(item.object, 'classification');
    assert.deepEqual(item.predictions.map((p) => p.label), labels);
    assert.ok(Math.abs(item.predictions.reduce((s, p) => s + p.score, 0) - 1) < 1e-6);
    assert.equal(item.score, Math.max(...item.predictions.map((p) => p.score)));
  }
  assert.ok(body.usage.total_tokens > 4000);
});

test('classify validates its labels', async () => {
  const response = await api.post('/v1/classify', { model: 'jina-clip-v1', input: ['x'], labels: ['only one'] });
  assert.equal(response.status, 422);
  assert.match(((await response.json()) as { detail: string }).detail, /labels must be a list of at least two strings/);
});

test('tessera classify does the same from the command line', async () => {
  const dir = await tempDir();
  const path = join(dir, 'green.png');
  await writeFile(path, await solidImage(64, 64, COLOURS.green!));
  const { stdout } = await promisify(execFile)('./bin/tessera', ['classify', '--model', 'demo', '--labels', labels.join(','), '--image', path, '--text', 'a red rose']);
  const body = JSON.parse(stdout) as { data: Classified[] };
  assert.deepEqual(body.data.map((d) => d.prediction), ['green', 'red']);
});
