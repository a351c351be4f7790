import type { FastifyRequest } from 'fastify';
import type { ApiContext } from './context.ts';
import type { RequestItem } from './request.ts';

/** A cheap upper bound of a text's tokens, for rate limiting before tokenizing. */
export function estimateTextTokens(text: string): number {
  return Math.ceil(text.length / 3) + 2;
}

/** What an image is assumed to cost before it is decoded (one 224x224 tile). */
export const IMAGE_TOKEN_ESTIMATE = 1000;

/** The estimate of a request's items. */
export function estimateTokens(items: readonly RequestItem[]): number {
  return items.reduce((sum, item) => sum + (item.kind === 'text' ? estimateTextTokens(item.text) : IMAGE_TOKEN_ESTIMATE), 0);
}

/**
 * Per-key rate limits, once the request's size is known (429 with the limit's headers when over).
 * Async: with `--queue` the limits are kept in Redis, shared by the replicas.
 */
export async function admit(ctx: ApiContext, request: FastifyRequest, estimatedTokens: number): Promise<void> {
  request.tessera.admission = await ctx.limiter.admit(request.tessera.keyId, estimatedTokens);
}
