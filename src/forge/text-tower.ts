/**
 * The text tower: JinaBERT v2 (jina-embeddings-v2 / jina-clip-v1). Post-LayerNorm BERT
 * layers with ALiBi attention instead of position embeddings, a GEGLU feed-forward, and
 * masked mean pooling over the last hidden state. Param names follow the Hugging Face
 * checkpoint (`encoder.layer.N.attention.self.query`, `mlp.gated_layers`, ...).
 *
 * Inputs: input_ids int64 [batch_size, sequence_length] and, unless left out,
 * attention_mask int64 [batch_size, sequence_length]. Output: text_embeds float32
 * [batch_size, hidden], not normalised.
 */
import { attr, GraphBuilder } from './graph.ts';
import { gelu, layerNorm, linear, mergeHeads, splitHeads } from './layers.ts';
import { DataType } from './onnx-proto.ts';
import type { TextDims } from './presets.ts';

export const TEXT_INPUTS = { ids: 'input_ids', mask: 'attention_mask' } as const;
export const TEXT_OUTPUT = 'text_embeds';

/** Added to the scores of masked keys: torch.finfo(float32).min, as Hugging Face BERT does. */
const MASKED_SCORE = -3.4028234663852886e38;

/**
 * ALiBi slopes for `heads` heads (Press et al.): a geometric sequence starting at
 * 2^(-8/n) for n a power of two; otherwise the slopes of the nearest lower power of two
 * followed by every other slope of the next power of two.
 */
export function alibiSlopes(heads: number): number[] {
  const powerOfTwo = (n: number): number[] => {
    const start = 2 ** -(2 ** -(Math.log2(n) - 3));
    return Array.from({ length: n }, (_, i) => start ** (i + 1));
  };
  if (Number.isInteger(Math.log2(heads))) return powerOfTwo(heads);
  const closest = 2 ** Math.floor(Math.log2(heads));
  return [...powerOfTwo(closest), ...powerOfTwo(2 * closest).filter((_, i) => i % 2 === 0).slice(0, heads - closest)];
}

export function buildTextGraph(d: TextDims, options: { attentionMask: boolean }): GraphBuilder {
  const g = new GraphBuilder('jina_clip_text');
  const dims = ['batch_size', 'sequence_length'];
  const ids = g.input(TEXT_INPUTS.ids, DataType.INT64, dims);
  const mask = options.attentionMask ? g.input(TEXT_INPUTS.mask, DataType.INT64, dims) : undefined;

  let hidden = g.scoped('embeddings', () => {
    const table = g.param('embeddings.word_embeddings.weight', [d.vocabSize, d.hidden], 'weight');
    const words = g.node('Gather', [table, ids], { axis: attr.int(0) });
    // Every token has token type 0: add row 0 of the token type table.
    const types = g.param('embeddings.token_type_embeddings.weight', [d.typeVocabSize, d.hidden], 'weight');
    const typeRow = g.node('Gather', [types, g.constInt64([0], [])], { axis: attr.int(0) });
    return layerNorm(g, g.node('Add', [words, typeRow]), 'embeddings.LayerNorm', d.hidden, d.layerNormEps);
  });

  // One [heads, seq, seq] ALiBi table shared by every layer and every batch row; the
  // padding mask is added per layer as a [batch, 1, 1, seq] broadcast rather than folded
  // into the table, which would make the shared table batch-sized.
  const alibi = g.scoped('alibi', () => alibiBias(g, ids, d.heads));
  const maskFloat = mask ? g.node('Cast', [mask], { to: attr.int(DataType.FLOAT) }) : undefined;
  const maskBias = maskFloat
    ? g.scoped('mask', () => {
        const masked = g.node('Sub', [g.constFloatScalar(1), maskFloat]);
        const bias = g.node('Mul', [masked, g.constFloatScalar(MASKED_SCORE)]);
        return g.node('Unsqueeze', [bias, g.constInt64([1, 2])]);
      })
    : undefined;

  for (let layer = 0; layer < d.layers; layer++) {
    hidden = g.scoped(`encoder/layer.${layer}`, () => textLayer(g, d, `encoder.layer.${layer}`, hidden, alibi, maskBias));
  }

  g.scoped('pooler', () => {
    if (!maskFloat) {
      g.node('ReduceMean', [hidden], { axes: attr.ints([1]), keepdims: attr.int(0) }, TEXT_OUTPUT);
      return;
    }
    const weights = g.node('Unsqueeze', [maskFloat, g.constInt64([2])]); // [b, s, 1]
    const axes = g.constInt64([1]);
    const sum = g.node('ReduceSum', [g.node('Mul', [hidden, weights]), axes], { keepdims: attr.int(0) });
    const count = g.node('ReduceSum', [weights, axes], { keepdims: attr.int(0) }); // [b, 1]
    // An all-padding row gives zeros, not NaN (sentence-transformers clamps the same way).
    const safeCount = g.node('Max', [count, g.constFloatScalar(1e-9)]);
    g.node('Div', [sum, safeCount], {}, TEXT_OUTPUT);
  });
  g.output(TEXT_OUTPUT, DataType.FLOAT, ['batch_size', d.hidden]);
  return g;
}

