import { availableParallelism } from 'node:os';
import { TesseraError, invalidArgument } from '../errors.ts';
import { preprocessImageInto, type ImageSource, type PreprocessOptions } from '../image/preprocess.ts';
import { loadModelDir, releaseModel, type LoadedModel } from '../model/load.ts';
import { resolveModel, type ResolveOptions } from '../model/source.ts';
import type { SessionSettings, TensorData } from '../model/session.ts';
import type { TokenizedText } from '../text/tokenizer.ts';
import { DEFAULT_ATTENTION_BUDGET_BYTES } from './batching.ts';
import { Semaphore } from './semaphore.ts';
import { BatchScheduler, cancelled, type BatchGate, type BatchReport, type JobTiming, type Modality } from './scheduler.ts';
import { checkDimensions, cutVector } from './dimensions.ts';
import { readEmbeddings } from './pooling.ts';
import { imageTokens } from './usage.ts';

export type EmbedItem = { text: string } | { image: ImageSource };

/**
 * The task queries of a search are embedded for, on a model that has its instruction
 * (jina-clip-v2); documents go without one, as the model card embeds them.
 */
export const QUERY_TASK = 'retrieval.query';

export interface EmbedOptions {
  /** L2-normalise each vector (default true). */
  normalize?: boolean;
  /** Drop the tail of texts over the model's limit instead of failing (default false). */
  truncate?: boolean;
  /** Aborting (client gone, deadline passed) drops work not yet run: REQUEST_CANCELLED. */
  signal?: AbortSignal;
  /**
   * What the texts are for, as Jina's API names it (e.g. `retrieval.query`): a model with task
   * instructions (jina-clip-v2) puts the task's instruction before each text and refuses other
   * tasks (TASK_UNSUPPORTED). Images are not affected; models without instructions ignore it.
   */
  task?: string;
  /** Keep the first `dimensions` values of each vector (Matryoshka), normalised again if asked; see checkDimensions. */
  dimensions?: number;
}

/** What a loaded model is, for listings and limits. */
export interface ModelInfo {
  /** Length of its vectors (config.json's projection_dim). */
  dimensions: number;
  /** The most tokens of one text. */
  maxTokens: number;
  /** Side of the square images it sees. */
  imageSize: number;
  /** Sizes it was trained to be cut to (Matryoshka); empty when none. */
  matryoshkaDimensions: readonly number[];
  /** Tasks that have an instruction. */
  tasks: readonly string[];
  /** Weight precision of the files run (--dtype). */
  dtype: string;
  /** q8: the int8 form each tower runs on this CPU (src/model/int8/prepare.ts); null otherwise. */
  int8: { text: string | null; vision: string | null } | null;
}

export interface Embedding {
  embedding: Float32Array;
  /** Text items: tokens the model saw (special tokens included). */
  tokens?: number;
  /** Image items: size of the image as given. */
  width?: number;
  height?: number;
  /** Image items: what Jina bills for it on this model (tiles of its input size; see usage.ts). */
  imageTokens?: number;
  timing: JobTiming;
}

export interface EmbedderOptions extends ResolveOptions, SessionSettings, PreprocessOptions {
  /** Most texts per session run (default 32). */
  maxTextBatch?: number;
  /** Most images per session run (default 16). */
  maxImageBatch?: number;
  /** Memory one layer's attention scores may take per text batch (default 1 GiB). */
  attentionBudgetBytes?: number;
  /** When the model is idle, wait this long for concurrent work to join a batch (default 2 ms). */
  maxWaitMs?: number;
  /** Items admitted and not yet finished, across all callers; beyond it QUEUE_FULL (default 4096). */
  maxPendingItems?: number;
  /** Shared by embedders served together (a `new Semaphore(1)`): one batch of any of them at a time. */
  batchGate?: BatchGate;
}

/**
 * The embedding engine: one loaded model, embedding texts and images in any mix. Safe to
 * call concurrently: callers' items share batches, one batch at a time across both towers,
 * run on the inference thread. Results do not depend on how items are batched.
 */
export class Embedder {
  readonly model: LoadedModel;
  private readonly options: EmbedderOptions;
  private readonly scheduler: BatchScheduler;
  private pendingItems = 0;
  /** Images decoded at once across all callers: bounds memory for large photos. */
  private readonly decoding = new Semaphore(Math.max(2, availableParallelism()));
  /** Removes the model's folder when resolving made it (demo): not before close, since a restarted inference thread loads the files again. */
  private readonly cleanup: (() => Promise<void>) | undefined;

  private constructor(model: LoadedModel, options: EmbedderOptions, cleanup?: () => Promise<void>) {
    this.model = model;
    this.options = options;
    this.cleanup = cleanup;
    this.scheduler = new BatchScheduler({
      maxWaitMs: options.maxWaitMs ?? 2,
      gate: options.batchGate,
      maxImageBatch: options.maxImageBatch ?? 16,
      text: {
        maxBatch: options.maxTextBatch ?? 32,
        attentionBudgetBytes: options.attentionBudgetBytes ?? DEFAULT_ATTENTION_BUDGET_BYTES,
      },
      heads: model.text.heads,
      // Padding changes results only when the graph can neither mask it nor ignore it (CLIP pools at the end token).
      equalLengthsOnly: !(model.text.takesAttentionMask || model.text.paddingInvariant),
      runText: (rows) => this.runText(rows),
      runImages: (pixels) => this.runImages(pixels),
    });
  }

