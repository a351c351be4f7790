/**
 * `tessera bench`: every scenario of the performance issue, measured in one run, tessera
 * and its peer interleaved, with a report object (JSON) and a table.
 */
import { execFile } from 'node:child_process';
import { availableParallelism, cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { cosine } from '../src/engine/vectors.ts';
import { preprocessImage } from '../src/image/preprocess.ts';
import type { GraphOptimizationLevel } from '../src/model/session.ts';
import { measureCeiling, type CeilingResult } from './ceiling.ts';
import { benchImages, textCorpus, type SetSize } from './corpus.ts';
import { engineImages, enginePixels, engineTexts, loadEngine, type EngineRun } from './engine-driver.ts';
import { imageFlops, textFlops } from './flops.ts';
import { indexScenario } from './index.ts';
import { benchModel, cacheRoot, forgedQ8Style, modelFileBytes, modelFiles, readDims } from './model.ts';
import { TransformersPeer, type PeerRun } from './peers/transformers.ts';
import { photosScenario } from './photos.ts';
import { q8Profile, rewriteProfile } from './profile.ts';
import { searchScenario, type SearchReport } from './search.ts';
import { embeddedFromSearch, storeScenario } from './store.ts';
import { round } from './stats.ts';
import { runLoad, startServe, type LoadResult } from './server.ts';
import { mediaScenario } from './media.ts';
import { watchScenario } from './watch.ts';

export const SCENARIOS = ['ceiling', 'images', 'texts', 'q8', 'startup', 'server', 'index', 'photos', 'search', 'store', 'watch', 'media'] as const;
export type Scenario = (typeof SCENARIOS)[number];
/**
 * What runs without --only: watch (100,000-file tree, 10,000-file burst) and media (an hour of
 * video) take minutes of their own, so they run when named.
 */
export const DEFAULT_SCENARIOS: readonly Scenario[] = SCENARIOS.filter((s) => s !== 'watch' && s !== 'media');

export interface BenchOptions {
  /**
   * A forge preset (`full`, `v2-full`, ...: forged into the cache on first use), a model folder
   * in the hub layout, or what the engine resolves (a hub id); default `full`.
   */
  model?: string;
  /** Set sizes and durations: quick (a few minutes here), full, or tiny (plumbing tests). */
  size: SetSize;
  threads?: number;
  scenarios?: readonly Scenario[];
  /** tessera's graph optimisation level (default: the engine's). */
  graphOptimizationLevel?: GraphOptimizationLevel;
  log?: (line: string) => void;
}

/**
 * Batch sizes tried per side (each side is reported at its best); transformers.js pads a batch
 * to its longest text, so its large text batches are not worth the minutes they take. A quick
 * run tries only the sizes that won every earlier run on 2 cores (images 8 for both sides;
 * texts 32 for tessera, which sorts by length, and 1 for transformers.js): the full run tries them all.
 */
const PLAN = {
  tiny: { reps: 1, imageBatches: [2], textBatches: [4], peerTextBatches: [4], ceilingSeconds: 0.1, ceilingShape: 256, textSeconds: 0.5, imageSeconds: 0.5, levels: [1, 4], longDoc: 256, settleMs: 200, profileRuns: 1 },
  quick: { reps: 2, imageBatches: [8], textBatches: [32], peerTextBatches: [1], ceilingSeconds: 1, ceilingShape: 0, textSeconds: 10, imageSeconds: 15, levels: [1, 64], longDoc: 1024, settleMs: 300, profileRuns: 1 },
  full: { reps: 3, imageBatches: [1, 4, 8, 16], textBatches: [1, 4, 8, 16, 32], peerTextBatches: [1, 4, 8], ceilingSeconds: 3, ceilingShape: 0, textSeconds: 30, imageSeconds: 40, levels: [1, 16, 64], longDoc: 8192, settleMs: 1000, profileRuns: 3 },
} as const;

/** Images and texts in the profiled batch of `rewrite.profile`. */
const PROFILE_BATCH = 4;

/**
 * FLOPs the image sets of one pass may cost, per scenario: a model whose images cost more
 * (jina-clip-v2 at 512 px: about 1 TFLOP an image, 27 times v1's) gets fewer of them, so a
 * quick run stays quick. jina-clip-v1's sets (36 GFLOP an image) fit whole.
 */
const IMAGE_BUDGET = {
  tiny: { images: Infinity, index: Infinity, server: Infinity },
  quick: { images: 4e12, index: 2e12, server: 1e12 },
  full: { images: 8e12, index: 8e12, server: 1e12 },
} as const satisfies Record<SetSize, Record<string, number>>;

/** `count` images, or as many as `budget` FLOPs pay for at `perImage` each, but at least `least`. */
export function affordable(count: number, perImage: number, budget: number, least: number): number {
  return Math.min(count, Math.max(least, Math.floor(budget / perImage)));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const minCosine = (a: readonly Float32Array[], b: readonly Float32Array[]): number => Math.min(...a.map((v, k) => cosine(v, b[k]!)));

/** The best (highest rate) of several runs. */
function best<T extends { items: number; wallMs: number }>(runs: readonly (T & { batch: number })[]): T & { batch: number } {
  return runs.reduce((x, y) => (y.items / y.wallMs > x.items / x.wallMs ? y : x));
}

export async function runBench(options: BenchOptions): Promise<Record<string, unknown>> {
  const log = options.log ?? (() => {});
  const plan = PLAN[options.size];
  const threads = options.threads ?? availableParallelism();
  const scenarios = new Set(options.scenarios ?? DEFAULT_SCENARIOS);
  // The watch scenario brings its own small model: alone, it needs no bench model.
  const started = performance.now();
  if (scenarios.size === 1 && scenarios.has('watch')) {
    const watch = await watchScenario(options.size, log);
    return { machine: machine(), size: options.size, watch, timings: { watch_s: round((performance.now() - started) / 1000, 1) } };
  }
  const model = await benchModel(options.model, log);
  try {
    return await benchOn(model.dir, options, plan, threads, scenarios, log, { model_s: round((performance.now() - started) / 1000, 1) });
  } finally {
    await model.cleanup?.();
  }
}

/**
 * `timings`: each scenario's own seconds (`<scenario>_s`), so that what a run costs is in its
 * JSON. `model_s` is the model's (forged on first use), `setup_s` the image set's; images and
 * texts run interleaved, so they are timed together (`images_texts_s`).
 */
async function benchOn(dir: string, options: BenchOptions, plan: (typeof PLAN)[SetSize], threads: number, scenarios: Set<Scenario>, log: (line: string) => void, timings: Record<string, number>): Promise<Record<string, unknown>> {
  let mark = performance.now();
  /** Records the seconds since the last lap as `<key>_s` (when `ran`), and starts the next. */
  const lap = (key: string, ran = true): void => {
    const now = performance.now();
    if (ran) timings[`${key}_s`] = round((now - mark) / 1000, 1);
    mark = now;
  };
  const hasQ8 = await modelFileBytes(dir, 'q8').then(() => true, () => false);
  if (!hasQ8 && scenarios.has('q8')) {
    log(`q8: skipped, ${dir} has no onnx/*_quantized.onnx (tessera forge --q8 writes them)`);
    scenarios.delete('q8');
  }
  const dims = await readDims(dir);
  const perImage = imageFlops(dims);
  const budget = IMAGE_BUDGET[options.size];
  const engineSettings = { intraOpThreads: threads, graphOptimizationLevel: options.graphOptimizationLevel };
  const report: Record<string, unknown> = {
    machine: machine(),
    model: dir,
    model_option: options.model ?? 'full',
    size: options.size,
    threads,
    graph_optimization_level: options.graphOptimizationLevel ?? 'basic (engine default)',
    flops: { per_image: perImage, per_16_token_text: textFlops(dims, 16), per_512_token_text: textFlops(dims, 512) },
    timings,
  };

  let ceiling: CeilingResult | undefined;
  if (scenarios.has('ceiling') || scenarios.has('images') || scenarios.has('texts')) {
    log('ceiling: large MatMuls ...');
    ceiling = await measureCeiling(threads, plan.ceilingSeconds, plan.ceilingShape || undefined);
    report.ceiling = { gflops: round(ceiling.gflops, 1), best_shape: ceiling.best_shape, shapes: ceiling.shapes.map((s) => ({ ...s, gflops: round(s.gflops, 1) })) };
  }
  lap('ceiling', ceiling !== undefined);
  const fraction = (flops: number, ms: number): number => (ceiling ? round(flops / (ms / 1000) / 1e9 / ceiling.gflops) : NaN);

  const setSize = (await benchImages(join(cacheRoot(), 'bench', 'images'), options.size)).length;
  const imageCount = affordable(setSize, perImage, budget.images, 2);
  const images = await benchImages(join(cacheRoot(), 'bench', 'images'), options.size, imageCount);
  const paths = images.map((i) => i.path);
  // A batch larger than the set runs as the whole set.
  const imageBatches = [...new Set(plan.imageBatches.map((b) => Math.min(b, paths.length)))];
  const corpus = textCorpus(options.size);
  lap('setup');

  let peerNames = { images: '', texts: '' };
  if (scenarios.has('images') || scenarios.has('texts')) {
    const peer = await TransformersPeer.load(dir, 'fp32', threads);
    peerNames = peer.names;
    // Warm-up runs: first session runs allocate and plan.
    await peer.embedImages(paths.slice(0, 1), 1);
    await peer.embedTexts(corpus.texts.slice(0, 2), 2);
    const ours = { images: [] as (EngineRun & { batch: number })[], texts: [] as (EngineRun & { batch: number })[] };
    const theirs = { images: [] as (PeerRun & { batch: number })[], texts: [] as (PeerRun & { batch: number })[] };
    const batches = [...new Set([...(scenarios.has('images') ? imageBatches : []), ...(scenarios.has('texts') ? [...plan.textBatches, ...plan.peerTextBatches] : [])])].sort((x, y) => x - y);
    for (const batch of batches) {
      const engine = await loadEngine(dir, { ...engineSettings, maxImageBatch: batch, maxTextBatch: batch });
      report.rewrite ??= rewriteSummary(engine);
      try {
        await engine.embed([{ text: 'warm up' }, { image: paths[0]! }]);
        // Repetitions interleave the two sides; the best of each is kept (the machine is shared).
        for (let rep = 0; rep < plan.reps; rep++) {
          if (scenarios.has('images') && imageBatches.includes(batch)) {
            log(`images: batch ${batch}, run ${rep + 1}: tessera, transformers.js ...`);
            ours.images.push({ ...(await engineImages(engine, paths)), batch });
            theirs.images.push({ ...(await peer.embedImages(paths, batch)), batch });
          }
          if (scenarios.has('texts') && (plan.textBatches as readonly number[]).includes(batch)) {
            log(`texts: batch ${batch}, run ${rep + 1}: tessera ...`);
            ours.texts.push({ ...(await engineTexts(engine, corpus.texts)), batch });
          }
          if (scenarios.has('texts') && (plan.peerTextBatches as readonly number[]).includes(batch)) {
            log(`texts: batch ${batch}, run ${rep + 1}: transformers.js ...`);
            theirs.texts.push({ ...(await peer.embedTexts(corpus.texts, batch)), batch });
          }
        }
      } finally {
        await engine.close();
      }
    }
    await peer.close();

    if (scenarios.has('images')) {
      // What preprocessing costs on its own (tessera overlaps it with inference).
      const engine = await loadEngine(dir, engineSettings);
      const t = performance.now();
      const preprocessed: Float32Array[] = [];
      for (const path of paths) preprocessed.push((await preprocessImage(path, engine.model.image)).pixels);
      const preprocessMs = performance.now() - t;
      try {
        // ONNX Runtime's profile of the graphs as shipped and as rewritten, per op (issue 21).
        log('images: profiling the original and rewritten graphs ...');
        const batch = preprocessed.slice(0, PROFILE_BATCH);
        const pixels = new Float32Array(batch.reduce((n, p) => n + p.length, 0));
        batch.reduce((at, p) => (pixels.set(p, at), at + p.length), 0);
        const profile = await rewriteProfile(engine, pixels, batch.length, corpus.texts.slice(0, PROFILE_BATCH), { threads, runs: plan.profileRuns, graphOptimizationLevel: options.graphOptimizationLevel });
        report.rewrite = { ...(report.rewrite as object), profile };
      } finally {
        await engine.close();
      }
      const a = best(ours.images), b = best(theirs.images);
      const flops = perImage * paths.length;
      report.images = {
        set: images.map((i) => `${i.width}x${i.height} ${i.format}`),
        set_note: images.length < setSize ? `${images.length} of the ${setSize} images of a ${options.size} run: ${round(perImage / 1e9, 0)} GFLOP an image; budget ${budget.images / 1e12} TFLOP a pass` : undefined,
        tessera: {
          images_per_s: round(a.items / (a.wallMs / 1000)), batch: a.batch, wall_s: round(a.wallMs / 1000),
          inference_s: round(a.inferenceMs / 1000), preprocess_s: round(preprocessMs / 1000), preprocess_overlapped: true,
          ceiling_fraction: fraction(flops, a.inferenceMs),
        },
        peer: {
          name: peerNames.images,
          images_per_s: round(b.items / (b.wallMs / 1000)), batch: b.batch, wall_s: round(b.wallMs / 1000),
          inference_s: round(b.inferenceMs / 1000), preprocess_s: round(b.preprocessMs / 1000), preprocess_overlapped: false,
          ceiling_fraction: fraction(flops, b.inferenceMs),
        },
        ratio: round(a.items / a.wallMs / (b.items / b.wallMs)),
        ceiling_fraction: fraction(flops, a.inferenceMs),
        candidates: { tessera: ours.images.map((r) => ({ batch: r.batch, images_per_s: round(r.items / (r.wallMs / 1000)) })), peer: theirs.images.map((r) => ({ batch: r.batch, images_per_s: round(r.items / (r.wallMs / 1000)) })) },
        min_cosine_to_peer: round(minCosine(a.vectors, b.vectors), 4),
        note: 'cosine to the peer is below 1 because transformers.js preprocesses images differently (docs/image-preprocessing.md)',
      };
    }
    if (scenarios.has('texts')) {
      const engine = await loadEngine(dir, engineSettings);
      const lengths = corpus.texts.map((t) => engine.tokenize(t, true).tokenCount);
      await engine.close();
      const tokens = lengths.reduce((x, y) => x + y, 0);
      const flops = lengths.reduce((sum, l) => sum + textFlops(dims, l), 0);
      const a = best(ours.texts), b = best(theirs.texts);
      report.texts = {
        corpus: corpus.description, texts: corpus.texts.length, tokens,
        tessera: {
          texts_per_s: round(a.items / (a.wallMs / 1000)), tokens_per_s: round(tokens / (a.wallMs / 1000), 1), batch: a.batch,
          wall_s: round(a.wallMs / 1000), inference_s: round(a.inferenceMs / 1000), ceiling_fraction: fraction(flops, a.inferenceMs),
        },
        peer: {
          name: peerNames.texts,
          texts_per_s: round(b.items / (b.wallMs / 1000)), tokens_per_s: round(tokens / (b.wallMs / 1000), 1), batch: b.batch,
          wall_s: round(b.wallMs / 1000), inference_s: round(b.inferenceMs / 1000), ceiling_fraction: fraction(flops, b.inferenceMs),
        },
        ratio: round(a.items / a.wallMs / (b.items / b.wallMs)),
        ceiling_fraction: fraction(flops, a.inferenceMs),
        candidates: { tessera: ours.texts.map((r) => ({ batch: r.batch, texts_per_s: round(r.items / (r.wallMs / 1000)) })), peer: theirs.texts.map((r) => ({ batch: r.batch, texts_per_s: round(r.items / (r.wallMs / 1000)) })) },
        min_cosine_to_peer: round(minCosine(a.vectors, b.vectors), 6),
        flops_note: 'ceiling fractions count the unpadded tokens\' FLOPs: padding is work the peer chose to do',
        peer_batches_note: options.size === 'quick' ? 'quick run: transformers.js at batch 1 only; padded batches of 4 ran 2.6x slower than batch 1 on an earlier 34-text version of this corpus' : undefined,
      };
    }
  }
  lap((['images', 'texts'] as const).filter((s) => scenarios.has(s)).join('_'), scenarios.has('images') || scenarios.has('texts'));

  if (scenarios.has('q8')) {
    log('q8: fp32, q8, and transformers.js on the same q8 files, interleaved ...');
    const fp32 = await loadEngine(dir, engineSettings);
    const q8 = await loadEngine(dir, { ...engineSettings, dtype: 'q8' });
    // The peer on the same q8 files (the hub-like ones, for a forged model: what users download).
    const peer = await TransformersPeer.load(dir, 'q8', threads);
    report.rewrite ??= rewriteSummary(fp32);
    report.rewrite_q8 ??= rewriteSummary(q8);
    try {
      const size = fp32.model.image.size;
      const floats = 3 * size * size;
      const pixels = new Float32Array(paths.length * floats);
      for (const [k, path] of paths.entries()) pixels.set((await preprocessImage(path, fp32.model.image)).pixels, k * floats);
      for (const e of [fp32, q8]) await e.embed([{ text: 'warm up' }]), await e.embedPixels(pixels.subarray(0, floats), 1);
      await peer.embedPixels(pixels.subarray(0, floats), 1, size, 1);
      const faster = (a: EngineRun | undefined, b: EngineRun): EngineRun => (a && a.wallMs <= b.wallMs ? a : b);
      let fi: EngineRun | undefined, qi: EngineRun | undefined, ft: EngineRun | undefined, qt: EngineRun | undefined;
      const peerImages: (PeerRun & { batch: number })[] = [];
      // Rounds interleave the three sides (the machine is shared); the best of each is kept, the
      // peer's over its batch sizes too, as the images scenario does.
      for (let rep = 0; rep < plan.reps; rep++) {
        fi = faster(fi, await enginePixels(fp32, pixels, paths.length));
        qi = faster(qi, await enginePixels(q8, pixels, paths.length));
        for (const batch of imageBatches) peerImages.push({ ...(await peer.embedPixels(pixels, paths.length, size, batch)), batch });
        ft = faster(ft, await engineTexts(fp32, corpus.texts));
        qt = faster(qt, await engineTexts(q8, corpus.texts));
      }
      if (!fi || !qi || !ft || !qt) throw new Error('no q8 runs');
      const pi = best(peerImages);
      const speedImages = fi.wallMs / qi.wallMs, speedTexts = ft.wallMs / qt.wallMs;
      const cosImages = minCosine(fi.vectors, qi.vectors), cosTexts = minCosine(ft.vectors, qt.vectors);
      const int8 = int8Reports(q8);
      log('q8: profiling the q8 files as shipped and as tessera runs them ...');
      const profileItems = Math.min(PROFILE_BATCH, paths.length);
      const profile = await q8Profile(q8, pixels, profileItems, corpus.texts.slice(0, PROFILE_BATCH), { threads, runs: plan.profileRuns, graphOptimizationLevel: options.graphOptimizationLevel });
      const q8Graphs = (await modelFiles(dir, 'q8'))?.files.filter((f) => f.endsWith('.onnx')) ?? [];
      const styles = await Promise.all(q8Graphs.map(async (f) => [f, (await forgedQ8Style(join(dir, f)).catch(() => undefined)) ?? 'not forged by tessera (or unmarked)'] as const));
      report.q8 = {
        tessera: {
          images_per_s: round(qi.items / (qi.wallMs / 1000)), texts_per_s: round(qt.items / (qt.wallMs / 1000)),
          int8_variant: { vision: int8.vision?.variant ?? 'as-is', text: int8.text?.variant ?? 'as-is' },
          int8: int8.vision || int8.text ? { vision: int8.vision ?? null, text: int8.text ?? null } : null,
        },
        peer: { name: 'tessera fp32', images_per_s: round(fi.items / (fi.wallMs / 1000)), texts_per_s: round(ft.items / (ft.wallMs / 1000)) },
        peer_q8: {
          name: `${peer.names.images.replace(/^transformers\.js \(AutoProcessor \+ /, 'transformers.js (')}, dtype q8, given tessera's pixels`,
          images_per_s: round(pi.items / (pi.wallMs / 1000)), batch: pi.batch, wall_s: round(pi.wallMs / 1000), inference_s: round(pi.inferenceMs / 1000),
          candidates: peerImages.map((r) => ({ batch: r.batch, images_per_s: round(r.items / (r.wallMs / 1000)) })),
        },
        speedup_images: round(speedImages), speedup_texts: round(speedTexts), speedup: round(Math.min(speedImages, speedTexts)),
        peer_ratio: round(qi.items / qi.wallMs / (pi.items / pi.wallMs)),
        min_cosine_images: round(cosImages, 5), min_cosine_texts: round(cosTexts, 5), min_cosine: round(Math.min(cosImages, cosTexts), 5),
        min_cosine_to_peer: round(minCosine(qi.vectors, pi.vectors), 5),
        q8_files: Object.fromEntries(styles),
        profile,
        items: { images: paths.length, texts: corpus.texts.length },
        note: 'images as preprocessed pixel tensors (tessera\'s preprocessing, the same tensors to both), so every side times the model only; ' +
          'peer_ratio: tessera q8 images/s over transformers.js q8 images/s on the same q8 files; tessera runs the int8 form int8_variant names ' +
          '(as-is: the files as they are), transformers.js the files as they are' +
          (int8.vision || int8.text ? '' : '; this loader reports no int8 choice (tessera.int8 null): the q8 files ran as they are'),
      };
    } finally {
      await Promise.all([fp32.close(), q8.close(), peer.close()]);
    }
  }
  lap('q8', scenarios.has('q8'));

  if (scenarios.has('startup')) {
    log('start-up and memory, each dtype in a fresh process ...');
    const startup: Record<string, unknown> = {};
    for (const dtype of hasQ8 ? (['fp32', 'q8'] as const) : (['fp32'] as const)) {
      const child = await childLoad(dir, dtype, threads);
      const bytes = await modelFileBytes(dir, dtype);
      startup[dtype] = {
        ready_s: round(child.ready_ms! / 1000), load_s: round(child.load_ms! / 1000), rss_after_load_mb: round(child.rss_after_load! / 2 ** 20, 0),
        rss_after_warmup_mb: round(child.rss_after_warmup! / 2 ** 20, 0), model_files_mb: round(bytes / 2 ** 20, 1), rss_ratio: round(child.rss_after_load! / bytes, 2),
      };
    }
    log(`long document (${plan.longDoc} tokens), fresh process ...`);
    const long = await childLoad(dir, 'fp32', threads, plan.longDoc);
    report.startup = {
      ...startup,
      rss_ratio: Math.max(...Object.values(startup).map((d) => (d as { rss_ratio: number }).rss_ratio)),
      long_doc: {
        tokens: long.long_doc_tokens, seconds: round(long.long_doc_ms! / 1000, 1), peak_rss_mb: round(long.peak_rss! / 2 ** 20, 0),
        note: plan.longDoc < 8192 ? `${options.size} run: a ${plan.longDoc}-token document instead of 8,192 (the full run does 8,192)` : undefined,
      },
    };
  }
  lap('startup', scenarios.has('startup'));

  if (scenarios.has('server')) report.server = await serverScenario(dir, threads, plan, corpus.texts, paths[0]!, affordable(16, perImage, budget.server, 4), log);
  lap('server', scenarios.has('server'));
  if (scenarios.has('index')) report.index = await indexScenario(dir, threads, options.size, log, (photos) => affordable(photos, perImage, budget.index, 4));
  lap('index', scenarios.has('index'));
  if (scenarios.has('photos')) report.photos = await photosScenario(dir, engineSettings, options.size, log);
  lap('photos', scenarios.has('photos'));
  if (scenarios.has('media')) report.media = await mediaScenario(dir, threads, options.size, log);
  lap('media', scenarios.has('media'));
  if (scenarios.has('search')) report.search = await searchScenario(options.size, log);
  lap('search', scenarios.has('search'));
  if (scenarios.has('store')) {
    // The embedded store's 100k of a quick run is the search scenario's: not loaded twice.
    const embedded = report.search ? embeddedFromSearch(options.size, report.search as SearchReport) : undefined;
    report.store = await storeScenario(options.size, log, embedded);
  }
  lap('store', scenarios.has('store'));
  if (scenarios.has('watch')) report.watch = await watchScenario(options.size, log);
  lap('watch', scenarios.has('watch'));
  return report;
}

function machine(): Record<string, unknown> {
  return { cpu: cpus()[0]?.model ?? 'unknown', cores: availableParallelism(), memory_gib: round(totalmem() / 2 ** 30, 1), node: process.version };
}

async function childLoad(dir: string, dtype: string, threads: number, longDoc?: number): Promise<Record<string, number>> {
  const script = fileURLToPath(new URL('./child/load.ts', import.meta.url));
  const args = ['--import', 'tsx', script, dir, dtype, String(threads), ...(longDoc ? [String(longDoc)] : [])];
  const { stdout } = await promisify(execFile)(process.execPath, args, { maxBuffer: 1 << 20 });
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as Record<string, number>;
}

async function serverScenario(dir: string, threads: number, plan: (typeof PLAN)[SetSize], corpusTexts: readonly string[], imagePath: string, offlineImages: number, log: (line: string) => void): Promise<Record<string, unknown>> {
  const { readFile } = await import('node:fs/promises');
  // Single-item requests: captions (search-box traffic, what one-item requests mostly are), one photo.
  const texts = corpusTexts.filter((t) => t.length < 160);
  const image = `data:image/jpeg;base64,${(await readFile(imagePath)).toString('base64')}`;
  const bodies = {
    text: (i: number) => JSON.stringify({ model: 'bench', input: [texts[i % texts.length]] }),
    image: () => JSON.stringify({ model: 'bench', input: [{ image }] }),
    mix: (i: number) => (i % 4 === 0 ? JSON.stringify({ model: 'bench', input: [{ image }] }) : JSON.stringify({ model: 'bench', input: [texts[i % texts.length]] })),
  };

  log('server: offline engine throughput on the same items ...');
  const engine = await loadEngine(dir, { intraOpThreads: threads, allowPaths: false });
  let offline: Record<string, number>;
  try {
    await engine.embed([{ text: 'warm up' }, { image }]);
    const textItems = Array.from({ length: 64 }, (_, i) => texts[i % texts.length]!);
    const textRun = await engineTexts(engine, textItems);
    const imageRun = await engineImages(engine, Array.from({ length: offlineImages }, () => image));
    const fullText = await engineTexts(engine, textItems.slice(0, 32));
    offline = {
      text_items_per_s: textRun.items / (textRun.wallMs / 1000),
      image_items_per_s: imageRun.items / (imageRun.wallMs / 1000),
      text_full_batch_ms: fullText.wallMs,
      // One full batch (the engine's default of 16) at the offline rate: measured whole for
      // jina-clip-v1, scaled from fewer images for a model whose images cost more.
      image_full_batch_ms: (imageRun.wallMs * 16) / offlineImages,
    };
  } finally {
    await engine.close();
  }

  const server = await startServe(dir, ['--threads', String(threads)]);
  const levels: LoadResult[] = [];
  try {
    await runLoad(server.url, 'warm-up', 2, 1, bodies.mix);
    for (const workload of ['text', 'image', 'mix'] as const) {
      for (const clients of workload === 'mix' ? [plan.levels.at(-1)!] : plan.levels) {
        log(`server: ${workload}, ${clients} clients ...`);
        const seconds = workload === 'text' ? plan.textSeconds : plan.imageSeconds;
        levels.push(await runLoad(server.url, workload, clients, seconds, bodies[workload]));
        // Aborted requests' queued work is dropped, but a batch already running finishes: one
        // more request, answered after it (one batch at a time), says when the server is idle.
        await (await fetch(`${server.url}/v1/embeddings`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: bodies.text(0) })).arrayBuffer();
        await sleep(plan.settleMs);
      }
    }
  } finally {
    await server.stop();
  }
  const top = plan.levels.at(-1)!;
  const at = (w: string) => levels.find((l) => l.workload === w && l.clients === top)!;
  const textFraction = at('text').items_per_s / offline.text_items_per_s!;
  const imageFraction = at('image').items_per_s / offline.image_items_per_s!;
  return {
    tessera: { clients: top, text_items_per_s: round(at('text').items_per_s, 2), image_items_per_s: round(at('image').items_per_s, 2), text_p99_ms: round(at('text').p99_ms, 0), image_p99_ms: round(at('image').p99_ms, 0) },
    peer: {
      name: 'tessera engine offline (same items, all at once)',
      text_items_per_s: round(offline.text_items_per_s!, 2), image_items_per_s: round(offline.image_items_per_s!, 2),
      text_full_batch_ms: round(offline.text_full_batch_ms!, 0), image_full_batch_ms: round(offline.image_full_batch_ms!, 0),
    },
    offline_fraction_text: round(textFraction), offline_fraction_image: round(imageFraction),
    offline_fraction: round(Math.min(textFraction, imageFraction)),
    p99_over_full_batch_text: round(at('text').p99_ms / offline.text_full_batch_ms!, 2),
    p99_over_full_batch_image: round(at('image').p99_ms / offline.image_full_batch_ms!, 2),
    levels: levels.map((l) => ({ ...l, items_per_s: round(l.items_per_s, 2), p50_ms: round(l.p50_ms, 0), p99_ms: round(l.p99_ms, 0) })),
  };
}

/**
 * The int8 form the loader chose for each tower's q8 graph and why (src/model/int8: `int8` on
 * the tower, where the loader reports one; undefined where it does not).
 */
function int8Reports(engine: Awaited<ReturnType<typeof loadEngine>>): { vision?: Int8Reported; text?: Int8Reported } {
  const of = (tower: unknown): Int8Reported | undefined => {
    const report = (tower as { int8?: unknown }).int8;
    return report !== null && typeof report === 'object' ? (report as Int8Reported) : undefined;
  };
  return { vision: of(engine.model.vision), text: of(engine.model.text) };
}

type Int8Reported = Record<string, unknown> & { variant?: string };

/** What the load-time graph rewrite (src/model/rewrite) fused in the engine's graphs: `rewrite.fused`. */
function rewriteSummary(engine: Awaited<ReturnType<typeof loadEngine>>): Record<string, unknown> {
  const { vision, text } = engine.model;
  const of = (r: typeof vision.session.rewrite): Record<string, number> | null => (r?.rewritten ? r.fused : null);
  return {
    passes: vision.session.rewrite?.passes ?? null,
    fused: { vision: of(vision.session.rewrite), text: of(text.session.rewrite) },
  };
}
