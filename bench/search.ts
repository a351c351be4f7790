/**
 * `tessera bench --only search`: the embedded store at 10k and 100k documents of 768-d
 * CLUSTERED vectors (a mixture of Gaussians; on uniform random 768-d vectors every ANN index
 * looks broken, since no point has meaningful neighbours): insert rate through `upsert`, query
 * p50/p99, ANN recall@10 against exact search (brute force here, in JavaScript, independent of
 * LanceDB), the index build time and bytes on disk per 100k documents.
 *
 * The data: 1000 unit centres, each document a centre plus Gaussian noise of the same total
 * norm (per-dimension sigma = 1/sqrt(768)), normalised: a document has cosine ~0.7 to its
 * centre and ~0.5 to its cluster-mates, ~0 to the rest. Queries are fresh draws, not documents.
 */
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_ANN, DEFAULT_ANN_THRESHOLD, openLanceStore, type LanceStore, type LanceStoreOptions } from '../src/store/lance.ts';
import type { DocumentRecord, VectorStore } from '../src/store/store.ts';
import { l2normalize } from '../src/engine/pooling.ts';
import { xorshift32 } from '../src/random.ts';
import type { SetSize } from './corpus.ts';
import { percentile, round } from './stats.ts';

export interface SearchPlan {
  dims: number;
  centres: number;
  /** The two sizes measured (the 10k and 100k; tiny plumbing runs use less). */
  small: number;
  large: number;
  queries: number;
  batch: number;
  store?: LanceStoreOptions;
}

export const SEARCH_PLANS: Record<SetSize, SearchPlan> = {
  // Small enough for a plumbing test, and past a lowered threshold so the ANN path runs.
  tiny: { dims: 64, centres: 20, small: 500, large: 2000, queries: 10, batch: 500, store: { annThreshold: 1000 } },
  quick: { dims: 768, centres: 1000, small: 10_000, large: 100_000, queries: 50, batch: 1000 },
  full: { dims: 768, centres: 1000, small: 10_000, large: 100_000, queries: 200, batch: 1000 },
};

export interface SizeFigures {
  docs: number;
  /** Which search the store ran at this size. */
  path: 'exact' | 'ann';
  p50_ms: number;
  p99_ms: number;
  recall_at_10: number;
}

