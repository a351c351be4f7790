import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Embedder } from '../engine/embedder.ts';
import type { FetchPolicy } from '../image/fetch.ts';
import { onInferenceThreadDeath, onInferenceThreadRestart } from '../model/session.ts';
import { TesseraError } from '../errors.ts';
import { modelRefOf } from '../search/collection.ts';
import { StoreAvailability } from '../store/availability.ts';
import type { ModelRef, VectorStore } from '../store/store.ts';
import type { ApiKeys } from './auth.ts';
import { Classifiers } from '../classifier/classifiers.ts';
import { classifierRoutes } from './classifiers.ts';
import { classifyRoutes } from './classify.ts';
import { collectionsRoutes } from './collections.ts';
import type { ServerConfig } from './config.ts';
import type { ApiContext } from './context.ts';
import { ModelRegistry, modelSpecs, servedName, type ModelSpec } from './models.ts';
import { Drain } from './drain.ts';
import { embeddingsRoutes } from './embeddings.ts';
import { installErrorHandlers } from './error-handler.ts';
import { healthRoutes } from './health.ts';
import { installRequestHooks } from './hooks.ts';
import { installOpenApi } from './openapi.ts';
import { SHARED_SCHEMAS } from './schemas/shared.ts';
import { installJsonParser, validatorCompiler } from './validation.ts';
import { RateLimiter, anyLimit, type LimitSettings, type Limiter } from './limits.ts';
import { SharedRateLimiter } from './limits-redis.ts';
import { parseQueueUrl } from '../queue/connection.ts';
import { webPlugin } from './web.ts';
import { mcpRoutes } from '../mcp/http.ts';
import { ServerMetrics } from './metrics.ts';

export interface ServerOptions {
  config: ServerConfig;
  /**
   * The models served, in order: the first is the default. Default: one model, from
   * `servedName`, `aliases` and `modelRef` when given, else from config (modelSpecs).
   */
  models?: readonly ModelSpec[];
  /** One model: what clients put in `model`, e.g. jina-clip-v1. */
  servedName?: string;
  /** One model: other names accepted in `model`, e.g. the hub id jinaai/jina-clip-v1. */
  aliases?: string[];
  /** One model: as collections and classifiers record it (default: config's first model and dtype). */
  modelRef?: ModelRef;
  apiKeys: ApiKeys | null;
  /**
   * The collections to serve under /v1/collections, and the few-shot classifiers (/v1/train,
   * /v1/classifiers); without one those routes do not exist. A collection or classifier is
   * used with the served model it records; those of a model not served are listed but not
   * searched, written or used.
   */
  store?: VectorStore;
}

export interface TesseraServer {
  app: FastifyInstance;
  metrics: ServerMetrics;
  /**
   * Hands a loaded model to the server (`model`: its served name; default the first): warms
   * it up, then it answers, and /ready turns 200 once every model has. `residentBytes` is
   * reported in /metrics.
   */
  attach(embedder: Embedder, options?: { model?: string; residentBytes?: number }): Promise<void>;
  /**
   * Stops the server without failing what it accepted: new requests get 503 SHUTTING_DOWN
   * from now on, the ones in flight finish, then the listener and connections close.
   */
  shutdown(): Promise<void>;
}

/** The served models an options object describes. */
function specsOf(options: ServerOptions): readonly ModelSpec[] {
  if (options.models) return options.models;
  if (options.servedName === undefined && options.modelRef === undefined) return modelSpecs(options.config);
  const ref = options.modelRef ?? modelRefOf(options.config.model[0] ?? '', options.config.dtype);
  const name = options.servedName ?? servedName(ref.model);
  return [{ name, aliases: [...new Set([...(options.aliases ?? []), ref.model])], ref, source: ref.model }];
}

/**
 * The HTTP server: shared hooks (auth, timing headers, metrics) and the error registry at
 * the root, then one plugin per API family, each given the same ApiContext.
 */
