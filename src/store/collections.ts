/**
 * The collections layer: the VectorStore every caller uses, over any storage backend
 * (backend.ts). It owns what is the same for every backend, as Qdrant's collection sits above
 * segments that only store: validation of names, ids, documents, vectors and metadata; one
 * kind per metadata field; limits and paging (k, offset: the same caps the search parameters
 * use); the model check; "not found"; and a cached descriptor of each collection.
 *
 * The cache: searches and writes use the descriptor read when the collection was first used
 * (no lookup per call, no count). Other processes may drop, recreate or add fields to a
 * collection meanwhile; what must be atomic is checked by the backend (in PostgreSQL's
 * transaction, under LanceDB's per-process write lock with the schema reread), which answers
 * StaleCollection when the descriptor no longer holds. The layer then re-reads the collection
 * and runs the call again, so a write never stores a second kind for a field nor lands in a
 * dropped collection, and a search of a collection dropped elsewhere is COLLECTION_NOT_FOUND.
 * An error that rests on a cached descriptor (the model, the dimensions, a field's kind) is
 * confirmed on a fresh one before it is reported, and a filter naming a field the cached
 * descriptor lacks re-reads it (another process may have added that field).
 */
import { TesseraError, invalidArgument } from '../errors.ts';
import { StaleCollection, type StoreBackend } from './backend.ts';
import type { ClassifierStore } from './classifiers.ts';
import { conditionsOf, fieldConditions, LAT_KEY, LON_KEY } from './filter.ts';
import {
  COLLECTION_NAME,
  MAX_K,
  MAX_OFFSET,
  type CollectionDescriptor,
  type CollectionInfo,
  type CollectionSpec,
  type DocumentRecord,
  type Filter,
  type MetadataKind,
  type Modality,
  type ModelRef,
  type SearchHit,
  type SearchOptions,
  type StoredDocument,
  type TextSearch,
  type VectorSearch,
  type VectorStore,
  type UpsertOptions,
} from './store.ts';
import { validateCollectionName, validateDocumentId, validateMetadata } from './validate.ts';

/** COLLECTION_NOT_FOUND naming the collection and the store. */
export function collectionNotFound(name: string, location: string): TesseraError {
  return new TesseraError('COLLECTION_NOT_FOUND', `no collection ${JSON.stringify(name)} in the store at ${location}; list the collections there, or create it first`);
}

export function sameModel(a: ModelRef, b: ModelRef): boolean {
  return a.model === b.model && a.dtype === b.dtype;
}

/** COLLECTION_MODEL_MISMATCH unless `model` wrote the collection's vectors: vectors of two models do not compare. */
export function checkModel(c: CollectionDescriptor, model: ModelRef): void {
  if (sameModel(c, model)) return;
  throw new TesseraError(
    'COLLECTION_MODEL_MISMATCH',
    `collection ${JSON.stringify(c.name)} holds vectors of ${JSON.stringify(c.model)} (${c.dtype}) but these are of ${JSON.stringify(model.model)} (${model.dtype}); vectors of two models do not compare: use --model ${c.model} --dtype ${c.dtype}`,
  );
}

const badParameter = (message: string) => new TesseraError('SEARCH_PARAMETER_INVALID', message);

/** k, offset and modality of a search. SEARCH_PARAMETER_INVALID. */
function checkPaging(options: SearchOptions): { k: number; offset: number } {
  const { k } = options;
  const offset = options.offset ?? 0;
  if (!Number.isInteger(k) || k < 1 || k > MAX_K) throw badParameter(`k: expected an integer from 1 to ${MAX_K} but received ${String(k)}`);
  if (!Number.isInteger(offset) || offset < 0 || offset > MAX_OFFSET) throw badParameter(`offset: expected an integer from 0 to ${MAX_OFFSET} but received ${String(offset)}`);
  if (options.modality !== undefined && options.modality !== 'text' && options.modality !== 'image') {
    throw badParameter(`modality: expected "text" or "image" but received ${JSON.stringify(options.modality)}`);
  }
  return { k, offset };
}

function checkQueryVector(vector: Float32Array, dims: number): void {
  if (!(vector instanceof Float32Array) || vector.length !== dims) {
    throw new TesseraError('VECTOR_DIMENSIONS_MISMATCH', `query vector: the collection has ${dims} dimensions but the query has ${vector?.length ?? 0}`);
  }
}

