import { dot } from './vectors.ts';

/**
 * Zero-shot classification as CLIP does it: softmax over the cosine similarities between an
 * item and each label's text embedding, scaled by CLIP's logit scale (100).
 */
export const LOGIT_SCALE = 100;

export interface Classification {
  prediction: string;
  score: number;
  predictions: { label: string; score: number }[];
}

/** `item` and `labelVectors` must be L2-normalised. Scores sum to 1. */
export function classify(item: Float32Array, labelVectors: readonly Float32Array[], labels: readonly string[]): Classification {
  return softmaxClassification(labelVectors.map((v) => LOGIT_SCALE * dot(item, v)), labels);
}

/** Softmax over one logit per label (few-shot classifiers score this way too). */
export function softmaxClassification(logits: readonly number[], labels: readonly string[]): Classification {
  const max = Math.max(...logits);
  const exps = logits.map((l) => Math.exp(l - max));
  const total = exps.reduce((a, b) => a + b, 0);
  const predictions = labels.map((label, i) => ({ label, score: exps[i]! / total }));
  const best = predictions.reduce((a, b) => (b.score > a.score ? b : a));
  return { prediction: best.label, score: best.score, predictions };
}
