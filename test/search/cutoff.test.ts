// Relevance cut-offs and sorting by metadata: the methods on hand-made score curves, and the
// automatic cut-off against every fixed min_score on the colour model's labelled sets.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { measureCutoffs } from '../../bench/cutoff.ts';
import { Embedder } from '../../src/engine/embedder.ts';
import { applyCutoff, autoCut } from '../../src/search/cutoff.ts';
import { parseSearchParameters } from '../../src/search/params.ts';
import { sortByMetadata } from '../../src/search/sort.ts';
import type { Metadata } from '../../src/store/store.ts';
import { rejectsWith } from '../helpers/errors.ts';
import { forged } from '../helpers/models.ts';

const hits = (scores: number[]) => scores.map((score, i) => ({ id: `d${i}`, score, metadata: {} }));

test('auto cuts at the widest drop near the top, whatever the level of the scores', () => {
  assert.equal(autoCut([0.98, 0.97, 0.96, 0.6, 0.58, 0.55, 0.2, 0.19]), 3);
  // The same shape lower down (a query whose relevant hits score 0.3): the same cut.
  assert.equal(autoCut([0.33, 0.325, 0.32, 0.2, 0.195, 0.185, 0.07, 0.065]), 3);
  // A wider drop further down, among what scores under half the best, does not count.
  assert.equal(autoCut([0.8, 0.79, 0.6, 0.58, 0.45, 0.38, 0.05]), 2);
  // Everything in the window, then the window's edge is the drop.
  assert.equal(autoCut([0.9, 0.89, 0.88, 0.1, 0.09]), 3);
  assert.equal(autoCut([0.9]), 1);
  assert.equal(autoCut([]), 0);
  assert.equal(autoCut([-0.1, -0.2]), 1);
});

test('relative keeps what scores at least the share of the best; both keep order', () => {
  assert.deepEqual(applyCutoff(hits([0.9, 0.85, 0.81, 0.8, 0.5]), { kind: 'relative', ratio: 0.9 }).map((h) => h.id), ['d0', 'd1', 'd2']);
  assert.deepEqual(applyCutoff(hits([0.9, 0.85, 0.3]), { kind: 'auto' }).map((h) => h.id), ['d0', 'd1']);
  assert.deepEqual(applyCutoff([], { kind: 'auto' }), []);
});

test('sorting by a key: either direction, documents without it last, ties in relevance order', () => {
  const docs: { id: string; score: number; metadata: Metadata }[] = [
    { id: 'a', score: 0.9, metadata: { taken_at: '2021-07-14T18:03:11Z' } },
    { id: 'b', score: 0.8, metadata: {} },
    { id: 'c', score: 0.7, metadata: { taken_at: '2019-01-01T00:00:00Z' } },
    { id: 'd', score: 0.6, metadata: { taken_at: '2021-07-14T18:03:11Z' } },
    { id: 'e', score: 0.5, metadata: { taken_at: '2023-02-01T10:00:00Z' } },
  ];
  const order = (key: string, descending: boolean) => sortByMetadata(docs, { key, descending }).map((d) => d.id);
  assert.deepEqual(order('taken_at', true), ['e', 'a', 'd', 'c', 'b']);
  assert.deepEqual(order('taken_at', false), ['c', 'a', 'd', 'e', 'b']);
  assert.deepEqual(order('never', false), ['a', 'b', 'c', 'd', 'e']);
  const numbers = [{ id: 'x', score: 1, metadata: { n: 10 } }, { id: 'y', score: 1, metadata: { n: 9 } }];
  assert.deepEqual(sortByMetadata(numbers, { key: 'n', descending: false }).map((d) => d.id), ['y', 'x']);
});

test('sort and cutoff parameters: what is accepted, and SEARCH_PARAMETER_INVALID naming the field', () => {
  assert.deepEqual(parseSearchParameters({ sort: '-taken_at', cutoff: 'auto' }).sort, { key: 'taken_at', descending: true });
  assert.equal(parseSearchParameters({ sort: 'score' }).sort, undefined);
  assert.deepEqual(parseSearchParameters({ cutoff: { relative: 0.9 } }).cutoff, { kind: 'relative', ratio: 0.9 });
  for (const [raw, field] of [
    [{ sort: '-score' }, /sort/],
    [{ sort: 'taken at' }, /sort/],
    [{ sort: 3 }, /sort/],
    [{ sort: '--taken_at' }, /sort/],
    [{ cutoff: 'yes' }, /cutoff/],
    [{ cutoff: { relative: 0 } }, /cutoff\.relative/],
    [{ cutoff: { relative: 1.5 } }, /cutoff\.relative/],
    [{ cutoff: { relative: '0.9' } }, /cutoff\.relative/],
    [{ cutoff: { absolute: 0.9 } }, /cutoff/],
  ] as const) {
    assert.throws(() => parseSearchParameters(raw), rejectsWith('SEARCH_PARAMETER_INVALID', field), JSON.stringify(raw));
  }
});

let embedder: Embedder;
before(async () => {
  embedder = await Embedder.load(await forged('colour'), { intraOpThreads: 1 });
});
after(async () => {
  await embedder.close();
});

test('on labelled sets, auto beats every fixed min_score on mean F1 (and so do not the relative cut-offs)', async () => {
  const report = await measureCutoffs(embedder, [1, 2, 3]);
  const f1 = Object.fromEntries(report.methods.map((m) => [m.method.split(' (')[0]!.replace(/ [\d.]+$/, (x) => (m.method.startsWith('min_score') ? '' : x)), m.f1]));
  const best = report.methods.find((m) => m.method.startsWith('min_score'))!;
  const auto = report.methods.find((m) => m.method === 'auto')!;
  assert.ok(auto.f1 > best.f1, `auto F1 ${auto.f1} should beat the best fixed min_score ${report.best_min_score} (F1 ${best.f1}): ${JSON.stringify(f1)}`);
  // The set is built so that one threshold cannot serve every query.
  assert.ok(best.f1 < 0.97, `the best single min_score reaches F1 ${best.f1}: the labelled set is too easy`);
});
