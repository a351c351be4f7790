/**
 * Search latency through the HTTP API, end to end: a real tessera server started in this
 * process (createServer over the store that holds the collection, serving the model the
 * collection records), one client sending POST /v1/collections/{name}/search with
 * `{"query": [{"id": ...}], "k": 10}` back to back. A query by document id runs no model: what
 * is timed is the HTTP layer, the collection lookup, the stored vector's fetch by id and the
 * store's vector search (excluding the example document itself).
 *
 * Beside the end-to-end figures, the parts, each timed alone on the same ids: an HTTP round
 * trip that reaches no store (GET /live), the collection lookup (requireCollection, as the
 * route does it twice: once to find the served model, once in the search core), the fetch of the
 * document's vector by id, the vector search with the example excluded and without, and the
 * server's own x-search-time (the search core: lookup, fetch, search).
 */
import { parseServerConfig } from '../src/api/config.ts';
import { loadModels, type ModelSpec } from '../src/api/models.ts';
import { createServer } from '../src/api/server.ts';
import { modelRefOf } from '../src/search/collection.ts';
import type { ModelRef, VectorStore } from '../src/store/store.ts';
import { percentile, round } from './stats.ts';

export interface Spread {
  p50_ms: number;
  p99_ms: number;
}

export interface ApiFigures {
  docs: number;
  /** Requests timed (after a warm-up); recall is measured on the first `recall_queries` of them. */
  queries: number;
  p50_ms: number;
  p99_ms: number;
  recall_queries: number;
  /** The API's 10 hits against exact search over the collection without the example document. */
  recall_at_10: number;
  /** Where the time goes, each part timed alone on the same ids (see the file's comment). */
  profile: {
    http_round_trip: Spread;
    collection_lookup: Spread;
    fetch_by_id: Spread;
    search_excluding_example: Spread;
    search_plain: Spread;
    server_search_core: Spread;
  };
  model: string;
}

/** How collections served by `startApiServer(dir)` must record their model. */
export function servedModelRef(dir: string): ModelRef {
  return modelRefOf(dir, 'fp32');
}

export interface ApiServer {
  url: string;
  close(): Promise<void>;
}

/** A tessera server on a loopback port in this process, over `store`, serving the model in `dir` (fp32). */
export async function startApiServer(store: VectorStore, dir: string): Promise<ApiServer> {
  const ref = servedModelRef(dir);
  const spec: ModelSpec = { name: 'bench', aliases: [dir, ref.model], ref, source: dir };
  const config = parseServerConfig(['--host', '127.0.0.1', '--port', '0'], {});
  const [loaded] = await loadModels([spec], {
    allowPaths: false,
    maxWaitMs: config['batch-wait-ms'],
    maxPendingItems: config['max-pending-items'],
    maxTextBatch: config['max-text-batch'],
    maxImageBatch: config['max-image-batch'],
  });
  const server = createServer({ config, models: [spec], apiKeys: null, store });
  try {
    await server.attach(loaded!.embedder, { model: spec.name, residentBytes: loaded!.residentBytes });
    const url = await server.app.listen({ host: '127.0.0.1', port: 0 });
    return {
      url,
      async close() {
        await server.app.close();
        await loaded!.embedder.close();
      },
    };
  } catch (err) {
    await server.app.close().catch(() => {});
    await loaded!.embedder.close();
    throw err;
  }
}

const spread = (samples: number[]): Spread => {
  const sorted = [...samples].sort((a, b) => a - b);
  return { p50_ms: round(percentile(sorted, 50), 2), p99_ms: round(percentile(sorted, 99), 2) };
};

async function timed<T>(samples: number[], work: () => Promise<T>): Promise<T> {
  const started = performance.now();
  const out = await work();
  samples.push(performance.now() - started);
  return out;
}

export interface ApiPlan {
  /** The served model's folder (its dimensions are the collection's). */
  modelDir: string;
  /** Requests timed. */
  queries: number;
  /** Of which the first this many are checked against exact search. */
  recallQueries: number;
  /** Untimed requests first. */
  warmup: number;
  /** Examples whose parts are timed one by one (the profile). */
  parts: number;
}

