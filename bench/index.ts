/**
 * The `index` scenario: `tessera index`'s pipeline (folder walk, change detection, reading,
 * decoding, embedding, batched writes into a fresh LanceDB store) over a folder of
 * photo-like JPEGs, against the engine's own offline rate on the same files (one big
 * embedImages call). The issue's target: indexing reaches >= 0.9 of the offline images/s.
 */
import { mkdir, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { Embedder } from '../src/engine/embedder.ts';
import { indexSources } from '../src/index/pipeline.ts';
import { resolveSource } from '../src/index/sources.ts';
import { openStore } from '../src/store/open.ts';
import { benchImages, type SetSize } from './corpus.ts';
import { cacheRoot } from './model.ts';
import { round } from './stats.ts';

const PLAN = {
  tiny: { images: 6, reps: 1 },
  quick: { images: 32, reps: 2 },
  full: { images: 192, reps: 2 },
} as const;

/** Photo sizes people index: phone and camera pictures, downsized exports. */
const SIZES: readonly [number, number][] = [[1024, 768], [1600, 1200], [800, 600], [2048, 1536], [1280, 960], [1200, 1600]];

/**
 * `count` distinct photo-like JPEGs, made from the bench's generated photos (resized, tinted
 * and re-encoded so every file differs), written once into the cache.
 */
export async function indexPhotos(count: number, size: SetSize): Promise<string> {
  const dir = join(cacheRoot(), 'bench', `index-${count}`);
  await mkdir(dir, { recursive: true });
  const have = (await readdir(dir)).filter((f) => f.endsWith('.jpg')).length;
  if (have >= count) return dir;
  const bases = (await benchImages(join(cacheRoot(), 'bench', 'images'), size === 'tiny' ? 'tiny' : 'quick')).map((b) => b.path);
  for (let i = 0; i < count; i++) {
    const path = join(dir, `photo-${String(i).padStart(4, '0')}.jpg`);
    if (await stat(path).then((s) => s.size > 0, () => false)) continue;
    const [width, height] = SIZES[i % SIZES.length]!;
    const tint = 0.8 + ((i * 37) % 40) / 100;
    const bytes = await sharp(bases[i % bases.length]!)
      .resize(width, height, { fit: 'cover' })
      .modulate({ brightness: tint, hue: (i * 23) % 360 })
      .jpeg({ quality: 85 })
      .toBuffer();
    await writeFile(path, bytes);
  }
  return dir;
}

/** `affordable` cuts the photo count for a model whose images cost more (jina-clip-v2). */
export async function indexScenario(modelDir: string, threads: number, size: SetSize, log: (line: string) => void, affordable: (photos: number) => number = (n) => n): Promise<Record<string, unknown>> {
  const plan = { ...PLAN[size], images: affordable(PLAN[size].images) };
  const folder = await indexPhotos(PLAN[size].images, size);
  const paths = (await readdir(folder)).filter((f) => f.endsWith('.jpg')).sort().slice(0, plan.images).map((f) => join(folder, f));
  const files = join(tmpdir(), `tessera-bench-index-${process.pid}`);
  // Exactly the files both sides see.
  await rm(files, { recursive: true, force: true });
  await mkdir(files, { recursive: true });
  const { copyFile } = await import('node:fs/promises');
  await Promise.all(paths.map((p, i) => copyFile(p, join(files, `p${String(i).padStart(4, '0')}.jpg`))));

  const embedder = await Embedder.load(modelDir, { intraOpThreads: threads });
  const offline: number[] = [];
  const indexed: number[] = [];
  const storeRoot = join(tmpdir(), `tessera-bench-store-${process.pid}`);
  let inferenceShare = 0;
  try {
    await embedder.embedImages(paths.slice(0, 2)); // first runs allocate and plan
    const local = (await readdir(files)).sort().map((f) => join(files, f));
    for (let rep = 0; rep < plan.reps; rep++) {
      log(`index: offline engine, ${local.length} photos (rep ${rep + 1}) ...`);
      let started = performance.now();
      await embedder.embedImages(local);
      offline.push(local.length / ((performance.now() - started) / 1000));

      log(`index: tessera index pipeline, ${local.length} photos into a fresh store (rep ${rep + 1}) ...`);
      await rm(storeRoot, { recursive: true, force: true });
      const store = await openStore(storeRoot);
      try {
        const [probe] = await embedder.embedTexts(['x']);
        await store.createCollection({ name: 'bench', model: modelDir, dtype: 'fp32', dimensions: probe!.embedding.length });
        let busyMs = 0;
        const stop = embedder.onBatch((r) => (busyMs += r.inferenceMs));
        started = performance.now();
        const result = await indexSources({ store, collection: 'bench', embedder, writer: { model: modelDir, dtype: 'fp32' }, sources: [await resolveSource(files)] });
        const wallMs = performance.now() - started;
        stop();
        if (result.added !== local.length) throw new Error(`index: ${result.added} of ${local.length} photos added (${result.failed} failed: ${result.failures[0]?.message ?? ''})`);
        indexed.push(result.added / (wallMs / 1000));
        inferenceShare = busyMs / wallMs;
      } finally {
        await store.close();
      }
    }
    // Once more after the last index run, so that neither side gains from running second
    // (warmer JIT, caches); each side is reported at its best.
    log(`index: offline engine again, ${local.length} photos ...`);
    const started = performance.now();
    await embedder.embedImages(local);
    offline.push(local.length / ((performance.now() - started) / 1000));
  } finally {
    await embedder.close();
    await rm(storeRoot, { recursive: true, force: true });
    await rm(files, { recursive: true, force: true });
  }
  const offlineRate = Math.max(...offline);
  const indexRate = Math.max(...indexed);
  return {
    photos: paths.length,
    sizes: SIZES.map(([w, h]) => `${w}x${h}`).join(', '),
    offline_images_per_s: round(offlineRate, 2),
    docs_per_s: round(indexRate, 2),
    offline_fraction: round(indexRate / offlineRate),
    /** Share of the indexing wall time the model spent in session runs (last rep). */
    model_busy_fraction: round(inferenceShare),
    reps: plan.reps,
    offline_runs: offline.map((r) => round(r, 2)),
    index_runs: indexed.map((r) => round(r, 2)),
    note: 'offline: one embedImages call over the files (the engine batches and decodes concurrently); index: the whole pipeline in-process (walk, hash, read, embed, atomic batched writes into LanceDB)',
  };
}
