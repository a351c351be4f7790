// Each pass fuses its exact pattern and leaves every near miss alone: wrong constants, other
// axes, broadcast operands, intermediates read elsewhere, ops it does not know in a chain. Where
// something fuses, the rewritten graph gives the original's outputs.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { attr, GraphBuilder } from '../../src/forge/graph.ts';
import { gelu, layerNorm, linear, mergeHeads, silu, splitHeads } from '../../src/forge/layers.ts';
import { DataType } from '../../src/forge/onnx-proto.ts';
import { randomWeights } from '../../src/forge/random-weights.ts';
import { writeModel } from '../../src/forge/writer.ts';
import { rewriteModelFile } from '../../src/model/rewrite/index.ts';
import { tempDir } from '../helpers/models.ts';
import { assertSameOutputs, nodesOf, runGraph, seeded, type Feeds } from './harness.ts';

const INFO = { producerName: 'test', producerVersion: '1', docString: '', metadata: {}, opsetVersion: 17, irVersion: 8 };
const [B, S, H, HEADS] = [2, 7, 16, 4];
const D = H / HEADS;

/** Builds a graph reading x [B, S, H] (and whatever `build` declares), rewrites it, checks what fused and that outputs agree. */
async function check(name: string, build: (g: GraphBuilder, x: string) => string | string[], fused: Record<string, number>, extraFeeds: Feeds = {}): Promise<string> {
  const g = new GraphBuilder(name);
  const x = g.input('x', DataType.FLOAT, ['batch', 'seq', H]);
  const outs = [build(g, x)].flat();
  outs.forEach((o, i) => {
    g.node('Identity', [o], {}, `y${i}`);
    g.output(`y${i}`, DataType.FLOAT, []);
    // Declared without a shape: the outputs here have several ranks.
    delete (g.outputs[i]!.type.tensorType as { shape?: unknown }).shape;
  });
  const dir = await tempDir('tessera-pattern-');
  const source = join(dir, 'model.onnx');
  await writeModel(source, g, randomWeights(3, 0.3), INFO);
  const out = join(dir, 'rewritten.onnx');
  const result = rewriteModelFile(source, out);
  assert.deepEqual(result.fused, fused, `${name}: fused`);
  if (result.written.length > 0) {
    const random = seeded(9);
    const feeds: Feeds = { x: new ort.Tensor('float32', Float32Array.from({ length: B * S * H }, () => random() * 4 - 2), [B, S, H]), ...extraFeeds };
    assertSameOutputs(await runGraph(source, feeds), await runGraph(out, feeds), name);
  } else {
    assert.ok(result.note, `${name}: says why nothing was rewritten`);
  }
  return out;
}

const scalar = (g: GraphBuilder, v: number): string => g.constFloatScalar(v);

test('GELU: the exact erf form in its written variants fuses, and with its bias', async () => {
  await check('gelu', (g, x) => gelu(g, x), { Gelu: 1 });
  // torch's export: x * (1 + erf(x / sqrt 2)) * 0.5
  await check('gelu-div', (g, x) => g.node('Mul', [g.node('Mul', [x, g.node('Add', [g.node('Erf', [g.node('Div', [x, scalar(g, Math.SQRT2)])]), scalar(g, 1)])]), scalar(g, 0.5)]), { Gelu: 1 });
  // (x * 0.5) * (1 + erf(x / sqrt 2))
  await check('gelu-half-first', (g, x) => g.node('Mul', [g.node('Mul', [x, scalar(g, 0.5)]), g.node('Add', [g.node('Erf', [g.node('Mul', [x, scalar(g, Math.SQRT1_2)])]), scalar(g, 1)])]), { Gelu: 1 });
  await check('bias-gelu', (g, x) => gelu(g, linear(g, x, 'fc', H, 2 * H)), { BiasGelu: 1 });
});

