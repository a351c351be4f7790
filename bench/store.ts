/**
 * `tessera bench --only store`: the embedded store (LanceDB) against PostgreSQL + pgvector on
 * the same 768-d clustered vectors (bench/search.ts's mixture of Gaussians): inserts/s through
 * `upsert` with each store's index upkeep, the time to build the ANN index from scratch, query
 * p50/p99 at k = 10, recall@10 against brute force, bytes per vector on disk, and (PostgreSQL;
 * the embedded store's are the search scenario's) search by document id through the HTTP API.
 * A quick run inserts 10k vectors with index upkeep and loads 100k in bulk before building the
 * index; a full one inserts 100k and 1M with upkeep.
 *
 * PostgreSQL: TESSERA_BENCH_POSTGRES=postgres://... names an (empty) database to use; without
 * it the benchmark starts a throwaway server of its own (PostgreSQL 15 with pgvector, as the
 * tests do) and removes it afterwards.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { openLanceStore } from '../src/store/lance.ts';
import { DEFAULT_HNSW, openPostgresStore, type PostgresStore } from '../src/store/postgres.ts';
import { startPostgres } from '../test/helpers/postgres.ts';
import { servedModelRef, type ApiFigures } from './api.ts';
import type { SetSize } from './corpus.ts';
import { clusteredVectors, lanceBackend, measureStore, SEARCH_PLANS, servedModel, type BenchBackend, type LargestLoad, type SearchReport, type StoreFigures } from './search.ts';

const SIZES: Record<SetSize, readonly number[]> = {
  tiny: [2000],
  quick: [100_000],
  full: [100_000, 1_000_000],
};

export interface BackendReport extends Omit<StoreFigures, 'bytes' | 'api'> {
  bytes_per_vector: number;
  /** Set when another scenario's figures are reused (embeddedFromSearch). */
  measured_by?: string;
}

export interface PostgresReport extends BackendReport {
  /** Search by document id through the HTTP API at the largest size, end to end (bench/api.ts). */
  api_p50_ms: number;
  api_p99_ms: number;
  api_recall_at_10: number;
  api: ApiFigures;
  hnsw: typeof DEFAULT_HNSW;
  server: string;
}

export interface StoreReport {
  embedded: BackendReport;
  postgres: PostgresReport;
  /**
   * `inserted_with_upkeep`: the documents the insert rate was measured on; `largest_load`: how
   * the largest size was loaded (bench/search.ts LargestLoad), the same for both stores.
   */
  data: { dims: number; centres: number; queries: number; docs: readonly number[]; inserted_with_upkeep: number; largest_load: LargestLoad };
}

/**
 * PostgreSQL + pgvector. The store has no bulk-load call (every upsert keeps the HNSW graph up
 * to date, row by row): the benchmark drops the collection's HNSW index itself before the
 * first bulk write (found in pg_indexes, its definition kept) and buildIndex creates it again
 * from that definition, with 1 GB of maintenance_work_mem as the store's own rebuild
 * (buildAnnIndex, a REINDEX) gives it; without a bulk load, buildIndex is that REINDEX.
 * finishBulk runs VACUUM ANALYZE, as autovacuum would soon after a load.
 */
function postgresBackend(store: PostgresStore, url: string): BenchBackend {
  const dropped = new Map<string, string>();
  const sql = async <T extends pg.QueryResultRow>(text: string, params: unknown[] = []): Promise<T[]> => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      return (await client.query<T>(text, params)).rows;
    } finally {
      await client.end();
    }
  };
  return {
    store,
    path: async (c) => ((await store.usesIndex(c)) ? 'ann' : 'exact'),
    settle: async () => {},
    bulkUpsert: async (c, docs, writer) => {
      if (!dropped.has(c)) {
        const [row] = await sql<{ table_name: string }>('SELECT table_name FROM tessera_collections WHERE name = $1', [c]);
        if (!row) throw new Error(`bench: no collection ${c} in tessera_collections`);
        const indexes = await sql<{ indexname: string; indexdef: string }>(`SELECT indexname, indexdef FROM pg_indexes WHERE tablename = $1 AND indexdef ILIKE '% USING hnsw %'`, [row.table_name]);
        if (indexes.length !== 1) throw new Error(`bench: expected one HNSW index on ${row.table_name}, found ${indexes.length}`);
        await sql(`DROP INDEX "${indexes[0]!.indexname}"`);
        dropped.set(c, indexes[0]!.indexdef);
      }
      await store.upsert(c, docs, writer);
    },
    // What autovacuum would do after a bulk load (the visibility map, the planner's statistics).
    finishBulk: async (c) => {
      const [row] = await sql<{ table_name: string }>('SELECT table_name FROM tessera_collections WHERE name = $1', [c]);
      await sql(`VACUUM ANALYZE "${row!.table_name}"`);
    },
    buildIndex: async (c) => {
      const definition = dropped.get(c);
      if (definition === undefined) return store.buildAnnIndex(c);
      await sql(`SET maintenance_work_mem = '1GB'; ${definition}`);
      dropped.delete(c);
    },
    bytes: (c) => store.sizeBytes(c),
    close: async () => {},
  };
}

