/**
 * Collections and search over HTTP: /v1/collections/... Same auth, limits, error registry
 * and metrics as the embeddings API (the root hooks), the search core in src/search/ and
 * the store behind the VectorStore interface.
 */
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { Embedding } from '../engine/embedder.ts';
import { TesseraError } from '../errors.ts';
import { fetchImage } from '../image/fetch.ts';
import { embedDocuments, parseDocumentInput, type DocumentInput } from '../index/document.ts';
import { SOURCE_KEY } from '../index/sources.ts';
import { requireCollection } from '../search/collection.ts';
import { DuplicateJobs, type DuplicateJob } from '../search/duplicate-jobs.ts';
import { DEFAULT_DUPLICATE_GROUPS_PAGE, parseThreshold } from '../search/duplicates.ts';
import type { GroupedHit } from '../search/group.ts';
import { parseSearchParameters } from '../search/params.ts';
import { parseQuery, type QueryTerm } from '../search/query.ts';
import { searchCollection } from '../search/search.ts';
import { ThumbnailCache, THUMBNAIL_TYPE } from '../search/thumbnail.ts';
import { publicModel } from '../model/source.ts';
import { sendDocumentFile } from './document-file.ts';
import type { CollectionDescriptor, CollectionInfo, Metadata, StoredDocument, VectorStore } from '../store/store.ts';
import { validateDocumentId } from '../store/validate.ts';
import {
  createCollectionSchema,
  deleteCollectionSchema,
  deleteDocumentSchema,
  deleteDuplicatesSchema,
  fileSchema,
  getDocumentSchema,
  getDuplicatesSchema,
  listCollectionsSchema,
  listDuplicatesSchema,
  searchSchema,
  startDuplicatesSchema,
  thumbnailSchema,
  upsertDocumentsSchema,
} from './schemas/collections.ts';
import { admit, estimateTextTokens, IMAGE_TOKEN_ESTIMATE } from './admission.ts';
import { describe } from './request.ts';
import { bill, recordTimings } from './billing.ts';
import { requestSignal, type ApiContext } from './context.ts';
import type { ModelHandle } from './models.ts';

const invalid = (message: string) => new TesseraError('REQUEST_INVALID', message);

/**
 * How a document's image is shown to clients: its URL or data URI as stored; a file (a
 * folder document) by its id, the path relative to the indexed root, never the server's
 * absolute path.
 */
export function shownImage(id: string, image: string): string {
  return /^(https?|data):/i.test(image) ? image : id;
}

/**
 * Metadata as clients see it: without the indexer's `_source` (the real path of the folder or
 * file a document was indexed from), which change detection and --prune need but which would
 * show the server's file system to every client.
 */
export function shownMetadata(metadata: Metadata): Metadata {
  if (!(SOURCE_KEY in metadata)) return metadata;
  const { [SOURCE_KEY]: _internal, ...shown } = metadata;
  return shown;
}

function hitView(hit: GroupedHit) {
  const content = hit.modality === 'text' ? { text: hit.text ?? '' } : { image: shownImage(hit.id, hit.image ?? '') };
  // A video's or a PDF's result lists its other matching frames or pages; a collapsed one what it stands for.
  const { moments, pages, collapsed } = hit;
  return { id: hit.id, score: hit.score, ...content, metadata: shownMetadata(hit.metadata), ...(moments && { moments }), ...(pages && { pages }), ...(collapsed && { collapsed }) };
}

function documentView(doc: StoredDocument) {
  const content = doc.modality === 'text' ? { text: doc.text ?? '' } : { image: shownImage(doc.id, doc.image ?? '') };
  return { id: doc.id, modality: doc.modality, ...content, metadata: shownMetadata(doc.metadata), hash: doc.hash };
}

/** Rate-limit estimate of a query before it is embedded (ids cost nothing: no model run). */
function queryTokens(terms: readonly QueryTerm[]): number {
  return terms.reduce((sum, t) => sum + (t.kind === 'text' ? estimateTextTokens(t.text) : t.kind === 'id' ? 0 : IMAGE_TOKEN_ESTIMATE), 0);
}