/** One document of an upsert, before anything is written (`i` names it in messages). */
function validateDocument(doc: DocumentRecord, i: number, dims: number): void {
  const at = `documents[${i}]`;
  validateDocumentId(doc.id, `${at}.id`);
  if (doc.modality !== 'text' && doc.modality !== 'image') {
    throw new TesseraError('DOCUMENT_INVALID', `${at}.modality: expected "text" or "image" but received ${JSON.stringify(doc.modality)}`);
  }
  const hasText = typeof doc.text === 'string';
  const hasImage = typeof doc.image === 'string';
  if (hasText === hasImage) throw new TesseraError('DOCUMENT_INVALID', `${at}: a document needs exactly one of text or image but has ${hasText ? 'both' : 'neither'}`);
  if ((doc.modality === 'text') !== hasText) throw new TesseraError('DOCUMENT_INVALID', `${at}: modality is ${doc.modality} but the document has ${hasText ? 'a text' : 'an image'}`);
  if (typeof doc.hash !== 'string' || doc.hash.length === 0) throw new TesseraError('DOCUMENT_INVALID', `${at}.hash: expected the content's sha256 as a hex string`);
  if (doc.root !== undefined && typeof doc.root !== 'string') throw new TesseraError('DOCUMENT_INVALID', `${at}.root: expected a string`);
  if (!(doc.vector instanceof Float32Array) || doc.vector.length !== dims) {
    const got = doc.vector instanceof Float32Array ? `${doc.vector.length} dimensions` : 'no Float32Array';
    throw new TesseraError('VECTOR_DIMENSIONS_MISMATCH', `${at}.vector: the collection has ${dims} dimensions but the vector has ${got}`);
  }
  for (let j = 0; j < dims; j++) {
    if (!Number.isFinite(doc.vector[j])) throw new TesseraError('VECTOR_DIMENSIONS_MISMATCH', `${at}.vector[${j}]: expected a finite number but received ${doc.vector[j]}`);
  }
  validateMetadata(doc.metadata, `${at}.metadata`);
}

/**
 * FILTER_INVALID when a value is not of its field's kind, or a range is asked of a boolean.
 * False when the filter names a field `fields` does not know (such a field matches nothing).
 */
function checkFilter(filter: Filter | undefined, fields: ReadonlyMap<string, MetadataKind>): boolean {
  if (!filter) return true;
  let known = !(filter.$near || filter.$within) || (fields.has(LAT_KEY) && fields.has(LON_KEY));
  for (const [key, condition] of fieldConditions(filter)) {
    const kind = fields.get(key);
    if (kind === undefined) {
      known = false;
      continue;
    }
    for (const [op, value] of conditionsOf(condition)) {
      for (const v of Array.isArray(value) ? value : [value]) {
        if (typeof v !== kind) {
          throw new TesseraError('FILTER_INVALID', `filter.${key}: the collection holds ${kind}s in this field but the filter compares with a ${typeof v} (${JSON.stringify(v)})`);
        }
      }
      if (kind === 'boolean' && op !== '$eq' && op !== '$ne' && op !== '$in') throw new TesseraError('FILTER_INVALID', `filter.${key}: ${op} does not apply to a boolean field`);
    }
  }
  return known;
}

/** Errors that rest on what a descriptor says: confirmed on a fresh one before they are reported. */
const DESCRIPTOR_ERRORS = new Set(['COLLECTION_MODEL_MISMATCH', 'VECTOR_DIMENSIONS_MISMATCH', 'METADATA_INVALID', 'FILTER_INVALID']);
/** Calls run again at most this often on fresh descriptors before giving up (a collection churned by others). */
const ATTEMPTS = 3;

export class Collections<B extends StoreBackend = StoreBackend> implements VectorStore {
  readonly backend: B;
  readonly #cache = new Map<string, CollectionDescriptor>();

  constructor(backend: B) {
    this.backend = backend;
  }

  get location(): string {
    return this.backend.location;
  }

  get classifiers(): ClassifierStore {
    return this.backend.classifiers;
  }

