import { loadApiKeys, API_KEYS_ENV } from '../api/auth.ts';
import { parseServerConfig, serverHelp } from '../api/config.ts';
import { createServer } from '../api/server.ts';
import { loadModels, modelSpecs } from '../api/models.ts';
import { parseDtype } from '../model/dtype.ts';
import { openStore } from '../store/open.ts';
import { onInferenceThreadDeath, onInferenceThreadRestart } from '../model/session.ts';

export async function main(args: string[]): Promise<void> {
  if (args.includes('--help') || args.includes('-h')) return console.log(serverHelp());
  const config = parseServerConfig(args);
  const apiKeys = await loadApiKeys({ file: config['api-keys'] || undefined, env: process.env[API_KEYS_ENV] });
  const specs = modelSpecs(config);
  const store = await openStore(config.store || undefined);
  const server = createServer({ config, models: specs, apiKeys, store });

  // Load before listening, one model after another (each one's memory is measured alone):
  // offline with nothing cached this fails fast with advice, and a model that cannot be
  // loaded fails the start, naming it.
  const loaded = await loadModels(specs, {
    dtype: parseDtype(config.dtype),
    progress: true,
    intraOpThreads: config.threads || undefined,
    executionProviders: config['execution-providers'].split(',').map((p) => p.trim()).filter(Boolean),
    maxPixels: config['max-image-pixels'],
    allowPaths: false,
    maxWaitMs: config['batch-wait-ms'],
    maxTextBatch: config['max-text-batch'],
    maxImageBatch: config['max-image-batch'],
    maxPendingItems: config['max-pending-items'],
  }).catch(async (err: unknown) => {
    await store.close();
    throw err;
  });
  for (const { spec, embedder, residentBytes } of loaded) await server.attach(embedder, { model: spec.name, residentBytes });
  const address = await server.app.listen({ host: config.host, port: config.port });
  const served = specs.map((s) => `${s.name} (${s.source}, ${config.dtype})`).join(', ');
  console.error(`tessera: serving ${served} on ${address}${apiKeys ? ` with ${apiKeys.size} API key(s)` : ''}`);
  console.error(`tessera: collections from the store at ${store.location}`);

  // A dead inference thread is restarted with the model (session.ts); the requests it was
  // running have been answered 503 INFERENCE_THREAD_DIED. If it stays dead (a crash loop, or
  // the model cannot be loaded again) the server cannot answer: say so and exit 1, so that a
  // supervisor (systemd, Kubernetes, Docker) restarts the process.
  onInferenceThreadDeath(({ error, restarting }) => {
    console.error(`tessera: ${error.message}${restarting ? '' : '; exiting'}`);
    if (!restarting) void stop('the inference thread is gone', 1);
  });
  onInferenceThreadRestart(() => console.error('tessera: the inference thread is back with the model; serving again after a warm-up'));

  let stopping = false;
  const stop = async (why: string, code: number) => {
    if (stopping) return;
    stopping = true;
    console.error(`tessera: ${why}: finishing requests in flight, then exiting`);
    // A failing exit must not wait on a stuck request; a clean stop waits for every one.
    if (code !== 0) setTimeout(() => process.exit(code), 5000).unref();
    await server.shutdown(); // new requests: 503 SHUTTING_DOWN; in flight: finished
    await Promise.all(loaded.map((m) => m.embedder.close()));
    await store.close();
    process.exit(code);
  };
  // `on`, not `once`: Ctrl-C reaches this process from the terminal and again through
  // ./bin/tessera's watcher; a repeat must not kill it mid-drain.
  process.on('SIGTERM', () => void stop('SIGTERM', 0));
  process.on('SIGINT', () => void stop('SIGINT', 0));
}
