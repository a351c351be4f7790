/**
 * Building blocks shared by the text and vision towers, each a few ONNX nodes. Linear
 * weights are stored [in, out] (what MatMul wants), not PyTorch's [out, in].
 */
import { attr, type GraphBuilder } from './graph.ts';

export function linear(g: GraphBuilder, x: string, name: string, inDim: number, outDim: number, bias = true): string {
  const weight = g.param(`${name}.weight`, [inDim, outDim], 'weight');
  const product = g.node('MatMul', [x, weight]);
  if (!bias) return product;
  return g.node('Add', [product, g.param(`${name}.bias`, [outDim], 'bias')]);
}

export function layerNorm(g: GraphBuilder, x: string, name: string, dim: number, epsilon: number): string {
  const scale = g.param(`${name}.weight`, [dim], 'scale');
  const shift = g.param(`${name}.bias`, [dim], 'bias');
  return g.node('LayerNormalization', [x, scale, shift], { axis: attr.int(-1), epsilon: attr.float(epsilon) });
}

/** Exact GELU, x * 0.5 * (1 + erf(x / sqrt 2)): opset 17 has no Gelu op. */
export function gelu(g: GraphBuilder, x: string): string {
  const erf = g.node('Erf', [g.node('Mul', [x, g.constFloatScalar(Math.SQRT1_2)])]);
  const half = g.node('Mul', [g.node('Add', [erf, g.constFloatScalar(1)]), g.constFloatScalar(0.5)]);
  return g.node('Mul', [x, half]);
}

/** SiLU (swish), x * sigmoid(x). */
export function silu(g: GraphBuilder, x: string): string {
  return g.node('Mul', [x, g.node('Sigmoid', [x])]);
}

/** [b, s, heads * headDim] -> [b, heads, s, headDim] (`perm` [0, 2, 3, 1] gives keys as [b, heads, headDim, s]). */
export function splitHeads(g: GraphBuilder, x: string, heads: number, headDim: number, perm: readonly number[] = [0, 2, 1, 3]): string {
  const split = g.node('Reshape', [x, g.constInt64([0, 0, heads, headDim])]);
  return g.node('Transpose', [split], { perm: attr.ints(perm) });
}

/** [b, heads, s, headDim] -> [b, s, heads * headDim]. */
export function mergeHeads(g: GraphBuilder, x: string, heads: number, headDim: number): string {
  const transposed = g.node('Transpose', [x], { perm: attr.ints([0, 2, 1, 3]) });
  return g.node('Reshape', [transposed, g.constInt64([0, 0, heads * headDim])]);
}
