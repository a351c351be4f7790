/**
 * `tessera bench --only search`: the embedded store at 10k and 100k documents of 768-d
 * CLUSTERED vectors (a mixture of Gaussians; on uniform random 768-d vectors every ANN index
 * looks broken, since no point has meaningful neighbours): insert rate through `upsert` with
 * the store's index upkeep, query p50/p99, ANN recall@10 against exact search (brute force,
 * bench/exact.ts, independent of LanceDB), the index build time, bytes on disk per 100k
 * documents, and search by document id through the HTTP API (bench/api.ts) at 100k.
 *
 * The quick run inserts 10k documents with index upkeep and loads 100k in bulk, then builds the
 * index (a few minutes on 2 cores); the full run inserts all 100k with upkeep (an hour or so).
 *
 * The data: 1000 unit centres, each document a centre plus Gaussian noise of the same total
 * norm (per-dimension sigma = 1/sqrt(768)), normalised: a document has cosine ~0.7 to its
 * centre and ~0.5 to its cluster-mates, ~0 to the rest. Queries are fresh draws, not documents;
 * the API's queries are documents (by id), their own hit excluded.
 */
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_ANN, DEFAULT_ANN_THRESHOLD, openLanceStore, type LanceStore, type LanceStoreOptions } from '../src/store/lance.ts';
import type { DocumentRecord, ModelRef, VectorStore } from '../src/store/store.ts';
import { l2normalize } from '../src/engine/pooling.ts';
import { xorshift32 } from '../src/random.ts';
import { measureApi, servedModelRef, type ApiFigures, type ApiPlan } from './api.ts';
import type { SetSize } from './corpus.ts';
import { openExactSearch } from './exact.ts';
import { forgedModelDir, readDims } from './model.ts';
import { percentile, round } from './stats.ts';

export interface SearchPlan {
  dims: number;
  centres: number;
  /** The two sizes measured (the 10k and 100k; tiny plumbing runs use less). */
  small: number;
  large: number;
  queries: number;
  batch: number;
  /**
   * Documents inserted through `upsert` with the store's index upkeep (the insert rate is
   * measured on these); the rest up to the largest size is loaded in bulk into a fresh
   * collection, without index upkeep, and indexed after (measureStore).
   */
  upkeep: number;
  /** Searches by document id through the HTTP API at the largest size (bench/api.ts). */
  api: { queries: number; warmup: number; parts: number };
  store?: LanceStoreOptions;
}

export const SEARCH_PLANS: Record<SetSize, SearchPlan> = {
  // Small enough for a plumbing test, and past a lowered threshold so the ANN path runs. 32
  // dimensions: the forged tiny model's, which the API measurement serves.
  tiny: { dims: 32, centres: 20, small: 500, large: 2000, queries: 10, batch: 500, upkeep: 500, api: { queries: 20, warmup: 5, parts: 20 }, store: { annThreshold: 1000 } },
  // Inserts with index upkeep on 10k; 100k loaded in bulk, then indexed (a few minutes in all).
  quick: { dims: 768, centres: 1000, small: 10_000, large: 100_000, queries: 50, batch: 1000, upkeep: 10_000, api: { queries: 500, warmup: 20, parts: 200 } },
  full: { dims: 768, centres: 1000, small: 10_000, large: 100_000, queries: 200, batch: 1000, upkeep: Infinity, api: { queries: 2000, warmup: 50, parts: 500 } },
};

export interface SizeFigures {
  docs: number;
  /** Which search the store ran at this size. */
  path: 'exact' | 'ann';
  /**
   * The index state measured: `kept up` by the store's own upkeep through the inserts, or
   * `built` from scratch over everything loaded (after a bulk load, or a rebuild).
   */
  index: 'kept up' | 'built';
  p50_ms: number;
  p99_ms: number;
  recall_at_10: number;
}

export interface SearchReport {
  /** At the large size (100k): the figure. */
  recall_at_10: number;
  p50_ms: { '10k': number; '100k': number };
  p99_ms: { '10k': number; '100k': number };
  /** Search by document id through the HTTP API at the large size, end to end (bench/api.ts). */
  api_p50_ms: number;
  api_p99_ms: number;
  api_recall_at_10: number;
  api: ApiFigures;
  bytes_per_100k: number;
  /** Inserts with index upkeep, over `insert_docs` documents. */
  insert_docs_per_s: number;
  insert_docs: number;
  /** The bulk load without index upkeep (when the run does one). */
  bulk_docs_per_s?: number;
  index_build_s: number;
  /** How the largest size was loaded (see LargestLoad). */
  largest_load: LargestLoad;
  sizes: SizeFigures[];
  settings: { ann_threshold: number; ann: LanceStoreOptions['ann'] };
  data: { dims: number; centres: number; queries: number; sigma: number };
}