test('GELU near misses are left alone', async () => {
  await check('gelu-wrong-scale', (g, x) => g.node('Mul', [x, g.node('Mul', [g.node('Add', [g.node('Erf', [g.node('Mul', [x, scalar(g, 0.7)])]), scalar(g, 1)]), scalar(g, 0.5)])]), {});
  await check('gelu-wrong-one', (g, x) => g.node('Mul', [x, g.node('Mul', [g.node('Add', [g.node('Erf', [g.node('Mul', [x, scalar(g, Math.SQRT1_2)])]), scalar(g, 2)]), scalar(g, 0.5)])]), {});
  await check('gelu-other-operand', (g, x) => {
    const y = g.node('Neg', [x]);
    return g.node('Mul', [y, g.node('Mul', [g.node('Add', [g.node('Erf', [g.node('Mul', [x, scalar(g, Math.SQRT1_2)])]), scalar(g, 1)]), scalar(g, 0.5)])]);
  }, {});
  // tanh approximation: no Erf, nothing to fuse
  await check('gelu-tanh', (g, x) => {
    const cube = g.node('Mul', [g.node('Mul', [x, x]), x]);
    const inner = g.node('Mul', [g.node('Add', [x, g.node('Mul', [cube, scalar(g, 0.044715)])]), scalar(g, Math.sqrt(2 / Math.PI))]);
    return g.node('Mul', [g.node('Mul', [x, scalar(g, 0.5)]), g.node('Add', [g.node('Tanh', [inner]), scalar(g, 1)])]);
  }, {});
  // the erf output read elsewhere
  await check('gelu-erf-escapes', (g, x) => {
    const erf = g.node('Erf', [g.node('Mul', [x, scalar(g, Math.SQRT1_2)])]);
    return [g.node('Mul', [x, g.node('Mul', [g.node('Add', [erf, scalar(g, 1)]), scalar(g, 0.5)])]), erf];
  }, {});
  // a bias read elsewhere: Gelu, not BiasGelu
  await check('gelu-bias-escapes', (g, x) => {
    const biased = linear(g, x, 'fc', H, H);
    return [gelu(g, biased), biased];
  }, { Gelu: 1 });
});

test('QuickGelu: x * sigmoid(a x) and SiLU fuse; a different operand does not', async () => {
  await check('silu', (g, x) => silu(g, x), { QuickGelu: 1 });
  const out = await check('quick-gelu', (g, x) => g.node('Mul', [x, g.node('Sigmoid', [g.node('Mul', [x, scalar(g, 1.702)])])]), { QuickGelu: 1 });
  const node = nodesOf(out).find((n) => n.opType === 'QuickGelu')!;
  assert.equal(node.attrs.find((a) => a.name === 'alpha')!.f, Math.fround(1.702));
  await check('gated-sigmoid', (g, x) => g.node('Mul', [g.node('Neg', [x]), g.node('Sigmoid', [x])]), {});
});

test('SkipLayerNormalization: residual + LayerNorm on the last axis, equal shapes, epsilon kept', async () => {
  const out = await check('post-ln', (g, x) => layerNorm(g, g.node('Add', [x, linear(g, x, 'proj', H, H)]), 'ln', H, 1e-12), { SkipLayerNormalization: 1 });
  const skip = nodesOf(out).find((n) => n.opType === 'SkipLayerNormalization')!;
  assert.equal(skip.attrs.find((a) => a.name === 'epsilon')!.f, Math.fround(1e-12));
  assert.equal(skip.inputs.length, 5, 'the projection bias is folded in');
  // pre-LN: the sum feeds the next residual too, through the op's fourth output
  await check('pre-ln', (g, x) => {
    const sum = g.node('Add', [x, linear(g, x, 'proj', H, H)]);
    return g.node('Add', [sum, layerNorm(g, sum, 'ln', H, 1e-6)]);
  }, { SkipLayerNormalization: 1 });
});

test('SkipLayerNormalization near misses are left alone', async () => {
  await check('ln-axis-1', (g, x) => {
    const sum = g.node('Add', [x, g.node('Neg', [x])]);
    return g.node('LayerNormalization', [sum, g.param('gamma', [S], 'scale'), g.param('beta', [S], 'bias')], { axis: attr.int(1) });
  }, {});
  await check('ln-broadcast', (g, x) => layerNorm(g, g.node('Add', [x, g.param('pos', [1, S, H], 'weight')]), 'ln', H, 1e-5), {}, {});
  await check('ln-mean-read', (g, x) => {
    const [y, mean] = g.nodeN('LayerNormalization', [g.node('Add', [x, g.node('Neg', [x])]), g.param('gamma', [H], 'scale'), g.param('beta', [H], 'bias')], 2, { axis: attr.int(-1) });
    return [y!, mean!];
  }, {});
});

/** Pre-scaled multi-head self-attention as the forge writes it; `tweak` may change the scores. */
function attention(g: GraphBuilder, x: string, tweak: (g: GraphBuilder, scores: string) => string = (_, s) => s, softmaxAxis = -1): string {
  const q = g.node('Mul', [linear(g, x, 'q', H, H), scalar(g, 1 / Math.sqrt(D))]);
  const k = linear(g, x, 'k', H, H);
  const v = linear(g, x, 'v', H, H);
  const scores = tweak(g, g.node('MatMul', [splitHeads(g, q, HEADS, D), splitHeads(g, k, HEADS, D, [0, 2, 3, 1])]));
  const probs = g.node('Softmax', [scores], { axis: attr.int(softmaxAxis) });
  return mergeHeads(g, g.node('MatMul', [probs, splitHeads(g, v, HEADS, D)]), HEADS, D);
}