export interface SearchReport {
  /** At the large size (100k): the figure. */
  recall_at_10: number;
  p50_ms: { '10k': number; '100k': number };
  p99_ms: { '10k': number; '100k': number };
  bytes_per_100k: number;
  insert_docs_per_s: number;
  index_build_s: number;
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

/** Exact top-k ids by cosine (the vectors are unit length: dot product), brute force. */
function exactTopK(query: Float32Array, vectors: readonly Float32Array[], count: number, k: number): Set<number> {
  const best: { score: number; i: number }[] = [];
  let floor = -Infinity;
  for (let i = 0; i < count; i++) {
    const v = vectors[i]!;
    let dot = 0;
    for (let j = 0; j < v.length; j++) dot += query[j]! * v[j]!;
    if (best.length < k || dot > floor) {
      best.push({ score: dot, i });
      best.sort((a, b) => b.score - a.score);
      if (best.length > k) best.pop();
      floor = best[best.length - 1]!.score;
    }
  }
  return new Set(best.map((b) => b.i));
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
  /** Builds the ANN index from scratch over what the collection holds. */
  buildIndex(collection: string): Promise<void>;
  /** Bytes on disk for the collection (compacted first where the backend compacts). */
  bytes(collection: string): Promise<number>;
}

export function lanceBackend(store: LanceStore, dir: string): BenchBackend {
  return {
    store,
    path: async (c) => ((await store.indexState(c)).ann ? 'ann' : 'exact'),
    buildIndex: (c) => store.buildAnnIndex(c),
    bytes: async (c) => (await store.compact(c, new Date()), folderBytes(dir)),
  };
}

export interface StoreFigures {
  sizes: SizeFigures[];
  insert_docs_per_s: number;
  index_build_s: number;
  bytes: number;
}

/**
 * Inserts `vectors` in batches up to each of `targets`, measuring queries at each size; then
 * builds the ANN index from scratch and measures the last size again (that replaces its figures).
 */
export async function measureStore(backend: BenchBackend, vectors: readonly Float32Array[], queries: readonly Float32Array[], targets: readonly number[], batch: number, log: (line: string) => void, label: string): Promise<StoreFigures> {
  const { store } = backend;
  const dims = vectors[0]!.length;
  const writer = { model: 'bench', dtype: 'fp32' };
  const collection = 'bench';
  await store.createCollection({ name: collection, ...writer, dimensions: dims });
  const doc = (i: number): DocumentRecord => ({ id: `img-${i}`, modality: 'image', image: `/bench/${i}.jpg`, metadata: { n: i }, hash: `h${i}`, vector: vectors[i]! });

  const sizes: SizeFigures[] = [];
  let inserted = 0;
  let insertMs = 0;
  const truths = new Map<number, Set<number>[]>();
  const measure = async (docs: number): Promise<SizeFigures> => {
    if (!truths.has(docs)) truths.set(docs, queries.map((q) => exactTopK(q, vectors, docs, 10)));
    const latencies: number[] = [];
    let found = 0;
    for (const [qi, query] of queries.entries()) {
      const started = performance.now();
      const hits = await store.search(collection, { vector: query, k: 10 });
      latencies.push(performance.now() - started);
      const truth = truths.get(docs)![qi]!;
      for (const hit of hits) if (truth.has(Number(hit.id.slice(4)))) found++;
    }
    latencies.sort((a, b) => a - b);
    const path = await backend.path(collection);
    const figures = { docs, path, p50_ms: round(percentile(latencies, 50), 2), p99_ms: round(percentile(latencies, 99), 2), recall_at_10: round(found / (10 * queries.length)) } as const;
    log(`${label}: ${docs} documents, ${path}: p50 ${figures.p50_ms} ms, p99 ${figures.p99_ms} ms, recall@10 ${figures.recall_at_10}`);
    return figures;
  };
  for (const target of targets) {
    while (inserted < target) {
      const n = Math.min(batch, target - inserted);
      const docs = Array.from({ length: n }, (_, i) => doc(inserted + i));
      const started = performance.now();
      await store.upsert(collection, docs, writer);
      insertMs += performance.now() - started;
      inserted += n;
    }
    log(`${label}: ${inserted} documents inserted in ${round(insertMs / 1000, 1)} s (index upkeep included)`);
    sizes.push(await measure(inserted));
  }
  // An explicit (re)build at the largest size: what a bulk load's index costs.
  const started = performance.now();
  await backend.buildIndex(collection);
  const buildS = round((performance.now() - started) / 1000, 1);
  log(`${label}: ANN index over ${inserted} documents built in ${buildS} s`);
  sizes[sizes.length - 1] = await measure(inserted);
  return { sizes, insert_docs_per_s: Math.round(inserted / (insertMs / 1000)), index_build_s: buildS, bytes: await backend.bytes(collection) };
}

export async function searchScenario(size: SetSize, log: (line: string) => void = () => {}): Promise<SearchReport> {
  const plan = SEARCH_PLANS[size];
  const { dims, centres, small, large, batch } = plan;
  const mixture = clusteredVectors(dims, centres);
  const vectors = Array.from({ length: large }, mixture.draw);
  const queries = Array.from({ length: plan.queries }, mixture.draw);
  const dir = mkdtempSync(join(tmpdir(), 'tessera-bench-search-'));
  const options: LanceStoreOptions = { ...plan.store };
  const store = await openLanceStore(dir, options);
  try {
    const figures = await measureStore(lanceBackend(store, dir), vectors, queries, [small, large], batch, log, 'search');
    const [at10k, at100k] = [figures.sizes[0]!, figures.sizes[1]!];
    return {
      recall_at_10: at100k.recall_at_10,
      p50_ms: { '10k': at10k.p50_ms, '100k': at100k.p50_ms },
      p99_ms: { '10k': at10k.p99_ms, '100k': at100k.p99_ms },
      bytes_per_100k: Math.round((figures.bytes * 100_000) / large),
      insert_docs_per_s: figures.insert_docs_per_s,
      index_build_s: figures.index_build_s,
      sizes: figures.sizes,
      settings: { ann_threshold: options.annThreshold ?? DEFAULT_ANN_THRESHOLD, ann: options.ann ?? DEFAULT_ANN },
      data: { dims, centres, queries: queries.length, sigma: round(mixture.sigma, 5) },
    };
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
