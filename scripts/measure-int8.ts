/**
 * int8 variants of the forged `full` model (jina-clip-v1's dimensions), vision and text towers:
 * speed and cosine to fp32, per item, on this CPU. For docs/measurements/int8.json.
 *
 *   node --import tsx scripts/measure-int8.ts [--out docs/measurements/int8.json] [--rounds 4]
 *        [--threads 2] [--batch 4] [--items 8] [--towers vision,text]
 *
 * Variants (src/model/int8): fp32; `hub-like`, the q8 file as transformers.js's quantize script
 * makes it (src/forge/quantize.ts: uint8 weights per tensor in the vision tower, which has a
 * Conv; int8 in the text tower); `signed` and `unsigned`, that file with its weights made int8 /
 * uint8 exactly (convert.ts); `signed-7bit`, requantised to [-64, 64] per column; `forge-q8`,
 * the forge's own q8 (int8 per column, what `bench` ran so far); `at-load`, quantizeMatMuls on
 * the fp32 file (int8 per column, 8-bit), as `--dtype q8` would make it without a q8 file.
 *
 * Each run is one tower over `items` inputs in batches of `batch` (photo-like bench images through
 * the real preprocessing; bench prose texts), on sessions as session.ts makes them (basic
 * optimisation, `threads` intra-op threads) but without the graph rewrite and without spinning
 * intra-op threads, created from the variants' bytes. Rounds interleave every variant in an
 * order rotated per round. Two clocks per run: wall time, and the process's CPU time (user +
 * system, all threads), which a machine shared with other jobs disturbs far less (a descheduled
 * thread adds wall time, not CPU time; spinning is off so waiting adds none either). The best
 * run of each is reported with the median and the load average during the rounds; the choice
 * (planInt8 / pickVariant on the hub-like file's candidates) is made on CPU time. Pairs of
 * identical files (vision: hub-like and unsigned; text: hub-like and signed) show the noise.
 */
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import ort from 'onnxruntime-node';
import { benchImages, textCorpus } from '../bench/corpus.ts';
import { benchModel, cacheRoot } from '../bench/model.ts';
import { PRESETS } from '../src/forge/presets.ts';
import { quantizeStyled, type Q8Style } from '../src/forge/quantize.ts';
import { randomWeights } from '../src/forge/random-weights.ts';
import { buildTextGraph, TEXT_INPUTS } from '../src/forge/text-tower.ts';
import { buildVisionGraph } from '../src/forge/vision-tower.ts';
import { writeModel } from '../src/forge/writer.ts';
import { parsePreprocessorConfig, preprocessImage } from '../src/image/preprocess.ts';
import {
  applyVariant,
  detectCpuInt8Features,
  measureVariants,
  MIN_GAIN,
  OnnxFile,
  pickVariant,
  planInt8,
  quantizeMatMuls,
  summarizeInt8,
  type Int8Variant,
  type MeasuredVariant,
} from '../src/model/int8/index.ts';
import { TextTokenizer } from '../src/text/tokenizer.ts';

const { values } = parseArgs({
  options: {
    out: { type: 'string', default: 'docs/measurements/int8.json' },
    rounds: { type: 'string', default: '4' },
    threads: { type: 'string', default: '2' },
    batch: { type: 'string', default: '4' },
    items: { type: 'string', default: '8' },
    towers: { type: 'string', default: 'vision,text' },
  },
});
const rounds = Number(values.rounds);
const threads = Number(values.threads);
const batch = Number(values.batch);
const itemCount = Number(values.items);
const towers = values.towers!.split(',') as ('vision' | 'text')[];
const log = (line: string): void => void process.stderr.write(`${line}\n`);

type Label = 'hub-like' | 'signed' | 'unsigned' | 'signed-7bit' | 'forge-q8' | 'at-load' | 'at-load-7bit';
const DESCRIPTIONS: Record<Label | 'fp32', string> = {
  fp32: 'the fp32 graph',
  'hub-like': "the q8 file as transformers.js's quantize script makes it (weights per tensor; uint8 where the graph has a Conv, int8 otherwise)",
  signed: 'hub-like with int8 weights (uint8 ones as w - 128, zero point - 128: the same products)',
  unsigned: 'hub-like with uint8 weights (int8 ones as w + 128, zero point + 128: the same products)',
  'signed-7bit': 'hub-like requantised to int8 in [-64, 64], a scale per output column (never saturates vpmaddubsw)',
  'forge-q8': "the forge's own q8 (int8 symmetric, a scale per column; what bench measured before)",
  'at-load': 'quantizeMatMuls on the fp32 graph (int8 symmetric, per column, 8-bit): --dtype q8 without a q8 file',
  'at-load-7bit': 'quantizeMatMuls on the fp32 graph with reduceRange (int8 in [-64, 64], per column): never saturates',
};

