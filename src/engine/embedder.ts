import * as ort from 'onnxruntime-node';
import { TesseraError, invalidArgument } from '../errors.ts';
import { preprocessImageInto, type ImageSource, type PreprocessOptions } from '../image/preprocess.ts';
import { loadModelDir, releaseModel, type LoadedModel } from '../model/load.ts';
import { resolveModel, type ResolveOptions } from '../model/source.ts';
import type { SessionSettings } from '../model/session.ts';
import type { TokenizedText } from '../text/tokenizer.ts';
import { DEFAULT_ATTENTION_BUDGET_BYTES, chunkIndices, planTextBatches } from './batching.ts';
import { l2normalize, readEmbeddings } from './pooling.ts';

export type EmbedItem = { text: string } | { image: ImageSource };

export interface EmbedOptions {
  /** L2-normalise each vector (default true). */
  normalize?: boolean;
  /** Drop the tail of texts over the model's limit instead of failing (default false). */
  truncate?: boolean;
}

export interface Embedding {
  embedding: Float32Array;
  /** Text items: tokens the model saw (special tokens included). */
  tokens?: number;
  /** Image items: size of the image as given (the server bills tiles on it). */
  width?: number;
  height?: number;
}

export interface EmbedderOptions extends ResolveOptions, SessionSettings, PreprocessOptions {
  /** Most texts per session run (default 32). */
  maxTextBatch?: number;
  /** Most images per session run (default 16). */
  maxImageBatch?: number;
  /** Memory one layer's attention scores may take per text batch (default 1 GiB). */
  attentionBudgetBytes?: number;
}

/** Runs one task at a time, in call order: one ONNX session run at a time per tower. */
class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(task: () => Promise<T>): Promise<T> {
    const result = this.tail.then(task);
    this.tail = result.catch(() => undefined);
    return result;
  }
}

/**
 * The embedding engine: one loaded model, embedding texts and images in any mix. Safe to
 * call concurrently; each tower runs one batch at a time. Results do not depend on how
 * items are batched.
 */
export class Embedder {
  readonly model: LoadedModel;
  private readonly options: EmbedderOptions;
  private readonly textQueue = new SerialQueue();
  private readonly visionQueue = new SerialQueue();

  private constructor(model: LoadedModel, options: EmbedderOptions) {
    this.model = model;
    this.options = options;
  }

  /** Loads `model`: a hub repository id, a local folder in the hub layout, or `demo`. */
  static async load(model = 'jinaai/jina-clip-v1', options: EmbedderOptions = {}): Promise<Embedder> {
    const resolved = await resolveModel(model, options);
    try {
      return new Embedder(await loadModelDir(resolved.dir, resolved.dtype, options), options);
    } finally {
      await resolved.cleanup?.();
    }
  }

  get maxTokens(): number {
    return this.model.tokenizer.maxTokens;
  }

  /** Tokenizes without embedding: token counts for billing and limit checks. */
  tokenize(text: string, truncate = false): TokenizedText {
    return this.model.tokenizer.encode(text, truncate);
  }

  /** Embeds a mix of texts and images; results come back in input order. */
  async embed(items: readonly EmbedItem[], options: EmbedOptions = {}): Promise<Embedding[]> {
    const texts: { index: number; text: string }[] = [];
    const images: { index: number; image: ImageSource }[] = [];
    items.forEach((item, index) => {
      if (item !== null && typeof item === 'object' && 'text' in item) texts.push({ index, text: item.text });
      else if (item !== null && typeof item === 'object' && 'image' in item) images.push({ index, image: item.image });
      else throw invalidArgument(`input[${index}]`, 'an object with "text" or "image"', JSON.stringify(item));
    });
    const out = new Array<Embedding>(items.length);
    const [textResults, imageResults] = await Promise.all([
      this.embedTexts(texts.map((t) => t.text), options, texts.map((t) => t.index)),
      this.embedImages(images.map((i) => i.image), options, images.map((i) => i.index)),
    ]);
    textResults.forEach((r, k) => (out[texts[k]!.index] = r));
    imageResults.forEach((r, k) => (out[images[k]!.index] = r));
    return out;
  }

