/**
 * jina-clip-v2's text tower: the jina-embeddings-v3 backbone, XLM-RoBERTa in its "flash"
 * form with rotary position embeddings, as open_clip's HFTextEncoder runs it.
 *
 * - embeddings: word embeddings plus row 0 of the token type table (type_vocab_size 1), no
 *   absolute positions, then LayerNorm (`emb_ln`);
 * - per layer, post-LayerNorm: fused Wqkv (q, k, v in that order), rotary embedding on q and
 *   k (GPT-NeoX style: the two halves of each head rotate together, not interleaved pairs;
 *   rotary dim = head dim; positions 0..seq-1), softmax attention with a key padding mask,
 *   out_proj, norm1 after the residual; MLP fc1, exact GELU, fc2, norm2 after the residual;
 * - mean pooling over non-pad tokens; no projection (proj_type null), so the pooled hidden
 *   state is the text embedding.
 *
 * The mask is derived here from input_ids != pad id, as HFTextEncoder does, because the
 * hub's combined graph takes no attention_mask input.
 */
import { attr, type GraphBuilder } from './graph.ts';
import { gelu, layerNorm, linear, mergeHeads, splitHeads } from './layers.ts';
import { DataType } from './onnx-proto.ts';
import type { V2TextDims } from './v2-presets.ts';

/**
 * Added to the scores of pad keys: jina-embeddings-v3's non-flash attention fills with
 * -10000. A row whose keys are all pads (transformers.js's [B, 1] dummy text) then
 * attends uniformly instead of giving NaN.
 */
const PAD_SCORE = -10000;

/** Param names are the checkpoint's, under `text_model.roberta.`. */
const PREFIX = 'text_model.roberta';

/** inv_freq of the rotary embedding: base^(-2i / dim) for i < dim / 2. */
export function rotaryInverseFrequencies(headDim: number, base: number): Float32Array {
  return Float32Array.from({ length: headDim / 2 }, (_, i) => 1 / base ** ((2 * i) / headDim));
}

/** Adds the text tower reading `ids` [b, s]; returns the pooled embedding [b, hidden]. */
export function addV2TextTower(g: GraphBuilder, d: V2TextDims, ids: string): string {
  const headDim = d.hidden / d.heads;
  if (!Number.isInteger(headDim) || headDim % 2 !== 0) throw new Error('the text head dim must be an even integer');

  let hidden = g.scoped('embeddings', () => {
    const table = g.param(`${PREFIX}.embeddings.word_embeddings.weight`, [d.vocabSize, d.hidden], 'weight');
    const words = g.node('Gather', [table, ids], { axis: attr.int(0) });
    const types = g.param(`${PREFIX}.embeddings.token_type_embeddings.weight`, [d.typeVocabSize, d.hidden], 'weight');
    const typeRow = g.node('Gather', [types, g.constInt64([0], [])], { axis: attr.int(0) });
    return layerNorm(g, g.node('Add', [words, typeRow]), `${PREFIX}.emb_ln`, d.hidden, d.layerNormEps);
  });

  // keep [b, s]: 1 for real tokens, 0 for pads; padBias [b, 1, 1, s] for the scores.
  const { keep, padBias } = g.scoped('mask', () => {
    const isPad = g.node('Cast', [g.node('Equal', [ids, g.constInt64([d.padId], [])])], { to: attr.int(DataType.FLOAT) });
    return {
      keep: g.node('Sub', [g.constFloatScalar(1), isPad]),
      padBias: g.node('Unsqueeze', [g.node('Mul', [isPad, g.constFloatScalar(PAD_SCORE)]), g.constInt64([1, 2])]),
    };
  });

  // cos and sin [s, headDim] for positions 0..s-1, computed at run time from the length.
  const rope = g.scoped('rotary', () => {
    const seqLen = g.node('Gather', [g.node('Shape', [ids]), g.constInt64([1], [])], { axis: attr.int(0) });
    const positions = g.node('Cast', [g.node('Range', [g.constInt64([0], []), seqLen, g.constInt64([1], [])])], { to: attr.int(DataType.FLOAT) });
    const invFreq = g.constFloat('text_model.rotary.inv_freq', [1, headDim / 2], rotaryInverseFrequencies(headDim, d.rotaryBase));
    const angles = g.node('Mul', [g.node('Unsqueeze', [positions, g.constInt64([1])]), invFreq]); // [s, headDim / 2]
    const full = g.node('Concat', [angles, angles], { axis: attr.int(-1) });
    return { cos: g.node('Cos', [full]), sin: g.node('Sin', [full]) };
  });

  for (let layer = 0; layer < d.layers; layer++) {
    hidden = g.scoped(`encoder/layers.${layer}`, () => textLayer(g, d, `${PREFIX}.encoder.layers.${layer}`, hidden, rope, padBias));
  }

  return g.scoped('pooler', () => {
    const weights = g.node('Unsqueeze', [keep, g.constInt64([2])]); // [b, s, 1]
    const axes = g.constInt64([1]);
    const sum = g.node('ReduceSum', [g.node('Mul', [hidden, weights]), axes], { keepdims: attr.int(0) });
    const count = g.node('ReduceSum', [weights, axes], { keepdims: attr.int(0) }); // [b, 1]
    // torch.clamp(mask.sum(1), min=1e-9), as jina's mean pooler: an all-pad row gives zeros.
    return g.node('Div', [sum, g.node('Max', [count, g.constFloatScalar(1e-9)])]);
  });
}