/** Draws from a mixture of `centres` Gaussians on the unit sphere. */
export function clusteredVectors(dims: number, centres: number, seed = 1): { sigma: number; draw: () => Float32Array } {
  const rnd = xorshift32(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(rnd() || 1e-12)) * Math.cos(2 * Math.PI * rnd());
  const cs = Array.from({ length: centres }, () => l2normalize(Float32Array.from({ length: dims }, gauss)));
  const sigma = 1 / Math.sqrt(dims);
  const draw = () => {
    const c = cs[Math.floor(rnd() * centres)]!;
    const v = new Float32Array(dims);
    for (let i = 0; i < dims; i++) v[i] = c[i]! + sigma * gauss();
    return l2normalize(v);
  };
  return { sigma, draw };
}

function folderBytes(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    total += entry.isDirectory() ? folderBytes(path) : statSync(path).size;
  }
  return total;
}

/** A store under measurement, with what the benchmark needs beyond the VectorStore interface. */
export interface BenchBackend {
  store: VectorStore;
  /** Which search the store runs now on the collection. */
  path(collection: string): Promise<'exact' | 'ann'>;
  /** Resolves once index work the store does in the background for the collection is done. */
  settle(collection: string): Promise<void>;
  /**
   * Writes documents without index upkeep (a bulk load; VectorStore has no such call, see each
   * backend). The ANN index is built afterwards by buildIndex.
   */
  bulkUpsert(collection: string, docs: readonly DocumentRecord[], writer: ModelRef): Promise<void>;
  /** Ends a bulk load: what the store would do before serving it (compaction, statistics). */
  finishBulk(collection: string): Promise<void>;
  /** Builds the ANN index from scratch over what the collection holds. */
  buildIndex(collection: string): Promise<void>;
  /** Bytes on disk for the collection (compacted first where the backend compacts). */
  bytes(collection: string): Promise<number>;
  /** Releases what the backend opened for itself (the bulk loader). */
  close(): Promise<void>;
}

/**
 * The embedded store. Bulk loads go through a second LanceStore on the same folder whose ANN
 * threshold is never reached: the same upserts (one commit each, fragments compacted and the
 * full-text index folded in as usual) without ANN builds. finishBulk closes it and compacts
 * the table before the ANN index exists: compacting after the build remaps the index, which
 * took minutes at 100k here.
 */
export function lanceBackend(store: LanceStore, dir: string, options: LanceStoreOptions = {}): BenchBackend {
  let bulk: Promise<LanceStore> | undefined;
  // Collections compacted (old versions removed) at the end of a bulk load: see bytes.
  const compacted = new Set<string>();
  const endBulk = async () => {
    const open = bulk;
    bulk = undefined;
    if (open) await (await open).close();
  };
  return {
    store,
    path: async (c) => ((await store.indexState(c)).ann ? 'ann' : 'exact'),
    settle: (c) => store.indexBuilt(c),
    bulkUpsert: async (c, docs, writer) => {
      bulk ??= openLanceStore(dir, { ...options, annThreshold: Infinity });
      await (await bulk).upsert(c, docs, writer);
    },
    finishBulk: async (c) => {
      await endBulk();
      await store.compact(c, new Date());
      compacted.add(c);
    },
    buildIndex: async (c) => {
      await endBulk();
      await store.buildAnnIndex(c);
    },
    // Compacted first, so that old versions and a replaced index do not count. After a bulk
    // load finishBulk did that, and the index build since only added the index (none
    // replaced): compacting again rewrote that fresh index (51 s at 100k on 2 cores) and left
    // about one more index's bytes in the folder (5,097 bytes a vector against 4,117).
    bytes: async (c) => {
      if (!compacted.has(c)) await store.compact(c, new Date());
      return folderBytes(dir);
    },
    close: endBulk,
  };
}

/**
 * How the largest size was loaded before its queries were measured: `bulk then index` (the
 * quick run: loaded without index upkeep, then the ANN index built from scratch; the inserts
 * with upkeep were measured on `insert_docs` documents in a collection of their own), or
 * `upkeep then rebuild` (the full run: all of it inserted with upkeep, then the index rebuilt).
 */
export type LargestLoad = 'bulk then index' | 'upkeep then rebuild';

export interface StoreFigures {
  sizes: SizeFigures[];
  /** Inserts through `upsert` with the store's index upkeep (background index builds waited for). */
  insert_docs_per_s: number;
  insert_docs: number;
  /** The bulk load to the largest size, when there was one. */
  bulk_docs_per_s?: number;
  index_build_s: number;
  largest_load: LargestLoad;
  bytes: number;
  api?: ApiFigures;
}

