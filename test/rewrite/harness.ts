// Runs an original graph and its rewrite on the same inputs and compares what they give.
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { OnnxModel } from '../../src/model/rewrite/model.ts';

export type Feeds = Record<string, ort.Tensor>;

/** A seeded generator (mulberry32): the same inputs on every run. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export async function runGraph(path: string, feeds: Feeds): Promise<Record<string, ort.Tensor>> {
  const session = await ort.InferenceSession.create(path, { graphOptimizationLevel: 'basic', intraOpNumThreads: 1 });
  try {
    const wanted = Object.fromEntries(Object.entries(feeds).filter(([name]) => session.inputNames.includes(name)));
    return await session.run(wanted);
  } finally {
    await session.release();
  }
}

/** Rows of a [rows, dim] (or [..., dim]) output. */
export function rows(t: ort.Tensor): Float32Array[] {
  const dim = t.dims[t.dims.length - 1]!;
  const data = t.data as Float32Array;
  return Array.from({ length: data.length / dim }, (_, r) => data.subarray(r * dim, (r + 1) * dim));
}

export function cosine(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  return na === 0 && nb === 0 ? 1 : dot / Math.sqrt(na * nb);
}

/** For each of `queries`, the index of its nearest (cosine) among `items`, itself excluded when both are the same set. */
export function nearest(queries: readonly Float32Array[], items: readonly Float32Array[], same: boolean): number[] {
  return queries.map((q, i) => {
    let best = -1;
    let bestScore = -Infinity;
    items.forEach((it, j) => {
      if (same && i === j) return;
      const s = cosine(q, it);
      if (s > bestScore) [best, bestScore] = [j, s];
    });
    return best;
  });
}

export const MIN_COSINE = 0.99999;

/** Every row of every float output at cosine >= MIN_COSINE to the original's; returns the worst. */
export function assertSameOutputs(original: Record<string, ort.Tensor>, rewritten: Record<string, ort.Tensor>, what: string): number {
  assert.deepEqual(Object.keys(rewritten).sort(), Object.keys(original).sort(), `${what}: outputs`);
  let worst = 1;
  for (const [name, t] of Object.entries(original)) {
    const r = rewritten[name]!;
    assert.deepEqual(r.dims, t.dims, `${what}: dims of ${name}`);
    if (t.type !== 'float32') {
      assert.deepEqual(r.data, t.data, `${what}: ${name}`);
      continue;
    }
    const [a, b] = [rows(t), rows(r)];
    a.forEach((row, i) => {
      const c = cosine(row, b[i]!);
      worst = Math.min(worst, c);
      assert.ok(c >= MIN_COSINE, `${what}: ${name} row ${i}: cosine ${c} to the original`);
    });
  }
  return worst;
}

/** Counts of each op type (domain-qualified for contrib ops) in a model file. */
export function opCounts(path: string): Record<string, number> {
  const model = new OnnxModel(path);
  try {
    const counts: Record<string, number> = {};
    for (const n of model.nodes) {
      const key = n.domain ? `${n.domain}.${n.opType}` : n.opType;
      counts[key] = (counts[key] ?? 0) + 1;
    }
    return counts;
  } finally {
    model.close();
  }
}

/** The nodes of a model file. */
export function nodesOf(path: string): OnnxModel['nodes'] {
  const model = new OnnxModel(path);
  try {
    return model.nodes;
  } finally {
    model.close();
  }
}
