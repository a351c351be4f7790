import { loadApiKeys, API_KEYS_ENV } from '../api/auth.ts';
import { parseServerConfig, serverHelp } from '../api/config.ts';
import { createServer } from '../api/server.ts';
import { loadModels, modelSpecs, type ServedEmbedder } from '../api/models.ts';
import { parseDtype } from '../model/dtype.ts';
import { int8Setting } from '../model/int8/prepare.ts';
import { openStore } from '../store/open.ts';
import { onInferenceThreadDeath, onInferenceThreadRestart } from '../model/session.ts';
import type { Embedder } from '../engine/embedder.ts';
import { TesseraError, invalidArgument } from '../errors.ts';
import type { ServerMetrics } from '../api/metrics.ts';
import { resolveSource, type Source } from '../index/sources.ts';
import { watchFolder, type FolderWatch } from '../index/watch.ts';
import { sameModel } from '../store/collections.ts';
import type { ModelRef, VectorStore } from '../store/store.ts';
import { validateCollectionName } from '../store/validate.ts';

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
    int8: int8Setting(config.int8),
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
  // Folders and collections checked before listening: a bad --watch fails the start.
  const targets = await watchTargets(config.watch, store, loaded).catch(async (err: unknown) => {
    await Promise.all(loaded.map((m) => m.embedder.close()));
    await store.close();
    throw err;
  });
  const address = await server.app.listen({ host: config.host, port: config.port });
  const served = specs.map((s) => `${s.name} (${s.source}, ${config.dtype})`).join(', ');
  console.error(`tessera: serving ${served} on ${address}${apiKeys ? ` with ${apiKeys.size} API key(s)` : ''}`);
  console.error(`tessera: collections from the store at ${store.location}`);
  const watches = targets.map((t) => startWatch(t, store, server.metrics, config['watch-settle-ms']));

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
    // New requests: 503 SHUTTING_DOWN, those in flight finished; watched folders write what is embedded.
    await Promise.all([server.shutdown(), ...watches.map((w) => w.close())]);
    await Promise.all(loaded.map((m) => m.embedder.close()));
    await store.close();
    process.exit(code);
  };
  // `on`, not `once`: Ctrl-C reaches this process from the terminal and again through
  // ./bin/tessera's watcher; a repeat must not kill it mid-drain.
  process.on('SIGTERM', () => void stop('SIGTERM', 0));
  process.on('SIGINT', () => void stop('SIGINT', 0));
}

interface WatchTarget {
  source: Source;
  collection: string;
  embedder: Embedder;
  writer: ModelRef;
}

/**
 * The --watch PATH=COLLECTION entries: each PATH a folder, each collection existing with a
 * served model, or created for the first served one (as POST /v1/collections does).
 */
async function watchTargets(entries: readonly string[], store: VectorStore, loaded: readonly ServedEmbedder[]): Promise<WatchTarget[]> {
  const targets: WatchTarget[] = [];
  for (const entry of entries) {
    const at = entry.lastIndexOf('=');
    if (at <= 0 || at === entry.length - 1) throw invalidArgument('--watch', 'PATH=COLLECTION (a folder and the collection to keep it indexed in)', entry);
    const source = await resolveSource(entry.slice(0, at));
    if (source.kind !== 'folder') throw invalidArgument('--watch', 'PATH=COLLECTION with PATH a folder', entry);
    const collection = validateCollectionName(entry.slice(at + 1), '--watch COLLECTION');
    let info = await store.getCollection(collection);
    if (!info) {
      const first = loaded[0]!;
      try {
        await store.createCollection({ name: collection, ...first.spec.ref, dimensions: first.embedder.info.dimensions });
      } catch (err) {
        if (!(err instanceof TesseraError && err.code === 'COLLECTION_EXISTS')) throw err;
      }
      info = (await store.getCollection(collection))!;
    }
    const model = loaded.find((m) => sameModel(m.spec.ref, info));
    if (!model) {
      throw new TesseraError('COLLECTION_MODEL_MISMATCH', `--watch ${entry}: collection ${JSON.stringify(collection)} holds vectors of ${info.model} (${info.dtype}), which this server does not serve; serve that model too (--model ${info.model} --dtype ${info.dtype}) or watch into another collection`);
    }
    targets.push({ source, collection, embedder: model.embedder, writer: { model: info.model, dtype: info.dtype } });
  }
  return targets;
}

/** One watched folder inside the server: its lines on stderr, its counts in /metrics. */
function startWatch(t: WatchTarget, store: VectorStore, metrics: ServerMetrics, settleMs: number): FolderWatch {
  const say = (line: string) => console.error(`tessera: watch ${t.source.given} (collection ${t.collection}): ${line}`);
  let watch: FolderWatch | undefined = undefined;
  const counts = metrics.watchFolder(t.collection, () => watch?.pending ?? 0);
  watch = watchFolder({
    store,
    collection: t.collection,
    embedder: t.embedder,
    writer: t.writer,
    source: t.source,
    settleMs,
    onFailure: (f) => say(`failed: ${f.message} [${f.code}]`),
    onNote: say,
    onSeen: (n) => counts.seen(n),
    onRun: (run) => {
      counts.run(run);
      if (run.added + run.updated + run.removed + run.failed > 0 || run.kind === 'scan') {
        say(`${run.kind === 'scan' ? 'scanned: ' : ''}added ${run.added}, updated ${run.updated}, skipped ${run.skipped}, removed ${run.removed}, failed ${run.failed} (${run.pending} pending)`);
      }
    },
  });
  watch.ready.then(
    () => watch!.stopped || say(`watching for changes (${watch!.watches} folder watch${watch!.watches === 1 ? '' : 'es'})`),
    (err: unknown) => say(`not watched: ${(err as Error).message}`),
  );
  return watch;
}