/**
 * The q8 files of `full` (seed 0) made in `style`, forged once into the cache next to the
 * bench's (whose own q8 is hub-like: bench/model.ts, so the forge's style needs its own folder).
 */
async function q8Dir(style: Q8Style): Promise<string> {
  const dir = join(cacheRoot(), 'int8', `full-0-${style}`);
  const preset = PRESETS.full;
  const info = (tower: string) => ({
    producerName: 'tessera-forge', producerVersion: '1', docString: `jina-clip-v1 ${tower} tower (q8, ${style}), forged by tessera (preset full)`,
    metadata: { tessera_forge_preset: 'full', tessera_forge_seed: '0', tessera_forge_q8: style }, opsetVersion: 17, irVersion: 8,
  });
  await mkdir(join(dir, 'onnx'), { recursive: true });
  for (const tower of ['vision', 'text'] as const) {
    const path = join(dir, 'onnx', `${tower}_model_quantized.onnx`);
    if (await stat(path).then(() => true, () => false)) continue;
    log(`forging the ${style} q8 ${tower} tower into ${path} ...`);
    const graph = tower === 'vision' ? buildVisionGraph(preset.vision, preset.projectionDim) : buildTextGraph(preset.text, { attentionMask: true });
    const q = quantizeStyled(style, graph, randomWeights(0));
    await writeModel(path, q.graph, q.weights, info(tower));
  }
  return dir;
}

interface Batch {
  feeds: Record<string, ort.Tensor>;
  size: number;
}

async function visionBatches(fp32Dir: string): Promise<Batch[]> {
  const config = parsePreprocessorConfig(JSON.parse(await readFile(join(fp32Dir, 'preprocessor_config.json'), 'utf8')), 'preprocessor_config.json');
  const images = await benchImages(join(cacheRoot(), 'bench', 'images'), 'quick', itemCount);
  const pixels = await Promise.all(images.map(async (img) => (await preprocessImage(img.path, config)).pixels));
  const out: Batch[] = [];
  for (let i = 0; i < pixels.length; i += batch) {
    const group = pixels.slice(i, i + batch);
    const data = new Float32Array(group.length * group[0]!.length);
    group.forEach((p, k) => data.set(p, k * p.length));
    out.push({ size: group.length, feeds: { pixel_values: new ort.Tensor('float32', data, [group.length, 3, config.size, config.size]) } });
  }
  return out;
}

async function textBatches(fp32Dir: string): Promise<Batch[]> {
  const tokenizer = await TextTokenizer.load(fp32Dir);
  // Captions and medium passages, interleaved as textCorpus gives them.
  const texts = textCorpus('quick').texts.slice(0, itemCount);
  const encoded = texts.map((t) => tokenizer.encode(t, true).ids);
  const out: Batch[] = [];
  for (let i = 0; i < encoded.length; i += batch) {
    const group = encoded.slice(i, i + batch);
    const length = Math.max(...group.map((ids) => ids.length));
    const ids = new BigInt64Array(group.length * length).fill(BigInt(tokenizer.padId));
    const mask = new BigInt64Array(group.length * length);
    group.forEach((row, k) => row.forEach((id, j) => { ids[k * length + j] = BigInt(id); mask[k * length + j] = 1n; }));
    out.push({
      size: group.length,
      feeds: {
        [TEXT_INPUTS.ids]: new ort.Tensor('int64', ids, [group.length, length]),
        [TEXT_INPUTS.mask]: new ort.Tensor('int64', mask, [group.length, length]),
      },
    });
  }
  return out;
}

const sessionOptions: ort.InferenceSession.SessionOptions = {
  intraOpNumThreads: threads,
  interOpNumThreads: 1,
  graphOptimizationLevel: 'basic',
  executionProviders: ['cpu'],
  extra: { session: { intra_op: { allow_spinning: '0' } } },
};

function variantBytes(hubBytes: Uint8Array, variant: Int8Variant): { bytes: Uint8Array; converted: number; skipped: number } {
  const model = OnnxFile.parse(hubBytes);
  const report = applyVariant(model, variant);
  return { bytes: model.toBytes(), converted: report.converted.length, skipped: report.skipped.length };
}

