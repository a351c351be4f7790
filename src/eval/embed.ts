import cliProgress from 'cli-progress';
import { itemKey, type EmbeddingCache } from './cache.ts';

/** What the harness needs of a model: `Embedder` satisfies it; tests wrap it to count calls. */
export interface Encoder {
  /** `task`: what the texts are for (jina-clip-v2 puts the task's instruction before each). */
  embedTexts(texts: readonly string[], options?: { truncate?: boolean; task?: string }): Promise<{ embedding: Float32Array }[]>;
  embedImages(images: readonly Uint8Array[]): Promise<{ embedding: Float32Array }[]>;
}

/** An image read only when its chunk comes up, so memory holds one chunk of images at most. */
export type ImageLoader = () => Promise<Uint8Array>;

export interface EmbedRunOptions {
  /** Items per engine call (default 64). */
  chunk?: number;
  /** Show a cli-progress bar on stderr (only drawn when stderr is a terminal). */
  progress?: boolean;
  /** Bar label, e.g. "flickr8k captions". */
  label?: string;
}

/**
 * Texts -> unit vectors, from the cache where present; over-long texts are truncated (as MTEB
 * and CLIP-benchmark do). `task` embeds them for that task (queries: retrieval.query).
 */
export async function embedTextsCached(encoder: Encoder, cache: EmbeddingCache, texts: readonly string[], options: EmbedRunOptions & { task?: string } = {}): Promise<Float32Array[]> {
  const { task } = options;
  return embedCached(
    texts.length,
    options,
    cache,
    async (from, to) => texts.slice(from, to).map((text) => ({ key: itemKey({ text, task }), item: text })),
    (items) => encoder.embedTexts(items, task === undefined ? { truncate: true } : { truncate: true, task }),
  );
}

/** Images -> unit vectors, from the cache where present, each image read (and hashed) in its chunk. */
export async function embedImagesCached(encoder: Encoder, cache: EmbeddingCache, images: readonly ImageLoader[], options: EmbedRunOptions = {}): Promise<Float32Array[]> {
  return embedCached(
    images.length,
    options,
    cache,
    async (from, to) => Promise.all(images.slice(from, to).map(async (load) => {
      const bytes = await load();
      return { key: itemKey({ image: bytes }), item: bytes };
    })),
    (items) => encoder.embedImages(items),
  );
}

async function embedCached<T>(
  count: number,
  options: EmbedRunOptions,
  cache: EmbeddingCache,
  read: (from: number, to: number) => Promise<{ key: Buffer; item: T }[]>,
  run: (items: T[]) => Promise<{ embedding: Float32Array }[]>,
): Promise<Float32Array[]> {
  const chunk = options.chunk ?? 64;
  const out: Float32Array[] = new Array(count);
  const bar = options.progress
    ? new cliProgress.SingleBar({ format: `${(options.label ?? 'embedding').padEnd(28)} {bar} {value}/{total} {eta_formatted}`, stream: process.stderr, hideCursor: true }, cliProgress.Presets.shades_classic)
    : undefined;
  bar?.start(count, 0);
  try {
    for (let from = 0; from < count; from += chunk) {
      const to = Math.min(count, from + chunk);
      const entries = await read(from, to);
      // Items missing from the cache, each distinct item once.
      const missing = new Map<string, { key: Buffer; item: T }>();
      entries.forEach((e, k) => {
        const hit = cache.get(e.key);
        if (hit) out[from + k] = hit;
        else missing.set(e.key.toString('hex'), e);
      });
      if (missing.size > 0) {
        const todo = [...missing.values()];
        const results = await run(todo.map((e) => e.item)).catch((err: unknown) => {
          const message = err instanceof Error ? err.message : String(err);
          throw new Error(`${options.label ?? 'embedding'}, items ${from + 1}-${to} of ${count}: ${message}`, { cause: err });
        });
        todo.forEach((e, k) => cache.put(e.key, results[k]!.embedding));
        entries.forEach((e, k) => {
          out[from + k] ??= results[todo.findIndex((t) => t.key.equals(e.key))]!.embedding;
        });
      }
      bar?.update(to);
    }
  } finally {
    bar?.stop();
  }
  return out;
}
