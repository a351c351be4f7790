/**
 * The peer: transformers.js (the Node library a user would otherwise reach for) running the
 * same ONNX files, the way its documentation shows for each model. jina-clip-v1's two towers:
 * AutoProcessor + JinaCLIPVisionModel for images, AutoTokenizer + JinaCLIPTextModel with padded
 * batches for texts. jina-clip-v2's one combined graph: JinaCLIPModel for both, given
 * pixel_values (AutoProcessor's, at the config's 512 px) or the tokenizer's padded batch, which
 * sends the placeholder for the other input itself. Same onnxruntime-node build, same thread
 * count; its own session defaults otherwise.
 */
import { AutoProcessor, AutoTokenizer, JinaCLIPModel, JinaCLIPTextModel, JinaCLIPVisionModel, RawImage, Tensor, env } from '@huggingface/transformers';
import type { OnnxLayout } from '../../src/model/dtype.ts';
import { modelFiles } from '../model.ts';

env.allowRemoteModels = false;

export interface PeerRun {
  items: number;
  wallMs: number;
  preprocessMs: number;
  inferenceMs: number;
  vectors: Float32Array[];
}

function rows(t: Tensor): Float32Array[] {
  const [batch, dim] = t.dims as [number, number];
  const data = t.data as Float32Array;
  return Array.from({ length: batch }, (_, b) => data.slice(b * dim, (b + 1) * dim));
}

type Model = Awaited<ReturnType<typeof JinaCLIPModel.from_pretrained>>;
type Inputs = Record<string, unknown>;

/** One session run of either kind, returning its embeddings (not normalised). */
interface Runner {
  images(inputs: Inputs): Promise<Tensor>;
  texts(inputs: Inputs): Promise<Tensor>;
  dispose(): Promise<void>;
}

export class TransformersPeer {
  private constructor(
    /** What the report calls this side. */
    readonly names: { images: string; texts: string },
    private readonly runner: Runner,
    private readonly processor: Awaited<ReturnType<typeof AutoProcessor.from_pretrained>>,
    private readonly tokenizer: Awaited<ReturnType<typeof AutoTokenizer.from_pretrained>>,
  ) {}

  static async load(dir: string, dtype: 'fp32' | 'q8', threads: number): Promise<TransformersPeer> {
    const options = { dtype, session_options: { intraOpNumThreads: threads, interOpNumThreads: 1 } } as const;
    const layout: OnnxLayout = (await modelFiles(dir, dtype))?.layout ?? 'towers';
    const [processor, tokenizer] = await Promise.all([AutoProcessor.from_pretrained(dir), AutoTokenizer.from_pretrained(dir)]);
    if (layout === 'combined') {
      const model: Model = await JinaCLIPModel.from_pretrained(dir, options);
      const runner: Runner = {
        images: async (inputs) => (await model({ pixel_values: inputs.pixel_values })).image_embeddings as Tensor,
        texts: async (inputs) => (await model(inputs)).text_embeddings as Tensor,
        dispose: async () => void (await model.dispose()),
      };
      const names = { images: 'transformers.js (AutoProcessor + JinaCLIPModel)', texts: 'transformers.js (AutoTokenizer + JinaCLIPModel, padded batches)' };
      return new TransformersPeer(names, runner, processor, tokenizer);
    }
    const [vision, text] = await Promise.all([JinaCLIPVisionModel.from_pretrained(dir, options), JinaCLIPTextModel.from_pretrained(dir, options)]);
    const runner: Runner = {
      images: async (inputs) => (await vision(inputs)).image_embeds as Tensor,
      texts: async (inputs) => (await text(inputs)).text_embeds as Tensor,
      dispose: async () => void (await Promise.all([vision.dispose(), text.dispose()])),
    };
    const names = { images: 'transformers.js (AutoProcessor + JinaCLIPVisionModel)', texts: 'transformers.js (AutoTokenizer + JinaCLIPTextModel, padded batches)' };
    return new TransformersPeer(names, runner, processor, tokenizer);
  }

  /** Images from files, `batch` at a time: read + process, then run. */
  async embedImages(paths: readonly string[], batch: number): Promise<PeerRun> {
    const started = performance.now();
    let preprocessMs = 0, inferenceMs = 0;
    const vectors: Float32Array[] = [];
    for (let i = 0; i < paths.length; i += batch) {
      const t0 = performance.now();
      const images = await Promise.all(paths.slice(i, i + batch).map((p) => RawImage.read(p)));
      const inputs = (await this.processor(null, images)) as Inputs;
      const t1 = performance.now();
      const embeddings = await this.runner.images(inputs);
      inferenceMs += performance.now() - t1;
      preprocessMs += t1 - t0;
      vectors.push(...rows(embeddings));
    }
    return { items: paths.length, wallMs: performance.now() - started, preprocessMs, inferenceMs, vectors };
  }

  /**
   * Preprocessed images, `batch` at a time: `pixels` holds `count` CHW float32 tensors of
   * `size` x `size` back to back (the pixel_values the processor would make), so only the model
   * is timed (the q8 scenario gives both sides the same tensors).
   */
  async embedPixels(pixels: Float32Array, count: number, size: number, batch: number): Promise<PeerRun> {
    const floats = 3 * size * size;
    if (pixels.length < count * floats) throw new Error(`embedPixels: ${pixels.length} floats for ${count} images of ${size} px`);
    const started = performance.now();
    let inferenceMs = 0;
    const vectors: Float32Array[] = [];
    for (let i = 0; i < count; i += batch) {
      const n = Math.min(batch, count - i);
      const inputs = { pixel_values: new Tensor('float32', pixels.slice(i * floats, (i + n) * floats), [n, 3, size, size]) };
      const t = performance.now();
      const embeddings = await this.runner.images(inputs);
      inferenceMs += performance.now() - t;
      vectors.push(...rows(embeddings));
    }
    return { items: count, wallMs: performance.now() - started, preprocessMs: 0, inferenceMs, vectors };
  }

  /** Texts in the given order, `batch` at a time, padded to the longest of each batch. */
  async embedTexts(texts: readonly string[], batch: number): Promise<PeerRun> {
    const started = performance.now();
    let preprocessMs = 0, inferenceMs = 0;
    const vectors: Float32Array[] = [];
    for (let i = 0; i < texts.length; i += batch) {
      const t0 = performance.now();
      const inputs = this.tokenizer(texts.slice(i, i + batch), { padding: true, truncation: true }) as Inputs;
      const t1 = performance.now();
      const embeddings = await this.runner.texts(inputs);
      inferenceMs += performance.now() - t1;
      preprocessMs += t1 - t0;
      vectors.push(...rows(embeddings));
    }
    return { items: texts.length, wallMs: performance.now() - started, preprocessMs, inferenceMs, vectors };
  }

  async close(): Promise<void> {
    await this.runner.dispose();
  }
}
