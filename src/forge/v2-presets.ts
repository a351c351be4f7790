/**
 * Sizes of the jina-clip-v2 models the forge builds (v2-graph.ts): `v2-full` has the hub
 * model's dimensions, `v2-tiny` and `v2-colour` are small enough for tests.
 */
import type { VisionDims } from './presets.ts';

/** The jina-embeddings-v3 backbone (XLM-RoBERTa with rotary position embeddings). */
export interface V2TextDims {
  hidden: number;
  layers: number;
  heads: number;
  intermediate: number;
  /** Entries of tokenizer.json's vocabulary and rows of the embedding table. */
  vocabSize: number;
  /** `common`: a few hundred CJK / Hangul / emoji characters; `full`: whole Unicode blocks of them. */
  scripts: 'common' | 'full';
  /** Rotary needs no table; this is what config.json advertises (XLM-RoBERTa's 8192 + 2). */
  maxPositions: number;
  rotaryBase: number;
  typeVocabSize: number;
  layerNormEps: number;
  /** The graph masks tokens equal to this id (open_clip's HFTextEncoder: input_ids != pad_token_id). */
  padId: number;
}

export type V2PresetName = 'v2-tiny' | 'v2-full' | 'v2-colour';
export const V2_PRESET_NAMES: readonly V2PresetName[] = ['v2-tiny', 'v2-full', 'v2-colour'];

export interface V2Preset {
  name: V2PresetName;
  text: V2TextDims;
  vision: VisionDims;
  /** Equals text.hidden: v2 has no text projection (add_projections false, proj_type null). */
  projectionDim: number;
  /** config.json's matryoshka_dimensions: the prefixes of an embedding worth keeping. */
  matryoshkaDimensions: readonly number[];
  /** `random`: seeded normal weights; `colour`: the hand-set colour model (v2-colour.ts). */
  weights: 'random' | 'colour';
}

export function isV2Preset(name: string): name is V2PresetName {
  return (V2_PRESET_NAMES as readonly string[]).includes(name);
}

const tinyText: V2TextDims = {
  hidden: 32,
  layers: 2,
  heads: 4,
  intermediate: 64,
  vocabSize: 6000,
  scripts: 'common',
  maxPositions: 8194,
  rotaryBase: 20000,
  typeVocabSize: 1,
  layerNormEps: 1e-5,
  padId: 1,
};

/** EVA02-L/14 at 512 px, as jina-clip-v2 configures it, with tiny widths. */
const tinyVision: VisionDims = {
  imageSize: 512,
  patchSize: 14,
  width: 32,
  layers: 2,
  headWidth: 8,
  mlpRatio: 2.6667,
  ptHwSeqLen: 16,
  layerNormEps: 1e-6,
};

/** Powers of two up to `dim`, then `dim` itself: [8, 16, 32] for 32. */
function matryoshka(dim: number): number[] {
  const dims: number[] = [];
  for (let d = 8; d < dim; d *= 2) dims.push(d);
  return [...dims, dim];
}

export const V2_PRESETS: Record<V2PresetName, V2Preset> = {
  'v2-tiny': { name: 'v2-tiny', text: tinyText, vision: tinyVision, projectionDim: 32, matryoshkaDimensions: matryoshka(32), weights: 'random' },
  'v2-colour': { name: 'v2-colour', text: tinyText, vision: tinyVision, projectionDim: 32, matryoshkaDimensions: matryoshka(32), weights: 'colour' },
  'v2-full': {
    name: 'v2-full',
    text: { ...tinyText, hidden: 1024, layers: 24, heads: 16, intermediate: 4096, vocabSize: 250_002, scripts: 'full' },
    vision: { ...tinyVision, width: 1024, layers: 24, headWidth: 64 },
    projectionDim: 1024,
    matryoshkaDimensions: [32, 64, 128, 256, 512, 768, 1024],
    weights: 'random',
  },
};
