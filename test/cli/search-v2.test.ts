// Search on a jina-clip-v2 collection as a user runs it: a folder indexed with the v2 colour
// model (demo-v2) through the real CLI, searched in several languages; text queries are
// embedded with the model's retrieval.query instruction, documents without one.
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { Embedder } from '../../src/engine/embedder.ts';
import { cosine } from '../../src/engine/vectors.ts';
import { tessera } from '../helpers/cli.ts';
import { solidImage } from '../helpers/images.ts';
import { forged, tempDir } from '../helpers/models.ts';

type Hit = { id: string; score: number };

let store: string;
let folder: string;

async function search(args: string[]): Promise<Hit[]> {
  const run = await tessera(['search', ...args, '--collection', 'colours', '--store', store, '--json']);
  assert.equal(run.code, 0, run.stderr);
  return (JSON.parse(run.stdout) as { data: Hit[] }).data;
}

before(async () => {
  const base = await tempDir('tessera-cli-search-v2-');
  store = join(base, 'store');
  folder = join(base, 'photos');
  await mkdir(folder, { recursive: true });
  await writeFile(join(folder, 'red.png'), await solidImage(600, 400, [230, 20, 20]));
  await writeFile(join(folder, 'blue.png'), await solidImage(600, 400, [20, 20, 230]));
  await writeFile(join(folder, 'green.png'), await solidImage(600, 400, [20, 140, 30]));
  const indexed = await tessera(['index', folder, '--collection', 'colours', '--model', 'demo-v2', '--store', store, '--json']);
  assert.equal(indexed.code, 0, indexed.stderr);
  assert.equal(JSON.parse(indexed.stdout).added, 3);
});

test('a v2 collection finds its images by colour words in French, German, Spanish and Russian', async () => {
  for (const [query, expected] of [['rouge', 'red.png'], ['blau', 'blue.png'], ['verde', 'green.png'], ['красный', 'red.png']] as const) {
    assert.equal((await search([query, '--k', '1']))[0]!.id, expected, query);
  }
});

test('text queries carry the query instruction: a hit\'s score is the cosine of the instructed query and the document', async () => {
  // v2-tiny's random weights read every token, so the instruction moves the score.
  const model = await forged('v2-tiny');
  const docs = join(folder, '..', 'docs');
  await mkdir(docs, { recursive: true });
  await writeFile(join(docs, 'a.txt'), 'red roses in a garden');
  const indexed = await tessera(['index', docs, '--collection', 'texts', '--model', model, '--store', store, '--json']);
  assert.equal(indexed.code, 0, indexed.stderr);
  const run = await tessera(['search', 'roses', '--collection', 'texts', '--store', store, '--json']);
  assert.equal(run.code, 0, run.stderr);
  const [hit] = (JSON.parse(run.stdout) as { data: Hit[] }).data;
  const tiny = await Embedder.load(model);
  try {
    const [doc] = await tiny.embedTexts(['red roses in a garden']);
    const [query] = await tiny.embedTexts(['roses'], { task: 'retrieval.query' });
    const [plain] = await tiny.embedTexts(['roses']);
    const instructed = cosine(query!.embedding, doc!.embedding);
    assert.ok(Math.abs(hit!.score - instructed) < 1e-4, `score ${hit!.score}, instructed ${instructed}`);
    assert.ok(Math.abs(instructed - cosine(plain!.embedding, doc!.embedding)) > 1e-3, 'the instruction moves the score');
  } finally {
    await tiny.close();
  }
});
