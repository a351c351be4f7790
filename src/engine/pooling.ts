import type { OutputPlan, TensorData } from '../model/session.ts';

/**
 * Reads one embedding per batch row off a session output, pooling a
 * [batch, seq, dim] hidden state when the graph does not pool itself.
 * `mask` (row-major [batch, seq], 1 = real token) restricts mean pooling to real tokens.
 */
export function readEmbeddings(output: TensorData, plan: OutputPlan, mask?: ArrayLike<bigint | number>): Float32Array[] {
  const data = output.data as Float32Array;
  const [batch, second, third] = output.dims as number[];
  if (plan.pooling === 'pooled') {
    const dim = second!;
    return Array.from({ length: batch! }, (_, b) => data.slice(b * dim, (b + 1) * dim));
  }
  const seq = second!;
  const dim = third!;
  return Array.from({ length: batch! }, (_, b) => {
    const out = new Float32Array(dim);
    if (plan.pooling === 'cls') {
      out.set(data.subarray(b * seq * dim, b * seq * dim + dim));
      return out;
    }
    let count = 0;
    for (let s = 0; s < seq; s++) {
      if (mask && Number(mask[b * seq + s]) === 0) continue;
      count++;
      const base = (b * seq + s) * dim;
      for (let d = 0; d < dim; d++) out[d]! += data[base + d]!;
    }
    for (let d = 0; d < dim; d++) out[d]! /= Math.max(count, 1);
    return out;
  });
}

/** L2-normalises in place; an all-zero vector stays zero instead of becoming NaN. */
export function l2normalize(vector: Float32Array): Float32Array {
  let sum = 0;
  for (let i = 0; i < vector.length; i++) sum += vector[i]! * vector[i]!;
  const norm = Math.sqrt(sum);
  if (norm > 0) for (let i = 0; i < vector.length; i++) vector[i]! /= norm;
  return vector;
}
