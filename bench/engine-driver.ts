/** Drives tessera's engine over a set of items and splits its time: the tessera side of each scenario. */
import { Embedder, type EmbedderOptions } from '../src/engine/embedder.ts';
import type { Modality } from '../src/engine/scheduler.ts';

export interface EngineRun {
  items: number;
  wallMs: number;
  /** Time the model was busy (sum of session runs). */
  inferenceMs: number;
  batches: number;
  vectors: Float32Array[];
}

export async function loadEngine(dir: string, options: EmbedderOptions): Promise<Embedder> {
  return Embedder.load(dir, options);
}

/** Runs `work` and sums the engine's batch times of `modality` while it runs. */
export async function timed(embedder: Embedder, modality: Modality, work: () => Promise<Float32Array[]>): Promise<EngineRun> {
  let inferenceMs = 0, batches = 0;
  const stop = embedder.onBatch((report) => {
    if (report.modality !== modality) return;
    inferenceMs += report.inferenceMs;
    batches++;
  });
  const started = performance.now();
  try {
    const vectors = await work();
    return { items: vectors.length, wallMs: performance.now() - started, inferenceMs, batches, vectors };
  } finally {
    stop();
  }
}

export function engineImages(embedder: Embedder, paths: readonly string[]): Promise<EngineRun> {
  return timed(embedder, 'image', async () => (await embedder.embedImages(paths, { normalize: false })).map((e) => e.embedding));
}

export function engineTexts(embedder: Embedder, texts: readonly string[]): Promise<EngineRun> {
  return timed(embedder, 'text', async () => (await embedder.embedTexts(texts, { normalize: false, truncate: true })).map((e) => e.embedding));
}

export function enginePixels(embedder: Embedder, pixels: Float32Array, count: number): Promise<EngineRun> {
  return timed(embedder, 'image', () => embedder.embedPixels(pixels, count, { normalize: false }));
}
