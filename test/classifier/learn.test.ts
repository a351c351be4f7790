// The passive-aggressive learner on its own: the update rule, zero-shot starts, determinism.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { emptyModel, isWordLabel, labelsOf, predict, startsZeroShot, train, withLabels, type Example } from '../../src/classifier/learn.ts';
import { LOGIT_SCALE } from '../../src/engine/classify.ts';
import { unitVector } from '../store/contract.ts';

const DIMS = 16;
const dot = (w: Float64Array, row: number, x: Float32Array) => x.reduce((s, v, k) => s + w[row * DIMS + k]! * v, 0);

test('one update leaves the example a margin of exactly 1 over the label it was confused with', () => {
  const model = withLabels(emptyModel(DIMS), ['a', 'b', 'c']);
  const x = unitVector(7, DIMS);
  const after = train(model, [{ vector: x, label: 'b' }], 1);
  const logits = [0, 1, 2].map((i) => dot(after.weights, i, x));
  // All logits were 0: the first other label (a) is the one it was confused with.
  assert.ok(Math.abs(logits[1]! - logits[0]! - 1) < 1e-12, logits.join(' '));
  assert.equal(predict(after, x).prediction, 'b');
  // Only the true label and the one it was confused with (the first of the tied ones) move.
  assert.deepEqual(Array.from(after.weights.subarray(2 * DIMS)), new Array(DIMS).fill(0));
  // Once it beats every other label by 1, the example teaches nothing more (passive).
  const settled = train(after, [{ vector: x, label: 'b' }], 1);
  const margins = [0, 2].map((i) => dot(settled.weights, 1, x) - dot(settled.weights, i, x));
  assert.ok(margins.every((m) => m >= 1 - 1e-12), margins.join(' '));
  assert.deepEqual(train(settled, [{ vector: x, label: 'b' }], 5).weights, settled.weights);
  // An all-zero embedding (a text the model has no words for) is skipped, not NaN.
  assert.deepEqual(train(model, [{ vector: new Float32Array(DIMS), label: 'a' }], 3).weights, model.weights);
});

test('passes over separable examples end with every example classified right', () => {
  // Three clusters: each label's centre plus noise, normalised.
  const examples: Example[] = Array.from({ length: 30 }, (_, i) => {
    const centre = unitVector(1 + (i % 3), DIMS);
    const noise = unitVector(100 + i, DIMS);
    const v = centre.map((c, k) => c + 0.4 * noise[k]!);
    const norm = Math.hypot(...v);
    return { vector: v.map((x) => x / norm), label: ['x', 'y', 'z'][i % 3]! };
  });
  const model = train(withLabels(emptyModel(DIMS), labelsOf(examples)), examples, 50);
  assert.deepEqual(model.labels, ['x', 'y', 'z']);
  const right = examples.filter((e) => predict(model, e.vector).prediction === e.label).length;
  assert.equal(right, examples.length);
});

test('the same calls in the same order give the same weights, bit for bit; another order others', () => {
  const examples: Example[] = Array.from({ length: 12 }, (_, i) => ({ vector: unitVector(200 + i, DIMS), label: i % 2 ? 'odd' : 'even' }));
  const run = (list: Example[]) => {
    let m = withLabels(emptyModel(DIMS), labelsOf(list));
    m = train(m, list.slice(0, 6), 10);
    return train(m, list.slice(6), 10).weights;
  };
  assert.deepEqual(run(examples), run(examples));
  assert.notDeepEqual(run(examples), run([...examples].reverse()));
});

test('word labels start from zero-shot (logit scale x their embedding); other labels from zero', () => {
  for (const w of ['warm', 'cool', 'ok', 'defect', 'sea lion', 'Straße', "don't"]) assert.ok(isWordLabel(w), w);
  for (const w of ['A', 'SKU-1182', 'class_3', '42', 'x1', '']) assert.ok(!isWordLabel(w), w);
  assert.equal(startsZeroShot(['warm', 'cool']), true);
  assert.equal(startsZeroShot(['warm', 'B']), false);
  const e = unitVector(1, DIMS);
  const model = withLabels(emptyModel(DIMS), ['warm', 'B'], new Map([['warm', e]]));
  assert.deepEqual(Array.from(model.weights.subarray(0, DIMS)), Array.from(e, (v) => LOGIT_SCALE * v));
  assert.deepEqual(Array.from(model.weights.subarray(DIMS)), new Array(DIMS).fill(0));
  const scores = predict(model, e).predictions;
  assert.deepEqual(scores.map((p) => p.label), ['warm', 'B']);
  assert.ok(Math.abs(scores[0]!.score + scores[1]!.score - 1) < 1e-12);
});
