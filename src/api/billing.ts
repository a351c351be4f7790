import type { FastifyRequest } from 'fastify';
import type { Embedding } from '../engine/embedder.ts';
import { usageOf, type Usage } from '../engine/usage.ts';
import type { ApiContext } from './context.ts';

/** Usage as the Jina API bills it; charged against the key's token limit and counted in the metrics. */
export function bill(ctx: ApiContext, request: FastifyRequest, results: readonly Embedding[], times = 1): Usage {
  const once = usageOf(results);
  // Training is billed per pass (Jina: input tokens x num_iters).
  const usage = { total_tokens: once.total_tokens * times, prompt_tokens: once.prompt_tokens * times, image_tokens: once.image_tokens * times };
  request.tessera.admission?.commitTokens(usage.total_tokens);
  ctx.metrics.usage(usage.prompt_tokens - usage.image_tokens, usage.image_tokens);
  return usage;
}

/** The most any item of a request waited for, and spent in, the model: the timing headers. */
export function recordTimings(request: FastifyRequest, results: readonly Embedding[]): void {
  request.tessera.queueMs = Math.max(request.tessera.queueMs, 0, ...results.map((r) => r.timing.queueMs));
  request.tessera.inferenceMs = Math.max(request.tessera.inferenceMs, 0, ...results.map((r) => r.timing.inferenceMs));
}
