import { TesseraError } from '../errors.ts';
import { l2normalize } from './pooling.ts';

/**
 * Jina's API cuts jina-clip-v2's 1,024 values down to 64 at most (its announcement: "from 1024
 * down to 64"; clients such as Weaviate check the same range), though the model was trained at
 * 32 too: a Matryoshka model here answers down to 1/16 of its length, or its smallest trained
 * size if larger.
 */
export const MATRYOSHKA_MIN_FRACTION = 1 / 16;

/**
 * Which `dimensions` a model answers: a Matryoshka model (jina-clip-v2, `matryoshka_dimensions`
 * in its config) any size from its floor (see MATRYOSHKA_MIN_FRACTION) to its full length, as
 * Jina's API; a model without (jina-clip-v1) any positive size, as tessera always did (it was not
 * trained for it: the README says so). Returns the size to cut to, or undefined for the full vector.
 */
export function checkDimensions(requested: number | undefined, full: number, matryoshka: readonly number[]): number | undefined {
  if (requested === undefined) return undefined;
  if (!Number.isInteger(requested) || requested < 1) {
    throw new TesseraError('DIMENSIONS_INVALID', `dimensions must be a positive integer, got ${requested}`);
  }
  if (matryoshka.length > 0) {
    const floor = Math.max(matryoshka[0]!, Math.ceil(full * MATRYOSHKA_MIN_FRACTION));
    if (requested < floor || requested > full) {
      throw new TesseraError('DIMENSIONS_INVALID', `dimensions must be from ${floor} to ${full} for this model, got ${requested}`);
    }
  }
  return requested < full ? requested : undefined;
}

/** The first `size` values of a vector (all of them when undefined), normalised again if asked. */
export function cutVector(vector: Float32Array, size: number | undefined, normalize: boolean): Float32Array {
  const kept = size === undefined ? vector : vector.slice(0, size);
  return normalize ? l2normalize(kept) : kept;
}
