// tessera train and tessera classify --classifier-id: a classifier made, trained further and
// used from the command line, in a store folder.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { test } from 'node:test';
import { solidImage } from '../helpers/images.ts';
import { tempDir } from '../helpers/models.ts';

const run = promisify(execFile);
const tessera = (args: string[]) => run('./bin/tessera', args, { env: { ...process.env, TESSERA_STORE: '' } });

test('tessera train makes a classifier (printing its id), trains it further; tessera classify --classifier-id uses it', { timeout: 120_000 }, async () => {
  const dir = await tempDir();
  const store = join(dir, 'store');
  await mkdir(join(dir, 'images'));
  const colours: Record<string, [number, number, number]> = { red: [230, 30, 30], yellow: [240, 230, 20], blue: [30, 40, 230], green: [40, 150, 40], purple: [128, 10, 128] };
  for (const [name, rgb] of Object.entries(colours)) await writeFile(join(dir, 'images', `${name}.png`), await solidImage(48, 48, rgb));
  const lines = [
    { image: 'images/red.png', label: 'warm' },
    { image: 'images/blue.png', label: 'cool' },
    { text: 'a yellow taxi', label: 'warm' },
    { text: 'green grass', label: 'cool' },
  ];
  await writeFile(join(dir, 'examples.jsonl'), lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
  const created = await tessera(['train', '--model', 'demo', '--store', store, '--examples', join(dir, 'examples.jsonl'), '--num-iters', '5']);
  const id = created.stdout.trim();
  assert.match(id, /^[0-9a-f]{8}-[0-9a-f-]{27}$/);
  assert.match(created.stderr, /created .* on 4 examples, 5 passes/);

  await writeFile(join(dir, 'more.jsonl'), JSON.stringify({ image: join(dir, 'images', 'purple.png'), label: 'cool' }) + '\n');
  const trained = await tessera(['train', '--classifier-id', id, '--store', store, '--examples', join(dir, 'more.jsonl')]);
  assert.equal(trained.stdout.trim(), id);
  assert.match(trained.stderr, /version 2/);

  const { stdout } = await tessera(['classify', '--classifier-id', id, '--store', store, '--image', join(dir, 'images', 'yellow.png'), '--text', 'a red rose', '--text', 'blue sea', '--image', join(dir, 'images', 'purple.png')]);
  const body = JSON.parse(stdout) as { data: { prediction: string; predictions: { label: string }[] }[] };
  assert.deepEqual(body.data.map((d) => d.prediction), ['warm', 'warm', 'cool', 'cool']);
  assert.deepEqual(body.data[0]!.predictions.map((p) => p.label), ['warm', 'cool']);

  await assert.rejects(tessera(['classify', '--classifier-id', id, '--store', store, '--owner', 'someone-else', '--text', 'red']), /CLASSIFIER_NOT_FOUND|no classifier/);
  await assert.rejects(tessera(['train', '--model', 'demo', '--classifier-id', id, '--store', store, '--examples', join(dir, 'more.jsonl')]), /not both/);
});