export interface MeasureOptions {
  /** Sizes to measure queries at, ascending. */
  targets: readonly number[];
  batch: number;
  /** See SearchPlan.upkeep. */
  upkeep: number;
  /** The model the collections record (the one the API server serves). */
  writer: ModelRef;
  /** Measure searches through the HTTP API at the largest size. */
  api?: ApiPlan;
  log: (line: string) => void;
  label: string;
}

/**
 * Inserts `vectors` with index upkeep in batches up to `upkeep` documents (or the largest
 * target), measuring queries at each target on the way and at the last size inserted. The full
 * run goes on so to the largest target; then the ANN index is rebuilt from scratch and the
 * largest size measured again (that replaces its figures). Otherwise (the quick run) that
 * collection is dropped, and the largest size is loaded in bulk into a fresh one, indexed from
 * scratch, and measured; targets between the two are not. The API is measured last.
 */
export async function measureStore(backend: BenchBackend, vectors: readonly Float32Array[], queries: readonly Float32Array[], options: MeasureOptions): Promise<StoreFigures> {
  const { store } = backend;
  const { targets, batch, writer, log, label } = options;
  const dims = vectors[0]!.length;
  const largest = targets.at(-1)!;
  const upkept = Math.min(options.upkeep, largest);
  const doc = (i: number): DocumentRecord => ({ id: `img-${i}`, modality: 'image', image: `/bench/${i}.jpg`, metadata: { n: i }, hash: `h${i}`, vector: vectors[i]! });
  const docs = (from: number, to: number) => Array.from({ length: to - from }, (_, k) => doc(from + k));

  const exact = await openExactSearch(dims);
  const truths = new Map<number, Set<number>[]>();
  const measure = async (collection: string, count: number, index: SizeFigures['index']): Promise<SizeFigures> => {
    if (!truths.has(count)) {
      const started = performance.now();
      truths.set(count, (await exact.topK(queries, vectors, count, 10)).map((ids) => new Set(ids)));
      log(`${label}: exact top 10 of ${queries.length} queries over ${count} documents (brute force, for recall) in ${round((performance.now() - started) / 1000, 1)} s`);
    }
    const latencies: number[] = [];
    let found = 0;
    for (const [qi, query] of queries.entries()) {
      const started = performance.now();
      const hits = await store.search(collection, { vector: query, k: 10 });
      latencies.push(performance.now() - started);
      const truth = truths.get(count)![qi]!;
      for (const hit of hits) if (truth.has(Number(hit.id.slice(4)))) found++;
    }
    latencies.sort((a, b) => a - b);
    const path = await backend.path(collection);
    const figures = { docs: count, path, index, p50_ms: round(percentile(latencies, 50), 2), p99_ms: round(percentile(latencies, 99), 2), recall_at_10: round(found / (10 * queries.length)) } as const;
    log(`${label}: ${count} documents, ${path} (index ${index}): p50 ${figures.p50_ms} ms, p99 ${figures.p99_ms} ms, recall@10 ${figures.recall_at_10}`);
    return figures;
  };

  try {
    // Inserts with index upkeep.
    let collection = upkept === largest ? 'bench' : 'bench-upkeep';
    await store.createCollection({ name: collection, ...writer, dimensions: dims });
    const sizes: SizeFigures[] = [];
    let inserted = 0;
    let insertMs = 0;
    for (const target of [...new Set([...targets.filter((t) => t < upkept), upkept])]) {
      const started = performance.now();
      for (; inserted < target; inserted = Math.min(target, inserted + batch)) await store.upsert(collection, docs(inserted, Math.min(target, inserted + batch)), writer);
      // Index builds the store runs in the background are upkeep too.
      await backend.settle(collection);
      insertMs += performance.now() - started;
      log(`${label}: ${inserted} documents inserted in ${round(insertMs / 1000, 1)} s (index upkeep included)`);
      sizes.push(await measure(collection, inserted, 'kept up'));
    }

    let bulkMs: number | undefined;
    if (upkept < largest) {
      const skipped = targets.filter((t) => t > upkept && t < largest);
      if (skipped.length > 0) log(`${label}: not measured: ${skipped.join(', ')} documents (between the inserts with upkeep and the bulk load)`);
      await store.dropCollection(collection);
      collection = 'bench';
      await store.createCollection({ name: collection, ...writer, dimensions: dims });
      const started = performance.now();
      for (let from = 0; from < largest; from += batch) await backend.bulkUpsert(collection, docs(from, Math.min(largest, from + batch)), writer);
      const loaded = performance.now();
      await backend.finishBulk(collection);
      bulkMs = performance.now() - started;
      log(`${label}: ${largest} documents loaded in bulk (no index upkeep) in ${round(bulkMs / 1000, 1)} s, of which ${round((performance.now() - loaded) / 1000, 1)} s finishing (compaction, statistics)`);
    }

    // The ANN index built from scratch at the largest size: what a bulk load's index costs.
    const started = performance.now();
    await backend.buildIndex(collection);
    const buildS = round((performance.now() - started) / 1000, 1);
    log(`${label}: ANN index over ${largest} documents built in ${buildS} s`);
    const last = await measure(collection, largest, 'built');
    if (upkept === largest) sizes[sizes.length - 1] = last;
    else sizes.push(last);

    const api = options.api && (await measureApi(store, collection, largest, vectors, options.api, async (examples) => (await exact.topK(examples.map((i) => vectors[i]!), vectors, largest, 10, examples)).map((ids) => new Set(ids)), log, label));
    return {
      sizes,
      insert_docs_per_s: Math.round(upkept / (insertMs / 1000)),
      insert_docs: upkept,
      bulk_docs_per_s: bulkMs === undefined ? undefined : Math.round(largest / (bulkMs / 1000)),
      index_build_s: buildS,
      largest_load: upkept < largest ? 'bulk then index' : 'upkeep then rebuild',
      bytes: await timedLog(log, `${label}: bytes on disk`, () => backend.bytes(collection)),
      api,
    };
  } finally {
    await exact.close();
    await backend.close();
  }
}