function documentTokens(docs: readonly DocumentInput[]): number {
  return docs.reduce((sum, d) => sum + ('text' in d ? estimateTextTokens(d.text) : IMAGE_TOKEN_ESTIMATE), 0);
}

const documentNotFound = (collection: string, id: string) =>
  new TesseraError('DOCUMENT_NOT_FOUND', `collection ${JSON.stringify(collection)} holds no document ${JSON.stringify(id)}`);

/**
 * Path parameters and bodies as their schemas (schemas/collections.ts) let them through: a
 * collection name in a path matches COLLECTION_NAME; a body is an object of the listed fields,
 * each of its type. The route's parsers check the rest.
 */
interface NameParams {
  name: string;
}
interface DocumentParams extends NameParams {
  id: string;
}
type Body = Record<string, unknown>;

export const collectionsRoutes: FastifyPluginAsync<{ ctx: ApiContext; store: VectorStore }> = async (app, { ctx, store }) => {
  const thumbnails = new ThumbnailCache();
  const fetcher = (url: string, signal?: AbortSignal) => fetchImage(url, ctx.fetchPolicy, signal);

  /**
   * The named collection and the served model it records (for search and writes):
   * COLLECTION_MODEL_MISMATCH when this server does not serve that model.
   */
  async function servable(name: string): Promise<{ info: CollectionDescriptor; model: ModelHandle }> {
    const info = await requireCollection(store, name);
    const slot = ctx.models.serving(info);
    if (!slot) {
      throw new TesseraError(
        'COLLECTION_MODEL_MISMATCH',
        `collection ${JSON.stringify(info.name)} holds vectors of ${publicModel(info.model)} (${info.dtype}), which this server does not serve; it serves ${ctx.models.describe()}. Serve that model too: --model ${publicModel(info.model)} --dtype ${info.dtype}`,
      );
    }
    return { info, model: slot.handle() };
  }

  /** How a collection is shown: `model_name` is the name this server serves its model as (null: not served). */
  function collectionView(info: CollectionInfo) {
    return { name: info.name, model: publicModel(info.model), model_name: ctx.models.serving(info)?.name ?? null, dimensions: info.dimensions, count: info.count };
  }

  function billed(request: FastifyRequest, embeddings: readonly Embedding[]) {
    recordTimings(request, embeddings);
    return bill(ctx, request, embeddings);
  }

  app.get('/v1/collections', { schema: listCollectionsSchema }, async () => {
    const collections = await store.listCollections();
    return { data: collections.map(collectionView) };
  });

  app.post<{ Body: { name: string; model?: string | null; dtype?: string | null } }>('/v1/collections', { schema: createCollectionSchema }, async (request) => {
    const body = request.body;
    const name = body.name;
    // The served name, an alias, or the model as the server was started with it; none: the first served.
    const slot = typeof body.model === 'string' ? ctx.models.resolve(body.model) : ctx.models.default;
    if (body.dtype !== undefined && body.dtype !== null && body.dtype !== slot.ref.dtype) {
      throw new TesseraError('MODEL_MISMATCH', `dtype ${JSON.stringify(body.dtype)} is not served here; ${JSON.stringify(slot.name)} runs ${slot.ref.dtype}`);
    }
    const model = slot.handle();
    const info = await store.createCollection({ name, ...model.ref, dimensions: model.dimensions });
    return collectionView(info);
  });

  app.delete<{ Params: NameParams }>('/v1/collections/:name', { schema: deleteCollectionSchema }, async (request) => {
    const name = request.params.name;
    if (!(await store.dropCollection(name))) await requireCollection(store, name);
    return { name, deleted: true };
  });

  app.post<{ Params: NameParams; Body: Body }>('/v1/collections/:name/documents', { schema: upsertDocumentsSchema }, async (request, reply) => {
    const list = request.body.documents;
    if (!Array.isArray(list) || list.length === 0) throw invalid(`documents must be a non-empty list of documents, got ${describe(list)}`);
    if (list.length > ctx.limits.maxItems) {
      throw new TesseraError('TOO_MANY_ITEMS', `documents has ${list.length} entries but this server accepts at most ${ctx.limits.maxItems} per request; split it`);
    }
    const inputs = list.map((value, i) => parseDocumentInput(value, `documents[${i}]`));
    const seen = new Map<string, number>();
    inputs.forEach((doc, i) => {
      const first = seen.get(doc.id);
      if (first !== undefined) throw new TesseraError('DOCUMENT_ID_DUPLICATE', `documents[${i}].id: ${JSON.stringify(doc.id)} is also the id of documents[${first}]; an id appears once per request`);
      seen.set(doc.id, i);
      if ('text' in doc && doc.text.length > ctx.limits.maxTextChars) {
        throw new TesseraError('TEXT_TOO_LONG', `documents[${i}].text: text has ${doc.text.length} characters but this server accepts at most ${ctx.limits.maxTextChars}; split it`);
      }
    });
    const name = request.params.name;
    const { model } = await servable(name);
    await admit(ctx, request, documentTokens(inputs));
    const signal = requestSignal(ctx, request, reply);
    const outcomes = await embedDocuments(model.engine, inputs, {
      allowPaths: false, // remote clients never name the server's files
      fetchPolicy: ctx.fetchPolicy,
      signal,
      concurrency: ctx.config['fetch-concurrency'],
    });
    // All or nothing: one bad document and nothing is written.
    for (const outcome of outcomes) {
      if (!outcome.ok) throw new TesseraError(outcome.error.code, `documents[${outcome.index}] (id ${JSON.stringify(outcome.id)}): ${outcome.error.message}`, { cause: outcome.error });
    }
    const done = outcomes.filter((o) => o.ok);
    const existing = new Set((await store.get(name, inputs.map((d) => d.id))).map((d) => d.id));
    await store.upsert(name, done.map((o) => o.record), model.ref);
    const usage = billed(request, done.map((o) => o.embedding));
    return {
      ids: inputs.map((d) => d.id),
      added: inputs.length - existing.size,
      updated: existing.size,
      count: await store.count(name),
      usage,
    };
  });

  app.get<{ Params: DocumentParams }>('/v1/collections/:name/documents/:id', { schema: getDocumentSchema }, async (request) => {
    const name = request.params.name;
    const id = validateDocumentId(request.params.id, 'id');
    await requireCollection(store, name);
    const [doc] = await store.get(name, [id]);
    if (!doc) throw documentNotFound(name, id);
    return documentView(doc);
  });

  app.delete<{ Params: DocumentParams }>('/v1/collections/:name/documents/:id', { schema: deleteDocumentSchema }, async (request) => {
    const name = request.params.name;
    const id = validateDocumentId(request.params.id, 'id');
    await requireCollection(store, name);
    if ((await store.delete(name, [id])) === 0) throw documentNotFound(name, id);
    return { id, deleted: true };
  });

  app.get<{ Params: DocumentParams }>('/v1/collections/:name/documents/:id/thumbnail', { schema: thumbnailSchema }, async (request, reply) => {
    const name = request.params.name;
    const id = validateDocumentId(request.params.id, 'id');
    await requireCollection(store, name);
    // The id only looks the document up: where its image is comes from the store.
    const [doc] = await store.get(name, [id]);
    if (!doc) throw documentNotFound(name, id);
    const etag = `"${doc.hash}"`;
    const thumb = await thumbnails.thumbnail(name, doc, {
      fetchPolicy: ctx.fetchPolicy,
      maxPixels: ctx.config['max-image-pixels'],
      signal: requestSignal(ctx, request, reply),
    });
    void reply.header('content-type', THUMBNAIL_TYPE).header('cache-control', 'private, max-age=3600').header('etag', etag);
    if (request.headers['if-none-match'] === etag) return reply.code(304).send();
    return reply.send(thumb);
  });

  // A video or PDF a result points into (the page plays or opens it there).
  app.get<{ Params: DocumentParams }>('/v1/collections/:name/documents/:id/file', { schema: fileSchema }, async (request, reply) => {
    const name = request.params.name;
    const id = validateDocumentId(request.params.id, 'id');
    await requireCollection(store, name);
    const [doc] = await store.get(name, [id]);
    if (!doc) throw documentNotFound(name, id);
    return sendDocumentFile(name, doc, request, reply);
  });

  app.post<{ Params: NameParams; Body: Body }>('/v1/collections/:name/search', { schema: searchSchema }, async (request, reply) => {
    const body = request.body;
    // The query and the cut-off are unions, the filter a language of its own: their parsers
    // (shared with the CLI) check them; the schema checked the other knobs already.
    const terms = parseQuery(body.query, 'query', ctx.limits.maxTextChars);
    const params = parseSearchParameters(body);
    const name = request.params.name;
    const { model } = await servable(name);
    await admit(ctx, request, queryTokens(terms));
    const started = performance.now();
    const outcome = await searchCollection(
      { store, embedder: model.engine, model: model.ref, fetchImage: fetcher },
      name,
      { ...params, terms },
      requestSignal(ctx, request, reply),
    );
    void reply.header('x-search-time', (performance.now() - started).toFixed(1));
    const usage = billed(request, outcome.embeddings);
    return { data: outcome.hits.map(hitView), usage };
  });

  // Near-duplicates: a scan of the whole collection (one neighbour search per document) runs as
  // a background job (src/search/duplicate-jobs.ts), never inside one request. Stored vectors
  // against stored vectors: no model runs, so any collection can be checked.
  const duplicateJobs = new DuplicateJobs(store);
  app.addHook('onClose', () => duplicateJobs.close());

  function duplicateJobView(job: DuplicateJob) {
    const { scanned, total } = job.progress;
    return {
      id: job.id,
      collection: job.collection,
      threshold: job.threshold,
      modality: job.modality ?? null,
      status: job.status,
      scanned,
      total,
      groups: job.groups().length,
      created_at: job.createdAt.toISOString(),
      started_at: job.startedAt?.toISOString() ?? null,
      finished_at: job.finishedAt?.toISOString() ?? null,
      error: job.error ?? null,
    };
  }

  app.post<{ Params: NameParams; Body: Body | null | undefined }>('/v1/collections/:name/duplicates', { schema: startDuplicatesSchema }, async (request, reply) => {
    const body = request.body ?? {};
    const threshold = parseThreshold(body.threshold); // a number or a numeric string
    const { modality } = parseSearchParameters({ modality: body.modality });
    const name = request.params.name;
    await requireCollection(store, name);
    const job = duplicateJobs.start(name, { threshold, modality });
    return reply.code(202).header('location', `/v1/collections/${name}/duplicates/${job.id}`).send(duplicateJobView(job));
  });

  app.get<{ Params: NameParams }>('/v1/collections/:name/duplicates', { schema: listDuplicatesSchema }, async (request) => {
    const name = request.params.name;
    await requireCollection(store, name);
    return { data: duplicateJobs.list(name).map(duplicateJobView) };
  });

  // offset and limit arrive as integers in range (the schema coerces and checks them).
  app.get<{ Params: NameParams & { job: string }; Querystring: { offset?: number; limit?: number } }>('/v1/collections/:name/duplicates/:job', { schema: getDuplicatesSchema }, async (request) => {
    const name = request.params.name;
    const job = duplicateJobs.get(name, request.params.job);
    const offset = request.query.offset ?? 0;
    const limit = request.query.limit ?? DEFAULT_DUPLICATE_GROUPS_PAGE;
    const groups = job.groups();
    const next = offset + limit < groups.length ? offset + limit : null;
    return { ...duplicateJobView(job), data: groups.slice(offset, offset + limit), offset, next_offset: next };
  });

  app.delete<{ Params: NameParams & { job: string } }>('/v1/collections/:name/duplicates/:job', { schema: deleteDuplicatesSchema }, async (request) => {
    const name = request.params.name;
    const job = duplicateJobs.cancel(name, request.params.job);
    return { id: job.id, deleted: true };
  });
};
