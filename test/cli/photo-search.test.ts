// `tessera search` on a photo library as a user types it: --after/--before, --near, --sort
// (both spellings) and --cutoff, on a JSONL of photos with their metadata indexed by the CLI.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { tessera } from '../helpers/cli.ts';
import { solidImage } from '../helpers/images.ts';
import { forged, tempDir } from '../helpers/models.ts';

type Hit = { id: string; score: number; metadata: Record<string, unknown> };
let store: string;

const PHOTOS = [
  { id: 'red-lisbon', rgb: [255, 0, 0], metadata: { taken_at: '2021-07-14T18:03:11Z', gps_lat: 38.7223, gps_lon: -9.1393 } },
  { id: 'red-sydney', rgb: [250, 5, 5], metadata: { taken_at: '2019-01-02T03:04:05Z', gps_lat: -33.8688, gps_lon: 151.2093 } },
  { id: 'red-fiji', rgb: [240, 10, 0], metadata: { taken_at: '2021-08-31T23:59:59Z', gps_lat: -16.8, gps_lon: 179.95 } },
  { id: 'blue-new', rgb: [0, 0, 255], metadata: { taken_at: '2024-05-05T05:05:05Z', gps_lat: 38.72, gps_lon: -9.14 } },
] as const;

before(async () => {
  const dir = await tempDir('tessera-cli-photos-');
  store = join(dir, 'store');
  const lines: string[] = [];
  for (const p of PHOTOS) {
    await writeFile(join(dir, `${p.id}.png`), await solidImage(48, 48, p.rgb));
    lines.push(JSON.stringify({ id: p.id, image: `${p.id}.png`, metadata: p.metadata }));
  }
  await writeFile(join(dir, 'photos.jsonl'), lines.join('\n') + '\n');
  const indexed = await tessera(['index', join(dir, 'photos.jsonl'), '--collection', 'photos', '--model', await forged('colour'), '--store', store, '--json']);
  assert.equal(indexed.code, 0, indexed.stderr);
});

async function search(...args: string[]): Promise<string[]> {
  const run = await tessera(['search', 'red', ...args, '--collection', 'photos', '--store', store, '--json']);
  assert.equal(run.code, 0, run.stderr);
  return (JSON.parse(run.stdout) as { data: Hit[] }).data.map((h) => h.id);
}

test('--sort -taken_at and --sort=-taken_at alike; with --cutoff auto the reds in date order', async () => {
  const newest = await search('--sort', '-taken_at', '--cutoff', 'auto');
  assert.deepEqual(newest, ['red-fiji', 'red-lisbon', 'red-sydney']);
  assert.deepEqual(await search('--sort=-taken_at', '--cutoff=auto'), newest);
  assert.deepEqual(await search('--sort', 'taken_at', '--cutoff', 'relative:0.9'), ['red-sydney', 'red-lisbon', 'red-fiji']);
});

test('--after (inclusive) and --before (exclusive), dates and date-times; --near, south and west too', async () => {
  assert.deepEqual((await search('--after', '2021-06-01', '--before', '2021-09-01')).sort(), ['red-fiji', 'red-lisbon']);
  // 2021-09-01T01:00:00+02:00 is 23:00 UTC the day before: Fiji's photo (23:59:59) is after it.
  assert.deepEqual(await search('--after', '2021-06-01', '--before', '2021-09-01T01:00:00+02:00'), ['red-lisbon']);
  assert.deepEqual(await search('--near', '38.72,-9.14,25', '--k', '5'), ['red-lisbon', 'blue-new']);
  assert.deepEqual(await search('--near', '-16.6,-179.99,100'), ['red-fiji']);
  assert.deepEqual(await search('--near', '-33.9,151.2,50', '--filter', '{"taken_at": {"$lt": "2020-01-01"}}'), ['red-sydney']);
});

test('bad flags: exit 1 and a message naming the flag', async () => {
  for (const [args, message] of [
    [['--near', '95,0,1'], /\$near\.lat/],
    [['--near', '38.7,-9.1'], /--near: expected LAT,LON,KM/],
    [['--near', '38.7,-9.1,0'], /\$near\.km/],
    [['--after', 'last summer'], /--after: expected a date/],
    [['--before', '2021-13-01'], /--before: expected a date/],
    [['--after', '2021-01-01', '--filter', '{"taken_at": {"$gte": "2020-01-01"}}'], /--after\/--before/],
    [['--cutoff', 'relative:2'], /cutoff\.relative/],
    [['--cutoff', 'soon'], /--cutoff: expected auto or relative:R/],
    [['--sort', '-score'], /sort/],
  ] as const) {
    const run = await tessera(['search', 'red', ...args, '--collection', 'photos', '--store', store]);
    assert.equal(run.code, 1, `${args.join(' ')}: ${run.stderr}`);
    assert.match(run.stderr, message, args.join(' '));
  }
});

test('the table shows when each photo was taken', async () => {
  const run = await tessera(['search', 'red', '--sort', '-taken_at', '--cutoff', 'auto', '--collection', 'photos', '--store', store]);
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /taken \(UTC\)/);
  assert.match(run.stdout, /red-fiji\s+2021-08-31 23:59:59/);
});
