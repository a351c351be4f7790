/**
 * jina-clip-v2's ONNX graph, as the hub ships it (onnx/model.onnx): ONE graph holding both
 * towers. Inputs `input_ids` int64 [batch_size, sequence_length] and `pixel_values` float32
 * [image_batch_size, 3, S, S], each with its own batch dimension and no attention_mask;
 * outputs `text_embeddings` [batch_size, P], `image_embeddings` [image_batch_size, P] and
 * their L2-normalised copies `l2norm_text_embeddings`, `l2norm_image_embeddings`.
 *
 * Both inputs must always be fed, so a caller wanting one modality feeds a dummy for the
 * other, as transformers.js's JinaCLIPModel does: pixel_values [0, 3, S, S] (an empty image
 * batch) for text, input_ids [B, 1] of ones (all pads) for images. Every op on the vision
 * path handles a zero batch; the text path turns an all-pad row into zeros, not NaN.
 */
import { attr, GraphBuilder } from './graph.ts';
import { DataType } from './onnx-proto.ts';
import { addV2TextTower } from './v2-text-tower.ts';
import type { V2Preset } from './v2-presets.ts';
import { addVisionTower } from './vision-tower.ts';

export const V2_INPUTS = { ids: 'input_ids', pixels: 'pixel_values' } as const;
export const V2_OUTPUTS = {
  text: 'text_embeddings',
  image: 'image_embeddings',
  l2normText: 'l2norm_text_embeddings',
  l2normImage: 'l2norm_image_embeddings',
} as const;

export function buildV2Graph(preset: V2Preset): GraphBuilder {
  const { text, vision, projectionDim } = preset;
  if (text.hidden !== projectionDim) throw new Error(`v2 has no text projection: text hidden ${text.hidden} must equal the projection dim ${projectionDim}`);
  const g = new GraphBuilder('jina_clip_v2');
  const ids = g.input(V2_INPUTS.ids, DataType.INT64, ['batch_size', 'sequence_length']);
  const pixels = g.input(V2_INPUTS.pixels, DataType.FLOAT, ['image_batch_size', 3, vision.imageSize, vision.imageSize]);

  const textEmbeddings = g.scoped('text_model', () => addV2TextTower(g, text, ids));
  g.node('Identity', [textEmbeddings], {}, V2_OUTPUTS.text);
  g.scoped('vision_model', () => addVisionTower(g, vision, projectionDim, pixels, { prefix: 'vision_model.', pooling: 'cls', output: V2_OUTPUTS.image }));

  g.scoped('l2norm', () => {
    l2normalise(g, V2_OUTPUTS.text, V2_OUTPUTS.l2normText);
    l2normalise(g, V2_OUTPUTS.image, V2_OUTPUTS.l2normImage);
  });
  g.output(V2_OUTPUTS.text, DataType.FLOAT, ['batch_size', projectionDim]);
  g.output(V2_OUTPUTS.image, DataType.FLOAT, ['image_batch_size', projectionDim]);
  g.output(V2_OUTPUTS.l2normText, DataType.FLOAT, ['batch_size', projectionDim]);
  g.output(V2_OUTPUTS.l2normImage, DataType.FLOAT, ['image_batch_size', projectionDim]);
  return g;
}

/** x / max(|x|, 1e-12) per row, as torch.nn.functional.normalize: a zero row stays zero. */
function l2normalise(g: GraphBuilder, x: string, output: string): void {
  const norm = g.node('ReduceL2', [x], { axes: attr.ints([-1]), keepdims: attr.int(1) });
  g.node('Div', [x, g.node('Max', [norm, g.constFloatScalar(1e-12)])], {}, output);
}
