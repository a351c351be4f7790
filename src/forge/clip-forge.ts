/**
 * Forges OpenAI CLIP models in the hub's ONNX layout (as Xenova/clip-vit-base-patch16):
 * config.json (model_type "clip"), preprocessor_config.json (CLIPImageProcessor), the byte-level
 * BPE tokenizer files, onnx/text_model.onnx (CLIPTextModelWithProjection) and
 * onnx/vision_model.onnx (CLIPVisionModelWithProjection), with seeded random weights, and when
 * asked their q8 variants onnx/text_model_quantized.onnx and onnx/vision_model_quantized.onnx
 * (hub-like, as Xenova's CLIP exports: int8 weights in the text tower, uint8 in the vision
 * tower, whose patch embedding is a Conv). forgeModel (index.ts) calls this for the clip-* presets.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CLIP_PRESETS, type ClipPreset, type ClipPresetName } from './clip-presets.ts';
import { buildClipTextGraph } from './clip-text-tower.ts';
import { buildClipBpe, clipTokenizerFiles, type ClipBpe } from './clip-tokenizer.ts';
import { buildClipVisionGraph } from './clip-vision-tower.ts';
import { IMAGE_MEAN, IMAGE_STD } from './hub-files.ts';
import { Q8_STYLE_METADATA_KEY, quantizeStyled, type HubLikeOptions, type Q8Style } from './quantize.ts';
import { randomWeights } from './random-weights.ts';
import { writeModel, type ModelInfo } from './writer.ts';

/** Xenova/clip-vit-base-patch16's preprocessor_config.json (OpenAI CLIP's mean/std are jina-clip's). */
export const CLIP_PREPROCESSOR_CONFIG = {
  crop_size: { height: 224, width: 224 },
  do_center_crop: true,
  do_convert_rgb: true,
  do_normalize: true,
  do_rescale: true,
  do_resize: true,
  feature_extractor_type: 'CLIPFeatureExtractor',
  image_mean: [...IMAGE_MEAN],
  image_processor_type: 'CLIPImageProcessor',
  image_std: [...IMAGE_STD],
  processor_class: 'CLIPProcessor',
  resample: 3,
  rescale_factor: 1 / 255,
  size: { shortest_edge: 224 },
} as const;

export function clipModelConfig(preset: ClipPreset, bpe: ClipBpe, record: Record<string, unknown>): Record<string, unknown> {
  const { text, vision } = preset;
  return {
    architectures: ['CLIPModel'],
    model_type: 'clip',
    projection_dim: preset.projectionDim,
    logit_scale_init_value: 2.6592,
    torch_dtype: 'float32',
    text_config: {
      model_type: 'clip_text_model',
      vocab_size: bpe.vocab.length,
      hidden_size: text.hidden,
      intermediate_size: text.intermediate,
      num_hidden_layers: text.layers,
      num_attention_heads: text.heads,
      max_position_embeddings: text.maxPositions,
      hidden_act: 'quick_gelu',
      layer_norm_eps: text.layerNormEps,
      projection_dim: preset.projectionDim,
      // OpenAI's legacy ids: eos_token_id 2 makes HF CLIP pool at input_ids.argmax(-1).
      bos_token_id: 0,
      eos_token_id: 2,
      pad_token_id: 1,
    },
    vision_config: {
      model_type: 'clip_vision_model',
      hidden_size: vision.hidden,
      intermediate_size: vision.intermediate,
      num_hidden_layers: vision.layers,
      num_attention_heads: vision.heads,
      num_channels: 3,
      image_size: vision.imageSize,
      patch_size: vision.patchSize,
      hidden_act: 'quick_gelu',
      layer_norm_eps: vision.layerNormEps,
      projection_dim: preset.projectionDim,
    },
    tessera_forge: record,
  };
}

export interface ClipForgeOptions {
  preset: ClipPresetName;
  outDir: string;
  /** Give the text graph an attention_mask input (default false: the hub's export takes input_ids only). */
  attentionMask: boolean;
  seed: number;
  /** Also write the q8 variant, made as `q8Style` says (default `forge`; index.ts, ForgeOptions.q8Style). */
  quantized?: boolean;
  q8Style?: Q8Style;
  hubLike?: HubLikeOptions;
  onFile: (path: string, bytes: number) => void;
}

export async function forgeClipModel(options: ClipForgeOptions): Promise<void> {
  const { outDir, attentionMask, seed } = options;
  const preset = CLIP_PRESETS[options.preset];
  const bpe = buildClipBpe(preset.text.merges);
  const weights = randomWeights(seed);
  await mkdir(join(outDir, 'onnx'), { recursive: true });
  const writeText = async (path: string, content: string): Promise<void> => {
    await writeFile(join(outDir, path), content);
    options.onFile(path, Buffer.byteLength(content));
  };
  const json = (value: unknown): string => `${JSON.stringify(value, null, 2)}\n`;

  await writeText('config.json', json(clipModelConfig(preset, bpe, { preset: preset.name, seed, attention_mask: attentionMask })));
  await writeText('preprocessor_config.json', json(CLIP_PREPROCESSOR_CONFIG));
  for (const [path, content] of Object.entries(clipTokenizerFiles(bpe))) {
    await writeText(path, typeof content === 'string' ? content : json(content));
  }
  const info = (tower: string): ModelInfo => ({
    producerName: 'tessera-forge',
    producerVersion: '1',
    docString: `OpenAI CLIP ${tower} tower, forged by tessera (preset ${preset.name}); not a trained model`,
    metadata: { tessera_forge_preset: preset.name, tessera_forge_seed: String(seed), tessera_forge_attention_mask: String(attentionMask) },
    opsetVersion: 17,
    irVersion: 8,
  });
  const textGraph = () => buildClipTextGraph(preset.text, bpe.vocab.length, preset.projectionDim, { attentionMask });
  const visionGraph = () => buildClipVisionGraph(preset.vision, preset.projectionDim);
  const textPath = 'onnx/text_model.onnx';
  options.onFile(textPath, await writeModel(join(outDir, textPath), textGraph(), weights, info('text')));
  const visionPath = 'onnx/vision_model.onnx';
  options.onFile(visionPath, await writeModel(join(outDir, visionPath), visionGraph(), weights, info('vision')));
  if (options.quantized) {
    const style = options.q8Style ?? 'forge';
    for (const [tower, graph] of [['text', textGraph], ['vision', visionGraph]] as const) {
      const q8 = quantizeStyled(style, graph(), weights, options.hubLike);
      const base = info(`${tower} (q8${style === 'hub-like' ? ', hub-like' : ''})`);
      const path = `onnx/${tower}_model_quantized.onnx`;
      options.onFile(path, await writeModel(join(outDir, path), q8.graph, q8.weights, { ...base, metadata: { ...base.metadata, [Q8_STYLE_METADATA_KEY]: style } }));
    }
  }
}
