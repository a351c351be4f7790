/** Sizes of the OpenAI CLIP models the forge builds (clip-text-tower.ts, clip-vision-tower.ts). */

export interface ClipTextDims {
  hidden: number;
  layers: number;
  heads: number;
  intermediate: number;
  /** Learned position embeddings: the context length (77 for CLIP). */
  maxPositions: number;
  /** BPE merges of the forged tokenizer; the vocabulary is 512 byte symbols + merges + 2 specials. */
  merges: number;
  layerNormEps: number;
}

export interface ClipVisionDims {
  imageSize: number;
  patchSize: number;
  hidden: number;
  layers: number;
  heads: number;
  intermediate: number;
  layerNormEps: number;
}

export type ClipPresetName = 'clip-tiny';
export const CLIP_PRESET_NAMES: readonly ClipPresetName[] = ['clip-tiny'];

export interface ClipPreset {
  name: ClipPresetName;
  text: ClipTextDims;
  vision: ClipVisionDims;
  projectionDim: number;
}

export const CLIP_PRESETS: Record<ClipPresetName, ClipPreset> = {
  'clip-tiny': {
    name: 'clip-tiny',
    text: { hidden: 32, layers: 2, heads: 4, intermediate: 128, maxPositions: 77, merges: 486, layerNormEps: 1e-5 },
    vision: { imageSize: 224, patchSize: 32, hidden: 32, layers: 2, heads: 4, intermediate: 128, layerNormEps: 1e-5 },
    projectionDim: 24,
  },
};

export function isClipPreset(name: string): name is ClipPresetName {
  return (CLIP_PRESET_NAMES as readonly string[]).includes(name);
}
