/**
 * The model sizes the forge builds. `full` has jina-clip-v1's dimensions; clip-* are OpenAI
 * CLIP (clip-presets.ts); v2-* are jina-clip-v2 (v2-presets.ts).
 */
import type { ClipPresetName } from './clip-presets.ts';
import type { V2PresetName } from './v2-presets.ts';

export interface TextDims {
  hidden: number;
  layers: number;
  heads: number;
  intermediate: number;
  vocabSize: number;
  /** ALiBi has no position table; this is the context length the config advertises. */
  maxPositions: number;
  typeVocabSize: number;
  layerNormEps: number;
}

export interface VisionDims {
  imageSize: number;
  patchSize: number;
  width: number;
  layers: number;
  headWidth: number;
  mlpRatio: number;
  /** Rotary positions are scaled as if trained on this many patches per side (EVA-02's pt_hw_seq_len). */
  ptHwSeqLen: number;
  layerNormEps: number;
}

/** The jina-clip-v1 presets (this file); PresetName adds the OpenAI CLIP and jina-clip-v2 ones. */
export type JinaPresetName = 'tiny' | 'full' | 'colour';
export type PresetName = JinaPresetName | ClipPresetName | V2PresetName;
export const PRESET_NAMES: readonly PresetName[] = ['tiny', 'full', 'colour', 'clip-tiny', 'v2-tiny', 'v2-full', 'v2-colour'];

export interface Preset {
  name: JinaPresetName;
  text: TextDims;
  vision: VisionDims;
  projectionDim: number;
  /** `random`: seeded normal weights; `colour`: the hand-set colour model (colour.ts). */
  weights: 'random' | 'colour';
}

const tinyText: TextDims = {
  hidden: 32,
  layers: 2,
  heads: 4,
  intermediate: 64,
  vocabSize: 1000,
  maxPositions: 8192,
  typeVocabSize: 2,
  layerNormEps: 1e-12,
};

const tinyVision: VisionDims = {
  imageSize: 224,
  patchSize: 16,
  width: 32,
  layers: 2,
  headWidth: 8,
  mlpRatio: 2.6667,
  ptHwSeqLen: 14,
  layerNormEps: 1e-6,
};

export const PRESETS: Record<JinaPresetName, Preset> = {
  tiny: { name: 'tiny', text: tinyText, vision: tinyVision, projectionDim: 32, weights: 'random' },
  colour: { name: 'colour', text: tinyText, vision: tinyVision, projectionDim: 32, weights: 'colour' },
  full: {
    name: 'full',
    text: { ...tinyText, hidden: 768, layers: 12, heads: 12, intermediate: 3072, vocabSize: 30528 },
    vision: { ...tinyVision, width: 768, layers: 12, headWidth: 64 },
    projectionDim: 768,
    weights: 'random',
  },
};

export function visionHeads(v: VisionDims): number {
  return v.width / v.headWidth;
}

/**
 * SwiGLU hidden size: int(width * mlp_ratio), as EVA's Block computes it: 2048 for width 768,
 * 2730 for EVA02-L's 1024 (rounding would give 2731, a shape the real checkpoint lacks).
 */
export function visionMlpHidden(v: VisionDims): number {
  return Math.trunc(v.width * v.mlpRatio);
}

/** Patches per side: a stride-patch convolution ignores the pixels left over (512 / 14 gives 36). */
export function patchesPerSide(v: VisionDims): number {
  return Math.floor(v.imageSize / v.patchSize);
}