test('MultiHeadAttention: plain, with a per-key mask bias (expanded) and with a per-head table', async () => {
  const out = await check('attention', (g, x) => attention(g, x), { MergedMatMul: 1, MultiHeadAttention: 1 });
  const mha = nodesOf(out).find((n) => n.opType === 'MultiHeadAttention')!;
  assert.equal(mha.attrs.find((a) => a.name === 'scale')!.f, Math.fround(1 / Math.sqrt(D)));
  assert.equal(mha.inputs.length, 3, 'no bias: the flash kernel applies');
  const random = seeded(4);
  const maskFeed = { mask: new ort.Tensor('float32', Float32Array.from({ length: B * S }, () => (random() < 0.3 ? -10000 : 0)), [B, 1, 1, S]) };
  await check('attention-mask', (g, x) => attention(g, x, (g2, s) => g2.node('Add', [s, g2.input('mask', DataType.FLOAT, ['batch', 1, 1, 'seq'])])), { MergedMatMul: 1, MultiHeadAttention: 1 }, maskFeed);
  const tableFeed = { table: new ort.Tensor('float32', Float32Array.from({ length: HEADS * S * S }, () => random() - 0.5), [HEADS, S, S]) };
  await check('attention-table', (g, x) => attention(g, x, (g2, s) => g2.node('Add', [s, g2.input('table', DataType.FLOAT, [HEADS, 'seq', 'seq'])])), { MergedMatMul: 1, MultiHeadAttention: 1 }, tableFeed);
});

test('MultiHeadAttention near misses are left alone', async () => {
  // softmax over the query axis
  await check('attention-axis', (g, x) => attention(g, x, undefined, 2), { MergedMatMul: 1 });
  // the scores read elsewhere
  await check('attention-scores-escape', (g, x) => {
    let scores = '';
    const out = attention(g, x, (_, s) => (scores = s));
    return [out, scores];
  }, { MergedMatMul: 1 });
  // a bias added before the scale: softmax((QK + B) * c) is not softmax(c QK + B)
  const random = seeded(2);
  const maskFeed = { mask: new ort.Tensor('float32', Float32Array.from({ length: B * S }, () => random() - 0.5), [B, 1, 1, S]) };
  await check('attention-bias-then-scale', (g, x) => attention(g, x, (g2, s) => g2.node('Mul', [g2.node('Add', [s, g2.input('mask', DataType.FLOAT, ['batch', 1, 1, 'seq'])]), scalar(g2, 0.5)])), { MergedMatMul: 1 }, maskFeed);
  // an op the chain does not know between the head split and the product
  await check('attention-relu-on-q', (g, x) => {
    const q = linear(g, x, 'q', H, H);
    const k = linear(g, x, 'k', H, H);
    const v = linear(g, x, 'v', H, H);
    const qh = g.node('Relu', [splitHeads(g, q, HEADS, D)]);
    const probs = g.node('Softmax', [g.node('MatMul', [qh, splitHeads(g, k, HEADS, D, [0, 2, 3, 1])])], { axis: attr.int(-1) });
    return mergeHeads(g, g.node('MatMul', [probs, splitHeads(g, v, HEADS, D)]), HEADS, D);
  }, { MergedMatMul: 1 });
});

test('merged projections: only MatMuls of one input with 2-D weights, biases folded only when private', async () => {
  await check('two-of-three', (g, x) => [linear(g, x, 'a', H, H), linear(g, x, 'b', H, 2 * H, false), g.node('MatMul', [g.node('Neg', [x]), g.param('c.weight', [H, H], 'weight')])], { MergedMatMul: 1 });
  await check('product-escapes', (g, x) => {
    const product = g.node('MatMul', [x, g.param('a.weight', [H, H], 'weight')]);
    return [g.node('Add', [product, g.param('a.bias', [H], 'bias')]), product, linear(g, x, 'b', H, H)];
  }, { MergedMatMul: 1 });
  await check('one-projection', (g, x) => linear(g, x, 'a', H, H), {});
});

test('a graph with none of the patterns is not rewritten, and says why', async () => {
  const dir = await tempDir('tessera-pattern-');
  const g = new GraphBuilder('plain');
  const x = g.input('x', DataType.FLOAT, ['batch', H]);
  g.node('Relu', [g.node('MatMul', [x, g.param('w', [H, H], 'weight')])], {}, 'y');
  g.output('y', DataType.FLOAT, ['batch', H]);
  await writeModel(join(dir, 'model.onnx'), g, randomWeights(1), INFO);
  const result = rewriteModelFile(join(dir, 'model.onnx'), join(dir, 'out.onnx'));
  assert.deepEqual(result, { fused: {}, written: [], note: result.note });
  assert.match(result.note!, /no pattern/);
});
