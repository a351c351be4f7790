import assert from 'node:assert/strict';
import { test } from 'node:test';
import { rm } from 'node:fs/promises';
import { clusteredVectors, lanceBackend, measureStore, searchScenario, SEARCH_PLANS } from '../../bench/search.ts';
import { openExactSearch } from '../../bench/exact.ts';
import type { ApiFigures } from '../../bench/api.ts';
import { runBench } from '../../bench/run.ts';
import { formatTable } from '../../bench/table.ts';
import { openLanceStore } from '../../src/store/lance.ts';
import { forged, tempDir } from '../helpers/models.ts';

/** The API figures: end to end and every part of the profile, recall over the checked queries. */
function checkApi(api: ApiFigures, docs: number): void {
  assert.equal(api.docs, docs);
  assert.ok(api.queries > 0 && api.recall_queries > 0 && api.recall_queries <= api.queries);
  assert.ok(api.recall_at_10 >= 0.8 && api.recall_at_10 <= 1, String(api.recall_at_10));
  assert.ok(Number.isFinite(api.p50_ms) && api.p50_ms > 0 && api.p99_ms >= api.p50_ms, `${api.p50_ms} / ${api.p99_ms}`);
  for (const [part, spread] of Object.entries(api.profile)) {
    assert.ok(Number.isFinite(spread.p50_ms) && spread.p50_ms > 0 && spread.p99_ms >= spread.p50_ms, `${part}: ${JSON.stringify(spread)}`);
  }
}

