/**
 * One part of the watch scenario in a fresh process, so that its memory is its own. Prints
 * one JSON line. argv: MODE MODEL_DIR ARGS...
 *
 * - `tree MODEL_DIR ROOT`: watchFolder over the tree at ROOT (into a fresh LanceDB store):
 *   time until every folder is watched, time of the first scan, RSS growth, longest stall
 *   of the event loop during set-up.
 * - `tree-node ROOT`: Node's fs.watch(ROOT, {recursive: true}), the same figures.
 * - `latency MODEL_DIR FILES_DIR COUNT GAP_MS`: files of FILES_DIR copied one by one into a
 *   watched folder, GAP_MS apart; each one's time from its last write to its commit.
 * - `burst MODEL_DIR FILES_DIR`: every file of FILES_DIR copied at once into a watched folder;
 *   time until all are committed, peak RSS, runs.
 */
import { watch as fsWatch, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { copyFile, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Embedder } from '../../src/engine/embedder.ts';
import { resolveSource } from '../../src/index/sources.ts';
import { watchFolder } from '../../src/index/watch.ts';
import { openStore } from '../../src/store/open.ts';
import type { DocumentRecord, ModelRef, VectorStore } from '../../src/store/store.ts';

const [mode, ...args] = process.argv.slice(2);
const MB = 2 ** 20;
const gc = (): void => (globalThis as { gc?: () => void }).gc?.();

/** inotify watches this process holds (from /proc/self/fdinfo). */
function inotifyWatches(): number {
  let n = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    let link: string;
    try {
      link = readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      continue;
    }
    if (link.includes('inotify')) n += readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8').split('\n').filter((l) => l.startsWith('inotify')).length;
  }
  return n;
}

/** The longest the event loop went without running a 10 ms timer, from now until stop(). */
function stallMeter(): { stop(): number } {
  let last = performance.now();
  let worst = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    worst = Math.max(worst, now - last - 10);
    last = now;
  }, 10);
  return {
    stop() {
      clearInterval(timer);
      return Math.max(0, worst);
    },
  };
}

