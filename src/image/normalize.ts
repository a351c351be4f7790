import type { ImagePreprocessConfig } from './config.ts';

/**
 * Per-channel lookup tables giving, for every byte value, torchvision's
 * Normalize(mean, std)(ToTensor()(v)) in float32: ((v / 255) - mean) / std with each step
 * rounded to float32, as torch computes it. Doubles hold float32 operands exactly and round
 * correctly once, so every entry is bit-identical to the reference.
 */
function lookupTables(config: ImagePreprocessConfig): Float32Array[] {
  const f = Math.fround;
  return [0, 1, 2].map((c) => {
    const mean = f(config.mean[c]!);
    const std = f(config.std[c]!);
    const table = new Float32Array(256);
    for (let v = 0; v < 256; v++) table[v] = f(f(f(v / 255) - mean) / std);
    return table;
  });
}

const cache = new WeakMap<ImagePreprocessConfig, Float32Array[]>();

/**
 * Writes `rgb` (size x size pixels, interleaved R, G, B bytes) into `target` at `offset` as
 * normalised CHW float32: all of R, then G, then B, each row-major.
 */
export function normalizeInto(rgb: Uint8Array, config: ImagePreprocessConfig, target: Float32Array, offset: number): void {
  let tables = cache.get(config);
  if (!tables) {
    tables = lookupTables(config);
    cache.set(config, tables);
  }
  const plane = config.size * config.size;
  for (let c = 0; c < 3; c++) {
    const table = tables[c]!;
    const base = offset + c * plane;
    for (let i = 0; i < plane; i++) target[base + i] = table[rgb[i * 3 + c]!]!;
  }
}
