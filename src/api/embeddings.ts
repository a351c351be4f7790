import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { l2normalize } from '../engine/pooling.ts';
import { encodeFor } from '../encoding/encode.ts';
import { admit, estimateTokens } from './admission.ts';
import { bill } from './billing.ts';
import type { ApiContext } from './context.ts';
import { embedRequestItems } from './embed-items.ts';
import { parseEmbeddingsRequest } from './request.ts';

/** The Jina Embeddings API: POST /v1/embeddings, and /embeddings for OpenAI-style base URLs. */
export const embeddingsRoutes: FastifyPluginAsync<{ ctx: ApiContext }> = async (app, { ctx }) => {
  const embeddings = async (request: FastifyRequest, reply: FastifyReply) => {
    const body = parseEmbeddingsRequest(request.body, ctx.limits);
    admit(ctx, request, estimateTokens(body.items));
    const model = ctx.model(body.model);
    const results = await embedRequestItems(ctx, model.engine, request, reply, body.items, { normalize: body.normalized, truncate: body.truncate });
    const usage = bill(ctx, request, results);
    return {
      model: model.name,
      object: 'list',
      usage,
      data: results.map((r, index) => {
        let vector = r.embedding;
        // Fewer dimensions than the model has: keep the first ones (jina-clip-v1 was not
        // trained for this; see the README), normalised again if asked.
        if (body.dimensions !== undefined && body.dimensions < vector.length) {
          vector = vector.slice(0, body.dimensions);
          if (body.normalized) l2normalize(vector);
        }
        return { object: 'embedding', index, embedding: encodeFor(vector, body) };
      }),
    };
  };
  app.post('/v1/embeddings', embeddings);
  app.post('/embeddings', embeddings);
};