  /** The collection as stored now (cached for later calls); COLLECTION_NOT_FOUND. */
  async #read(name: string): Promise<CollectionDescriptor> {
    const c = typeof name === 'string' && COLLECTION_NAME.test(name) ? await this.backend.describe(name) : undefined;
    if (!c) {
      this.#cache.delete(name);
      throw collectionNotFound(name, this.location);
    }
    this.#cache.set(name, c);
    return c;
  }

  /**
   * Runs `op` on the collection's descriptor: the cached one, or (when the backend finds it
   * stale, or `op` fails on what it says) the one stored now. `fresh` tells `op` which.
   */
  async #on<T>(name: string, op: (c: CollectionDescriptor, fresh: boolean) => Promise<T>): Promise<T> {
    let c = this.#cache.get(name);
    let fresh = c === undefined;
    c ??= await this.#read(name);
    for (let attempt = 1; ; attempt++) {
      try {
        return await op(c, fresh);
      } catch (err) {
        const stale = err instanceof StaleCollection || (!fresh && err instanceof TesseraError && DESCRIPTOR_ERRORS.has(err.code));
        if (!stale) throw err;
        if (attempt === ATTEMPTS) {
          throw new TesseraError('STORE_UNAVAILABLE', `collection ${JSON.stringify(name)} in the store at ${this.location} kept changing (dropped, recreated or given new fields by another process) while this call ran; retry shortly`, { cause: err });
        }
      }
      c = await this.#read(name);
      fresh = true;
    }
  }

  /** `op` on a descriptor that knows every field `filter` names, re-read if the cached one does not. */
  #filtered<T>(name: string, filter: Filter | undefined, op: (c: CollectionDescriptor) => Promise<T>): Promise<T> {
    return this.#on(name, (c, fresh) => {
      if (!checkFilter(filter, c.fields) && !fresh) throw new StaleCollection(name, 'changed');
      return op(c);
    });
  }

  // ---- collections ----

  /** `c`, just read, with its count (the one place counts are made); undefined when dropped meanwhile. */
  async #counted(c: CollectionDescriptor): Promise<CollectionInfo | undefined> {
    this.#cache.set(c.name, c);
    try {
      return { name: c.name, model: c.model, dtype: c.dtype, dimensions: c.dimensions, createdAt: c.createdAt, count: await this.backend.count(c) };
    } catch (err) {
      if (!(err instanceof StaleCollection)) throw err;
      this.#cache.delete(c.name);
      return undefined;
    }
  }

  async listCollections(): Promise<CollectionInfo[]> {
    const out: CollectionInfo[] = [];
    for (const c of await this.backend.list()) {
      const info = await this.#counted(c);
      if (info) out.push(info);
    }
    return out.sort((a, b) => a.name.localeCompare(b.name));
  }

  async getCollection(name: string): Promise<CollectionInfo | undefined> {
    const c = typeof name === 'string' && COLLECTION_NAME.test(name) ? await this.backend.describe(name) : undefined;
    if (!c) this.#cache.delete(name);
    return c && this.#counted(c);
  }

  requireCollection(name: string, model?: ModelRef): Promise<CollectionDescriptor> {
    return this.#on(name, async (c) => {
      if (model) checkModel(c, model);
      return c;
    });
  }

  async createCollection(spec: CollectionSpec): Promise<CollectionInfo> {
    const name = validateCollectionName(spec.name);
    if (typeof spec.model !== 'string' || spec.model.length === 0) throw invalidArgument('model', 'a model name', spec.model);
    if (typeof spec.dtype !== 'string' || spec.dtype.length === 0) throw invalidArgument('dtype', 'a dtype', spec.dtype);
    const max = this.backend.maxDimensions;
    if (!Number.isInteger(spec.dimensions) || spec.dimensions < 1 || spec.dimensions > max) {
      throw invalidArgument('dimensions', `an integer from 1 to ${max} (the most this store indexes)`, spec.dimensions);
    }
    this.backend.checkText?.(spec.model, 'model');
    this.backend.checkText?.(spec.dtype, 'dtype');
    const c = await this.backend.create({ name, model: spec.model, dtype: spec.dtype, dimensions: spec.dimensions }, new Date().toISOString());
    this.#cache.set(name, c);
    return { name, model: c.model, dtype: c.dtype, dimensions: c.dimensions, createdAt: c.createdAt, count: 0 };
  }

  async dropCollection(name: string): Promise<boolean> {
    if (typeof name !== 'string' || !COLLECTION_NAME.test(name)) return false;
    try {
      return await this.backend.drop(name);
    } finally {
      this.#cache.delete(name);
    }
  }

  // ---- writes ----

  upsert(collection: string, docs: readonly DocumentRecord[], writer: ModelRef, options: UpsertOptions = {}): Promise<void> {
    return this.#on(collection, async (c) => {
      checkModel(c, writer);
      const written = new Set(docs.map((d) => d.id));
      const remove = [...new Set(options.remove ?? [])].filter((id) => typeof id === 'string' && !written.has(id));
      if (docs.length === 0) {
        if (remove.length > 0) await this.backend.delete(c, remove);
        return;
      }
      // Everything is checked before anything is written: one bad document, nothing stored.
      const fields = this.#checkBatch(docs, c);
      await this.backend.upsert(c, docs, fields, remove.length > 0 ? remove : undefined);
      // The backend recorded the batch's new fields: later calls know them without a re-read.
      if ([...fields.keys()].some((key) => !c.fields.has(key)) && this.#cache.get(collection) === c) {
        this.#cache.set(collection, { ...c, fields: new Map([...c.fields, ...fields]) });
      }
    });
  }

  /**
   * Validates every document and returns every metadata field of the batch with its kind.
   * DOCUMENT_ID_DUPLICATE; METADATA_INVALID when a field's kind disagrees with the
   * collection's or with an earlier document of the batch.
   */
  #checkBatch(docs: readonly DocumentRecord[], c: CollectionDescriptor): Map<string, MetadataKind> {
    const seen = new Map<string, number>();
    const fields = new Map<string, MetadataKind>();
    const checkText = this.backend.checkText?.bind(this.backend);
    docs.forEach((doc, i) => {
      const at = `documents[${i}]`;
      validateDocument(doc, i, c.dimensions);
      if (checkText) {
        for (const key of ['id', 'text', 'image', 'root', 'hash'] as const) if (doc[key] !== undefined) checkText(doc[key], `${at}.${key}`);
        for (const [key, value] of Object.entries(doc.metadata)) if (typeof value === 'string') checkText(value, `${at}.metadata.${key}`);
      }
      const first = seen.get(doc.id);
      if (first !== undefined) throw new TesseraError('DOCUMENT_ID_DUPLICATE', `${at}.id: ${JSON.stringify(doc.id)} appears already as documents[${first}].id`);
      seen.set(doc.id, i);
      for (const [key, value] of Object.entries(doc.metadata)) {
        const kind = typeof value as MetadataKind;
        const known = c.fields.get(key) ?? fields.get(key);
        if (known !== undefined && known !== kind) {
          throw new TesseraError('METADATA_INVALID', `${at}.metadata.${key}: the collection holds ${known}s in this field but this document gives a ${kind}`);
        }
        fields.set(key, kind);
      }
    });
    return fields;
  }

  delete(collection: string, ids: readonly string[]): Promise<number> {
    return this.#on(collection, async (c) => {
      ids.forEach((id, i) => validateDocumentId(id, `ids[${i}]`));
      return ids.length === 0 ? 0 : this.backend.delete(c, ids);
    });
  }

  // ---- reads ----

  get(collection: string, ids: readonly string[], options?: { vectors?: boolean }): Promise<(StoredDocument & { vector?: Float32Array })[]> {
    return this.#on(collection, async (c) => {
      ids.forEach((id, i) => validateDocumentId(id, `ids[${i}]`));
      const found = new Map((await this.backend.get(c, ids, options?.vectors ?? false)).map((doc) => [doc.id, doc]));
      return ids.flatMap((id) => found.get(id) ?? []);
    });
  }

  hashes(collection: string): Promise<Map<string, string>> {
    return this.#on(collection, (c) => this.backend.hashes(c));
  }

  async *scan(collection: string, pageSize = 1000): AsyncIterable<{ id: string; modality: Modality; vector: Float32Array }[]> {
    if (!Number.isInteger(pageSize) || pageSize < 1) throw invalidArgument('pageSize', 'a positive integer', pageSize);
    // A scan is long: one fresh read first costs nothing, and a table gone in the middle is gone.
    try {
      yield* this.backend.scan(await this.#read(collection), pageSize);
    } catch (err) {
      if (!(err instanceof StaleCollection)) throw err;
      this.#cache.delete(collection);
      throw collectionNotFound(collection, this.location);
    }
  }

  async search(collection: string, query: VectorSearch): Promise<SearchHit[]> {
    const { k, offset } = checkPaging(query);
    if (query.minScore !== undefined && !Number.isFinite(query.minScore)) throw badParameter(`min_score: expected a number but received ${String(query.minScore)}`);
    const minScore = query.minScore ?? -Infinity;
    return this.#filtered(collection, query.filter, async (c) => {
      checkQueryVector(query.vector, c.dimensions);
      const { vector, filter, modality, excludeIds } = query;
      const hits = await this.backend.search(c, { vector, filter, modality, excludeIds, limit: offset + k });
      return hits.slice(offset).filter((hit) => hit.score >= minScore);
    });
  }

  async fullTextSearch(collection: string, query: TextSearch): Promise<SearchHit[]> {
    const { k, offset } = checkPaging(query);
    if (typeof query.text !== 'string' || query.text.trim().length === 0) throw new TesseraError('QUERY_INVALID', 'text: expected a non-empty text to search for');
    return this.#filtered(collection, query.filter, async (c) => {
      const { text, filter, modality, excludeIds } = query;
      return (await this.backend.fullTextSearch(c, { text, filter, modality, excludeIds, limit: offset + k })).slice(offset);
    });
  }

  count(collection: string, filter?: Filter): Promise<number> {
    return this.#filtered(collection, filter, (c) => this.backend.count(c, filter));
  }

  ping(): Promise<void> {
    return this.backend.ping();
  }

  async close(): Promise<void> {
    this.#cache.clear();
    await this.backend.close();
  }
}
