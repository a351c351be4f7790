/**
 * Floating-point operations (a multiply-add counts 2) of one item, from the model's
 * dimensions: every matrix product of the towers, attention included; element-wise work
 * (norms, activations, softmax, rotary on text) is left out, as it is a few percent at these sizes.
 */
import type { ModelDims } from './model.ts';

/**
 * One text of `tokens` tokens through the text tower: jina-clip-v1's JinaBERT (GEGLU
 * feed-forward) or jina-clip-v2's XLM-RoBERTa (plain GELU fc1 / fc2). Neither projects the
 * pooled text (v1's projection is absent, v2 has none).
 */
export function textFlops(dims: ModelDims, tokens: number): number {
  const { hidden: d, layers, intermediate: i, geglu } = dims.text;
  const perLayer =
    2 * tokens * d * d * 4 + // q, k, v, output projections
    2 * tokens * tokens * d * 2 + // scores and context
    2 * tokens * d * (geglu ? 2 * i : i) + // up (gated: gate and value)
    2 * tokens * i * d; // down
  return layers * perLayer;
}

/** Patches per side: the stride-patch convolution drops what is left over (512 / 14: 36). */
export function patchesPerSide(dims: ModelDims): number {
  return Math.floor(dims.vision.imageSize / dims.vision.patchSize);
}

/** One image through the vision tower (EVA-02: 2D rotary, SwiGLU, a linear head). */
export function imageFlops(dims: ModelDims): number {
  const { width: d, layers, mlpHidden: h, patchSize, headWidth, projectionDim } = dims.vision;
  const patches = patchesPerSide(dims) ** 2;
  const tokens = patches + 1;
  const heads = d / headWidth;
  const patchEmbed = 2 * patches * d * 3 * patchSize * patchSize;
  const perLayer =
    2 * tokens * d * d * 4 + // q, k, v, output projections
    2 * tokens * tokens * d * 2 + // scores and context
    2 * 2 * patches * heads * headWidth * headWidth + // rotary rotate-half products for q and k
    2 * tokens * d * h * 2 + // SwiGLU w1, w2
    2 * tokens * h * d; // w3
  return patchEmbed + layers * perLayer + 2 * d * projectionDim;
}
