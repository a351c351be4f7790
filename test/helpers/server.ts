import { after } from 'node:test';
import { parseServerConfig } from '../../src/api/config.ts';
import { createServer, type TesseraServer } from '../../src/api/server.ts';
import type { ApiKeys } from '../../src/api/auth.ts';
import type { Embedder, EmbedderOptions } from '../../src/engine/embedder.ts';
import { loadModels, type ModelSpec } from '../../src/api/models.ts';
import { modelRefOf } from '../../src/search/collection.ts';
import type { VectorStore } from '../../src/store/store.ts';
import { forged } from './models.ts';

export interface TestServer {
  url: string;
  server: TesseraServer;
  /** The first served model's engine. */
  embedder: Embedder;
  /** Every served model's engine, by served name. */
  embedders: Record<string, Embedder>;
  post(path: string, body: unknown, headers?: Record<string, string>): Promise<Response>;
  close(): Promise<void>;
}

const open: TestServer[] = [];
after(async () => {
  await Promise.all(open.map((s) => s.close()));
});

/** A model for startServer: a forged preset or a folder, and the name it is served as. */
export interface TestModel {
  model: 'tiny' | 'colour' | string;
  name: string;
  aliases?: string[];
}

const folderOf = async (model: string) => (model === 'tiny' || model === 'colour' ? forged(model) : model);

/**
 * A real tessera server on a loopback port, over forged models loaded as `tessera serve`
 * loads them (loadModels: one after another, one batch gate). One model by default, served
 * as jina-clip-v1 (alias jinaai/jina-clip-v1); `models` serves several.
 */
export async function startServer(options: {
  model?: 'tiny' | 'colour' | string;
  models?: TestModel[];
  args?: string[];
  env?: NodeJS.ProcessEnv;
  apiKeys?: ApiKeys | null;
  engine?: EmbedderOptions;
  /** Serve this store's collections (the caller closes it). */
  store?: VectorStore;
} = {}): Promise<TestServer> {
  const models = options.models ?? [{ model: options.model ?? 'tiny', name: 'jina-clip-v1', aliases: ['jinaai/jina-clip-v1'] }];
  const specs: ModelSpec[] = await Promise.all(models.map(async ({ model, name, aliases = [] }) => {
    const dir = await folderOf(model);
    const ref = modelRefOf(dir, 'fp32');
    return { name, aliases: [...aliases, dir, ref.model], ref, source: dir };
  }));
  const config = parseServerConfig(['--port', '0', ...(options.args ?? [])], options.env ?? {});
  const loaded = await loadModels(specs, {
    allowPaths: false,
    maxWaitMs: config['batch-wait-ms'],
    maxPendingItems: config['max-pending-items'],
    maxTextBatch: config['max-text-batch'],
    maxImageBatch: config['max-image-batch'],
    ...options.engine,
  });
  const server = createServer({ config, models: specs, apiKeys: options.apiKeys ?? null, store: options.store });
  for (const { spec, embedder, residentBytes } of loaded) await server.attach(embedder, { model: spec.name, residentBytes });
  const url = await server.app.listen({ host: '127.0.0.1', port: 0 });
  let closed = false;
  const handle: TestServer = {
    url,
    server,
    embedder: loaded[0]!.embedder,
    embedders: Object.fromEntries(loaded.map((m) => [m.spec.name, m.embedder])),
    post: (path, body, headers = {}) =>
      fetch(url + path, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) }),
    async close() {
      if (closed) return;
      closed = true;
      await server.app.close();
      await Promise.all(loaded.map((m) => m.embedder.close()));
    },
  };
  open.push(handle);
  return handle;
}

/** The value of a Prometheus sample, e.g. sample(text, 'tessera_batch_size_count', {modality: 'text'}). */
export function sample(metrics: string, name: string, labels: Record<string, string> = {}): number {
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of metrics.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== ' ' && rest[0] !== '{') continue;
    if (wanted.every((w) => rest.includes(w))) return Number(line.split(' ').at(-1));
  }
  return 0;
}

/**
 * Resolves once `items` items are being embedded and no job waits for a batch: the batch has
 * taken them and posted its run to the inference thread (one synchronous step in the engine).
 * Looked at every turn of the event loop, with a deadline: what tests wait on instead of a
 * sleep that a faster machine would outrun.
 */
export async function batchInThread(embedder: Embedder, items = 1, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const { pendingItems, queued } = embedder.load;
    if (pendingItems === items && queued.text === 0 && queued.image === 0) return;
    if (Date.now() > deadline) throw new Error(`no batch of ${items} item(s) reached the inference thread within ${ms} ms: ${JSON.stringify(embedder.load)}`);
    await new Promise((r) => setImmediate(r));
  }
}

/** Resolves once the engine holds exactly `items` items (admitted and not finished), polled each event-loop turn. */
export async function engineHolds(embedder: Embedder, items: number, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (embedder.load.pendingItems !== items) {
    if (Date.now() > deadline) throw new Error(`the engine did not come to hold ${items} item(s) within ${ms} ms: ${JSON.stringify(embedder.load)}`);
    await new Promise((r) => setImmediate(r));
  }
}