test('the search scenario reports every figure, through the ANN path at its large size, and through the API', { timeout: 180_000 }, async () => {
  process.env.TESSERA_CACHE ??= await tempDir('tessera-bench-search-cache-');
  const report = await searchScenario('tiny');
  assert.equal(report.sizes.length, 2);
  assert.equal(report.sizes[0]!.path, 'exact');
  assert.equal(report.sizes[0]!.index, 'kept up');
  assert.equal(report.sizes[0]!.recall_at_10, 1, 'exact search is exact');
  assert.equal(report.sizes[1]!.path, 'ann');
  assert.equal(report.sizes[1]!.index, 'built', 'the large size is loaded in bulk, then indexed');
  assert.ok(report.recall_at_10 >= 0.8 && report.recall_at_10 <= 1, String(report.recall_at_10));
  for (const v of [report.p50_ms['10k'], report.p99_ms['10k'], report.p50_ms['100k'], report.p99_ms['100k'], report.insert_docs_per_s, report.bulk_docs_per_s!, report.bytes_per_100k]) {
    assert.ok(Number.isFinite(v) && v > 0, String(v));
  }
  assert.equal(report.insert_docs, report.sizes[0]!.docs, 'inserts with index upkeep up to the small size');
  assert.equal(report.insert_docs, SEARCH_PLANS.tiny.upkeep);
  assert.equal(report.largest_load, 'bulk then index');
  assert.ok(report.p99_ms['100k'] >= report.p50_ms['100k']);
  assert.ok(report.index_build_s >= 0);
  checkApi(report.api, report.sizes[1]!.docs);
  assert.deepEqual([report.api_p50_ms, report.api_p99_ms, report.api_recall_at_10], [report.api.p50_ms, report.api.p99_ms, report.api.recall_at_10]);
  // A run of both scenarios loads the embedded store's largest size once (the store scenario reuses these).
  const { embeddedFromSearch } = await import('../../bench/store.ts');
  assert.deepEqual(embeddedFromSearch('tiny', report)?.sizes, report.sizes);
  assert.equal(embeddedFromSearch('full', report), undefined, 'the full store run measures 1M: its own');
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

test('exact search for recall finds what a JavaScript loop finds, and leaves the example out', async () => {
  const { draw } = clusteredVectors(48, 5, 9);
  const vectors = Array.from({ length: 24_000 }, draw);
  const queries = [vectors[7]!, draw(), draw()];
  const exact = await openExactSearch(48);
  try {
    const count = 20_000; // over two chunks, not all of the vectors
    const got = await exact.topK(queries, vectors, count, 10, [7, -1, -1]);
    for (const [q, query] of queries.entries()) {
      const want = vectors
        .slice(0, count)
        .map((v, i) => ({ i, dot: v.reduce((s, x, j) => s + x * query[j]!, 0) }))
        .filter((x) => !(q === 0 && x.i === 7))
        .sort((a, b) => b.dot - a.dot)
        .slice(0, 10)
        .map((x) => x.i);
      assert.deepEqual([...got[q]!].sort((a, b) => a - b), want.sort((a, b) => a - b), `query ${q}`);
    }
  } finally {
    await exact.close();
  }
});

test('the store scenario measures the embedded store and PostgreSQL side by side, both through their ANN paths, PostgreSQL through the API too', { timeout: 240_000 }, async () => {
  process.env.TESSERA_CACHE ??= await tempDir('tessera-bench-store-cache-');
  const { storeScenario } = await import('../../bench/store.ts');
  const report = await storeScenario('tiny');
  for (const backend of [report.embedded, report.postgres]) {
    assert.equal(backend.sizes.length, 2, 'the inserts with upkeep, then the bulk load');
    assert.deepEqual(backend.sizes.map((s) => s.index), ['kept up', 'built']);
    const last = backend.sizes[1]!;
    assert.equal(last.path, 'ann');
    assert.ok(last.recall_at_10 >= 0.8 && last.recall_at_10 <= 1, String(last.recall_at_10));
    for (const v of [backend.insert_docs_per_s, backend.bulk_docs_per_s!, backend.bytes_per_vector, last.p50_ms]) assert.ok(Number.isFinite(v) && v > 0, String(v));
    assert.ok(backend.bytes_per_vector > report.data.dims * 4, 'at least the float32 vector itself');
    assert.equal(backend.largest_load, 'bulk then index');
    assert.equal(backend.insert_docs, SEARCH_PLANS.tiny.upkeep, 'inserts with upkeep on fewer documents than the largest size');
    assert.equal(backend.sizes[0]!.docs, SEARCH_PLANS.tiny.upkeep);
  }
  assert.deepEqual([report.data.inserted_with_upkeep, report.data.largest_load, report.data.docs], [SEARCH_PLANS.tiny.upkeep, 'bulk then index', [SEARCH_PLANS.tiny.large]]);
  checkApi(report.postgres.api, report.postgres.sizes[1]!.docs);
  assert.equal(report.postgres.api_p99_ms, report.postgres.api.p99_ms);
});

test('a bench run of search and store: the largest size loaded in bulk then indexed once per store, the insert count and each scenario\'s seconds in the JSON', { timeout: 300_000 }, async () => {
  process.env.TESSERA_CACHE ??= await tempDir('tessera-bench-run-cache-');
  const report = JSON.parse(JSON.stringify(await runBench({ model: await forged('tiny'), size: 'tiny', threads: 1, scenarios: ['search', 'store'] })));
  const { timings, search, store } = report;
  for (const key of ['model_s', 'setup_s', 'search_s', 'store_s']) assert.ok(Number.isFinite(timings[key]) && timings[key] >= 0, `${key}: ${JSON.stringify(timings)}`);
  assert.ok(timings.search_s > 0 && timings.store_s > 0, JSON.stringify(timings));
  for (const key of ['ceiling_s', 'images_texts_s', 'q8_s', 'startup_s', 'server_s', 'index_s', 'photos_s', 'media_s', 'watch_s']) assert.equal(timings[key], undefined, `${key}: not run`);
  assert.equal(search.largest_load, 'bulk then index');
  assert.equal(search.insert_docs, SEARCH_PLANS.tiny.upkeep);
  assert.equal(store.data.largest_load, 'bulk then index');
  assert.equal(store.data.inserted_with_upkeep, SEARCH_PLANS.tiny.upkeep);
  // The embedded store's figures are the search scenario's: its largest size was loaded and indexed once.
  assert.match(store.embedded.measured_by, /search scenario/);
  assert.deepEqual([store.embedded.largest_load, store.embedded.insert_docs, store.embedded.index_build_s], [search.largest_load, search.insert_docs, search.index_build_s]);
  assert.equal(store.postgres.largest_load, 'bulk then index');
  assert.deepEqual(store.postgres.sizes.map((s: { index: string }) => s.index), ['kept up', 'built']);
  const table = formatTable(report);
  assert.match(table, new RegExp(`store \\(both\\): ${SEARCH_PLANS.tiny.large} documents loaded in bulk, then indexed; inserts with upkeep measured on ${SEARCH_PLANS.tiny.upkeep} documents`));
  assert.match(table, /^seconds: .*search [\d.]+, store [\d.]+$/m);
});

test('the full run\'s path: every document inserted with index upkeep, then the index rebuilt at the largest size', { timeout: 120_000 }, async () => {
  const dims = 16;
  const { draw } = clusteredVectors(dims, 10, 5);
  const vectors = Array.from({ length: 1500 }, draw);
  const queries = Array.from({ length: 5 }, draw);
  const dir = await tempDir('tessera-bench-upkeep-');
  const options = { annThreshold: 1000 };
  const store = await openLanceStore(dir, options);
  try {
    const figures = await measureStore(lanceBackend(store, dir, options), vectors, queries, {
      targets: [500, 1500],
      batch: 250,
      upkeep: Infinity,
      writer: { model: 'bench-test', dtype: 'fp32' },
      log: () => {},
      label: 'test',
    });
    assert.equal(figures.largest_load, 'upkeep then rebuild');
    assert.equal(figures.insert_docs, 1500, 'inserts with upkeep at full size');
    assert.equal(figures.bulk_docs_per_s, undefined, 'no bulk load');
    assert.deepEqual(figures.sizes.map((s) => [s.docs, s.index]), [[500, 'kept up'], [1500, 'built']]);
    assert.equal(figures.sizes[1]!.path, 'ann');
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
});
