/**
 * `tessera bench --only watch`: folders kept indexed as they change (src/index/watch.ts).
 *
 * - latency: files copied one by one into a watched folder (default settle period, 1 s), each
 *   one's time from its last write to its commit in the store (searchable from then on);
 * - tree: watching a tree of 100,000 tiny files (not images: what matters is the tree) in
 *   1,000 folders: time until every folder is watched, RSS growth, inotify watches, the
 *   longest stall of the event loop; against Node's recursive fs.watch on the same tree;
 * - burst: 10,000 text files copied into a watched folder at once: time until all are written,
 *   peak RSS, how many runs.
 *
 * Each part runs in a fresh process (bench/child/watch.ts), so its memory is its own. The
 * model is the forged `tiny` one whatever --model says: what is measured is the watcher; a
 * real model adds its own time per document (the images and index scenarios measure it).
 */
import { execFile } from 'node:child_process';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import sharp from 'sharp';
import type { SetSize } from './corpus.ts';
import { forgedModelDir, cacheRoot } from './model.ts';
import { percentile, round } from './stats.ts';

const PLAN = {
  tiny: { latencyFiles: 10, gapMs: 100, treeFiles: 2_000, burstFiles: 200 },
  quick: { latencyFiles: 200, gapMs: 100, treeFiles: 100_000, burstFiles: 10_000 },
  full: { latencyFiles: 200, gapMs: 100, treeFiles: 100_000, burstFiles: 10_000 },
} as const;

/** Files per folder of the tree: 100,000 files make 1,000 folders under 10 top folders. */
const PER_FOLDER = 100;

async function child(args: string[]): Promise<Record<string, unknown>> {
  const script = fileURLToPath(new URL('./child/watch.ts', import.meta.url));
  const { stdout } = await promisify(execFile)(process.execPath, ['--expose-gc', '--import', 'tsx', script, ...args], { maxBuffer: 16 << 20 });
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
}

/** `count` distinct small PNGs (a colour each), made once into the cache. */
async function images(count: number): Promise<string> {
  const dir = join(cacheRoot(), 'bench', `watch-images-${count}`);
  await mkdir(dir, { recursive: true });
  if ((await readdir(dir)).length >= count) return dir;
  for (let i = 0; i < count; i += 64) {
    await Promise.all(Array.from({ length: Math.min(64, count - i) }, async (_, k) => {
      const n = i + k;
      const png = await sharp({ create: { width: 24, height: 24, channels: 3, background: { r: n % 256, g: Math.floor(n / 256) % 256, b: (n * 37) % 256 } } }).png().toBuffer();
      await writeFile(join(dir, `img-${String(n).padStart(5, '0')}.png`), png);
    }));
  }
  return dir;
}

async function tree(root: string, files: number): Promise<number> {
  let folders = 0;
  for (let made = 0; made < files; folders++) {
    const dir = join(root, `t${Math.floor(folders / 100)}`, `d${folders % 100}`);
    await mkdir(dir, { recursive: true });
    const n = Math.min(PER_FOLDER, files - made);
    await Promise.all(Array.from({ length: n }, (_, k) => writeFile(join(dir, `f${k}.dat`), 'x')));
    made += n;
  }
  return folders;
}

export async function watchScenario(size: SetSize, log: (line: string) => void): Promise<Record<string, unknown>> {
  const plan = PLAN[size];
  const model = await forgedModelDir('tiny', 0, log);
  const mb = (x: unknown) => round(Number(x), 0);

  log(`watch: latency, ${plan.latencyFiles} files ${plan.gapMs} ms apart ...`);
  const files = await images(plan.latencyFiles);
  const latency = await child(['latency', model, files, String(plan.latencyFiles), String(plan.gapMs)]);
  const latencies = latency.latencies_ms as number[];

  const root = join(tmpdir(), `tessera-bench-watch-tree-${process.pid}`);
  await rm(root, { recursive: true, force: true });
  log(`watch: a tree of ${plan.treeFiles} files ...`);
  const folders = await tree(root, plan.treeFiles);
  let ours: Record<string, unknown>, node: Record<string, unknown>;
  try {
    log('watch: tessera watching the tree ...');
    ours = await child(['tree', model, root]);
    log('watch: Node\'s recursive fs.watch on the tree ...');
    node = await child(['tree-node', root]);
  } finally {
    await rm(root, { recursive: true, force: true });
  }

  log(`watch: a burst of ${plan.burstFiles} text files ...`);
  const burstDir = join(tmpdir(), `tessera-bench-watch-burst-src-${process.pid}`);
  await rm(burstDir, { recursive: true, force: true });
  await mkdir(burstDir);
  for (let i = 0; i < plan.burstFiles; i += 256) {
    await Promise.all(Array.from({ length: Math.min(256, plan.burstFiles - i) }, (_, k) => writeFile(join(burstDir, `note-${String(i + k).padStart(5, '0')}.txt`), `note ${i + k}: a ${['red', 'green', 'blue', 'yellow'][(i + k) % 4]} thing seen on day ${(i + k) % 365}`)));
  }
  let burst: Record<string, unknown>;
  try {
    burst = await child(['burst', model, burstDir]);
  } finally {
    await rm(burstDir, { recursive: true, force: true });
  }

  return {
    latency_p50_ms: round(percentile(latencies, 50), 0),
    latency_p99_ms: round(percentile(latencies, 99), 0),
    latency_max_ms: round(latencies.at(-1)!, 0),
    latency_files: latencies.length,
    latency_note: `${plan.latencyFiles} 24x24 PNGs copied into the watched folder ${plan.gapMs} ms apart; from the end of each copy to the commit of its document; settle period 1000 ms (the default)`,
    setup_ms: round(Number(ours.setup_ms), 0),
    rss_mb: mb(ours.rss_mb),
    tree: {
      files: plan.treeFiles,
      folders,
      tessera: { setup_ms: round(Number(ours.setup_ms), 0), watches: ours.watches, max_stall_ms: round(Number(ours.max_stall_ms), 0), first_scan_ms: round(Number(ours.first_scan_ms), 0), rss_mb: mb(ours.rss_mb), peak_rss_growth_mb: mb(ours.peak_rss_mb) },
      node_recursive_fs_watch: { setup_ms: round(Number(node.setup_ms), 0), watches: node.watches, max_stall_ms: round(Number(node.max_stall_ms), 0), rss_mb: mb(node.rss_mb) },
      note: 'setup: until every folder is watched (tessera: one inotify watch per folder; Node 20\'s recursive fs.watch: one per file and folder, set up synchronously); rss: growth of the process RSS once watching (tessera: after its first scan of the tree too); first scan: the incremental scan at start (every file opened to sniff its format; none is an image here)',
    },
    burst: {
      files: burst.files,
      ms: round(Number(burst.ms), 0),
      docs_per_s: round(Number(burst.files) / (Number(burst.ms) / 1000), 1),
      write_ms: round(Number(burst.write_ms), 0),
      rss_before_mb: mb(burst.rss_before_mb),
      peak_rss_mb: mb(burst.peak_rss_mb),
      max_pending: burst.max_pending,
      runs: burst.runs,
      max_paths_per_run: burst.max_paths_per_run,
      failed: burst.failed,
      note: 'short .txt notes copied into the watched folder 32 at a time (texts: the watcher is measured, not image decoding); ms: from the first copy to the commit of the last document; peak RSS of the whole process (model included)',
    },
    model: 'tiny (forged): the watcher is measured, not the model',
  };
}
