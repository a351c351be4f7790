import type { Embedding } from './embedder.ts';

/**
 * How Jina bills an image: a fixed number of tokens per tile of the model's input size, as
 * many tiles as cover the image, keyed by that size (one table for every model).
 * - 224 (jina-clip-v1, and the CLIP baseline with it): 1,000 per 224x224 tile, Jina's
 *   Embeddings API documentation (750x500 -> 4 x 3 tiles -> 12,000 tokens; REFERENCE.md §3).
 * - 512 (jina-clip-v2): 4,000 per 512x512 tile, from third-party notes on Jina's API only:
 *   not confirmed by Jina (the README says so).
 * A size not listed is billed at the 224 rate scaled by the tile's area.
 */
export const TOKENS_PER_TILE: Readonly<Record<number, number>> = { 224: 1000, 512: 4000 };

export function tokensPerTile(tile: number): number {
  return TOKENS_PER_TILE[tile] ?? Math.round(1000 * (tile / 224) ** 2);
}

/** Tokens an image of width x height costs on a model whose images are `tile` pixels square. */
export function imageTokens(width: number, height: number, tile = 224): number {
  return Math.ceil(width / tile) * Math.ceil(height / tile) * tokensPerTile(tile);
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
    text += r.tokens ?? 0;
    image += r.imageTokens ?? 0;
  }
  return { total_tokens: text + image, prompt_tokens: text + image, image_tokens: image };
}
