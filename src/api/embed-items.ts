import type { FastifyReply, FastifyRequest } from 'fastify';
import type { EmbedItem, EmbedOptions, Embedder, Embedding } from '../engine/embedder.ts';
import { TesseraError } from '../errors.ts';
import { mapConcurrent } from '../concurrency.ts';
import { fetchImage } from '../image/fetch.ts';
import { recordTimings } from './billing.ts';
import { requestSignal, type ApiContext } from './context.ts';
import type { RequestItem } from './request.ts';

/** Turns request items into engine items, downloading image URLs (a bounded number at once). */
export async function resolveItems(ctx: ApiContext, items: readonly RequestItem[], signal: AbortSignal): Promise<EmbedItem[]> {
  const urls = items.flatMap((item, index) => (item.kind === 'url' ? [{ index, url: item.url }] : []));
  const fetched = new Map<number, Buffer>();
  await mapConcurrent(urls, ctx.config['fetch-concurrency'], async ({ index, url }, _k, inner) => {
    try {
      fetched.set(index, await fetchImage(url, ctx.fetchPolicy, inner));
    } catch (err) {
      throw err instanceof TesseraError ? err.forItem(index) : err;
    }
  }, signal);
  return items.map((item, index) => {
    if (item.kind === 'text') return { text: item.text };
    if (item.kind === 'image') return { image: item.data };
    return { image: fetched.get(index)! };
  });
}

/** Options of one request's embedding: the engine's, without the signal (the request's deadline gives it). */
export type RequestEmbedOptions = Omit<EmbedOptions, 'signal'>;

/** Embeds a request's items on `engine` (the model the request picked), under the request's deadline; records the timing headers. */
export async function embedRequestItems(
  ctx: ApiContext,
  engine: Embedder,
  request: FastifyRequest,
  reply: FastifyReply,
  items: readonly RequestItem[],
  options: RequestEmbedOptions,
): Promise<Embedding[]> {
  const signal = requestSignal(ctx, request, reply);
  const results = await engine.embed(await resolveItems(ctx, items, signal), { ...options, signal });
  recordTimings(request, results);
  return results;
}
