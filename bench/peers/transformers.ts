/**
 * The peer: transformers.js (the Node library a user would otherwise reach for) running the
 * same ONNX files, the way its documentation shows: AutoProcessor + JinaCLIPVisionModel for
 * images, AutoTokenizer + JinaCLIPTextModel with padded batches for texts. Same onnxruntime-node
 * build, same thread count; its own session defaults otherwise.
 */
import { AutoProcessor, AutoTokenizer, JinaCLIPTextModel, JinaCLIPVisionModel, RawImage, Tensor, env } from '@huggingface/transformers';

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

export class TransformersPeer {
  private constructor(
    private readonly vision: Awaited<ReturnType<typeof JinaCLIPVisionModel.from_pretrained>>,
    private readonly text: Awaited<ReturnType<typeof JinaCLIPTextModel.from_pretrained>>,
    private readonly processor: Awaited<ReturnType<typeof AutoProcessor.from_pretrained>>,
    private readonly tokenizer: Awaited<ReturnType<typeof AutoTokenizer.from_pretrained>>,
  ) {}

  static async load(dir: string, dtype: 'fp32' | 'q8', threads: number): Promise<TransformersPeer> {
    const options = { dtype, session_options: { intraOpNumThreads: threads, interOpNumThreads: 1 } } as const;
    const [vision, text, processor, tokenizer] = await Promise.all([
      JinaCLIPVisionModel.from_pretrained(dir, options),
      JinaCLIPTextModel.from_pretrained(dir, options),
      AutoProcessor.from_pretrained(dir),
      AutoTokenizer.from_pretrained(dir),
    ]);
    return new TransformersPeer(vision, text, processor, tokenizer);
  }

  /** Images from files, `batch` at a time: read + process, then run. */
  async embedImages(paths: readonly string[], batch: number): Promise<PeerRun> {
    const started = performance.now();
    let preprocessMs = 0, inferenceMs = 0;
    const vectors: Float32Array[] = [];
    for (let i = 0; i < paths.length; i += batch) {
      const t0 = performance.now();
      const images = await Promise.all(paths.slice(i, i + batch).map((p) => RawImage.read(p)));
      const inputs = await this.processor(null, images);
      const t1 = performance.now();
      const { image_embeds } = await this.vision(inputs);
      inferenceMs += performance.now() - t1;
      preprocessMs += t1 - t0;
      vectors.push(...rows(image_embeds as Tensor));
    }
    return { items: paths.length, wallMs: performance.now() - started, preprocessMs, inferenceMs, vectors };
  }

  /** Texts in the given order, `batch` at a time, padded to the longest of each batch. */
  async embedTexts(texts: readonly string[], batch: number): Promise<PeerRun> {
    const started = performance.now();
    let preprocessMs = 0, inferenceMs = 0;
    const vectors: Float32Array[] = [];
    for (let i = 0; i < texts.length; i += batch) {
      const t0 = performance.now();
      const inputs = this.tokenizer(texts.slice(i, i + batch), { padding: true, truncation: true });
      const t1 = performance.now();
      const { text_embeds } = await this.text(inputs);
      inferenceMs += performance.now() - t1;
      preprocessMs += t1 - t0;
      vectors.push(...rows(text_embeds as Tensor));
    }
    return { items: texts.length, wallMs: performance.now() - started, preprocessMs, inferenceMs, vectors };
  }

  async close(): Promise<void> {
    await Promise.all([this.vision.dispose(), this.text.dispose()]);
  }
}
