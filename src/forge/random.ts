/**
 * Seeded pseudo-random numbers for forged weights: mulberry32 for uniforms, Box-Muller for
 * normals. Each tensor gets its own stream, derived from the model seed and the tensor's
 * name, so tensors can be generated lazily in any order and still come out the same.
 */

/** 32-bit FNV-1a of a string: a stable per-tensor seed. */
export function hashString(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/** The seed of the stream that fills tensor `name` of a model forged with `seed`. */
export function tensorSeed(seed: number, name: string): number {
  return hashString(`${seed >>> 0}:${name}`);
}

/** mulberry32: returns a function giving uniforms in [0, 1). */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Fills `out` with `mean + std * N(0, 1)` samples. The generator is inlined because the
 * full preset draws about 225 million of them.
 */
export function fillNormal(out: Float32Array, seed: number, std: number, mean = 0): Float32Array {
  let state = seed >>> 0;
  const uniform = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const n = out.length;
  for (let i = 0; i < n; i += 2) {
    const u1 = 1 - uniform(); // (0, 1]: log stays finite
    const u2 = uniform();
    const radius = Math.sqrt(-2 * Math.log(u1)) * std;
    const angle = 2 * Math.PI * u2;
    out[i] = mean + radius * Math.cos(angle);
    if (i + 1 < n) out[i + 1] = mean + radius * Math.sin(angle);
  }
  return out;
}
