// The page's pure rules (src/web/query.js, the formatting in src/web/render.js) in Node:
// state <-> URL <-> search request, the date range and the cut-off, and how photo facts read.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_DUPLICATE_THRESHOLD, DUPLICATE_KINDS } from '../../src/search/duplicates.ts';

type State = Record<string, string>;
interface QueryModule {
  emptyState(): State;
  stateFromParams(params: URLSearchParams): State;
  paramsFromState(state: State): URLSearchParams;
  searchBody(state: State, image: string | null, offset?: number): Record<string, unknown>;
  duplicatesBody(threshold: string, modality?: string): Record<string, unknown>;
  DEFAULT_DUPLICATE_THRESHOLD: number;
  InputError: new (message: string) => Error;
}
interface RenderModule {
  clockTime(seconds: unknown): string;
  pageText(page: unknown, count: unknown): string;
  takenAt(value: unknown, offsetKnown?: unknown): { text: string; datetime: string; note: string } | null;
  cameraName(make: unknown, model: unknown): string;
  placeText(lat: unknown, lon: unknown): string;
  DUPLICATE_KINDS: Record<string, string>;
  kindLabel(kind: string): string;
  scanProgress(job: { status: string; scanned: number; total: number; groups: number }): string;
}
// Plain browser modules without type declarations: imported by URL.
const query = (await import(new URL('../../src/web/query.js', import.meta.url).href)) as QueryModule;
const render = (await import(new URL('../../src/web/render.js', import.meta.url).href)) as RenderModule;

const state = (fields: State) => ({ ...query.emptyState(), q: 'red', collection: 'photos', ...fields });

test('best match sends neither sort nor cut-off; a sorted view sends its sort with the auto cut-off', () => {
  const best = query.searchBody(state({}), null);
  assert.equal('sort' in best, false);
  assert.equal('cutoff' in best, false);
  assert.deepEqual(query.searchBody(state({ sort: '-taken_at' }), null), { query: 'red', k: 24, sort: '-taken_at', cutoff: 'auto', collapse: true });
  assert.deepEqual(query.searchBody(state({ sort: 'taken_at', cutoff: 'off' }), null), { query: 'red', k: 24, sort: 'taken_at', collapse: true });
  assert.deepEqual(query.searchBody(state({ cutoff: 'auto' }), null).cutoff, 'auto');
  assert.deepEqual(query.searchBody(state({ cutoff: '0.9' }), null).cutoff, { relative: 0.9 });
  for (const bad of ['1.5', '0', 'sometimes']) assert.throws(() => query.searchBody(state({ cutoff: bad }), null), query.InputError);
});

test('the date range covers whole days in UTC and is merged into the metadata filter', () => {
  const range = { $gte: '2021-06-01', $lt: '2021-09-01' };
  assert.deepEqual(query.searchBody(state({ from: '2021-06-01', to: '2021-08-31' }), null).filter, { taken_at: range });
  assert.deepEqual(query.searchBody(state({ to: '2020-02-28' }), null).filter, { taken_at: { $lt: '2020-02-29' } });
  assert.deepEqual(query.searchBody(state({ to: '2021-12-31' }), null).filter, { taken_at: { $lt: '2022-01-01' } });
  assert.deepEqual(query.searchBody(state({ from: '2021-06-01', to: '2021-08-31', filter: '{"camera_make": "Canon", "$near": {"lat": 1, "lon": 2, "km": 3}}' }), null).filter,
    { camera_make: 'Canon', $near: { lat: 1, lon: 2, km: 3 }, taken_at: range });
  // The filter's own conditions on taken_at are kept beside the range's, unless they clash.
  assert.deepEqual(query.searchBody(state({ from: '2021-06-01', filter: '{"taken_at": {"$lt": "2022-01-01"}}' }), null).filter, { taken_at: { $lt: '2022-01-01', $gte: '2021-06-01' } });
  assert.throws(() => query.searchBody(state({ from: '2021-06-01', filter: '{"taken_at": {"$gte": "2020-01-01"}}' }), null), /both set \$gte/);
  assert.throws(() => query.searchBody(state({ from: '2021-06-01', filter: '{"taken_at": "2021-06-01"}' }), null), query.InputError);
  assert.throws(() => query.searchBody(state({ from: '2021-06-01', filter: '[1]' }), null), query.InputError);
  assert.throws(() => query.searchBody(state({ from: '2021-09-01', to: '2021-08-31' }), null), /after/);
  assert.throws(() => query.searchBody(state({ from: '2021-02-30' }), null), /taken from: expected a date/);
  // Without dates the filter goes as typed.
  assert.deepEqual(query.searchBody(state({ filter: '[1]' }), null).filter, [1]);
});

test('the URL keeps sort, cut-off and dates, only when set; "score" is best match', () => {
  const full = state({ sort: '-taken_at', cutoff: '0.9', from: '2021-01-01', to: '2021-12-31', filter: '{"a":1}' });
  const params = query.paramsFromState(full);
  assert.equal(params.toString(), 'q=red&collection=photos&sort=-taken_at&cutoff=0.9&from=2021-01-01&to=2021-12-31&filter=%7B%22a%22%3A1%7D');
  assert.deepEqual(query.stateFromParams(params), full);
  assert.equal(query.paramsFromState(state({})).toString(), 'q=red&collection=photos');
  assert.equal(query.stateFromParams(new URLSearchParams('sort=score')).sort, '');
});

