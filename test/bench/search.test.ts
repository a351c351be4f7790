import assert from 'node:assert/strict';
import { test } from 'node:test';
import { clusteredVectors, searchScenario } from '../../bench/search.ts';

test('the search scenario reports every figure, through the ANN path at its large size', { timeout: 120_000 }, async () => {
  const report = await searchScenario('tiny');
  assert.equal(report.sizes.length, 2);
  assert.equal(report.sizes[0]!.path, 'exact');
  assert.equal(report.sizes[0]!.recall_at_10, 1, 'exact search is exact');
  assert.equal(report.sizes[1]!.path, 'ann');
  assert.ok(report.recall_at_10 >= 0.8 && report.recall_at_10 <= 1, String(report.recall_at_10));
  for (const v of [report.p50_ms['10k'], report.p99_ms['10k'], report.p50_ms['100k'], report.p99_ms['100k'], report.insert_docs_per_s, report.bytes_per_100k]) {
    assert.ok(Number.isFinite(v) && v > 0, String(v));
  }
  assert.ok(report.p99_ms['100k'] >= report.p50_ms['100k']);
  assert.ok(report.index_build_s >= 0);
});

test('the clustered vectors have neighbours: cluster-mates are far closer than the rest', () => {
  const { draw } = clusteredVectors(768, 2, 3);
  const vs = Array.from({ length: 200 }, draw);
  const dots = vs.slice(1).map((v) => v.reduce((s, x, i) => s + x * vs[0]![i]!, 0));
  const near = dots.filter((d) => d > 0.3);
  const far = dots.filter((d) => d < 0.15);
  assert.ok(near.length > 50 && far.length > 50, `${near.length} near, ${far.length} far`);
  assert.equal(near.length + far.length, dots.length, 'nothing in between: two clear clusters');
});

test('the store scenario measures the embedded store and PostgreSQL side by side, both through their ANN paths', { timeout: 180_000 }, async () => {
  const { storeScenario } = await import('../../bench/store.ts');
  const report = await storeScenario('tiny');
  for (const backend of [report.embedded, report.postgres]) {
    assert.equal(backend.sizes.length, 1);
    assert.equal(backend.sizes[0]!.path, 'ann');
    assert.ok(backend.sizes[0]!.recall_at_10 >= 0.8 && backend.sizes[0]!.recall_at_10 <= 1, String(backend.sizes[0]!.recall_at_10));
    for (const v of [backend.insert_docs_per_s, backend.bytes_per_vector, backend.sizes[0]!.p50_ms]) assert.ok(Number.isFinite(v) && v > 0, String(v));
    assert.ok(backend.bytes_per_vector > 64 * 4, 'at least the float32 vector itself');
  }
});
