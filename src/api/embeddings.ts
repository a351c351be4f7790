import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { encodeFor } from '../encoding/encode.ts';
import { TesseraError } from '../errors.ts';
import { admit, estimateTokens } from './admission.ts';
import { bill } from './billing.ts';
import type { ApiContext } from './context.ts';
import { embedRequestItems } from './embed-items.ts';
import { parseEmbeddingsRequest } from './request.ts';
import { embeddingsSchema } from './schemas/embeddings.ts';

/** The Jina Embeddings API: POST /v1/embeddings, and /embeddings for OpenAI-style base URLs. */
export const embeddingsRoutes: FastifyPluginAsync<{ ctx: ApiContext }> = async (app, { ctx }) => {
  const embeddings = async (request: FastifyRequest, reply: FastifyReply) => {
    const body = parseEmbeddingsRequest(request.body, ctx.limits);
    // Late chunking pools chunks of one long text from the model's token-level outputs: Jina
    // offers it on its text models (jina-embeddings-v3 and later). Every model tessera serves
    // (jina-clip v1 and v2, OpenAI CLIP) gives one pooled vector per input, so `true` is
    // refused rather than quietly answered with whole-text vectors, before admission like
    // any invalid field.
    if (body.lateChunking) {
      throw new TesseraError(
        'LATE_CHUNKING_UNSUPPORTED',
        `late_chunking: ${ctx.model(body.model).name} cannot do late chunking (only Jina's text models such as jina-embeddings-v3 can; no jina-clip model can); send "late_chunking": false or leave the field out`,
      );
    }
    await admit(ctx, request, estimateTokens(body.items));
    const model = ctx.model(body.model);
    // The engine applies `task` (a model's task instructions) and `dimensions` (Matryoshka
    // truncation, normalised again), and refuses what the model cannot do.
    const results = await embedRequestItems(ctx, model.engine, request, reply, body.items, {
      normalize: body.normalized,
      truncate: body.truncate,
      task: body.task,
      dimensions: body.dimensions,
    });
    const usage = bill(ctx, request, results);
    return {
      model: model.name,
      object: 'list',
      usage,
      data: results.map((r, index) => ({ object: 'embedding', index, embedding: encodeFor(r.embedding, body) })),
    };
  };
  // The schema checks the body's shape first (validation.ts); the parser, shared with the MCP
  // tools, checks the unions (`input`, the encodings) and the limits.
  app.post('/v1/embeddings', { schema: embeddingsSchema }, embeddings);
  app.post('/embeddings', { schema: embeddingsSchema }, embeddings);
};
