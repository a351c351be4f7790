/**
 * OpenAI CLIP's vision transformer with its projection (Hugging Face
 * CLIPVisionModelWithProjection): patch embedding (Conv without bias), a class embedding,
 * learned position embeddings, pre_layrnorm (sic, the checkpoint's name), pre-LayerNorm encoder
 * layers, post_layernorm on the class token, visual_projection without bias.
 *
 * Input: pixel_values float32 [batch_size, 3, image_size, image_size]. Output: image_embeds
 * float32 [batch_size, projection_dim], not normalised.
 */
import { clipEncoderLayer } from './clip-layers.ts';
import type { ClipVisionDims } from './clip-presets.ts';
import { attr, GraphBuilder } from './graph.ts';
import { layerNorm } from './layers.ts';
import { DataType } from './onnx-proto.ts';

export const CLIP_VISION_OUTPUT = 'image_embeds';

export function buildClipVisionGraph(v: ClipVisionDims, projectionDim: number): GraphBuilder {
  if (v.imageSize % v.patchSize !== 0) throw new Error('image size must be a multiple of the patch size');
  const g = new GraphBuilder('clip_vision');
  const patches = (v.imageSize / v.patchSize) ** 2;
  const pixels = g.input('pixel_values', DataType.FLOAT, ['batch_size', 3, v.imageSize, v.imageSize]);

  let x = g.scoped('embeddings', () => {
    const kernel = g.param('vision_model.embeddings.patch_embedding.weight', [v.hidden, 3, v.patchSize, v.patchSize], 'weight');
    const conv = g.node('Conv', [pixels, kernel], {
      kernel_shape: attr.ints([v.patchSize, v.patchSize]),
      strides: attr.ints([v.patchSize, v.patchSize]),
    });
    const patchTokens = g.node('Transpose', [g.node('Reshape', [conv, g.constInt64([0, 0, patches])])], { perm: attr.ints([0, 2, 1]) });
    const batch = g.node('Gather', [g.node('Shape', [pixels]), g.constInt64([0])], { axis: attr.int(0) });
    const classShape = g.node('Concat', [batch, g.constInt64([1, v.hidden])], { axis: attr.int(0) });
    const cls = g.node('Expand', [g.param('vision_model.embeddings.class_embedding', [v.hidden], 'weight'), classShape]);
    const sequence = g.node('Concat', [cls, patchTokens], { axis: attr.int(1) });
    const positions = g.param('vision_model.embeddings.position_embedding.weight', [patches + 1, v.hidden], 'weight');
    return layerNorm(g, g.node('Add', [sequence, positions]), 'vision_model.pre_layrnorm', v.hidden, v.layerNormEps);
  });

  for (let layer = 0; layer < v.layers; layer++) {
    x = g.scoped(`encoder/layers.${layer}`, () => clipEncoderLayer(g, v, `vision_model.encoder.layers.${layer}`, x, []));
  }

  g.scoped('head', () => {
    const cls = g.node('Gather', [x, g.constInt64([0], [])], { axis: attr.int(1) }); // [b, hidden]
    const pooled = layerNorm(g, cls, 'vision_model.post_layernorm', v.hidden, v.layerNormEps);
    g.node('MatMul', [pooled, g.param('visual_projection.weight', [v.hidden, projectionDim], 'weight')], {}, CLIP_VISION_OUTPUT);
  });
  g.output(CLIP_VISION_OUTPUT, DataType.FLOAT, ['batch_size', projectionDim]);
  return g;
}