  /** `positions` only renames items in errors (input[i]) when called on behalf of embed(). */
  async embedTexts(texts: readonly string[], options: EmbedOptions = {}, positions?: readonly number[]): Promise<Embedding[]> {
    if (texts.length === 0) return [];
    const tokenized = texts.map((text, k) => {
      try {
        return this.model.tokenizer.encode(text, options.truncate ?? false);
      } catch (err) {
        throw err instanceof TesseraError ? err.forItem(positions?.[k] ?? k) : err;
      }
    });
    const tower = this.model.text;
    const batches = planTextBatches(tokenized.map((t) => t.ids.length), {
      maxBatch: this.options.maxTextBatch ?? 32,
      attentionBudgetBytes: this.options.attentionBudgetBytes ?? DEFAULT_ATTENTION_BUDGET_BYTES,
      heads: tower.heads,
      equalLengthsOnly: !tower.takesAttentionMask,
    });
    const vectors = new Array<Float32Array>(texts.length);
    for (const batch of batches) {
      const rows = await this.textQueue.run(() => this.runText(batch.map((i) => tokenized[i]!.ids)));
      batch.forEach((i, k) => (vectors[i] = rows[k]!));
    }
    return tokenized.map((t, i) => ({ embedding: this.finish(vectors[i]!, tower.output.normalized, options), tokens: t.tokenCount }));
  }

  async embedImages(images: readonly ImageSource[], options: EmbedOptions = {}, positions?: readonly number[]): Promise<Embedding[]> {
    if (images.length === 0) return [];
    const size = this.model.image.size;
    const perImage = 3 * size * size;
    const results: Embedding[] = [];
    for (const chunk of chunkIndices(images.length, this.options.maxImageBatch ?? 16)) {
      // Decode the whole chunk concurrently (libvips works on libuv's thread pool), straight into the batch tensor.
      const pixels = new Float32Array(chunk.length * perImage);
      const decoded = await Promise.all(
        chunk.map((i, k) =>
          preprocessImageInto(images[i]!, this.model.image, pixels, k * perImage, this.options).catch((err: unknown) => {
            throw err instanceof TesseraError ? err.forItem(positions?.[i] ?? i) : err;
          }),
        ),
      );
      const vectors = await this.embedPixels(pixels, chunk.length, options);
      decoded.forEach((d, k) => results.push({ embedding: vectors[k]!, width: d.width, height: d.height }));
    }
    return results;
  }

  /** Embeds preprocessed images: `pixels` holds `count` CHW float32 tensors back to back. */
  async embedPixels(pixels: Float32Array, count: number, options: EmbedOptions = {}): Promise<Float32Array[]> {
    const size = this.model.image.size;
    const perImage = 3 * size * size;
    if (pixels.length !== count * perImage) throw invalidArgument('pixels', `${count} x 3 x ${size} x ${size} floats`, `${pixels.length} floats`);
    const tower = this.model.vision;
    const out: Float32Array[] = [];
    for (const chunk of chunkIndices(count, this.options.maxImageBatch ?? 16)) {
      const slice = pixels.subarray(chunk[0]! * perImage, (chunk.at(-1)! + 1) * perImage);
      const feeds = { pixel_values: new ort.Tensor('float32', slice, [chunk.length, 3, size, size]) };
      const rows = await this.visionQueue.run(async () => {
        const result = await tower.session.run(feeds);
        return readEmbeddings(result[tower.output.name]!, tower.output);
      });
      out.push(...rows.map((v) => this.finish(v, tower.output.normalized, options)));
    }
    return out;
  }

  async close(): Promise<void> {
    await releaseModel(this.model);
  }

  private async runText(rows: number[][]): Promise<Float32Array[]> {
    const tower = this.model.text;
    const width = Math.max(...rows.map((r) => r.length));
    const ids = new BigInt64Array(rows.length * width).fill(BigInt(this.model.tokenizer.padId));
    const mask = new BigInt64Array(rows.length * width);
    rows.forEach((row, b) => {
      row.forEach((id, s) => {
        ids[b * width + s] = BigInt(id);
        mask[b * width + s] = 1n;
      });
    });
    const dims = [rows.length, width];
    const feeds: Record<string, ort.Tensor> = { input_ids: new ort.Tensor('int64', ids, dims) };
    if (tower.takesAttentionMask) feeds.attention_mask = new ort.Tensor('int64', mask, dims);
    if (tower.takesTokenTypeIds) feeds.token_type_ids = new ort.Tensor('int64', new BigInt64Array(ids.length), dims);
    const result = await tower.session.run(feeds);
    return readEmbeddings(result[tower.output.name]!, tower.output, mask);
  }

  private finish(vector: Float32Array, graphNormalized: boolean, options: EmbedOptions): Float32Array {
    return (options.normalize ?? true) && !graphNormalized ? l2normalize(vector) : vector;
  }
}
