/**
 * `tessera bench --only store`: the embedded store (LanceDB) against PostgreSQL + pgvector on
 * the same 768-d clustered vectors (bench/search.ts's mixture of Gaussians): inserts/s through
 * `upsert` with each store's index upkeep, the time to build the ANN index from scratch, query
 * p50/p99 at k = 10, recall@10 against brute force, and bytes per vector on disk. 100k vectors
 * on a quick run, 100k and 1M on a full one.
 *
 * PostgreSQL: TESSERA_BENCH_POSTGRES=postgres://... names an (empty) database to use; without
 * it the benchmark starts a throwaway server of its own (PostgreSQL 15 with pgvector, as the
 * tests do) and removes it afterwards.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openLanceStore } from '../src/store/lance.ts';
import { DEFAULT_HNSW, openPostgresStore } from '../src/store/postgres.ts';
import { startPostgres } from '../test/helpers/postgres.ts';
import type { SetSize } from './corpus.ts';
import { clusteredVectors, lanceBackend, measureStore, SEARCH_PLANS, type StoreFigures } from './search.ts';

const SIZES: Record<SetSize, readonly number[]> = {
  tiny: [2000],
  quick: [100_000],
  full: [100_000, 1_000_000],
};

export interface BackendReport extends Omit<StoreFigures, 'bytes'> {
  bytes_per_vector: number;
}

export interface StoreReport {
  embedded: BackendReport;
  postgres: BackendReport & { hnsw: typeof DEFAULT_HNSW; server: string };
  data: { dims: number; centres: number; queries: number; docs: readonly number[] };
}

export async function storeScenario(size: SetSize, log: (line: string) => void = () => {}): Promise<StoreReport> {
  const plan = SEARCH_PLANS[size];
  const targets = SIZES[size];
  const largest = targets.at(-1)!;
  const mixture = clusteredVectors(plan.dims, plan.centres);
  const vectors = Array.from({ length: largest }, mixture.draw);
  const queries = Array.from({ length: plan.queries }, mixture.draw);
  const perVector = (figures: StoreFigures): BackendReport => {
    const { bytes, ...rest } = figures;
    return { ...rest, bytes_per_vector: Math.round(bytes / largest) };
  };

  const dir = mkdtempSync(join(tmpdir(), 'tessera-bench-store-'));
  const lance = await openLanceStore(dir, plan.store);
  let embedded: BackendReport;
  try {
    embedded = perVector(await measureStore(lanceBackend(lance, dir), vectors, queries, targets, plan.batch, log, 'store embedded'));
  } finally {
    await lance.close();
    rmSync(dir, { recursive: true, force: true });
  }

  const given = process.env.TESSERA_BENCH_POSTGRES;
  const server = given ? undefined : await startPostgres();
  try {
    const url = given ?? (await server!.createDatabase());
    // Index builds over a million rows take many minutes: no statement deadline here.
    const pg = await openPostgresStore(url, { annThreshold: plan.store?.annThreshold, queryTimeoutMs: 6 * 3600_000 });
    try {
      const figures = await measureStore(
        { store: pg, path: async (c) => ((await pg.usesIndex(c)) ? 'ann' : 'exact'), buildIndex: (c) => pg.buildAnnIndex(c), bytes: (c) => pg.sizeBytes(c) },
        vectors, queries, targets, plan.batch, log, 'store postgres',
      );
      return {
        embedded,
        postgres: { ...perVector(figures), hnsw: DEFAULT_HNSW, server: given ? 'TESSERA_BENCH_POSTGRES' : 'throwaway PostgreSQL 15 + pgvector 0.8.6, default settings' },
        data: { dims: plan.dims, centres: plan.centres, queries: queries.length, docs: targets },
      };
    } finally {
      await pg.close();
    }
  } finally {
    await server?.close();
  }
}