/** x * cos + rotate_half(x) * sin, rotate_half(x) = concat(-x[d/2:], x[:d/2]) on [b, h, s, d]. */
function applyRotary(g: GraphBuilder, x: string, rope: { cos: string; sin: string }, headDim: number): string {
  const half = g.constInt64([headDim / 2, headDim / 2]);
  const [first, second] = g.nodeN('Split', [x, half], 2, { axis: attr.int(-1) });
  const rotated = g.node('Concat', [g.node('Neg', [second!]), first!], { axis: attr.int(-1) });
  return g.node('Add', [g.node('Mul', [x, rope.cos]), g.node('Mul', [rotated, rope.sin])]);
}

function textLayer(g: GraphBuilder, d: V2TextDims, prefix: string, x: string, rope: { cos: string; sin: string }, padBias: string): string {
  const headDim = d.hidden / d.heads;
  const qkv = linear(g, x, `${prefix}.mixer.Wqkv`, d.hidden, 3 * d.hidden);
  const [q, k, v] = g.nodeN('Split', [qkv, g.constInt64([d.hidden, d.hidden, d.hidden])], 3, { axis: attr.int(-1) });
  const qHeads = applyRotary(g, splitHeads(g, q!, d.heads, headDim), rope, headDim);
  const kHeads = applyRotary(g, splitHeads(g, k!, d.heads, headDim), rope, headDim);
  const scaled = g.node('Mul', [qHeads, g.constFloatScalar(1 / Math.sqrt(headDim))]);
  const scores = g.node('Add', [g.node('MatMul', [scaled, g.node('Transpose', [kHeads], { perm: attr.ints([0, 1, 3, 2]) })]), padBias]);
  const probs = g.node('Softmax', [scores], { axis: attr.int(-1) });
  const context = mergeHeads(g, g.node('MatMul', [probs, splitHeads(g, v!, d.heads, headDim)]), d.heads, headDim);
  const attention = linear(g, context, `${prefix}.mixer.out_proj`, d.hidden, d.hidden);
  const h = layerNorm(g, g.node('Add', [x, attention]), `${prefix}.norm1`, d.hidden, d.layerNormEps);

  const inner = gelu(g, linear(g, h, `${prefix}.mlp.fc1`, d.hidden, d.intermediate));
  const mlp = linear(g, inner, `${prefix}.mlp.fc2`, d.intermediate, d.hidden);
  return layerNorm(g, g.node('Add', [h, mlp]), `${prefix}.norm2`, d.hidden, d.layerNormEps);
}
