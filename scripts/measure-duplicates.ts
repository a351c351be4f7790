/**
 * Measures a duplicates scan of a large collection, as the server runs it (a DuplicateJobs job).
 *
 *   node --import tsx scripts/measure-duplicates.ts [--docs 100000] [--copies 5000] [--threshold 0.95]
 *                                                   [--out docs/measurements/duplicates.json]
 *
 * The data: `docs` 768-d clustered vectors (bench/search.ts's clusteredVectors: 1000 Gaussian
 * centres, a document ~0.5 cosine to its cluster-mates), of which `copies` are near-copies of
 * other documents (the original plus noise of norm 0.2, cosine ~0.98): the groups a scan should
 * find. They are loaded into the embedded LanceDB store in bulk (upserts of 5000, no index
 * upkeep), then its ANN index is built, as after a `tessera index` of a large folder.
 *
 * The scan runs in a fresh child process, so that its memory is the scan's and not the data
 * generation's: wall time, documents per second, resident memory before and at its peak (and the
 * V8 heap), sampled every 250 ms. The groups found are compared with the planted ones: pairs
 * found (recall; the index is approximate) and groups that mix documents of different originals.
 *
 * Prints a table and writes JSON with the CPU model: compare figures within one run only.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { clusteredVectors } from '../bench/search.ts';
import { l2normalize } from '../src/engine/pooling.ts';
import { xorshift32 } from '../src/random.ts';
import { DuplicateJobs } from '../src/search/duplicate-jobs.ts';
import { openLanceStore } from '../src/store/lance.ts';
import type { DocumentRecord } from '../src/store/store.ts';

const ROOT = new URL('..', import.meta.url).pathname;
const DIMS = 768;
const CENTRES = 1000;
const BATCH = 5000;
const COLLECTION = 'dups';
const WRITER = { model: 'measure', dtype: 'fp32' };
const MB = 1024 * 1024;

interface ScanFigures {
  seconds: number;
  docs_per_second: number;
  scanned: number;
  total: number;
  rss_before_mb: number;
  rss_peak_mb: number;
  heap_before_mb: number;
  heap_peak_mb: number;
  /** Seconds from the start when each tenth of the documents had been scanned. */
  tenths_s: number[];
  groups: string[][];
}

if (process.argv[2] === '--scan') await scan(process.argv[3]!, Number(process.argv[4]));
else await measure();

/** The child: one job over the store at `dir`, its figures as JSON on stdout. */
async function scan(dir: string, threshold: number): Promise<void> {
  const store = await openLanceStore(dir);
  const jobs = new DuplicateJobs(store);
  const before = process.memoryUsage();
  let rssPeak = before.rss;
  let heapPeak = before.heapUsed;
  const sample = () => {
    const m = process.memoryUsage();
    rssPeak = Math.max(rssPeak, m.rss);
    heapPeak = Math.max(heapPeak, m.heapUsed);
  };
  const sampler = setInterval(sample, 250);
  const started = performance.now();
  const job = jobs.start(COLLECTION, { threshold });
  const tenths: number[] = [];
  while (job.status === 'queued' || job.status === 'running') {
    await new Promise((r) => setTimeout(r, 100));
    const { scanned, total } = job.progress;
    while (total > 0 && tenths.length < 10 && scanned >= ((tenths.length + 1) * total) / 10) tenths.push(round((performance.now() - started) / 1000, 1));
  }
  const seconds = (performance.now() - started) / 1000;
  clearInterval(sampler);
  sample();
  if (job.status !== 'done') throw new Error(`the scan ended ${job.status}: ${JSON.stringify(job.error)}`);
  const { scanned, total } = job.progress;
  const figures: ScanFigures = {
    seconds: round(seconds, 1),
    docs_per_second: Math.round(scanned / seconds),
    scanned,
    total,
    rss_before_mb: Math.round(before.rss / MB),
    rss_peak_mb: Math.round(rssPeak / MB),
    heap_before_mb: Math.round(before.heapUsed / MB),
    heap_peak_mb: Math.round(heapPeak / MB),
    tenths_s: tenths,
    groups: job.groups().map((g) => g.ids),
  };
  await jobs.close();
  await store.close();
  process.stdout.write(JSON.stringify(figures));
}