async function measureTower(tower: 'vision' | 'text', fp32Dir: string, hubDir: string, forgeDir: string): Promise<Record<string, unknown>> {
  const file = `onnx/${tower}_model`;
  const fp32Bytes = await readFile(join(fp32Dir, `${file}.onnx`));
  const hubBytes = await readFile(join(hubDir, `${file}_quantized.onnx`));
  const forgeBytes = await readFile(join(forgeDir, `${file}_quantized.onnx`));
  const hubModel = OnnxFile.parse(hubBytes);
  const summaries: Record<string, unknown> = { 'hub-like': summarizeInt8(hubModel), 'forge-q8': summarizeInt8(OnnxFile.parse(forgeBytes)) };

  const files = new Map<Label | 'fp32', Uint8Array>([['fp32', fp32Bytes], ['hub-like', hubBytes], ['forge-q8', forgeBytes]]);
  const conversions: Record<string, unknown> = {};
  for (const variant of ['signed', 'unsigned', 'signed-7bit'] as const) {
    const started = performance.now();
    const made = variantBytes(hubBytes, variant);
    files.set(variant, made.bytes);
    conversions[variant] = { converted: made.converted, skipped: made.skipped, seconds: Math.round((performance.now() - started) / 100) / 10 };
    summaries[variant] = summarizeInt8(OnnxFile.parse(made.bytes));
  }
  for (const [label, reduceRange] of [['at-load', false], ['at-load-7bit', true]] as const) {
    const started = performance.now();
    const model = OnnxFile.parse(fp32Bytes);
    // rope.rotate_half: the forge's stand-in (a MatMul by a ±1 matrix) for the real graph's
    // Slice/Neg/Concat, which has nothing to quantise; left float as a real fp32 file would be.
    const report = quantizeMatMuls(model, { keepFloat: ['rope.rotate_half'], reduceRange });
    files.set(label, model.toBytes());
    conversions[label] = { quantized: report.quantized.length, kept_float: report.keptFloat, seconds: Math.round((performance.now() - started) / 100) / 10 };
    summaries[label] = summarizeInt8(OnnxFile.parse(files.get(label)!));
  }

  const inputs = tower === 'vision' ? await visionBatches(fp32Dir) : await textBatches(fp32Dir);
  const sessions = new Map<Label | 'fp32', ort.InferenceSession>();
  for (const [label, bytes] of files) sessions.set(label, await ort.InferenceSession.create(bytes, sessionOptions));
  log(`${tower}: ${sessions.size} sessions, ${inputs.length} batches of ${batch}`);

  const loads: number[] = [];
  const labels: Label[] = ['hub-like', 'signed', 'unsigned', 'signed-7bit', 'forge-q8', 'at-load', 'at-load-7bit'];
  const wall = new Map<Label | 'fp32', number[]>([...files.keys()].map((l) => [l, []]));
  const results = await measureVariants<Label>(labels, async (label, round) => {
    if (round >= 0 && label === 'fp32') loads.push(loadavg()[0]!);
    const session = sessions.get(label)!;
    const outputs: Float32Array[] = [];
    const started = performance.now();
    const cpuStart = process.cpuUsage();
    for (const b of inputs) {
      const result = await session.run(b.feeds);
      const out = result[session.outputNames[0]!]!.data as Float32Array;
      const dim = out.length / b.size;
      for (let k = 0; k < b.size; k++) outputs.push(out.slice(k * dim, (k + 1) * dim));
    }
    const cpu = process.cpuUsage(cpuStart);
    const cpuMs = (cpu.user + cpu.system) / 1000 / inputs.length;
    const wallMs = (performance.now() - started) / inputs.length;
    if (round >= 0) {
      wall.get(label)!.push(wallMs);
      log(`  ${tower} round ${round} ${label.padEnd(12)} wall ${wallMs.toFixed(0)} ms/batch, cpu ${cpuMs.toFixed(0)} ms/batch`);
    }
    return { ms: cpuMs, outputs };
  }, { rounds, warmup: 1 });
  for (const s of sessions.values()) await s.release();

  // What the chooser does with the hub-like file on this CPU (its candidates only).
  const features = detectCpuInt8Features();
  const plan = planInt8(features, summaries['hub-like'] as ReturnType<typeof summarizeInt8>);
  const asVariant = (label: Label | 'fp32'): Int8Variant | 'fp32' | undefined => (label === 'hub-like' ? 'as-is' : label === 'fp32' ? 'fp32' : (['signed', 'unsigned', 'signed-7bit'] as string[]).includes(label) ? (label as Int8Variant) : undefined);
  const candidateResults = results
    .map((r) => ({ ...r, variant: asVariant(r.variant) }))
    .filter((r): r is MeasuredVariant & { variant: Int8Variant | 'fp32' } => r.variant !== undefined && (r.variant === 'fp32' || plan.candidates.includes(r.variant)));
  const choice = plan.decision === 'fixed' ? { chosen: plan.variant, reason: plan.reason } : { ...pickVariant(candidateResults), min_gain: MIN_GAIN };
  const fp32Ms = results.find((r) => r.variant === 'fp32')!.bestMs;
  const fp32Wall = Math.min(...wall.get('fp32')!);
  const sorted = (xs: number[]): number[] => [...xs].sort((a, b) => a - b);

  return {
    items: inputs.reduce((n, b) => n + b.size, 0),
    batches: inputs.length,
    load_average_during: { min: Math.min(...loads), max: Math.max(...loads) },
    variants: results.map((r) => ({
      name: r.variant,
      description: DESCRIPTIONS[r.variant],
      weights: summaries[r.variant],
      file_mb: Math.round((files.get(r.variant)!.length / 2 ** 20) * 10) / 10,
      cpu_ms_per_batch: { best: Math.round(r.bestMs), median: Math.round(r.medianMs), runs: r.runsMs.map(Math.round) },
      wall_ms_per_batch: { best: Math.round(Math.min(...wall.get(r.variant)!)), median: Math.round(sorted(wall.get(r.variant)!)[Math.floor(wall.get(r.variant)!.length / 2)]!), runs: wall.get(r.variant)!.map(Math.round) },
      speedup_vs_fp32: { cpu: Math.round((fp32Ms / r.bestMs) * 100) / 100, wall: Math.round((fp32Wall / Math.min(...wall.get(r.variant)!)) * 100) / 100 },
      min_cosine: Math.round(r.minCosine * 1e6) / 1e6,
      cosines: r.cosines.map((c) => Math.round(c * 1e6) / 1e6),
      holds_0_99: r.passes,
    })),
    conversions,
    plan: { kernel: plan.kernel, decision: plan.decision, candidates: plan.candidates, reason: plan.reason },
    choice,
  };
}

