/**
 * The vision tower: EVA-02 ViT as jina-clip-v1 configures it. 16x16 patch embedding, a CLS
 * token and absolute position embeddings, pre-LayerNorm blocks whose attention applies 2D
 * rotary position embedding to the queries and keys of patch tokens (not CLS) and normalises
 * its output before the projection (EVA-02's `subln`), a SwiGLU feed-forward with an inner
 * LayerNorm, a final LayerNorm, mean pooling over patch tokens and a linear head.
 * jina-clip-v2's EVA02-L/14 is the same tower with other sizes and CLS pooling
 * (addVisionTower's options; v2-graph.ts builds it into the combined graph).
 *
 * Input: pixel_values float32 [batch_size, 3, 224, 224] (normalised with the processor's
 * mean/std). Output: image_embeds float32 [batch_size, projection_dim], not normalised.
 */
import { attr, GraphBuilder } from './graph.ts';
import { layerNorm, linear, mergeHeads, silu, splitHeads } from './layers.ts';
import { DataType } from './onnx-proto.ts';
import { patchesPerSide, visionHeads, visionMlpHidden, type VisionDims } from './presets.ts';

export const VISION_INPUT = 'pixel_values';
export const VISION_OUTPUT = 'image_embeds';

/** The pooling this tower uses, as recorded in config.json. */
export const VISION_POOLING: 'mean' | 'cls' = 'mean';

const ROPE_THETA = 10000;

/**
 * EVA-02's VisionRotaryEmbeddingFast tables, [patches, headDim]: the first half of each
 * head's dims rotate with the patch's row, the second half with its column; within a half,
 * frequency k is used by the interleaved pair (2k, 2k+1).
 */
export function rotaryTables(v: VisionDims): { cos: Float32Array; sin: Float32Array } {
  const headDim = v.headWidth;
  const side = patchesPerSide(v);
  const halfDim = headDim / 2; // EVA's `dim` argument: rotary dims per axis
  const freqs = Array.from({ length: halfDim / 2 }, (_, k) => 1 / ROPE_THETA ** ((2 * k) / halfDim));
  const position = (i: number): number => (i / side) * v.ptHwSeqLen;
  const cos = new Float32Array(side * side * headDim);
  const sin = new Float32Array(side * side * headDim);
  for (let row = 0; row < side; row++) {
    for (let col = 0; col < side; col++) {
      const base = (row * side + col) * headDim;
      for (let k = 0; k < freqs.length; k++) {
        for (const [offset, pos] of [[0, position(row)], [halfDim, position(col)]] as const) {
          const angle = pos * freqs[k]!;
          for (const pair of [0, 1]) {
            cos[base + offset + 2 * k + pair] = Math.cos(angle);
            sin[base + offset + 2 * k + pair] = Math.sin(angle);
          }
        }
      }
    }
  }
  return { cos, sin };
}

/** R with x @ R = EVA's rotate_half: (x0, x1, x2, x3, ...) -> (-x1, x0, -x3, x2, ...). */
function rotateHalfMatrix(headDim: number): Float32Array {
  const r = new Float32Array(headDim * headDim);
  for (let k = 0; k < headDim; k += 2) {
    r[(k + 1) * headDim + k] = -1;
    r[k * headDim + k + 1] = 1;
  }
  return r;
}

export function buildVisionGraph(v: VisionDims, projectionDim: number): GraphBuilder {
  const g = new GraphBuilder('jina_clip_vision');
  const pixels = g.input(VISION_INPUT, DataType.FLOAT, ['batch_size', 3, v.imageSize, v.imageSize]);
  addVisionTower(g, v, projectionDim, pixels, { prefix: '', pooling: VISION_POOLING, output: VISION_OUTPUT });
  g.output(VISION_OUTPUT, DataType.FLOAT, ['batch_size', projectionDim]);
  return g;
}

export interface VisionTowerOptions {
  /** Prepended to every param and table name ('' for v1's own graph, 'vision_model.' in v2's combined one). */
  prefix: string;
  /** `mean` over patch tokens (jina-clip-v1) or the `cls` token (jina-clip-v2), after the final LayerNorm. */
  pooling: 'mean' | 'cls';
  /** Name of the embedding the tower produces, [batch, projectionDim]. */
  output: string;
}

/**
 * Adds the tower to `g`, reading `pixels` [batch, 3, imageSize, imageSize]. A patch grid that
 * does not fill the image (v2: 36 patches of 14 on 512 px) drops the last pixels of each
 * row and column, as the stride-patch convolution of the original does.
 */
