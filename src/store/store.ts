/**
 * The vector store interface: what indexing, search, the server and classifiers need of a
 * database. The collections layer (collections.ts) implements it over any storage backend
 * (backend.ts: the embedded LanceDB one, PostgreSQL + pgvector), and the one contract suite
 * in test/store/contract.ts runs it over each.
 */

import type { ClassifierStore } from './classifiers.ts';

export type Modality = 'text' | 'image';
export type MetadataValue = string | number | boolean;
/** Flat: keys match METADATA_KEY, values are strings, finite numbers or booleans. */
export type Metadata = Record<string, MetadataValue>;
/** The kind of a metadata value; a collection keeps one kind per field. */
export type MetadataKind = 'string' | 'number' | 'boolean';

/** Collection names: safe as table names and URL path segments in every backend. */
export const COLLECTION_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/;
/** Metadata keys and filter fields: safe as column or JSON keys in every backend. */
export const METADATA_KEY = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
/** Document ids are non-empty strings of at most this many UTF-8 bytes. */
export const MAX_ID_BYTES = 512;

/** Which model wrote a collection's vectors. */
export interface ModelRef {
  /** As given to --model: a hub id, an absolute folder path, or "demo". */
  model: string;
  dtype: string;
}

export interface CollectionSpec extends ModelRef {
  name: string;
  dimensions: number;
}

export interface CollectionInfo extends CollectionSpec {
  count: number;
  /** ISO 8601. */
  createdAt: string;
}

/** What a collection is, without its count (which costs a scan): what searches and writes need. */
export interface CollectionDescriptor extends CollectionSpec {
  /** ISO 8601. */
  createdAt: string;
  /** Metadata key -> the kind of value the field holds in this collection. */
  fields: ReadonlyMap<string, MetadataKind>;
}

export interface StoredDocument {
  id: string;
  modality: Modality;
  /** Text documents: the text. */
  text?: string;
  /** Image documents: where the image is (an absolute path, an http(s) URL, or a data URI). */
  image?: string;
  /**
   * Image documents from a folder: the indexed root (absolute, real path). Thumbnails are
   * served only from files that still resolve inside it.
   */
  root?: string;
  metadata: Metadata;
  /** sha256 (hex) of the document's content: the text's UTF-8 bytes or the image's bytes. */
  hash: string;
}

export interface DocumentRecord extends StoredDocument {
  /** Unit length, `dimensions` long. */
  vector: Float32Array;
}

/** A condition on one metadata field. A bare value means equality. */
export type FieldCondition =
  | MetadataValue
  | {
      $eq?: MetadataValue;
      $ne?: MetadataValue;
      $gt?: number | string;
      $gte?: number | string;
      $lt?: number | string;
      $lte?: number | string;
      $in?: MetadataValue[];
    };

/** A place within `km` kilometres (great-circle) of a point, on `gps_lat`/`gps_lon`. */
export interface NearCondition {
  lat: number;
  lon: number;
  km: number;
}

/** A box of latitudes and longitudes; `west` > `east` means it crosses the antimeridian. */
export interface WithinCondition {
  south: number;
  west: number;
  north: number;
  east: number;
}

/**
 * Metadata filter: every field's condition must hold (AND), and so must the place operators
 * `$near` / `$within` at its top. Built by parseFilter only.
 */
export type Filter = { [key: string]: FieldCondition | NearCondition | WithinCondition } & {
  $near?: NearCondition;
  $within?: WithinCondition;
};

/** Results per search. */
export const MAX_K = 1000;
/** Deep pages are refused: past this, results are better narrowed by a filter. */
export const MAX_OFFSET = 10_000;

export interface SearchOptions {
  /** Results wanted after `offset` (1..MAX_K). */
  k: number;
  /** 0..MAX_OFFSET. */
  offset?: number;
  filter?: Filter;
  modality?: Modality;
  /** Ids never returned (e.g. the example document of "more like this"). */
  excludeIds?: readonly string[];
}

export interface VectorSearch extends SearchOptions {
  vector: Float32Array;
  /** Only hits scoring at least this cosine similarity. */
  minScore?: number;
}

export interface TextSearch extends SearchOptions {
  /** Full-text (BM25) query over text documents. */
  text: string;
}

export interface SearchHit extends Omit<StoredDocument, 'hash' | 'root'> {
  /** Vector search: cosine similarity. Full text: the backend's BM25 score. Best first. */
  score: number;
}

export interface UpsertOptions {
  /**
   * Ids removed in the same atomic step (those among `docs` are replaced, not removed): a
   * video's frames or a PDF's pages, rewritten whole, never leave a mix of old and new.
   */
  remove?: readonly string[];
}

export interface VectorStore {
  /** Where the store lives, for messages (a folder, or a URL without its password). */
  readonly location: string;

  /** Every collection with its count (counted now). */
  listCollections(): Promise<CollectionInfo[]>;
  /** The collection as stored now, with its count; undefined when there is none. */
  getCollection(name: string): Promise<CollectionInfo | undefined>;
  /**
   * The collection without a count (cheap: cached). COLLECTION_NOT_FOUND; with `model`,
   * COLLECTION_MODEL_MISMATCH unless that model wrote its vectors.
   */
  requireCollection(name: string, model?: ModelRef): Promise<CollectionDescriptor>;
  /** COLLECTION_NAME_INVALID, COLLECTION_EXISTS. */
  createCollection(spec: CollectionSpec): Promise<CollectionInfo>;
  /** False when there was no such collection. */
  dropCollection(name: string): Promise<boolean>;

  /**
   * Inserts or replaces documents by id, all or nothing: after a crash at any moment the
   * collection holds either every document of the call or none, never a duplicate id.
   * COLLECTION_NOT_FOUND, COLLECTION_MODEL_MISMATCH (`writer` is not the collection's model),
   * VECTOR_DIMENSIONS_MISMATCH, DOCUMENT_ID_INVALID, DOCUMENT_ID_DUPLICATE, METADATA_INVALID.
   */
  upsert(collection: string, docs: readonly DocumentRecord[], writer: ModelRef, options?: UpsertOptions): Promise<void>;
  /** Number of documents removed. */
  delete(collection: string, ids: readonly string[]): Promise<number>;
  /** The documents found, in the order of `ids`; missing ids are left out. */
  get(collection: string, ids: readonly string[], options?: { vectors?: boolean }): Promise<(StoredDocument & { vector?: Float32Array })[]>;
  /** id -> hash of every document: what incremental indexing compares against. */
  hashes(collection: string): Promise<Map<string, string>>;
  /** Every document's id and vector, in pages (duplicate finding, exports). */
  scan(collection: string, pageSize?: number): AsyncIterable<{ id: string; modality: Modality; vector: Float32Array }[]>;

  search(collection: string, query: VectorSearch): Promise<SearchHit[]>;
  fullTextSearch(collection: string, query: TextSearch): Promise<SearchHit[]>;
  count(collection: string, filter?: Filter): Promise<number>;

  /**
   * Resolves when the store answers now; STORE_UNAVAILABLE when it cannot be reached. The
   * server pings it in the background (store/availability.ts) to fail store requests fast
   * while it is down and to report its state in /ready.
   */
  ping(): Promise<void>;

  /** The few-shot classifiers kept in this store (see classifiers.ts). */
  readonly classifiers: ClassifierStore;

  close(): Promise<void>;
}