/** A store, a model and a collection, and the commit time of every document written. */
async function setUp(modelDir: string): Promise<{ store: VectorStore; spied: VectorStore; embedder: Embedder; writer: ModelRef; committed: Map<string, number>; cleanup(): Promise<void> }> {
  const storeDir = await mkdtemp(join(tmpdir(), 'tessera-bench-watch-store-'));
  const store = await openStore(storeDir);
  const embedder = await Embedder.load(modelDir, { intraOpThreads: 1 });
  const writer: ModelRef = { model: modelDir, dtype: 'fp32' };
  await store.createCollection({ name: 'watch', ...writer, dimensions: embedder.info.dimensions });
  await embedder.embed([{ text: 'warm up' }]);
  const committed = new Map<string, number>();
  const spied = new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === 'upsert') {
        return async (collection: string, docs: readonly DocumentRecord[], w: ModelRef) => {
          await target.upsert(collection, docs, w);
          const at = performance.now();
          for (const d of docs) committed.set(d.id, at);
        };
      }
      const value = Reflect.get(target, prop, receiver) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  return {
    store,
    spied,
    embedder,
    writer,
    committed,
    async cleanup() {
      await embedder.close();
      await store.close();
      await rm(storeDir, { recursive: true, force: true });
    },
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(check: () => boolean, ms: number, what: string): Promise<void> {
  const started = performance.now();
  while (!check()) {
    if (performance.now() - started > ms) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(20);
  }
}

const out: Record<string, unknown> = {};
if (mode === 'tree-node') {
  const [root] = args;
  gc();
  const before = process.memoryUsage().rss;
  const stall = stallMeter();
  const started = performance.now();
  const watcher = fsWatch(root!, { recursive: true }, () => {});
  out.setup_ms = performance.now() - started;
  await sleep(50);
  out.max_stall_ms = stall.stop();
  gc();
  out.rss_mb = (process.memoryUsage().rss - before) / MB;
  out.watches = inotifyWatches();
  watcher.close();
} else if (mode === 'tree') {
  const [modelDir, root] = args;
  const env = await setUp(modelDir!);
  gc();
  const before = process.memoryUsage().rss;
  const stall = stallMeter();
  const started = performance.now();
  let watchedAt = 0;
  const w = watchFolder({ store: env.spied, collection: 'watch', embedder: env.embedder, writer: env.writer, source: await resolveSource(root!), onWatching: () => (watchedAt = performance.now()) });
  await until(() => watchedAt > 0, 600_000, 'watching');
  out.setup_ms = watchedAt - started;
  out.max_stall_ms = stall.stop();
  out.watches = inotifyWatches();
  await w.ready;
  out.first_scan_ms = performance.now() - watchedAt;
  gc();
  out.rss_mb = (process.memoryUsage().rss - before) / MB;
  out.peak_rss_mb = (process.resourceUsage().maxRSS * 1024 - before) / MB;
  await w.close();
  await env.cleanup();
} else if (mode === 'latency') {
  const [modelDir, filesDir, count, gap] = args;
  const env = await setUp(modelDir!);
  const dir = await mkdtemp(join(tmpdir(), 'tessera-bench-watch-latency-'));
  const w = watchFolder({ store: env.spied, collection: 'watch', embedder: env.embedder, writer: env.writer, source: await resolveSource(dir) });
  await w.ready;
  const files = (await readdir(filesDir!)).sort().slice(0, Number(count));
  const written = new Map<string, number>();
  for (const f of files) {
    await copyFile(join(filesDir!, f), join(dir, f));
    written.set(f, performance.now());
    await sleep(Number(gap));
  }
  await until(() => files.every((f) => env.committed.has(f)), 120_000, 'every file committed');
  out.latencies_ms = files.map((f) => env.committed.get(f)! - written.get(f)!).sort((a, b) => a - b);
  out.failed = w.totals.failed;
  await w.close();
  await env.cleanup();
  await rm(dir, { recursive: true, force: true });
} else if (mode === 'burst') {
  const [modelDir, filesDir] = args;
  const env = await setUp(modelDir!);
  const dir = await mkdtemp(join(tmpdir(), 'tessera-bench-watch-burst-'));
  const runs: number[] = [];
  const w = watchFolder({ store: env.spied, collection: 'watch', embedder: env.embedder, writer: env.writer, source: await resolveSource(dir), onRun: (r) => r.kind === 'paths' && runs.push(r.paths) });
  await w.ready;
  const files = (await readdir(filesDir!)).sort();
  gc();
  const before = process.memoryUsage().rss;
  let maxPending = 0;
  const sampler = setInterval(() => (maxPending = Math.max(maxPending, w.pending)), 50);
  const started = performance.now();
  // As fast as the disk takes them, 32 at a time.
  let next = 0;
  await Promise.all(Array.from({ length: 32 }, async () => {
    while (next < files.length) {
      const f = files[next++]!;
      await copyFile(join(filesDir!, f), join(dir, f));
    }
  }));
  out.write_ms = performance.now() - started;
  await until(() => env.committed.size >= files.length, 1_200_000, 'every file committed');
  out.files = files.length;
  out.ms = performance.now() - started;
  clearInterval(sampler);
  out.rss_before_mb = before / MB;
  out.peak_rss_mb = (process.resourceUsage().maxRSS * 1024) / MB;
  out.max_pending = maxPending;
  out.runs = runs.length;
  out.max_paths_per_run = Math.max(...runs);
  out.failed = w.totals.failed;
  await w.close();
  await env.cleanup();
  await rm(dir, { recursive: true, force: true });
} else {
  throw new Error(`unknown mode ${mode}`);
}
console.log(JSON.stringify(out));
