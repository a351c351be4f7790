import type { FastifyRequest } from 'fastify';
import type { ApiContext } from './context.ts';
import type { RequestItem } from './request.ts';

/** A cheap upper-bound token estimate for rate limiting, before tokenizing. */
export function estimateTokens(items: readonly RequestItem[]): number {
  return items.reduce((sum, item) => sum + (item.kind === 'text' ? Math.ceil(item.text.length / 3) + 2 : 1000), 0);
}

/** Per-key rate limits, once the request's size is known (429 with the limit's headers when over). */
export function admit(ctx: ApiContext, request: FastifyRequest, estimatedTokens: number): void {
  request.tessera.admission = ctx.limiter.admit(request.tessera.keyId, estimatedTokens);
}