/**
 * The embedded side as the search scenario measured it, when that measured the same thing (the
 * same data, store settings, inserts with upkeep and largest size: the quick and tiny runs), so
 * that a run of both does not load and index the same 100k twice; undefined otherwise.
 */
export function embeddedFromSearch(size: SetSize, search: SearchReport): BackendReport | undefined {
  const plan = SEARCH_PLANS[size];
  const targets = SIZES[size];
  if (targets.length !== 1 || targets[0] !== plan.large) return undefined;
  return {
    sizes: search.sizes,
    insert_docs_per_s: search.insert_docs_per_s,
    insert_docs: search.insert_docs,
    bulk_docs_per_s: search.bulk_docs_per_s,
    index_build_s: search.index_build_s,
    largest_load: search.largest_load,
    bytes_per_vector: Math.round(search.bytes_per_100k / 100_000),
    measured_by: 'the search scenario (same data, store settings and loads)',
  };
}

export async function storeScenario(size: SetSize, log: (line: string) => void = () => {}, embeddedFigures?: BackendReport): Promise<StoreReport> {
  const plan = SEARCH_PLANS[size];
  const targets = SIZES[size];
  const largest = targets.at(-1)!;
  const modelDir = await servedModel(size, plan.dims, log);
  const writer = servedModelRef(modelDir);
  const mixture = clusteredVectors(plan.dims, plan.centres);
  const vectors = Array.from({ length: largest }, mixture.draw);
  const queries = Array.from({ length: plan.queries }, mixture.draw);
  const perVector = (figures: StoreFigures): BackendReport => {
    const { bytes, api: _api, ...rest } = figures;
    return { ...rest, bytes_per_vector: Math.round(bytes / largest) };
  };
  const common = { targets, batch: plan.batch, upkeep: plan.upkeep, writer };

  let embedded = embeddedFigures;
  if (embedded) log(`store embedded: ${embedded.measured_by}`);
  else {
    const dir = mkdtempSync(join(tmpdir(), 'tessera-bench-store-'));
    const lance = await openLanceStore(dir, plan.store);
    try {
      // Its API figures are the search scenario's (the same store, data and settings).
      embedded = perVector(await measureStore(lanceBackend(lance, dir, plan.store), vectors, queries, { ...common, log, label: 'store embedded' }));
    } finally {
      await lance.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }

  const given = process.env.TESSERA_BENCH_POSTGRES;
  const server = given ? undefined : await startPostgres();
  try {
    const url = given ?? (await server!.createDatabase());
    // Index builds over a million rows take many minutes: no statement deadline here.
    const store = await openPostgresStore(url, { annThreshold: plan.store?.annThreshold, queryTimeoutMs: 6 * 3600_000 });
    try {
      const figures = await measureStore(postgresBackend(store, url), vectors, queries, {
        ...common,
        api: { modelDir, ...plan.api, recallQueries: plan.queries },
        log,
        label: 'store postgres',
      });
      const api = figures.api!;
      return {
        embedded,
        postgres: {
          ...perVector(figures),
          api_p50_ms: api.p50_ms,
          api_p99_ms: api.p99_ms,
          api_recall_at_10: api.recall_at_10,
          api,
          hnsw: DEFAULT_HNSW,
          server: given ? 'TESSERA_BENCH_POSTGRES' : 'throwaway PostgreSQL 15 + pgvector 0.8.6, default settings',
        },
        data: { dims: plan.dims, centres: plan.centres, queries: queries.length, docs: targets, inserted_with_upkeep: Math.min(plan.upkeep, largest), largest_load: figures.largest_load },
      };
    } finally {
      await store.close();
    }
  } finally {
    await server?.close();
  }
}