/** -slope_h * |i - j| as [heads, seq, seq], sized from the input at run time. */
function alibiBias(g: GraphBuilder, ids: string, heads: number): string {
  const seqLen = g.node('Gather', [g.node('Shape', [ids]), g.constInt64([1], [])], { axis: attr.int(0) });
  const positions = g.node('Range', [g.constInt64([0], []), seqLen, g.constInt64([1], [])]);
  const floats = g.node('Cast', [positions], { to: attr.int(DataType.FLOAT) });
  const rows = g.node('Unsqueeze', [floats, g.constInt64([1])]);
  const cols = g.node('Unsqueeze', [floats, g.constInt64([0])]);
  const distance = g.node('Abs', [g.node('Sub', [rows, cols])]);
  const slopes = g.constFloat('alibi.negative_slopes', [heads, 1, 1], alibiSlopes(heads).map((s) => -s));
  return g.node('Mul', [slopes, distance]);
}

function textLayer(g: GraphBuilder, d: TextDims, prefix: string, x: string, alibi: string, maskBias: string | undefined): string {
  const headDim = d.hidden / d.heads;
  const q = linear(g, x, `${prefix}.attention.self.query`, d.hidden, d.hidden);
  const k = linear(g, x, `${prefix}.attention.self.key`, d.hidden, d.hidden);
  const v = linear(g, x, `${prefix}.attention.self.value`, d.hidden, d.hidden);
  // Scaling q ([b, s, hidden]) is cheaper than scaling the [b, heads, s, s] scores.
  const qHeads = splitHeads(g, g.node('Mul', [q, g.constFloatScalar(1 / Math.sqrt(headDim))]), d.heads, headDim);
  const kHeadsT = splitHeads(g, k, d.heads, headDim, [0, 2, 3, 1]);
  const vHeads = splitHeads(g, v, d.heads, headDim);
  let scores = g.node('Add', [g.node('MatMul', [qHeads, kHeadsT]), alibi]);
  if (maskBias) scores = g.node('Add', [scores, maskBias]);
  const probs = g.node('Softmax', [scores], { axis: attr.int(-1) });
  const context = mergeHeads(g, g.node('MatMul', [probs, vHeads]), d.heads, headDim);
  const attention = linear(g, context, `${prefix}.attention.output.dense`, d.hidden, d.hidden);
  const h = layerNorm(g, g.node('Add', [x, attention]), `${prefix}.attention.output.LayerNorm`, d.hidden, d.layerNormEps);

  // GEGLU: GELU of the first half times the second half.
  const gated = linear(g, h, `${prefix}.mlp.gated_layers`, d.hidden, 2 * d.intermediate, false);
  const [gate, value] = g.nodeN('Split', [gated, g.constInt64([d.intermediate, d.intermediate])], 2, { axis: attr.int(-1) });
  const mlp = linear(g, g.node('Mul', [gelu(g, gate!), value!]), `${prefix}.mlp.wo`, d.intermediate, d.hidden);
  return layerNorm(g, g.node('Add', [h, mlp]), `${prefix}.mlp.layernorm`, d.hidden, d.layerNormEps);
}