async function measure(): Promise<void> {
  const { values } = parseArgs({
    options: {
      docs: { type: 'string', default: '100000' },
      copies: { type: 'string', default: '5000' },
      threshold: { type: 'string', default: '0.95' },
      out: { type: 'string', default: join(ROOT, 'docs/measurements/duplicates.json') },
    },
  });
  const docs = Number(values.docs);
  const copies = Number(values.copies);
  const threshold = Number(values.threshold);
  const cpu = lscpu();
  // The machine may be shared: its load says how far the times are from an idle one's.
  const loadStart = loadavg()[0]!;
  console.log(`CPU: ${cpu.model} (${cpu.cores} cores), load average ${loadStart.toFixed(1)}`);

  // Originals, then near-copies of randomly chosen originals: `origin` says whose copy a document is.
  const mixture = clusteredVectors(DIMS, CENTRES, 7);
  const rnd = xorshift32(11);
  const gauss = () => Math.sqrt(-2 * Math.log(rnd() || 1e-12)) * Math.cos(2 * Math.PI * rnd());
  const originals = docs - copies;
  const noise = 0.2 / Math.sqrt(DIMS);
  const vectors: Float32Array[] = Array.from({ length: originals }, mixture.draw);
  const origin = new Int32Array(docs).map((_, i) => i);
  for (let i = originals; i < docs; i++) {
    const of = Math.floor(rnd() * originals);
    origin[i] = of;
    vectors.push(l2normalize(vectors[of]!.map((x) => x + noise * gauss())));
  }
  const idOf = (i: number) => `doc-${String(i).padStart(6, '0')}`;

  const dir = mkdtempSync(join(tmpdir(), 'tessera-measure-dups-'));
  try {
    // Bulk: no index upkeep while loading (threshold out of reach), then one build.
    const store = await openLanceStore(dir, { annThreshold: Number.MAX_SAFE_INTEGER });
    await store.createCollection({ name: COLLECTION, ...WRITER, dimensions: DIMS });
    let started = performance.now();
    for (let from = 0; from < docs; from += BATCH) {
      const batch: DocumentRecord[] = [];
      for (let i = from; i < Math.min(docs, from + BATCH); i++) batch.push({ id: idOf(i), modality: 'image', image: `/photos/${i}.jpg`, metadata: {}, hash: `h${i}`, vector: vectors[i]! });
      await store.upsert(COLLECTION, batch, WRITER);
    }
    const loadS = round((performance.now() - started) / 1000, 1);
    console.log(`loaded ${docs} documents in ${loadS} s`);
    started = performance.now();
    await store.buildAnnIndex(COLLECTION);
    await store.compact(COLLECTION);
    const indexS = round((performance.now() - started) / 1000, 1);
    const state = await store.indexState(COLLECTION);
    console.log(`ANN index built in ${indexS} s: ${JSON.stringify(state.ann)}`);
    await store.close();
    vectors.length = 0;

    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'scripts/measure-duplicates.ts'), '--scan', dir, String(threshold)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    if (code !== 0) throw new Error(`the scan process exited with ${code}`);
    const figures = JSON.parse(out) as ScanFigures;

    // Against the planted groups: an original and its copies.
    const truth = new Map<number, number[]>();
    for (let i = originals; i < docs; i++) truth.set(origin[i]!, [...(truth.get(origin[i]!) ?? [origin[i]!]), i]);
    const groupOf = new Map<string, number>();
    figures.groups.forEach((ids, g) => ids.forEach((id) => groupOf.set(id, g)));
    let pairs = 0;
    let found = 0;
    for (const members of truth.values()) {
      for (const m of members.slice(1)) {
        pairs++;
        const g = groupOf.get(idOf(m));
        if (g !== undefined && g === groupOf.get(idOf(members[0]!))) found++;
      }
    }
    const mixed = figures.groups.filter((ids) => new Set(ids.map((id) => origin[Number(id.slice(4))])).size > 1).length;
    const result = {
      date: new Date().toISOString(),
      cpu,
      node: process.version,
      load_average_1m: { start: round(loadStart, 1), end: round(loadavg()[0]!, 1) },
      data: { docs, planted_copies: copies, planted_groups: truth.size, dims: DIMS, centres: CENTRES, copy_cosine: round(1 / Math.hypot(1, 0.2), 3) },
      store: { backend: 'LanceDB (embedded)', load_s: loadS, index_build_s: indexS, ann: state.ann },
      threshold,
      scan: { ...figures, groups: undefined, groups_found: figures.groups.length, planted_pairs: pairs, planted_pairs_found: found, recall: round(found / pairs, 4), mixed_groups: mixed },
      how: 'one DuplicateJobs job (as POST /v1/collections/{name}/duplicates runs it) in a fresh process: 4 neighbour searches (k 16, min_score = threshold) in flight, one page of 1000 documents at a time; memory sampled every 250 ms',
    };
    mkdirSync(dirname(values.out!), { recursive: true });
    writeFileSync(values.out!, `${JSON.stringify(result, null, 2)}\n`);
    console.log(`scan: ${figures.scanned} documents in ${figures.seconds} s (${figures.docs_per_second}/s); RSS ${figures.rss_before_mb} -> peak ${figures.rss_peak_mb} MB, heap ${figures.heap_before_mb} -> ${figures.heap_peak_mb} MB`);
    console.log(`groups: ${figures.groups.length} found, ${truth.size} planted; planted pairs found ${found}/${pairs}; mixed groups ${mixed}`);
    console.log(`wrote ${values.out}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function round(x: number, digits: number): number {
  return Math.round(x * 10 ** digits) / 10 ** digits;
}

function lscpu(): { model: string; cores: number; flags: string } {
  const out = execFileSync('lscpu', { encoding: 'utf8' });
  const model = /Model name:\s*(.+)/.exec(out)?.[1]?.trim() ?? cpus()[0]?.model ?? 'unknown';
  const flags = /Flags:\s*(.+)/.exec(out)?.[1] ?? '';
  const simd = ['avx2', 'avx512f', 'avx512_vnni', 'amx_tile'].filter((f) => flags.split(' ').includes(f)).join(' ');
  return { model, cores: cpus().length, flags: simd };
}
