import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import sharp from 'sharp';
import type { Embedder, EmbedItem, Embedding } from '../engine/embedder.ts';
import { classify } from '../engine/classify.ts';
import { l2normalize } from '../engine/pooling.ts';
import { usageOf } from '../engine/usage.ts';
import { encodeFor } from '../encoding/encode.ts';
import { ERRORS, TesseraError, type ErrorCode } from '../errors.ts';
import { fetchImage, mapConcurrent, type FetchPolicy } from '../image/fetch.ts';
import { authenticate, type ApiKeys } from './auth.ts';
import type { ServerConfig } from './config.ts';
import { RateLimiter, type Admission } from './limits.ts';
import { ServerMetrics } from './metrics.ts';
import { parseClassifyRequest, parseEmbeddingsRequest, type RequestItem } from './request.ts';

export interface ServerOptions {
  config: ServerConfig;
  /** What clients put in `model`, e.g. jina-clip-v1. */
  servedName: string;
  /** Other names accepted in `model`, e.g. the hub id jinaai/jina-clip-v1. */
  aliases?: string[];
  apiKeys: ApiKeys | null;
}

export interface TesseraServer {
  app: FastifyInstance;
  metrics: ServerMetrics;
  /** Hands the loaded model to the server: warms it up, then /ready turns 200. */
  attach(embedder: Embedder): Promise<void>;
}

interface RequestState {
  started: number;
  keyId: string;
  admission?: Admission;
  queueMs: number;
  inferenceMs: number;
}

declare module 'fastify' {
  interface FastifyRequest {
    tessera: RequestState;
  }
}

function errorBody(request: FastifyRequest, code: ErrorCode, detail: string) {
  return { detail, code, request_id: request.id };
}

/** The most any item of a request waited for, and spent in, the model. */
function timings(results: readonly Embedding[]): { queueMs: number; inferenceMs: number } {
  return {
    queueMs: Math.max(0, ...results.map((r) => r.timing.queueMs)),
    inferenceMs: Math.max(0, ...results.map((r) => r.timing.inferenceMs)),
  };
}

