// `tessera embed --model demo-v2` as a user runs it: the built-in jina-clip-v2 colour model,
// colour words in several languages, --task and --dimensions, images billed by 512 px tiles.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { cosine } from '../../src/engine/vectors.ts';
import { MULTILINGUAL_COLOUR_WORDS } from '../../src/forge/v2-colour-words.ts';
import { tessera } from '../helpers/cli.ts';
import { solidImage } from '../helpers/images.ts';
import { tempDir } from '../helpers/models.ts';

interface Response {
  usage: { total_tokens: number; image_tokens: number };
  data: { index: number; embedding: number[] }[];
}

async function embed(args: string[]): Promise<Response> {
  const run = await tessera(['embed', '--model', 'demo-v2', ...args]);
  assert.equal(run.code, 0, run.stderr);
  return JSON.parse(run.stdout) as Response;
}

test('demo-v2: a red image is nearest "red" in four languages, with the query instruction and cut to 16 dimensions', async () => {
  const dir = await tempDir('tessera-embed-v2-');
  const red = join(dir, 'red.png');
  await writeFile(red, await solidImage(1000, 600, [230, 20, 20]));
  const words = ['en', 'fr', 'de', 'es'].map((lang) => MULTILINGUAL_COLOUR_WORDS.red![lang as 'en']![0]!);
  const others = ['blue', 'green', 'yellow'].map((c) => MULTILINGUAL_COLOUR_WORDS[c]!.fr[0]!);
  const texts = [...words, ...others].flatMap((w) => ['--text', `une photo ${w}`]);
  const response = await embed(['--image', red, ...texts, '--task', 'retrieval.query', '--dimensions', '16']);
  const [image, ...vectors] = response.data.map((d) => d.embedding);
  assert.equal(image!.length, 16);
  const scores = vectors.map((v) => cosine(image!, v));
  for (let i = 0; i < words.length; i++) {
    for (let j = words.length; j < scores.length; j++) assert.ok(scores[i]! > scores[j]!, `${words[i]} should beat ${others[j - words.length]}`);
  }
  assert.equal(response.usage.image_tokens, 2 * 2 * 4000);
});

test('demo-v2 refuses a task it has no instruction for, and dimensions below its range, naming them', async () => {
  const task = await tessera(['embed', '--model', 'demo-v2', '--text', 'rouge', '--task', 'retrieval.passage']);
  assert.notEqual(task.code, 0);
  assert.match(task.stderr, /TASK_UNSUPPORTED|retrieval\.passage.*retrieval\.query/);
  const dims = await tessera(['embed', '--model', 'demo-v2', '--text', 'rouge', '--dimensions', '1']);
  assert.notEqual(dims.code, 0);
  assert.match(dims.stderr, /dimensions must be from \d+ to \d+/);
});