export function createServer(options: ServerOptions): TesseraServer {
  const { config } = options;
  const metrics = new ServerMetrics();
  const models = new ModelRegistry(specsOf(options));
  const fetchPolicy: Partial<FetchPolicy> = {
    timeoutMs: config['fetch-timeout-ms'],
    maxBytes: config['max-image-bytes'],
    maxRedirects: config['max-redirects'],
    allowPrivate: config['allow-private-urls'],
  };
  // The routes get the store through its availability: while the database is down they fail
  // at once with STORE_UNAVAILABLE, and /ready reports its state (store/availability.ts).
  const availability = options.store && new StoreAvailability(options.store, {
    onChange: (state) =>
      state.available
        ? app.log.warn({ store: options.store!.location }, 'the store answers again')
        : app.log.warn({ store: options.store!.location, reason: state.reason }, 'the store does not answer: store requests fail with STORE_UNAVAILABLE until it does; embeddings go on'),
  });
  const store = availability?.store;
  const limits: LimitSettings = {
    requestsPerMinute: config['rate-limit-rpm'] || undefined,
    tokensPerMinute: config['rate-limit-tpm'] || undefined,
    concurrentRequests: config['rate-limit-concurrency'] || undefined,
  };
  // With --queue the limits live in Redis, shared by the replicas (nothing to share when none is set).
  const queue = config.queue === '' ? undefined : parseQueueUrl(config.queue, '--queue');
  const limiter: Limiter = queue && anyLimit(limits)
    ? new SharedRateLimiter(limits, queue, {
        onChange(shared, message, first) {
          metrics.limitsShared(shared);
          if (shared && first) app.log.info({ queue: queue.shown }, message);
          else app.log.warn({ queue: queue.shown }, message);
        },
      })
    : new RateLimiter(limits);
  const ctx: ApiContext = {
    config,
    models,
    metrics,
    limiter,
    fetchPolicy,
    limits: { maxItems: config['max-items'], maxTextChars: config['max-text-chars'], maxClassifierInputs: config['classifier-max-inputs'] },
    store,
    classifiers: store && new Classifiers(store.classifiers, { maxClasses: config['classifier-max-classes'], maxPerOwner: config['classifier-max-per-key'] }),
    model: (requested) => (requested === undefined ? models.default : models.resolve(requested)).handle(),
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
  installJsonParser(app); // an empty JSON body is no body on GET and DELETE (validation.ts)
  // Requests are validated by the routes' schemas, failures answered through the registry
  // (validation.ts). Answers are serialized as before, by JSON.stringify: the response schemas
  // document them (/openapi.json) and never drop or coerce a field.
  app.setValidatorCompiler(validatorCompiler(SHARED_SCHEMAS));
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));
  const drain = new Drain();
  installRequestHooks(app, options.apiKeys, metrics, drain);
  installErrorHandlers(app, config);
  availability?.start();

  // A dead inference thread has lost every model (one thread serves them all): /ready says
  // so at once. Once the thread is back with the models, a warm-up of each like attach's
  // turns it ready again; one overtaken by a newer death proves nothing and is ignored.
  let deaths = 0;
  const offDeath = onInferenceThreadDeath(({ error }) => {
    deaths++;
    for (const slot of models.slots) slot.markUnavailable(error);
  });
  const offRestart = onInferenceThreadRestart(() => {
    const seen = deaths;
    for (const slot of models.slots) {
      if (!slot.loaded) continue;
      slot.warmUp().then(
        () => deaths === seen && slot.markReady(),
        (err: unknown) => app.log.warn({ err, model: slot.name }, 'warm-up after the inference thread restarted failed'),
      );
    }
  });
  app.addHook('onClose', async () => {
    offDeath();
    offRestart();
    availability?.stop();
    await limiter.close();
  });
  // Before listening: shared limits wait (a few seconds at most) for Redis, or say they are local.
  app.addHook('onReady', async () => {
    await limiter.start();
  });

  installOpenApi(app); // GET /openapi.json and /docs, from the routes registered below
  void app.register(healthRoutes, { ctx, availability });
  void app.register(embeddingsRoutes, { ctx });
  void app.register(classifyRoutes, { ctx });
  if (store) void app.register(collectionsRoutes, { ctx, store });
  if (ctx.classifiers) void app.register(classifierRoutes, { ctx, classifiers: ctx.classifiers });
  void app.register(mcpRoutes, { ctx, apiKeys: options.apiKeys }); // /mcp: the Model Context Protocol
  void app.register(webPlugin); // GET /: the search page

  async function attach(loaded: Embedder, how: { model?: string; residentBytes?: number } = {}): Promise<void> {
    const slot = how.model === undefined ? models.default : models.get(how.model);
    if (!slot) throw new TesseraError('INVALID_ARGUMENT', `attach: no served model is named ${JSON.stringify(how.model)}; the served models are ${models.listNames()}`);
    slot.set(loaded); // from now on a restarted thread warms it up too
    metrics.watch(loaded, slot.name, how.residentBytes);
    const seen = deaths;
    await slot.warmUp();
    if (deaths === seen) slot.markReady();
  }

  async function shutdown(): Promise<void> {
    await drain.begin();
    // Every admitted request has its answer: the connections left are owed nothing. app.close()
    // alone closes idle keep-alive sockets only, and waited for one a client had left mid-request
    // (half its headers sent) for a minute or more.
    const closed = app.close();
    app.server.closeAllConnections();
    await closed;
  }

  return { app, metrics, attach, shutdown };
}