export function createServer(options: ServerOptions): TesseraServer {
  const { config, servedName } = options;
  const names = new Set([servedName, ...(options.aliases ?? [])]);
  const metrics = new ServerMetrics();
  const limiter = new RateLimiter({
    requestsPerMinute: config['rate-limit-rpm'] || undefined,
    tokensPerMinute: config['rate-limit-tpm'] || undefined,
    concurrentRequests: config['rate-limit-concurrency'] || undefined,
  });
  const fetchPolicy: Partial<FetchPolicy> = {
    timeoutMs: config['fetch-timeout-ms'],
    maxBytes: config['max-image-bytes'],
    maxRedirects: config['max-redirects'],
    allowPrivate: config['allow-private-urls'],
  };
  const limits = { maxItems: config['max-items'], maxTextChars: config['max-text-chars'] };
  let embedder: Embedder | undefined;
  let ready = false;

  const app = Fastify({
    bodyLimit: config['max-body-bytes'],
    // Per-request lines are Fastify's at 'info'; by default only warnings and errors are logged.
    logger: { level: process.env.TESSERA_LOG_LEVEL ?? 'warn', redact: ['req.headers.authorization'] },
    requestIdHeader: 'x-request-id',
    genReqId: () => randomUUID(),
  });
  app.decorateRequest('tessera', null as unknown as RequestState);
  app.removeContentTypeParser('text/plain'); // the API speaks JSON only: anything else is 415

  app.addHook('onRequest', async (request, reply) => {
    request.tessera = { started: performance.now(), keyId: '', queueMs: 0, inferenceMs: 0 };
    reply.header('x-request-id', request.id);
    // API routes need a key (when keys are configured) before anything else is looked at.
    if (request.url.startsWith('/v1/') || request.url.startsWith('/embeddings')) {
      request.tessera.keyId = authenticate(options.apiKeys, request.headers.authorization);
    }
  });

  app.addHook('onSend', async (request, reply) => {
    const state = request.tessera;
    if (!state) return;
    reply.header('x-queue-time', state.queueMs.toFixed(1));
    reply.header('x-inference-time', state.inferenceMs.toFixed(1));
    reply.header('x-total-time', (performance.now() - state.started).toFixed(1));
    if (state.admission) reply.headers(state.admission.headers);
  });

  app.addHook('onResponse', async (request, reply) => {
    const admission = request.tessera?.admission;
    if (admission && reply.statusCode >= 400) admission.commitTokens(0); // failed requests are not billed
    admission?.release();
    const route = request.routeOptions.url ?? 'unknown';
    metrics.request(route, reply.statusCode, (performance.now() - request.tessera.started) / 1000);
  });

  app.setNotFoundHandler((request, reply) => {
    void reply.code(ERRORS.NOT_FOUND.status).send(errorBody(request, 'NOT_FOUND', `no route ${request.method} ${request.url}; see GET /v1/models, POST /v1/embeddings, POST /v1/classify`));
  });

  app.setErrorHandler((error: Error & { code?: string; statusCode?: number; headers?: Record<string, string> }, request, reply) => {
    if (error instanceof TesseraError) {
      if (error.headers) void reply.headers(error.headers);
      if (error.status >= 500 && error.code !== 'NOT_READY') request.log.error({ err: error }, 'request failed');
      return reply.code(error.status).send(errorBody(request, error.code, error.message));
    }
    // Fastify's own request errors, mapped onto the registry.
    if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return reply.code(ERRORS.PAYLOAD_TOO_LARGE.status).send(errorBody(request, 'PAYLOAD_TOO_LARGE', `the request body is larger than ${config['max-body-bytes']} bytes; send fewer or smaller items`));
    }
    if (error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
      return reply.code(ERRORS.UNSUPPORTED_MEDIA_TYPE.status).send(errorBody(request, 'UNSUPPORTED_MEDIA_TYPE', 'send the body as JSON with Content-Type: application/json'));
    }
    if (error.statusCode === 400 || error.code?.startsWith('FST_ERR_CTP')) {
      return reply.code(ERRORS.REQUEST_INVALID.status).send(errorBody(request, 'REQUEST_INVALID', `the body is not valid JSON: ${error.message}`));
    }
    request.log.error({ err: error }, 'unexpected error');
    return reply.code(ERRORS.INTERNAL_ERROR.status).send(errorBody(request, 'INTERNAL_ERROR', 'internal error; the request id identifies it in the server log'));
  });

  /** Per-key rate limits, once the request's size is known. */
  function admit(request: FastifyRequest, estimatedTokens: number): void {
    request.tessera.admission = limiter.admit(request.tessera.keyId, estimatedTokens);
  }

  function model(): Embedder {
    if (!embedder || !ready) throw new TesseraError('NOT_READY', 'the model is still loading; retry when GET /ready answers 200');
    return embedder;
  }

  function checkModel(requested: string): void {
    if (!names.has(requested)) {
      throw new TesseraError('MODEL_MISMATCH', `model ${JSON.stringify(requested)} is not served here; this server serves ${JSON.stringify(servedName)}`);
    }
  }

  /** Aborts when the client goes away before its answer is sent, or the deadline passes. */
  function requestSignal(request: FastifyRequest, reply: FastifyReply): AbortSignal {
    const gone = new AbortController();
    reply.raw.on('close', () => {
      if (!reply.raw.writableFinished) gone.abort(new Error('client disconnected'));
    });
    return AbortSignal.any([gone.signal, AbortSignal.timeout(config['request-timeout-ms'])]);
  }

  /** Turns request items into engine items, downloading image URLs (a bounded number at once). */
  async function resolveItems(items: RequestItem[], signal: AbortSignal): Promise<EmbedItem[]> {
    const urls = items.flatMap((item, index) => (item.kind === 'url' ? [{ index, url: item.url }] : []));
    const fetched = new Map<number, Buffer>();
    await mapConcurrent(urls, config['fetch-concurrency'], async ({ index, url }, _k, inner) => {
      try {
        fetched.set(index, await fetchImage(url, fetchPolicy, inner));
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

  /** A cheap upper-bound token estimate for rate limiting, before tokenizing. */
  function estimateTokens(items: RequestItem[]): number {
    return items.reduce((sum, item) => sum + (item.kind === 'text' ? Math.ceil(item.text.length / 3) + 2 : 1000), 0);
  }

  async function embedRequest(request: FastifyRequest, reply: FastifyReply, items: RequestItem[], options: { normalize: boolean; truncate: boolean }) {
    const engine = model();
    const signal = requestSignal(request, reply);
    const results = await engine.embed(await resolveItems(items, signal), { ...options, signal });
    Object.assign(request.tessera, timings(results));
    return results;
  }

  function bill(request: FastifyRequest, results: readonly Embedding[]) {
    const usage = usageOf(results);
    request.tessera.admission?.commitTokens(usage.total_tokens);
    metrics.usage(usage.prompt_tokens - usage.image_tokens, usage.image_tokens);
    return usage;
  }

  app.get('/health', async () => ({ status: 'ok' }));

  app.get('/ready', async (request, reply) => {
    if (!ready) return reply.code(503).send(errorBody(request, 'NOT_READY', 'the model is still loading or warming up'));
    return { status: 'ready', model: servedName };
  });

  app.get('/v1/models', async () => {
    return { object: 'list', data: [{ id: servedName, object: 'model', created: 0, owned_by: 'tessera', ready }] };
  });

  app.get('/metrics', async (_request, reply) => {
    reply.header('content-type', metrics.registry.contentType);
    return metrics.registry.metrics();
  });

  const embeddings = async (request: FastifyRequest, reply: FastifyReply) => {
    const body = parseEmbeddingsRequest(request.body, limits);
    admit(request, estimateTokens(body.items));
    checkModel(body.model);
    const results = await embedRequest(request, reply, body.items, { normalize: body.normalized, truncate: body.truncate });
    const usage = bill(request, results);
    return {
      model: servedName,
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

  app.post('/v1/classify', async (request, reply) => {
    const body = parseClassifyRequest(request.body, limits);
    admit(request, estimateTokens(body.items) + estimateTokens(body.labels.map((text) => ({ kind: 'text', text }))));
    checkModel(body.model);
    const labels = await model().embedTexts(body.labels);
    const results = await embedRequest(request, reply, body.items, { normalize: true, truncate: false });
    const usage = bill(request, [...results, ...labels]);
    const labelVectors = labels.map((l) => l.embedding);
    return {
      model: servedName,
      object: 'list',
      usage,
      data: results.map((r, index) => ({ object: 'classification', index, ...classify(r.embedding, labelVectors, body.labels) })),
    };
  });

  async function attach(loaded: Embedder): Promise<void> {
    embedder = loaded;
    metrics.watch(loaded);
    // Warm-up: one text and one image through the real path, so /ready means "answers now".
    const image = await sharp({ create: { width: 32, height: 32, channels: 3, background: '#808080' } }).png().toBuffer();
    await loaded.embed([{ text: 'warm-up' }, { image }]);
    ready = true;
  }

  return { app, metrics, attach };
}