test('near-identical documents are collapsed unless turned off; grouping is the API\'s default, "off" asks for every frame and page', () => {
  const body = query.searchBody(state({}), null);
  assert.equal(body.collapse, true);
  assert.equal('group' in body, false);
  const apart = query.searchBody(state({ collapse: 'off', group: 'off' }), null);
  assert.equal('collapse' in apart, false);
  assert.equal(apart.group, false);
  // Only "off" is written in the URL, and only "off" is read from it.
  assert.equal(query.paramsFromState(state({})).toString(), 'q=red&collection=photos');
  assert.equal(query.paramsFromState(state({ collapse: 'off', group: 'off' })).toString(), 'q=red&collection=photos&collapse=off&group=off');
  assert.deepEqual(query.stateFromParams(new URLSearchParams('collapse=off&group=off')), { ...query.emptyState(), collapse: 'off', group: 'off' });
  assert.deepEqual(query.stateFromParams(new URLSearchParams('collapse=on&group=yes')), query.emptyState());
});

test('a moment reads as a clock (m:ss, h:mm:ss), rounded down; a page as "page N of M"', () => {
  assert.equal(render.clockTime(0), '0:00');
  assert.equal(render.clockTime(3), '0:03');
  assert.equal(render.clockTime(2.999), '0:02');
  assert.equal(render.clockTime(65.5), '1:05');
  assert.equal(render.clockTime(3725), '1:02:05');
  for (const bad of [-1, Number.NaN, '3', null, undefined]) assert.equal(render.clockTime(bad), '');
  assert.equal(render.pageText(2, 3), 'page 2 of 3');
  assert.equal(render.pageText(2, undefined), 'page 2');
  assert.equal(render.pageText(4, 3), 'page 4', 'a count below the page is not shown');
  assert.equal(render.pageText(null, 3), '');
});

test('a photo\'s date reads in UTC (or is marked), its camera without the make twice, its place to 2 decimals', () => {
  assert.deepEqual(render.takenAt('2021-07-14T18:03:11Z', true), { text: '14 Jul 2021 18:03 UTC', datetime: '2021-07-14T18:03:11Z', note: '2021-07-14T18:03:11Z (UTC)' });
  assert.equal(render.takenAt('2021-07-14T23:30:00-02:00')?.text, '15 Jul 2021 01:30 UTC');
  assert.equal(render.takenAt('2021-07-14T18:03:11Z', false)?.text, '14 Jul 2021 18:03 (zone unknown)');
  assert.equal(render.takenAt('2021-07-14T18:03:11')?.text, '14 Jul 2021 18:03 (zone unknown)');
  assert.equal(render.takenAt('2021-07-14')?.text, '14 Jul 2021');
  for (const bad of ['2021-02-30', 'yesterday', 1626285791, undefined]) assert.equal(render.takenAt(bad), null);

  assert.equal(render.cameraName('Canon', 'Canon EOS R5'), 'Canon EOS R5');
  assert.equal(render.cameraName('NIKON CORPORATION', 'NIKON D750'), 'NIKON D750');
  assert.equal(render.cameraName('FUJIFILM', 'X-T3'), 'FUJIFILM X-T3');
  assert.equal(render.cameraName('OLYMPUS IMAGING CORP.', 'E-M10'), 'OLYMPUS E-M10');
  assert.equal(render.cameraName('Canon', 'Canonet QL17'), 'Canon Canonet QL17');
  assert.equal(render.cameraName(undefined, 'X100V'), 'X100V');
  assert.equal(render.cameraName('SONY', undefined), 'SONY');
  assert.equal(render.cameraName(undefined, undefined), '');

  assert.equal(render.placeText(38.7223, -9.1393), '38.72, -9.14');
  assert.equal(render.placeText(-0.001, 0), '0.00, 0.00');
  assert.equal(render.placeText(38.7, undefined), '');
  assert.equal(render.placeText('38.7', '-9.1'), '');
});

test('a duplicates scan sends the threshold as typed (the API\'s default when empty) and says each kind the API knows', () => {
  assert.equal(query.DEFAULT_DUPLICATE_THRESHOLD, DEFAULT_DUPLICATE_THRESHOLD, "the threshold box starts at the API's default");
  assert.deepEqual(query.duplicatesBody(''), {});
  assert.deepEqual(query.duplicatesBody(' 0.9 '), { threshold: 0.9 });
  assert.deepEqual(query.duplicatesBody('0.95', 'image'), { threshold: 0.95, modality: 'image' });
  // Out of range is the API's to say; not a number is said before asking.
  assert.deepEqual(query.duplicatesBody('2'), { threshold: 2 });
  assert.throws(() => query.duplicatesBody('high'), query.InputError);

  assert.deepEqual(Object.keys(render.DUPLICATE_KINDS), [...DUPLICATE_KINDS], 'a label for every kind, in the API\'s order');
  assert.deepEqual(DUPLICATE_KINDS.map((kind) => render.kindLabel(kind)), ['Exact copies', 'Near-identical', 'Similar']);
  assert.equal(render.kindLabel('crop'), 'crop', 'a kind the page does not know yet, as the API spells it');
  assert.equal(render.kindLabel('toString'), 'toString');
  assert.equal(render.scanProgress({ status: 'queued', scanned: 0, total: 0, groups: 0 }), 'Waiting for another scan to finish…');
  assert.equal(render.scanProgress({ status: 'running', scanned: 120, total: 1000, groups: 0 }), 'Scanning… 120 of 1,000 documents');
  assert.equal(render.scanProgress({ status: 'running', scanned: 3, total: 12, groups: 1 }), 'Scanning… 3 of 12 documents, 1 group so far');
});