  /** Loads `model`: a hub repository id, a local folder in the hub layout, or `demo`. */
  static async load(model = 'jinaai/jina-clip-v1', options: EmbedderOptions = {}): Promise<Embedder> {
    const resolved = await resolveModel(model, options);
    try {
      return new Embedder(await loadModelDir(resolved.dir, resolved.dtype, options), options, resolved.cleanup);
    } catch (err) {
      await resolved.cleanup?.();
      throw err;
    }
  }

  get maxTokens(): number {
    return this.model.tokenizer.maxTokens;
  }

  get info(): ModelInfo {
    return {
      dimensions: this.model.dimensions,
      maxTokens: this.maxTokens,
      imageSize: this.model.image.size,
      matryoshkaDimensions: this.model.matryoshkaDimensions,
      tasks: Object.keys(this.model.taskInstructions),
      dtype: this.model.dtype,
      int8: this.model.dtype === 'q8' ? { text: this.model.text.int8?.variant ?? null, vision: this.model.vision.int8?.variant ?? null } : null,
    };
  }

  /** Calls `listener` after every batch the model runs (sizes and timings, for metrics). */
  onBatch(listener: (report: BatchReport) => void): () => void {
    this.scheduler.listeners.add(listener);
    return () => this.scheduler.listeners.delete(listener);
  }

  /** Items admitted and not yet finished, and jobs waiting for a batch per modality. */
  get load(): { pendingItems: number; queued: Record<Modality, number> } {
    return { pendingItems: this.pendingItems, queued: this.scheduler.depth };
  }

  /** QUERY_TASK when the model has an instruction for it, else undefined: what search queries are embedded for. */
  get queryTask(): string | undefined {
    return QUERY_TASK in this.model.taskInstructions ? QUERY_TASK : undefined;
  }

  /** Tokenizes without embedding: token counts for billing and limit checks. */
  tokenize(text: string, truncate = false): TokenizedText {
    return this.model.tokenizer.encode(text, truncate);
  }

  /** Embeds a mix of texts and images; results come back in input order. */
  async embed(items: readonly EmbedItem[], options: EmbedOptions = {}): Promise<Embedding[]> {
    checkDimensions(options.dimensions, this.model.dimensions, this.model.matryoshkaDimensions);
    const instruction = this.instruction(options.task);
    const texts: { index: number; text: string }[] = [];
    const images: { index: number; image: ImageSource }[] = [];
    items.forEach((item, index) => {
      if (item !== null && typeof item === 'object' && 'text' in item) texts.push({ index, text: typeof item.text === 'string' ? instruction + item.text : item.text });
      else if (item !== null && typeof item === 'object' && 'image' in item) images.push({ index, image: item.image });
      else throw invalidArgument(`input[${index}]`, 'an object with "text" or "image"', JSON.stringify(item));
    });
    return this.admitted(items.length, async () => {
      // One failing item fails the call; the other's work is dropped rather than run.
      const failed = new AbortController();
      const signal = options.signal ? AbortSignal.any([options.signal, failed.signal]) : failed.signal;
      const inner = { ...options, signal };
      const out = new Array<Embedding>(items.length);
      try {
        const [textResults, imageResults] = await Promise.all([
          this.textJobs(texts.map((t) => t.text), inner, texts.map((t) => t.index)),
          this.imageJobs(images.map((i) => i.image), inner, images.map((i) => i.index)),
        ]);
        textResults.forEach((r, k) => (out[texts[k]!.index] = r));
        imageResults.forEach((r, k) => (out[images[k]!.index] = r));
      } catch (err) {
        failed.abort();
        throw err;
      }
      return out;
    });
  }

  async embedTexts(texts: readonly string[], options: EmbedOptions = {}): Promise<Embedding[]> {
    return this.embed(texts.map((text) => ({ text })), options);
  }

  async embedImages(images: readonly ImageSource[], options: EmbedOptions = {}): Promise<Embedding[]> {
    return this.embed(images.map((image) => ({ image })), options);
  }

  /** Embeds preprocessed images: `pixels` holds `count` CHW float32 tensors back to back. */
  async embedPixels(pixels: Float32Array, count: number, options: EmbedOptions = {}): Promise<Float32Array[]> {
    const perImage = 3 * this.model.image.size ** 2;
    if (pixels.length !== count * perImage) throw invalidArgument('pixels', `${count} x ${perImage} floats`, `${pixels.length} floats`);
    return this.admitted(count, () =>
      Promise.all(
        Array.from({ length: count }, async (_, k) => {
          const { vector } = await this.scheduler.submitImage(pixels.subarray(k * perImage, (k + 1) * perImage), options.signal);
          return this.finish(vector, this.model.vision.output.normalized, options);
        }),
      ),
    );
  }