export function addVisionTower(g: GraphBuilder, v: VisionDims, projectionDim: number, pixels: string, options: VisionTowerOptions): string {
  if (v.imageSize < v.patchSize) throw new Error('image size must be at least the patch size');
  if (v.headWidth % 4 !== 0) throw new Error('2D rotary embedding needs a head width divisible by 4');
  const { prefix } = options;
  const side = patchesPerSide(v);
  const patches = side * side;
  const tokens = patches + 1;

  let x = g.scoped('embeddings', () => {
    const kernel = g.param(`${prefix}patch_embed.proj.weight`, [v.width, 3, v.patchSize, v.patchSize], 'weight');
    const conv = g.node('Conv', [pixels, kernel, g.param(`${prefix}patch_embed.proj.bias`, [v.width], 'bias')], {
      kernel_shape: attr.ints([v.patchSize, v.patchSize]),
      strides: attr.ints([v.patchSize, v.patchSize]),
    });
    const flat = g.node('Reshape', [conv, g.constInt64([0, 0, patches])]); // [b, width, patches]
    const patchTokens = g.node('Transpose', [flat], { perm: attr.ints([0, 2, 1]) });
    const batch = g.node('Gather', [g.node('Shape', [pixels]), g.constInt64([0])], { axis: attr.int(0) });
    const clsShape = g.node('Concat', [batch, g.constInt64([1, v.width])], { axis: attr.int(0) });
    const cls = g.node('Expand', [g.param(`${prefix}cls_token`, [1, 1, v.width], 'weight'), clsShape]);
    const sequence = g.node('Concat', [cls, patchTokens], { axis: attr.int(1) });
    return g.node('Add', [sequence, g.param(`${prefix}pos_embed`, [1, tokens, v.width], 'weight')]);
  });

  const { cos, sin } = rotaryTables(v);
  const rope = {
    cos: g.constFloat(`${prefix}rope.cos`, [patches, v.headWidth], cos),
    sin: g.constFloat(`${prefix}rope.sin`, [patches, v.headWidth], sin),
    rotate: g.constFloat(`${prefix}rope.rotate_half`, [v.headWidth, v.headWidth], rotateHalfMatrix(v.headWidth)),
    tokens,
  };
  for (let block = 0; block < v.layers; block++) {
    x = g.scoped(`blocks.${block}`, () => visionBlock(g, v, `${prefix}blocks.${block}`, x, rope));
  }

  return g.scoped('head', () => {
    const normed = layerNorm(g, x, `${prefix}norm`, v.width, v.layerNormEps);
    const pooled =
      options.pooling === 'cls'
        ? g.node('Gather', [normed, g.constInt64([0], [])], { axis: attr.int(1) }) // [b, width]
        : g.node('ReduceMean', [g.node('Slice', [normed, g.constInt64([1]), g.constInt64([tokens]), g.constInt64([1])])], {
            axes: attr.ints([1]),
            keepdims: attr.int(0),
          });
    const product = g.node('MatMul', [pooled, g.param(`${prefix}head.weight`, [v.width, projectionDim], 'weight')]);
    return g.node('Add', [product, g.param(`${prefix}head.bias`, [projectionDim], 'bias')], {}, options.output);
  });
}

interface Rope {
  cos: string;
  sin: string;
  rotate: string;
  tokens: number;
}

/** Rotates the patch tokens of [b, heads, tokens, headDim]; the CLS token (index 0) passes. */
function applyRope(g: GraphBuilder, x: string, rope: Rope): string {
  const axis = g.constInt64([2]);
  const cls = g.node('Slice', [x, g.constInt64([0]), g.constInt64([1]), axis]);
  const patches = g.node('Slice', [x, g.constInt64([1]), g.constInt64([rope.tokens]), axis]);
  const rotated = g.node('Add', [
    g.node('Mul', [patches, rope.cos]),
    g.node('Mul', [g.node('MatMul', [patches, rope.rotate]), rope.sin]),
  ]);
  return g.node('Concat', [cls, rotated], { axis: attr.int(2) });
}

function visionBlock(g: GraphBuilder, v: VisionDims, prefix: string, x: string, rope: Rope): string {
  const heads = visionHeads(v);
  const headDim = v.headWidth;
  const eps = v.layerNormEps;

  const y = layerNorm(g, x, `${prefix}.norm1`, v.width, eps);
  const q = linear(g, y, `${prefix}.attn.q_proj`, v.width, v.width);
  const k = linear(g, y, `${prefix}.attn.k_proj`, v.width, v.width, false); // EVA-02: no key bias
  const val = linear(g, y, `${prefix}.attn.v_proj`, v.width, v.width);
  const scaled = g.node('Mul', [q, g.constFloatScalar(1 / Math.sqrt(headDim))]);
  const qHeads = applyRope(g, splitHeads(g, scaled, heads, headDim), rope);
  const kHeads = applyRope(g, splitHeads(g, k, heads, headDim), rope);
  const kHeadsT = g.node('Transpose', [kHeads], { perm: attr.ints([0, 1, 3, 2]) });
  const probs = g.node('Softmax', [g.node('MatMul', [qHeads, kHeadsT])], { axis: attr.int(-1) });
  const context = mergeHeads(g, g.node('MatMul', [probs, splitHeads(g, val, heads, headDim)]), heads, headDim);
  const normedContext = layerNorm(g, context, `${prefix}.attn.inner_attn_ln`, v.width, eps);
  const attention = linear(g, normedContext, `${prefix}.attn.proj`, v.width, v.width);
  const afterAttention = g.node('Add', [x, attention]);

  // SwiGLU: w3(ffn_ln(silu(w1 z) * w2 z)).
  const hidden = visionMlpHidden(v);
  const z = layerNorm(g, afterAttention, `${prefix}.norm2`, v.width, eps);
  const gate = silu(g, linear(g, z, `${prefix}.mlp.w1`, v.width, hidden));
  const value = linear(g, z, `${prefix}.mlp.w2`, v.width, hidden);
  const inner = layerNorm(g, g.node('Mul', [gate, value]), `${prefix}.mlp.ffn_ln`, hidden, eps);
  const mlp = linear(g, inner, `${prefix}.mlp.w3`, hidden, v.width);
  return g.node('Add', [afterAttention, mlp]);
}
