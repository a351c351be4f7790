// `tessera search` and `tessera duplicates` as a user runs them: a folder indexed with the
// real CLI into a real store, then searched by text, image, example and mixes of them.
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { solidImage } from '../helpers/images.ts';
import { tessera } from '../helpers/cli.ts';
import { forged, tempDir } from '../helpers/models.ts';

type Hit = { id: string; score: number; text?: string; image?: string; metadata: Record<string, unknown> };

async function searchJson(args: string[]): Promise<Hit[]> {
  const run = await tessera(['search', ...args, '--collection', 'photos', '--store', store, '--json']);
  assert.equal(run.code, 0, run.stderr);
  return (JSON.parse(run.stdout) as { data: Hit[] }).data;
}

let store: string;
let folder: string;

before(async () => {
  const base = await tempDir('tessera-cli-search-');
  store = join(base, 'store');
  folder = join(base, 'photos');
  await mkdir(join(folder, 'more'), { recursive: true });
  await writeFile(join(folder, 'red.png'), await solidImage(64, 48, [255, 0, 0]));
  await writeFile(join(folder, 'more', 'red-again.png'), await solidImage(80, 80, [250, 5, 5]));
  await writeFile(join(folder, 'blue.png'), await solidImage(64, 48, [0, 0, 255]));
  await writeFile(join(folder, 'green.png'), await solidImage(64, 48, [0, 128, 0]));
  await writeFile(join(folder, 'yellow.png'), await solidImage(64, 48, [255, 255, 0]));
  await writeFile(join(folder, 'sea.txt'), 'the blue sea');
  await writeFile(join(folder, 'meadow.md'), 'a green meadow');
  const indexed = await tessera(['index', folder, '--collection', 'photos', '--model', await forged('colour'), '--store', store, '--json']);
  assert.equal(indexed.code, 0, indexed.stderr);
  assert.equal(JSON.parse(indexed.stdout).added, 7);
});

test('search QUERY --json: best first, ids relative to the folder, the collection\'s own model', async () => {
  const hits = await searchJson(['red', '--modality', 'image']);
  assert.deepEqual(new Set(hits.slice(0, 2).map((h) => h.id)), new Set(['red.png', 'more/red-again.png']));
  for (let i = 1; i < hits.length; i++) assert.ok(hits[i - 1]!.score >= hits[i]!.score);
  assert.deepEqual(Object.keys(hits[0]!).sort(), ['id', 'image', 'metadata', 'score']);
  assert.equal((await searchJson(['blue', '--modality', 'text', '--k', '1']))[0]!.id, 'sea.txt');
});

test('--image, --like and mixes: "red" minus "more like red.png" and a negative text', async () => {
  const byImage = await searchJson(['--image', join(folder, 'green.png'), '--k', '3']);
  assert.equal(byImage[0]!.id, 'green.png');
  const like = await searchJson(['--like', 'sea.txt', '--k', '2']);
  assert.equal(like[0]!.id, 'blue.png');
  assert.ok(!like.some((h) => h.id === 'sea.txt'));
  // rclip style: "yellow - blue" pushes blue things to the bottom.
  const mixed = await searchJson(['yellow', '-', 'blue', '--modality', 'image']);
  assert.equal(mixed[0]!.id, 'yellow.png');
  assert.equal(mixed.at(-1)!.id, 'blue.png');
  assert.ok(mixed.at(-1)!.score < 0);
  // 2 x green minus 2 x (a green text) leaves the yellow image's direction.
  const weighted = await searchJson(['2:green', '--like=-2:meadow.md', '--image', join(folder, 'yellow.png'), '--modality', 'image', '--k', '1']);
  assert.equal(weighted[0]!.id, 'yellow.png');
  const all = await searchJson(['blue', '--k', '4']);
  const paged = await searchJson(['blue', '--k', '2', '--offset', '2']);
  assert.deepEqual(paged.map((h) => h.id), all.slice(2, 4).map((h) => h.id));
  const strong = await searchJson(['red', '--min-score', '0.5']);
  assert.deepEqual(new Set(strong.map((h) => h.id)), new Set(['red.png', 'more/red-again.png']));
});

test('the default output is a readable table', async () => {
  const run = await tessera(['search', 'green', '--collection', 'photos', '--store', store, '--k', '3']);
  assert.equal(run.code, 0, run.stderr);
  const lines = run.stdout.trim().split('\n');
  assert.match(lines[0]!, /#\s+score\s+kind\s+id/);
  assert.equal(lines.length, 4);
  assert.match(lines[1]!, /^\s+1\s+[01]\.\d{4}\s+(image|text)\s+(green\.png|meadow\.md)/);
});

test('hybrid and filters from the command line', async () => {
  const hybrid = await searchJson(['sea', '--mode', 'hybrid', '--k', '1']);
  assert.equal(hybrid[0]!.id, 'sea.txt');
  const none = await searchJson(['red', '--filter', '{"camera": "x100"}']);
  assert.deepEqual(none, []);
});

test('bad input exits 1 and says which flag was wrong', async () => {
  for (const [args, message] of [
    [['red', '--k', '0'], /k: expected an integer from 1 to 1000/],
    [['red', '--mode', 'fuzzy'], /mode: expected one of/],
    [['red', '--filter', '{oops'], /--filter: expected JSON/],
    [['red', '--filter', '{"a b": 1}'], /filter: field "a b"/],
    [['--like', 'nope.png'], /--like "nope.png": collection "photos" holds no document "nope.png"/],
    [['--image', join(folder, 'missing.png')], /no file at/],
    [[], /nothing to search for/],
  ] as const) {
    const run = await tessera(['search', ...args, '--collection', 'photos', '--store', store]);
    assert.equal(run.code, 1, `${args.join(' ')}: ${run.stdout}`);
    assert.match(run.stderr, message);
  }
  const missing = await tessera(['search', 'red', '--collection', 'nope', '--store', store]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /no collection "nope"/);
});

test('duplicates: the two red images form a group; --json and the table', async () => {
  const run = await tessera(['duplicates', '--collection', 'photos', '--store', store, '--threshold', '0.95', '--modality', 'image', '--json']);
  assert.equal(run.code, 0, run.stderr);
  const groups = (JSON.parse(run.stdout) as { data: { ids: string[]; score: number }[] }).data;
  assert.deepEqual(groups.map((g) => g.ids), [['more/red-again.png', 'red.png']]);
  assert.ok(groups[0]!.score >= 0.95);
  const table = await tessera(['duplicates', '--collection', 'photos', '--store', store]);
  assert.equal(table.code, 0, table.stderr);
  assert.match(table.stdout, /group 1: \d+ documents, similarity >= (0\.9\d{3}|1\.0000)/);
  const bad = await tessera(['duplicates', '--collection', 'photos', '--store', store, '--threshold', '2']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /--threshold: expected a cosine similarity/);
});