async function timedLog<T>(log: (line: string) => void, what: string, run: () => Promise<T>): Promise<T> {
  const started = performance.now();
  const result = await run();
  log(`${what} in ${round((performance.now() - started) / 1000, 1)} s`);
  return result;
}

export async function searchScenario(size: SetSize, log: (line: string) => void = () => {}): Promise<SearchReport> {
  const plan = SEARCH_PLANS[size];
  const { dims, centres, small, large, batch } = plan;
  const modelDir = await servedModel(size, dims, log);
  const mixture = clusteredVectors(dims, centres);
  const vectors = Array.from({ length: large }, mixture.draw);
  const queries = Array.from({ length: plan.queries }, mixture.draw);
  const dir = mkdtempSync(join(tmpdir(), 'tessera-bench-search-'));
  const options: LanceStoreOptions = { ...plan.store };
  const store = await openLanceStore(dir, options);
  try {
    const figures = await measureStore(lanceBackend(store, dir, options), vectors, queries, {
      targets: [small, large],
      batch,
      upkeep: plan.upkeep,
      writer: servedModelRef(modelDir),
      api: { modelDir, ...plan.api, recallQueries: plan.queries },
      log,
      label: 'search',
    });
    const at = (docs: number) => figures.sizes.find((s) => s.docs === docs)!;
    const [at10k, at100k] = [at(small), at(large)];
    const api = figures.api!;
    return {
      recall_at_10: at100k.recall_at_10,
      p50_ms: { '10k': at10k.p50_ms, '100k': at100k.p50_ms },
      p99_ms: { '10k': at10k.p99_ms, '100k': at100k.p99_ms },
      api_p50_ms: api.p50_ms,
      api_p99_ms: api.p99_ms,
      api_recall_at_10: api.recall_at_10,
      api,
      bytes_per_100k: Math.round((figures.bytes * 100_000) / large),
      insert_docs_per_s: figures.insert_docs_per_s,
      insert_docs: figures.insert_docs,
      bulk_docs_per_s: figures.bulk_docs_per_s,
      index_build_s: figures.index_build_s,
      largest_load: figures.largest_load,
      sizes: figures.sizes,
      settings: { ann_threshold: options.annThreshold ?? DEFAULT_ANN_THRESHOLD, ann: options.ann ?? DEFAULT_ANN },
      data: { dims, centres, queries: queries.length, sigma: round(mixture.sigma, 5) },
    };
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The model the API measurement serves (collections record it): the forged `full` model
 * (jina-clip-v1's 768 dimensions), or `tiny` (32) for plumbing runs, whatever --model says:
 * a search by id runs no model, and the vectors need the served model's dimensions.
 */
export async function servedModel(size: SetSize, dims: number, log: (line: string) => void): Promise<string> {
  const dir = await forgedModelDir(size === 'tiny' ? 'tiny' : 'full', 0, log);
  const served = (await readDims(dir)).vision.projectionDim;
  if (served !== dims) throw new Error(`bench: the served model ${dir} has ${served} dimensions, the ${size} search plan ${dims}`);
  return dir;
}
