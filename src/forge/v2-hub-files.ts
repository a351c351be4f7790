/** config.json and preprocessor_config.json, shaped like jinaai/jina-clip-v2's (keys in the hub's order). */
import { IMAGE_MEAN, IMAGE_STD } from './hub-files.ts';
import type { V2Preset } from './v2-presets.ts';

/** The instruction jina-clip-v2 puts before query texts (task retrieval.query). */
export const V2_TASK_INSTRUCTIONS = { 'retrieval.query': 'Represent the query for retrieving evidence documents: ' } as const;

export const V2_PREPROCESSOR_CONFIG = {
  fill_color: 0,
  image_processor_type: 'JinaCLIPImageProcessor',
  interpolation: 'bicubic',
  max_size: null,
  mean: [...IMAGE_MEAN],
  processor_class: 'JinaCLIPProcessor',
  resize_mode: 'shortest',
  size: 512,
  std: [...IMAGE_STD],
} as const;

export function v2PreprocessorConfig(preset: V2Preset): Record<string, unknown> {
  return { ...V2_PREPROCESSOR_CONFIG, size: preset.vision.imageSize };
}

export function v2ModelConfig(preset: V2Preset, record: { preset: string; seed: number }): Record<string, unknown> {
  const { text, vision, projectionDim } = preset;
  return {
    add_projections: false,
    architectures: ['JinaCLIPModel'],
    logit_scale_init_value: 2.6592,
    matryoshka_dimensions: [...preset.matryoshkaDimensions],
    model_type: 'jina_clip',
    projection_dim: projectionDim,
    truncate_dim: null,
    'transformers.js_config': { use_external_data_format: { 'model.onnx': true } },
    text_config: {
      default_instruction_task: null,
      default_lora_task: 'retrieval.query',
      embed_dim: projectionDim,
      hf_model_config_kwargs: {
        load_trained_adapters: false,
        lora_adaptations: ['retrieval.query'],
        lora_alpha: 4,
        lora_dropout_p: 0.0,
        lora_main_params_trainable: false,
        lora_rank: 4,
        task_instructions: { ...V2_TASK_INSTRUCTIONS },
        use_flash_attn: false,
        // The backbone's own dimensions (the hub reads them from jinaai/jina-embeddings-v3's config).
        hidden_size: text.hidden,
        num_hidden_layers: text.layers,
        num_attention_heads: text.heads,
        intermediate_size: text.intermediate,
        vocab_size: text.vocabSize,
        max_position_embeddings: text.maxPositions,
        rotary_emb_base: text.rotaryBase,
        layer_norm_eps: text.layerNormEps,
        pad_token_id: text.padId,
        type_vocab_size: text.typeVocabSize,
      },
      hf_model_name_or_path: 'jinaai/jina-embeddings-v3',
      model_type: 'jina_clip_text',
      pooler_type: 'mean_pooler',
      proj_bias: false,
      proj_type: null,
    },
    vision_config: {
      embed_dim: projectionDim,
      fused_layer_norm: false,
      head_width: vision.headWidth,
      image_size: vision.imageSize,
      intp_freq: true,
      layers: vision.layers,
      ls_init_value: null,
      mlp_ratio: vision.mlpRatio,
      model_type: 'jina_clip_vision',
      naive_swiglu: true,
      patch_dropout: 0.0,
      patch_size: vision.patchSize,
      post_norm: false,
      proj_type: null,
      pt_hw_seq_len: vision.ptHwSeqLen,
      qkv_bias: true,
      rope_embeddings: true,
      subln: true,
      width: vision.width,
      x_attention: false,
    },
    tessera_forge: record,
  };
}