  /** Bounds the work in flight across all callers: beyond the bound, fail fast. */
  private async admitted<T>(count: number, work: () => Promise<T>): Promise<T> {
    const limit = this.options.maxPendingItems ?? 4096;
    if (this.pendingItems > 0 && this.pendingItems + count > limit) {
      throw new TesseraError('QUEUE_FULL', `the server is busy (${this.pendingItems} items in flight, limit ${limit}); retry shortly`);
    }
    this.pendingItems += count;
    try {
      return await work();
    } finally {
      this.pendingItems -= count;
    }
  }

  private async textJobs(texts: readonly string[], options: EmbedOptions, positions: readonly number[]): Promise<Embedding[]> {
    const tokenized = texts.map((text, k) => {
      try {
        return this.model.tokenizer.encode(text, options.truncate ?? false);
      } catch (err) {
        throw err instanceof TesseraError ? err.forItem(positions[k]!) : err;
      }
    });
    return Promise.all(
      tokenized.map(async (t) => {
        const { vector, timing } = await this.scheduler.submitText(t.ids, options.signal);
        return { embedding: this.finish(vector, this.model.text.output.normalized, options), tokens: t.tokenCount, timing };
      }),
    );
  }

  private async imageJobs(images: readonly ImageSource[], options: EmbedOptions, positions: readonly number[]): Promise<Embedding[]> {
    const perImage = 3 * this.model.image.size ** 2;
    // Each image is decoded (libvips, on libuv's thread pool) and queued as soon as it is
    // ready, so preprocessing overlaps with inference of earlier batches.
    return Promise.all(
      images.map(async (image, k) => {
        const pixels = new Float32Array(perImage);
        let size: { width: number; height: number };
        try {
          size = await this.decoding.run(async () => {
            if (options.signal?.aborted) throw cancelled(options.signal);
            return preprocessImageInto(image, this.model.image, pixels, 0, this.options);
          });
        } catch (err) {
          throw err instanceof TesseraError ? err.forItem(positions[k]!) : err;
        }
        const { vector, timing } = await this.scheduler.submitImage(pixels, options.signal);
        const imageTokensOf = imageTokens(size.width, size.height, this.model.image.size);
        return { embedding: this.finish(vector, this.model.vision.output.normalized, options), ...size, imageTokens: imageTokensOf, timing };
      }),
    );
  }

  async close(): Promise<void> {
    try {
      await releaseModel(this.model);
    } finally {
      await this.cleanup?.();
    }
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
    const feeds: Record<string, TensorData> = { input_ids: { type: 'int64', data: ids, dims } };
    if (tower.takesAttentionMask) feeds.attention_mask = { type: 'int64', data: mask, dims };
    if (tower.takesTokenTypeIds) feeds.token_type_ids = { type: 'int64', data: new BigInt64Array(ids.length), dims };
    const result = await tower.session.run({ ...tower.placeholders(rows.length), ...feeds }, [tower.output.name]);
    return readEmbeddings(result[tower.output.name]!, tower.output, mask);
  }

  private async runImages(images: Float32Array[]): Promise<Float32Array[]> {
    const tower = this.model.vision;
    const size = this.model.image.size;
    const perImage = 3 * size * size;
    const batch = new Float32Array(images.length * perImage);
    images.forEach((pixels, k) => batch.set(pixels, k * perImage));
    const pixelValues: TensorData = { type: 'float32', data: batch, dims: [images.length, 3, size, size] };
    const result = await tower.session.run({ ...tower.placeholders(images.length), pixel_values: pixelValues }, [tower.output.name]);
    return readEmbeddings(result[tower.output.name]!, tower.output);
  }

  /**
   * The prefix texts get for `task`: the model's instruction for it. A model with instructions
   * (jina-clip-v2) takes no other task, as Jina's API refuses them for it; one without
   * (jina-clip-v1) ignores the field, which clients such as LangChain always send.
   */
  private instruction(task: string | undefined): string {
    if (task === undefined) return '';
    if (typeof task !== 'string') throw invalidArgument('task', 'a string', task);
    const table = this.model.taskInstructions;
    const tasks = Object.keys(table);
    if (tasks.length === 0) return '';
    const instruction = table[task];
    if (instruction === undefined) {
      throw new TesseraError('TASK_UNSUPPORTED', `task ${JSON.stringify(task)} is not one this model takes; it takes ${tasks.map((t) => JSON.stringify(t)).join(', ')}, or no task`);
    }
    return instruction;
  }

  private finish(vector: Float32Array, graphNormalized: boolean, options: EmbedOptions): Float32Array {
    const size = checkDimensions(options.dimensions, this.model.dimensions, this.model.matryoshkaDimensions);
    // A graph that normalises already needs it again only once cut.
    return cutVector(vector, size, (options.normalize ?? true) && (!graphNormalized || size !== undefined));
  }
}
