import { after } from 'node:test';
import { parseServerConfig } from '../../src/api/config.ts';
import { createServer, type TesseraServer } from '../../src/api/server.ts';
import type { ApiKeys } from '../../src/api/auth.ts';
import { Embedder, type EmbedderOptions } from '../../src/engine/embedder.ts';
import { modelRefOf } from '../../src/search/collection.ts';
import type { VectorStore } from '../../src/store/store.ts';
import { forged } from './models.ts';

export interface TestServer {
  url: string;
  server: TesseraServer;
  embedder: Embedder;
  post(path: string, body: unknown, headers?: Record<string, string>): Promise<Response>;
  close(): Promise<void>;
}

const open: TestServer[] = [];
after(async () => {
  await Promise.all(open.map((s) => s.close()));
});

/** A real tessera server on a loopback port, over a forged model. */
export async function startServer(options: {
  model?: 'tiny' | 'colour' | string;
  args?: string[];
  env?: NodeJS.ProcessEnv;
  apiKeys?: ApiKeys | null;
  engine?: EmbedderOptions;
  /** Serve this store's collections (the caller closes it). */
  store?: VectorStore;
} = {}): Promise<TestServer> {
  const model = options.model ?? 'tiny';
  const dir = model === 'tiny' || model === 'colour' ? await forged(model) : model;
  const config = parseServerConfig(['--port', '0', ...(options.args ?? [])], options.env ?? {});
  const embedder = await Embedder.load(dir, {
    allowPaths: false,
    maxWaitMs: config['batch-wait-ms'],
    maxPendingItems: config['max-pending-items'],
    maxTextBatch: config['max-text-batch'],
    maxImageBatch: config['max-image-batch'],
    ...options.engine,
  });
  const server = createServer({
    config,
    servedName: 'jina-clip-v1',
    aliases: ['jinaai/jina-clip-v1'],
    apiKeys: options.apiKeys ?? null,
    store: options.store,
    modelRef: modelRefOf(dir, 'fp32'),
  });
  await server.attach(embedder);
  const url = await server.app.listen({ host: '127.0.0.1', port: 0 });
  let closed = false;
  const handle: TestServer = {
    url,
    server,
    embedder,
    post: (path, body, headers = {}) =>
      fetch(url + path, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) }),
    async close() {
      if (closed) return;
      closed = true;
      await server.app.close();
      await embedder.close();
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
