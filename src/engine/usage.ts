import type { Embedding } from './embedder.ts';

/** Jina bills a jina-clip-v1 image 1,000 tokens per 224x224 tile needed to cover it. */
export const IMAGE_TILE = 224;
export const TOKENS_PER_TILE = 1000;

export function imageTokens(width: number, height: number): number {
  return Math.ceil(width / IMAGE_TILE) * Math.ceil(height / IMAGE_TILE) * TOKENS_PER_TILE;
}

export interface Usage {
  total_tokens: number;
  prompt_tokens: number;
  image_tokens: number;
}

/** Usage as the Jina API reports it: text tokens plus image tile tokens. */
export function usageOf(results: readonly Embedding[]): Usage {
  let text = 0;
  let image = 0;
  for (const r of results) {
    if (r.tokens !== undefined) text += r.tokens;
    if (r.width !== undefined && r.height !== undefined) image += imageTokens(r.width, r.height);
  }
  return { total_tokens: text + image, prompt_tokens: text + image, image_tokens: image };
}
