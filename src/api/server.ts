import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyInstance } from 'fastify';
import sharp from 'sharp';
import type { Embedder } from '../engine/embedder.ts';
import type { FetchPolicy } from '../image/fetch.ts';
import { onInferenceThreadDeath, onInferenceThreadRestart } from '../model/session.ts';
import type { ModelRef, VectorStore } from '../store/store.ts';
import type { ApiKeys } from './auth.ts';
import { Classifiers } from '../classifier/classifiers.ts';
import { classifierRoutes } from './classifiers.ts';
import { classifyRoutes } from './classify.ts';
import { collectionsRoutes } from './collections.ts';
import type { ServerConfig } from './config.ts';
import { ModelSlot, type ApiContext } from './context.ts';
import { Drain } from './drain.ts';
import { embeddingsRoutes } from './embeddings.ts';
import { installErrorHandlers } from './error-handler.ts';
import { healthRoutes } from './health.ts';
import { installRequestHooks } from './hooks.ts';
import { RateLimiter } from './limits.ts';
import { webPlugin } from './web.ts';
import { ServerMetrics } from './metrics.ts';

export interface ServerOptions {
  config: ServerConfig;
  /** What clients put in `model`, e.g. jina-clip-v1. */
  servedName: string;
  /** Other names accepted in `model`, e.g. the hub id jinaai/jina-clip-v1. */
  aliases?: string[];
  apiKeys: ApiKeys | null;
  /**
   * The collections to serve under /v1/collections, and the few-shot classifiers (/v1/train,
   * /v1/classifiers); without one those routes do not exist.
   */
  store?: VectorStore;
  /**
   * The loaded model as collections record it (default: config.model and config.dtype).
   * Collections of another model are listed but not searched or written.
   */
  modelRef?: ModelRef;
}

export interface TesseraServer {
  app: FastifyInstance;
  metrics: ServerMetrics;
  /** Hands the loaded model to the server: warms it up, then /ready turns 200. */
  attach(embedder: Embedder): Promise<void>;
  /**
   * Stops the server without failing what it accepted: new requests get 503 SHUTTING_DOWN
   * from now on, the ones in flight finish, then the listener and connections close.
   */
  shutdown(): Promise<void>;
}

/**
 * The HTTP server: shared hooks (auth, timing headers, metrics) and the error registry at
 * the root, then one plugin per API family, each given the same ApiContext.
 */
export function createServer(options: ServerOptions): TesseraServer {
  const { config, servedName } = options;
  const metrics = new ServerMetrics();
  const slot = new ModelSlot(servedName, new Set([servedName, ...(options.aliases ?? [])]));
  const fetchPolicy: Partial<FetchPolicy> = {
    timeoutMs: config['fetch-timeout-ms'],
    maxBytes: config['max-image-bytes'],
    maxRedirects: config['max-redirects'],
    allowPrivate: config['allow-private-urls'],
  };
  const ctx: ApiContext = {
    config,
    servedName,
    modelRef: options.modelRef ?? { model: config.model, dtype: config.dtype },
    metrics,
    limiter: new RateLimiter({
      requestsPerMinute: config['rate-limit-rpm'] || undefined,
      tokensPerMinute: config['rate-limit-tpm'] || undefined,
      concurrentRequests: config['rate-limit-concurrency'] || undefined,
    }),
    fetchPolicy,
    limits: { maxItems: config['max-items'], maxTextChars: config['max-text-chars'], maxClassifierInputs: config['classifier-max-inputs'] },
    store: options.store,
    classifiers: options.store && new Classifiers(options.store.classifiers, { maxClasses: config['classifier-max-classes'], maxPerOwner: config['classifier-max-per-key'] }),
    get ready() {
      return slot.ready;
    },
    get unavailable() {
      return slot.unavailable;
    },
    engine: () => slot.engine(),
    dimensions: () => (slot.engine(), slot.dimensions),
    checkModel: (requested) => slot.checkModel(requested),
  };

  const app = Fastify({
    bodyLimit: config['max-body-bytes'],
    // Per-request lines are Fastify's at 'info'; by default only warnings and errors are logged.
    logger: { level: process.env.TESSERA_LOG_LEVEL ?? 'warn', redact: ['req.headers.authorization'] },
    requestIdHeader: 'x-request-id',
    genReqId: () => randomUUID(),
    // Document ids (up to 512 UTF-8 bytes) travel URL-encoded in paths: up to 3 characters a byte.
    routerOptions: { maxParamLength: 2048 },
    // Requests that reach a stopping server get our SHUTTING_DOWN body (drain.ts), not Fastify's.
    return503OnClosing: false,
  });
  app.removeContentTypeParser('text/plain'); // the API speaks JSON only: anything else is 415
  const drain = new Drain();
  installRequestHooks(app, options.apiKeys, metrics, drain);
  installErrorHandlers(app, config);

  // A dead inference thread has lost the model: /ready says so at once. Once the thread is
  // back with the model, a warm-up like attach's turns /ready 200 again; one overtaken by a
  // newer death proves nothing and is ignored.
  let embedder: Embedder | undefined;
  let deaths = 0;
  const offDeath = onInferenceThreadDeath(({ error }) => {
    deaths++;
    slot.markUnavailable(error);
  });
  const offRestart = onInferenceThreadRestart(() => {
    const seen = deaths;
    if (!embedder) return;
    warmUp(embedder).then(
      () => deaths === seen && slot.markReady(),
      (err: unknown) => app.log.warn({ err }, 'warm-up after the inference thread restarted failed'),
    );
  });
  app.addHook('onClose', async () => {
    offDeath();
    offRestart();
  });

  void app.register(healthRoutes, { ctx });
  void app.register(embeddingsRoutes, { ctx });
  void app.register(classifyRoutes, { ctx });
  if (options.store) void app.register(collectionsRoutes, { ctx, store: options.store });
  if (ctx.classifiers) void app.register(classifierRoutes, { ctx, classifiers: ctx.classifiers });
  void app.register(webPlugin); // GET /: the search page

  // One text and one image through the real path, so /ready means "answers now".
  async function warmUp(loaded: Embedder): Promise<void> {
    const image = await sharp({ create: { width: 32, height: 32, channels: 3, background: '#808080' } }).png().toBuffer();
    const [text] = await loaded.embed([{ text: 'warm-up' }, { image }]);
    slot.dimensions = text!.embedding.length;
  }

  async function attach(loaded: Embedder): Promise<void> {
    slot.set(loaded);
    metrics.watch(loaded);
    embedder = loaded; // from now on a restarted thread is warmed up too
    const seen = deaths;
    await warmUp(loaded);
    if (deaths === seen) slot.markReady();
  }

  async function shutdown(): Promise<void> {
    await drain.begin();
    await app.close();
  }

  return { app, metrics, attach, shutdown };
}
