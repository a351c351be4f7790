/** config.json and preprocessor_config.json, shaped like jinaai/jina-clip-v1's. */
import { MODEL_MAX_LENGTH } from './tokenizer-files.ts';
import { visionHeads, visionMlpHidden, type Preset } from './presets.ts';
import { VISION_POOLING } from './vision-tower.ts';

/** jina-clip-v1's image normalisation: pixel_values = (rgb / 255 - mean) / std per channel. */
export const IMAGE_MEAN = [0.48145466, 0.4578275, 0.40821073] as const;
export const IMAGE_STD = [0.26862954, 0.26130258, 0.27577711] as const;

export const PREPROCESSOR_CONFIG = {
  image_processor_type: 'JinaCLIPImageProcessor',
  processor_class: 'JinaCLIPProcessor',
  size: 224,
  resize_mode: 'shortest',
  interpolation: 'bicubic',
  fill_color: 0,
  mean: [...IMAGE_MEAN],
  std: [...IMAGE_STD],
} as const;

export interface ForgeRecord {
  preset: string;
  seed: number;
  attention_mask: boolean;
}

export function modelConfig(preset: Preset, record: ForgeRecord): Record<string, unknown> {
  const { text, vision } = preset;
  return {
    model_type: 'jina_clip',
    architectures: ['JinaCLIPModel'],
    add_projections: false,
    projection_dim: preset.projectionDim,
    logit_scale_init_value: 2.6592,
    torch_dtype: 'float32',
    text_config: {
      model_type: 'jina_clip_text',
      embed_dim: preset.projectionDim,
      hidden_size: text.hidden,
      num_hidden_layers: text.layers,
      num_attention_heads: text.heads,
      intermediate_size: text.intermediate,
      hidden_act: 'gelu',
      feed_forward_type: 'geglu',
      position_embedding_type: 'alibi',
      vocab_size: text.vocabSize,
      type_vocab_size: text.typeVocabSize,
      max_position_embeddings: MODEL_MAX_LENGTH,
      layer_norm_eps: text.layerNormEps,
      pooling: 'mean',
      pooler_type: 'mean_pooler',
      proj_type: null,
    },
    vision_config: {
      model_type: 'jina_clip_vision',
      embed_dim: preset.projectionDim,
      image_size: vision.imageSize,
      patch_size: vision.patchSize,
      width: vision.width,
      layers: vision.layers,
      head_width: vision.headWidth,
      num_attention_heads: visionHeads(vision),
      mlp_ratio: vision.mlpRatio,
      mlp_hidden_size: visionMlpHidden(vision),
      naive_swiglu: true,
      subln: true,
      qkv_bias: true,
      rope_embeddings: true,
      pt_hw_seq_len: vision.ptHwSeqLen,
      intp_freq: true,
      layer_norm_eps: vision.layerNormEps,
      pooling: VISION_POOLING,
      proj_type: 'linear',
    },
    tessera_forge: record,
  };
}
