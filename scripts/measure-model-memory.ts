/**
 * Resident memory of loaded models, for the README's several-models section: the process RSS
 * after Embedder.load of jina-clip-v1's dimensions (the forged `full` preset), of jina-clip-v2's
 * (`v2-full`), and of both in one process (loaded one after the other, as `serve --model a
 * --model b` does, sharing one batch gate), each case in a fresh process. Also the RSS after
 * a warm-up (one text and one image per model: first runs allocate), and the peak.
 *
 *   node --import tsx scripts/measure-model-memory.ts [--out docs/measurements/model-memory.json] [--threads N]
 *
 * The presets are forged into the bench cache on first use (bench/model.ts; v2-full: about
 * 2 minutes and 5 GB with its q8 variant).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, totalmem } from 'node:os';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { benchModel, modelFileBytes } from '../bench/model.ts';
import { Embedder } from '../src/engine/embedder.ts';
import { Semaphore } from '../src/engine/semaphore.ts';

const CASES = { v1: ['full'], v2: ['v2-full'], both: ['full', 'v2-full'] } as const;
type Case = keyof typeof CASES;

const { values } = parseArgs({
  options: {
    out: { type: 'string', default: 'docs/measurements/model-memory.json' },
    threads: { type: 'string' },
    case: { type: 'string' },
  },
});
const threads = Number(values.threads ?? availableParallelism());
const mb = (bytes: number): number => Math.round(bytes / 2 ** 20);

/** One case, in this (fresh) process: prints one JSON line. */
async function measureCase(name: Case): Promise<void> {
  const dirs = await Promise.all(CASES[name].map(async (preset) => (await benchModel(preset)).dir));
  const baseline = process.memoryUsage().rss;
  const batchGate = new Semaphore(1);
  const loaded: { preset: string; embedder: Embedder; rss_after_load_mb: number; load_s: number }[] = [];
  for (const [k, dir] of dirs.entries()) {
    const started = performance.now();
    const embedder = await Embedder.load(dir, { intraOpThreads: threads, batchGate });
    loaded.push({ preset: CASES[name][k]!, embedder, load_s: (performance.now() - started) / 1000, rss_after_load_mb: mb(process.memoryUsage().rss) });
  }
  const afterLoad = process.memoryUsage().rss;
  for (const { embedder } of loaded) {
    await embedder.embedTexts(['warm up']);
    await embedder.embedPixels(new Float32Array(3 * embedder.model.image.size ** 2), 1);
  }
  const afterWarmup = process.memoryUsage().rss;
  const models = await Promise.all(loaded.map(async (m, k) => ({
    preset: m.preset,
    dir: dirs[k]!,
    layout: m.embedder.model.layout,
    files_mb: mb(await modelFileBytes(dirs[k]!, 'fp32')),
    load_s: Math.round(m.load_s * 10) / 10,
    rss_after_load_mb: m.rss_after_load_mb,
  })));
  await Promise.all(loaded.map((m) => m.embedder.close()));
  console.log(JSON.stringify({
    case: name,
    models,
    rss_before_load_mb: mb(baseline),
    rss_after_load_mb: mb(afterLoad),
    rss_after_warmup_mb: mb(afterWarmup),
    peak_rss_mb: mb(process.resourceUsage().maxRSS * 1024),
  }));
}

if (values.case !== undefined) {
  if (!(values.case in CASES)) throw new Error(`--case expects one of ${Object.keys(CASES).join(', ')}, got ${values.case}`);
  await measureCase(values.case as Case);
} else {
  // Forge what is missing first, so no case's figures include a forge.
  for (const preset of ['full', 'v2-full']) await benchModel(preset, (line) => process.stderr.write(`${line}\n`));
  const script = fileURLToPath(import.meta.url);
  const results = (Object.keys(CASES) as Case[]).map((name) => {
    process.stderr.write(`model memory: ${name} ...\n`);
    const stdout = execFileSync(process.execPath, ['--import', 'tsx', script, '--case', name, '--threads', String(threads)], { encoding: 'utf8', maxBuffer: 1 << 20 });
    return JSON.parse(stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
  });
  const report = {
    what: 'process RSS after Embedder.load (fp32, default engine settings) of each model alone and of both in one process, each case in a fresh Node process; then after a warm-up (one text and one image per model)',
    command: 'node --import tsx scripts/measure-model-memory.ts',
    machine: { cpu: cpus()[0]?.model ?? 'unknown', cores: availableParallelism(), memory_gib: Math.round((totalmem() / 2 ** 30) * 10) / 10, node: process.version },
    threads,
    date: new Date().toISOString().slice(0, 10),
    cases: results,
    note: 'RSS before load is the process itself (Node, tsx, ONNX Runtime, sharp). Forged models (random weights, the hub dimensions): full = jina-clip-v1, two graphs; v2-full = jina-clip-v2, one graph with external data.',
  };
  mkdirSync(dirname(values.out!), { recursive: true });
  writeFileSync(values.out!, `${JSON.stringify(report, null, 2)}\n`);
  console.log(JSON.stringify(report, null, 2));
}
