/**
 * The encoder layer shared by CLIP's text and vision transformers (Hugging Face
 * CLIPEncoderLayer): pre-LayerNorm, multi-head self-attention with biases and q scaled by
 * head_dim^-0.5, a quick_gelu MLP. Param names follow the checkpoint (`self_attn.q_proj`,
 * `layer_norm1`, `mlp.fc1`, ...).
 */
import { attr, type GraphBuilder } from './graph.ts';
import { layerNorm, linear, mergeHeads, splitHeads } from './layers.ts';

export interface ClipLayerDims {
  hidden: number;
  heads: number;
  intermediate: number;
  layerNormEps: number;
}

/** quick_gelu (OpenAI's activation): x * sigmoid(1.702 x). */
export function quickGelu(g: GraphBuilder, x: string): string {
  return g.node('Mul', [x, g.node('Sigmoid', [g.node('Mul', [x, g.constFloatScalar(1.702)])])]);
}

/** One encoder layer; `bias`, when given, is added to the attention scores (broadcast to [b, heads, s, s]). */
export function clipEncoderLayer(g: GraphBuilder, d: ClipLayerDims, prefix: string, x: string, biases: readonly string[]): string {
  const headDim = d.hidden / d.heads;
  const y = layerNorm(g, x, `${prefix}.layer_norm1`, d.hidden, d.layerNormEps);
  const q = g.node('Mul', [linear(g, y, `${prefix}.self_attn.q_proj`, d.hidden, d.hidden), g.constFloatScalar(headDim ** -0.5)]);
  const k = linear(g, y, `${prefix}.self_attn.k_proj`, d.hidden, d.hidden);
  const v = linear(g, y, `${prefix}.self_attn.v_proj`, d.hidden, d.hidden);
  let scores = g.node('MatMul', [splitHeads(g, q, d.heads, headDim), splitHeads(g, k, d.heads, headDim, [0, 2, 3, 1])]);
  for (const bias of biases) scores = g.node('Add', [scores, bias]);
  const probs = g.node('Softmax', [scores], { axis: attr.int(-1) });
  const context = mergeHeads(g, g.node('MatMul', [probs, splitHeads(g, v, d.heads, headDim)]), d.heads, headDim);
  const h = g.node('Add', [x, linear(g, context, `${prefix}.self_attn.out_proj`, d.hidden, d.hidden)]);

  const z = layerNorm(g, h, `${prefix}.layer_norm2`, d.hidden, d.layerNormEps);
  const inner = quickGelu(g, linear(g, z, `${prefix}.mlp.fc1`, d.hidden, d.intermediate));
  return g.node('Add', [h, linear(g, inner, `${prefix}.mlp.fc2`, d.intermediate, d.hidden)]);
}
