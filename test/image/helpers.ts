import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import type { ImagePreprocessConfig } from '../../src/image/config.ts';

export const FIXTURES = fileURLToPath(new URL('../fixtures/images/', import.meta.url));
export const GOLDEN = `${FIXTURES}golden/`;

/** jina-clip-v1's preprocessor_config.json, parsed. */
export const JINA: ImagePreprocessConfig = {
  pipeline: 'open_clip',
  size: 224,
  mean: [0.48145466, 0.4578275, 0.40821073],
  std: [0.26862954, 0.26130258, 0.27577711],
  resizeMode: 'shortest',
  interpolation: 'bicubic',
};

/** Xenova/clip-vit-base-patch16's preprocessor_config.json (CLIPImageProcessor), parsed. */
export const OPENAI_CLIP: ImagePreprocessConfig = { ...JINA, pipeline: 'clip_image_processor' };

/** The tolerance the preprocessing promises against the Python reference (normalised units). */
export const TOLERANCE = { mean: 0.005, max: 0.1 };

/** A golden 224 x 224 RGB PNG as interleaved bytes. */
export async function goldenRgb(name: string): Promise<Uint8Array> {
  const { data, info } = await sharp(`${GOLDEN}${name}.png`).raw().toBuffer({ resolveWithObject: true });
  if (info.channels !== 3 || info.width !== 224 || info.height !== 224) throw new Error(`golden ${name} is not 224x224 RGB`);
  return data;
}

/** ToTensor + Normalize of one byte of channel c: float32 at every step, as torch computes it. */
export function normalizeValue(v: number, c: number, config: ImagePreprocessConfig): number {
  const f = Math.fround;
  return f(f(f(v / 255) - f(config.mean[c]!)) / f(config.std[c]!));
}

/**
 * ToTensor + Normalize of interleaved RGB bytes, computed independently of the code under
 * test: per pixel, float32 at every step as torch does, CHW.
 */
export function normalizeReference(rgb: Uint8Array, config: ImagePreprocessConfig): Float32Array {
  const plane = config.size * config.size;
  const out = new Float32Array(3 * plane);
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < 3; c++) out[c * plane + i] = normalizeValue(rgb[i * 3 + c]!, c, config);
  }
  return out;
}

export interface Residual {
  mean: number;
  max: number;
  /** Values that differ at all, of `count`. */
  differing: number;
  count: number;
}

export function residual(actual: Float32Array, expected: Float32Array): Residual {
  if (actual.length !== expected.length) throw new Error(`length ${actual.length} != ${expected.length}`);
  let sum = 0;
  let max = 0;
  let differing = 0;
  for (let i = 0; i < actual.length; i++) {
    const d = Math.abs(actual[i]! - expected[i]!);
    sum += d;
    if (d > max) max = d;
    if (d !== 0) differing++;
  }
  return { mean: sum / actual.length, max, differing, count: actual.length };
}

export function formatResidual(r: Residual): string {
  return `mean |diff| ${r.mean.toFixed(5)}, max |diff| ${r.max.toFixed(4)}, ${r.differing} of ${r.count} values differ`;
}
