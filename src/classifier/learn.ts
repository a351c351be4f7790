/**
 * Few-shot classifiers: a linear model over a model's L2-normalised embeddings, one weight
 * vector per label, learnt online by the multiclass passive-aggressive algorithm (Crammer,
 * Dekel, Keshet, Shalev-Shwartz and Singer, "Online Passive-Aggressive Algorithms", JMLR 7,
 * 2006, section 7: one prototype per class, the max-loss update).
 *
 * Logits are w_label . x. A classifier whose labels are words starts from zero-shot: w_label
 * is CLIP's logit scale times the label text's embedding, so before any example it answers
 * exactly as POST /v1/classify with those labels does. Labels that are not words ("A",
 * "SKU-1182") start from zero.
 *
 * An example (x, y) updates only when the true label does not beat the best other label r by
 * a margin of 1: loss = 1 - w_y.x + w_r.x, tau = loss / (2 |x|^2), w_y += tau x, w_r -= tau x.
 * Afterwards that example's margin is exactly 1 (the "passive-aggressive" step). Passes run
 * over the call's examples in their given order, `numIters` times, in float64: the same calls
 * in the same order give the same weights, bit for bit.
 */
import { LOGIT_SCALE, softmaxClassification, type Classification } from '../engine/classify.ts';

/** The learnt part of a classifier. */
export interface LinearModel {
  /** In the order they were first trained. */
  labels: string[];
  /** labels.length x dimensions, row-major: row i is label i's weights. */
  weights: Float64Array;
  dimensions: number;
}

export interface Example {
  /** L2-normalised embedding (an all-zero one teaches nothing and is skipped). */
  vector: Float32Array;
  label: string;
}

/**
 * Whether a label reads as words the model may know, so that zero-shot is a sensible start:
 * letters only (any script), at least two of them, words joined by spaces, hyphens or
 * apostrophes. "warm", "sea lion", "ok" are; "A", "SKU-1182", "class_3" are not.
 */
export function isWordLabel(label: string): boolean {
  return /^\p{L}{2,}(?:[ '\u2019-]\p{L}+)*$/u.test(label.trim());
}

/** Every label of `labels` is a word: the classifier starts from zero-shot on them. */
export function startsZeroShot(labels: readonly string[]): boolean {
  return labels.length > 0 && labels.every(isWordLabel);
}

/** The labels of `examples` in order of first appearance. */
export function labelsOf(examples: readonly { label: string }[]): string[] {
  return [...new Set(examples.map((e) => e.label))];
}

/**
 * `model` with the labels of `examples` it does not have yet appended, each starting from its
 * zero-shot vector (LOGIT_SCALE x its text embedding, given in `initial`) or from zero.
 */
export function withLabels(model: LinearModel, added: readonly string[], initial?: ReadonlyMap<string, Float32Array>): LinearModel {
  const fresh = added.filter((l) => !model.labels.includes(l));
  if (fresh.length === 0) return model;
  const d = model.dimensions;
  const weights = new Float64Array((model.labels.length + fresh.length) * d);
  weights.set(model.weights);
  fresh.forEach((label, j) => {
    const start = initial?.get(label);
    if (!start) return;
    const row = (model.labels.length + j) * d;
    for (let k = 0; k < d; k++) weights[row + k] = LOGIT_SCALE * start[k]!;
  });
  return { labels: [...model.labels, ...fresh], weights, dimensions: d };
}

export function emptyModel(dimensions: number): LinearModel {
  return { labels: [], weights: new Float64Array(0), dimensions };
}

function logitsOf(model: LinearModel, x: ArrayLike<number>): Float64Array {
  const { dimensions: d, labels } = model;
  const out = new Float64Array(labels.length);
  for (let i = 0; i < labels.length; i++) {
    let s = 0;
    const row = i * d;
    for (let k = 0; k < d; k++) s += model.weights[row + k]! * x[k]!;
    out[i] = s;
  }
  return out;
}

/**
 * Runs `numIters` passes of the passive-aggressive update over `examples` (in order) and
 * returns the new model; `model` is not changed. Every example's label must be in the model
 * (see withLabels).
 */
export function train(model: LinearModel, examples: readonly Example[], numIters: number): LinearModel {
  const { dimensions: d } = model;
  const weights = Float64Array.from(model.weights);
  const next: LinearModel = { labels: [...model.labels], weights, dimensions: d };
  const index = new Map(next.labels.map((l, i) => [l, i]));
  for (let pass = 0; pass < numIters; pass++) {
    for (const { vector: x, label } of examples) {
      const y = index.get(label);
      if (y === undefined) throw new Error(`label ${JSON.stringify(label)} is not in the model`);
      if (next.labels.length < 2) continue; // one class: nothing to separate
      let norm2 = 0;
      for (let k = 0; k < d; k++) norm2 += x[k]! * x[k]!;
      if (norm2 === 0) continue;
      const logits = logitsOf(next, x);
      let r = -1;
      for (let i = 0; i < logits.length; i++) if (i !== y && (r < 0 || logits[i]! > logits[r]!)) r = i;
      const loss = 1 - logits[y]! + logits[r]!;
      if (loss <= 0) continue;
      const tau = loss / (2 * norm2);
      const ry = y * d;
      const rr = r * d;
      for (let k = 0; k < d; k++) {
        weights[ry + k]! += tau * x[k]!;
        weights[rr + k]! -= tau * x[k]!;
      }
    }
  }
  return next;
}

/** Softmax over the logits: scores sum to 1, labels in their trained order. */
export function predict(model: LinearModel, x: Float32Array): Classification {
  return softmaxClassification(Array.from(logitsOf(model, x)), model.labels);
}