/**
 * Measures `collection` (documents `img-0` ... `img-<docs-1>`, vectors `vectors`) through the
 * API: the example documents are spread evenly over the collection; `exact(examples)` gives the
 * exact top 10 of each example's vector over the collection without that example.
 */
export async function measureApi(
  store: VectorStore,
  collection: string,
  docs: number,
  vectors: readonly Float32Array[],
  plan: ApiPlan,
  exact: (examples: number[]) => Promise<Set<number>[]>,
  log: (line: string) => void,
  label: string,
): Promise<ApiFigures> {
  const examples = Array.from({ length: plan.queries }, (_, q) => Math.floor(((q + 0.5) * docs) / plan.queries));
  const recallQueries = Math.min(plan.recallQueries, examples.length);
  const truths = await exact(examples.slice(0, recallQueries));
  log(`${label}: API search by document id, ${docs} documents: server with ${plan.modelDir} ...`);
  const server = await startApiServer(store, plan.modelDir);
  try {
    const search = async (i: number): Promise<{ ids: string[]; serverMs: number }> => {
      const response = await fetch(`${server.url}/v1/collections/${collection}/search`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query: [{ id: `img-${i}` }], k: 10 }),
      });
      const body = (await response.json()) as { data?: { id: string }[]; error?: unknown };
      if (!response.ok || !body.data) throw new Error(`search by id img-${i}: HTTP ${response.status} ${JSON.stringify(body).slice(0, 500)}`);
      return { ids: body.data.map((h) => h.id), serverMs: Number(response.headers.get('x-search-time')) };
    };
    for (let w = 0; w < plan.warmup; w++) await search(examples[w % examples.length]!);

    const latencies: number[] = [];
    const core: number[] = [];
    let found = 0;
    for (const [q, i] of examples.entries()) {
      const { ids, serverMs } = await timed(latencies, () => search(i));
      core.push(serverMs);
      if (q < recallQueries) {
        const truth = truths[q]!;
        for (const id of ids) if (truth.has(Number(id.slice(4)))) found++;
      }
    }

    // The parts, one after another for each example (same ids, same order).
    const parts = { http: [] as number[], lookup: [] as number[], fetch: [] as number[], excluding: [] as number[], plain: [] as number[] };
    for (const i of examples.slice(0, plan.parts)) {
      await timed(parts.http, async () => (await fetch(`${server.url}/live`)).arrayBuffer());
      await timed(parts.lookup, () => store.requireCollection(collection));
      await timed(parts.fetch, () => store.get(collection, [`img-${i}`], { vectors: true }));
      await timed(parts.excluding, () => store.search(collection, { vector: vectors[i]!, k: 10, excludeIds: [`img-${i}`] }));
      await timed(parts.plain, () => store.search(collection, { vector: vectors[i]!, k: 10 }));
    }
    const figures: ApiFigures = {
      docs,
      queries: examples.length,
      ...spread(latencies),
      recall_queries: recallQueries,
      recall_at_10: round(found / (10 * recallQueries)),
      profile: {
        http_round_trip: spread(parts.http),
        collection_lookup: spread(parts.lookup),
        fetch_by_id: spread(parts.fetch),
        search_excluding_example: spread(parts.excluding),
        search_plain: spread(parts.plain),
        server_search_core: spread(core),
      },
      model: plan.modelDir,
    };
    const p = figures.profile;
    log(
      `${label}: API p50 ${figures.p50_ms} ms, p99 ${figures.p99_ms} ms, recall@10 ${figures.recall_at_10}; p50 / p99 ms of the parts: ` +
        `HTTP ${p.http_round_trip.p50_ms} / ${p.http_round_trip.p99_ms}, collection lookup ${p.collection_lookup.p50_ms} / ${p.collection_lookup.p99_ms} (x2 a request), ` +
        `fetch by id ${p.fetch_by_id.p50_ms} / ${p.fetch_by_id.p99_ms}, search excluding the example ${p.search_excluding_example.p50_ms} / ${p.search_excluding_example.p99_ms}, ` +
        `plain search ${p.search_plain.p50_ms} / ${p.search_plain.p99_ms}; server's search core ${p.server_search_core.p50_ms} / ${p.server_search_core.p99_ms}`,
    );
    return figures;
  } finally {
    await server.close();
  }
}