const fp32Dir = (await benchModel('full', log)).dir;
const hubDir = await q8Dir('hub-like');
const forgeDir = await q8Dir('forge');
const ortVersion = (JSON.parse(await readFile(new URL('../node_modules/onnxruntime-node/package.json', import.meta.url), 'utf8')) as { version: string }).version;
const features = detectCpuInt8Features();
const loadBefore = loadavg();
const measured: Record<string, unknown> = {};
for (const tower of towers) measured[tower] = await measureTower(tower, fp32Dir, hubDir, forgeDir);
const report = {
  generated_at: new Date().toISOString(),
  command: `node --import tsx scripts/measure-int8.ts --rounds ${rounds} --threads ${threads} --batch ${batch} --items ${itemCount}`,
  machine: {
    cpu: features.model || cpus()[0]?.model,
    arch: features.arch,
    int8_flags: features.flags,
    cores: availableParallelism(),
    onnxruntime_node: ortVersion,
    load_average_before: loadBefore.map((l) => Math.round(l * 100) / 100),
    load_average_after: loadavg().map((l) => Math.round(l * 100) / 100),
  },
  settings: {
    model: 'forged full (jina-clip-v1 dimensions, seed 0)', batch, threads, rounds, graph_optimization_level: 'basic', intra_op_spinning: false, graph_rewrite: false, min_cosine_bound: 0.99,
    choice_clock: 'cpu', noise_pairs: { vision: ['hub-like', 'unsigned'], text: ['hub-like', 'signed'] },
  },
  towers: measured,
};
await mkdir(dirname(values.out!), { recursive: true });
await writeFile(values.out!, `${JSON.stringify(report, null, 2)}\n`);
log(`wrote ${values.out}`);
for (const [tower, r] of Object.entries(measured) as [string, { variants: { name: string; cpu_ms_per_batch: { best: number }; wall_ms_per_batch: { best: number }; min_cosine: number }[]; choice: unknown }][]) {
  for (const v of r.variants) log(`${tower.padEnd(6)} ${v.name.padEnd(12)} cpu ${String(v.cpu_ms_per_batch.best).padStart(6)} ms  wall ${String(v.wall_ms_per_batch.best).padStart(6)} ms  min cosine ${v.min_cosine.toFixed(4)}`);
  log(`${tower} choice: ${JSON.stringify(r.choice)}`);
}
