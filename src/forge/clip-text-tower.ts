/**
 * OpenAI CLIP's text transformer with its projection (Hugging Face
 * CLIPTextModelWithProjection, as the hub's ONNX exports hold it): token embeddings plus
 * learned position embeddings, pre-LayerNorm encoder layers under a causal mask, a final
 * LayerNorm, the hidden state at the EOS position (the argmax of input_ids, as HF CLIP pools for
 * configs with eos_token_id 2, OpenAI's), and text_projection without bias.
 *
 * Inputs: input_ids int64 [batch_size, sequence_length] and, only when asked for,
 * attention_mask (optimum's export of this model takes input_ids alone). Output: text_embeds
 * float32 [batch_size, projection_dim], not normalised.
 *
 * Padding after the EOS never changes a result: the causal mask hides later positions from
 * every earlier one, and the pooled position is the first EOS (ArgMax returns the first
 * maximum, and the EOS has the largest id).
 */
import { clipEncoderLayer } from './clip-layers.ts';
import type { ClipTextDims } from './clip-presets.ts';
import { attr, GraphBuilder } from './graph.ts';
import { layerNorm } from './layers.ts';
import { DataType } from './onnx-proto.ts';

export const CLIP_TEXT_OUTPUT = 'text_embeds';

/** torch.finfo(float32).min, what Hugging Face CLIP puts in its causal and padding masks. */
const MASKED_SCORE = -3.4028234663852886e38;
/** onnx.TensorProto.INT32 (onnx-proto.ts lists only the types the other graphs use). */
const INT32 = 6;

export function buildClipTextGraph(d: ClipTextDims, vocabSize: number, projectionDim: number, options: { attentionMask: boolean }): GraphBuilder {
  const g = new GraphBuilder('clip_text');
  const dims = ['batch_size', 'sequence_length'];
  const ids = g.input('input_ids', DataType.INT64, dims);
  const mask = options.attentionMask ? g.input('attention_mask', DataType.INT64, dims) : undefined;
  const seqLen = g.node('Gather', [g.node('Shape', [ids]), g.constInt64([1])], { axis: attr.int(0) }); // [1]

  let hidden = g.scoped('embeddings', () => {
    const tokens = g.node('Gather', [g.param('text_model.embeddings.token_embedding.weight', [vocabSize, d.hidden], 'weight'), ids], { axis: attr.int(0) });
    const table = g.param('text_model.embeddings.position_embedding.weight', [d.maxPositions, d.hidden], 'weight');
    const positions = g.node('Slice', [table, g.constInt64([0]), seqLen, g.constInt64([0])]); // [s, hidden]
    return g.node('Add', [tokens, positions]);
  });

  const biases = g.scoped('masks', () => {
    // Causal: position i sees keys j <= i; [s, s], broadcast over batch and heads.
    const range = g.node('Range', [g.constInt64([0], []), g.node('Squeeze', [seqLen, g.constInt64([0])]), g.constInt64([1], [])]);
    const rows = g.node('Unsqueeze', [range, g.constInt64([1])]);
    const cols = g.node('Unsqueeze', [range, g.constInt64([0])]);
    const future = g.node('Cast', [g.node('Greater', [cols, rows])], { to: attr.int(DataType.FLOAT) });
    const causal = g.node('Mul', [future, g.constFloatScalar(MASKED_SCORE)]);
    if (!mask) return [causal];
    const padding = g.node('Sub', [g.constFloatScalar(1), g.node('Cast', [mask], { to: attr.int(DataType.FLOAT) })]);
    const paddingBias = g.node('Unsqueeze', [g.node('Mul', [padding, g.constFloatScalar(MASKED_SCORE)]), g.constInt64([1, 2])]); // [b, 1, 1, s]
    return [causal, paddingBias];
  });

  for (let layer = 0; layer < d.layers; layer++) {
    hidden = g.scoped(`encoder/layers.${layer}`, () => clipEncoderLayer(g, d, `text_model.encoder.layers.${layer}`, hidden, biases));
  }
  const last = layerNorm(g, hidden, 'text_model.final_layer_norm', d.hidden, d.layerNormEps);

  g.scoped('pooler', () => {
    // input_ids.to(torch.int).argmax(-1): ArgMax has no int64 kernel, hence the cast (as HF does).
    const eos = g.node('ArgMax', [g.node('Cast', [ids], { to: attr.int(INT32) })], { axis: attr.int(1), keepdims: attr.int(1) }); // [b, 1]
    const batch = g.node('Gather', [g.node('Shape', [ids]), g.constInt64([0])], { axis: attr.int(0) });
    const index = g.node('Expand', [g.node('Unsqueeze', [eos, g.constInt64([2])]), g.node('Concat', [batch, g.constInt64([1, d.hidden])], { axis: attr.int(0) })]);
    const pooled = g.node('Squeeze', [g.node('GatherElements', [last, index], { axis: attr.int(1) }), g.constInt64([1])]); // [b, hidden]
    g.node('MatMul', [pooled, g.param('text_projection.weight', [d.hidden, projectionDim], 'weight')], {}, CLIP_TEXT_OUTPUT);
  });
  g.output(CLIP_TEXT_OUTPUT, DataType.FLOAT, ['batch_size', projectionDim]);
  return g;
}
