/**
 * The inputs the load-time int8 measurement runs (prepare.ts): a few synthetic images and
 * sentences, the same on every machine and every load, made through the model's own
 * preprocessing (its preprocessor_config.json, the real resize, crop and normalisation) and its
 * own tokenizer. Structured, not noise: smooth gradients, stripes, a disc and a checkerboard
 * give the activations the spread photos give, which is what decides whether an int8 kernel
 * saturates or a 7-bit weight loses too much. Small, so the measurement costs seconds: two
 * images and four sentences, one batch each.
 */
import sharp from 'sharp';
import { preprocessImage, type ImagePreprocessConfig } from '../../image/preprocess.ts';
import type { TextTokenizer } from '../../text/tokenizer.ts';
import type { TensorData } from '../session.ts';

/** One run of the measuring inputs: feeds for a graph (inputs it does not take are dropped). */
export interface ProbeBatch {
  modality: 'text' | 'image';
  items: number;
  feeds: Record<string, TensorData>;
}

export const PROBE_TEXTS = [
  'a photograph of a red bicycle leaning against a brick wall',
  'Quarterly revenue grew by 12 percent, driven by strong demand in Europe and Asia.',
  'two dogs playing in the snow',
  'Die Katze schläft auf dem warmen Fensterbrett.',
] as const;

export const PROBE_IMAGE_COUNT = 2;

/** Image k of the probe: 320 x 240 RGB (not square, so the real resize and crop run). */
export function probeImageRgb(k: number, width = 320, height = 240): Uint8Array {
  const rgb = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      const u = x / width;
      const v = y / height;
      let r: number;
      let g: number;
      let b: number;
      if (k % 2 === 0) {
        // A sky-like gradient over stripes, with a bright disc.
        const disc = (u - 0.65) ** 2 + (v - 0.4) ** 2 < 0.03;
        const stripe = Math.sin(x * 0.35 + y * 0.1) > 0.3;
        r = disc ? 250 : 40 + 150 * v + (stripe ? 40 : 0);
        g = disc ? 220 : 90 + 100 * u;
        b = disc ? 60 : 200 - 120 * v;
      } else {
        // A checkerboard under a diagonal colour ramp, with a dark band.
        const check = (Math.floor(x / 20) + Math.floor(y / 20)) % 2 === 0;
        const band = Math.abs(v - 0.7) < 0.06;
        r = band ? 15 : (check ? 230 : 30) * (0.5 + 0.5 * u);
        g = band ? 15 : 120 + 100 * Math.sin(6 * u + 3 * v);
        b = band ? 25 : (check ? 40 : 210) * (0.4 + 0.6 * v);
      }
      rgb[i] = Math.max(0, Math.min(255, Math.round(r)));
      rgb[i + 1] = Math.max(0, Math.min(255, Math.round(g)));
      rgb[i + 2] = Math.max(0, Math.min(255, Math.round(b)));
    }
  }
  return rgb;
}

/** The probe images as the model's preprocessing makes them: [n, 3, size, size] floats. */
export async function probePixels(config: ImagePreprocessConfig, count = PROBE_IMAGE_COUNT): Promise<Float32Array> {
  const size = 3 * config.size * config.size;
  const out = new Float32Array(count * size);
  for (let k = 0; k < count; k++) {
    const png = await sharp(probeImageRgb(k), { raw: { width: 320, height: 240, channels: 3 } }).png().toBuffer();
    out.set((await preprocessImage(png, config)).pixels, k * size);
  }
  return out;
}

/** The probe texts, tokenized and padded: input_ids, attention_mask and token_type_ids. */
export function probeTextFeeds(tokenizer: TextTokenizer, texts: readonly string[] = PROBE_TEXTS): Record<string, TensorData> {
  const rows = texts.map((t) => tokenizer.encode(t, true).ids);
  const length = Math.max(...rows.map((r) => r.length));
  const ids = new BigInt64Array(rows.length * length).fill(BigInt(tokenizer.padId));
  const mask = new BigInt64Array(rows.length * length);
  rows.forEach((row, k) => row.forEach((id, j) => {
    ids[k * length + j] = BigInt(id);
    mask[k * length + j] = 1n;
  }));
  const dims = [rows.length, length];
  return {
    input_ids: { type: 'int64', data: ids, dims },
    attention_mask: { type: 'int64', data: mask, dims },
    token_type_ids: { type: 'int64', data: new BigInt64Array(rows.length * length), dims },
  };
}

export interface ProbeModel {
  tokenizer: TextTokenizer;
  image: ImagePreprocessConfig;
  imageSize: number;
}

/**
 * The probe for a graph: `text` and `image` for one tower's graph, both for a graph of both
 * towers, with what such a graph needs for the other tower's input (load.ts's placeholders).
 */
export async function probeBatches(
  model: ProbeModel,
  towers: { text?: (batch: number) => Record<string, TensorData>; image?: (batch: number) => Record<string, TensorData> },
): Promise<ProbeBatch[]> {
  const batches: ProbeBatch[] = [];
  if (towers.text) batches.push({ modality: 'text', items: PROBE_TEXTS.length, feeds: { ...towers.text(PROBE_TEXTS.length), ...probeTextFeeds(model.tokenizer) } });
  if (towers.image) {
    const size = model.imageSize;
    const pixels = await probePixels({ ...model.image, size });
    batches.push({ modality: 'image', items: PROBE_IMAGE_COUNT, feeds: { ...towers.image(PROBE_IMAGE_COUNT), pixel_values: { type: 'float32', data: pixels, dims: [PROBE_IMAGE_COUNT, 3, size, size] } } });
  }
  return batches;
}
