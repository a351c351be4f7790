/** What the classifier crash test's trainer trains on: 16 labels of 768-d examples, so each version is ~100 KB. */
import type { ServedModel } from '../../src/classifier/classifiers.ts';
import { emptyModel, labelsOf, startsZeroShot, train, withLabels, type Example, type LinearModel } from '../../src/classifier/learn.ts';
import { unitVector } from './contract.ts';

export const CRASH_DIMS = 768;
export const CRASH_OWNER = 'crash';
export const CRASH_LIMITS = { maxClasses: 16, maxPerOwner: 16 };
export const CRASH_MODEL: ServedModel = { model: 'demo', dtype: 'fp32', name: 'jina-clip-v1', dimensions: CRASH_DIMS };
const LABELS = ['red', 'orange', 'yellow', 'green', 'blue', 'purple', 'white', 'black', 'gray', 'pink', 'brown', 'cyan', 'magenta', 'olive', 'navy', 'teal'];
export const CRASH_EXAMPLES: Example[] = Array.from({ length: 64 }, (_, i) => ({ vector: unitVector(1000 + i, CRASH_DIMS), label: LABELS[i % LABELS.length]! }));

/** The zero-shot start's "label embeddings": deterministic, so the test can replay them. */
export async function zeroShotVectors(labels: string[]): Promise<Float32Array[]> {
  return zeroShotVectorsSync(labels);
}

/** The weights a classifier at `version` must have: creation, then version - 1 trainings, replayed. */
export async function expectedWeights(version: number): Promise<Float64Array> {
  const labels = labelsOf(CRASH_EXAMPLES);
  const start = startsZeroShot(labels) ? new Map(labels.map((l, i) => [l, zeroShotVectorsSync(labels)[i]!])) : undefined;
  let model: LinearModel = train(withLabels(emptyModel(CRASH_DIMS), labels, start), CRASH_EXAMPLES, 1);
  for (let v = 2; v <= version; v++) model = train(model, CRASH_EXAMPLES, 1);
  return model.weights;
}

function zeroShotVectorsSync(labels: string[]): Float32Array[] {
  return labels.map((l) => unitVector(LABELS.indexOf(l) + 1, CRASH_DIMS));
}
