/**
 * What a storage backend implements: storage only. The collections layer (collections.ts)
 * sits above every backend and owns what is the same for all of them (validation, limits and
 * paging, model checks, metadata kinds, "not found", the cached descriptor of each
 * collection), so a backend is handed only validated input and a descriptor it described.
 *
 * A new backend is one file: a class implementing StoreBackend and an `open...Store` that
 * wraps it in `Collections`; it passes test/store/contract.ts through that layer.
 */
import type { ClassifierStore } from './classifiers.ts';
import type { CollectionDescriptor, CollectionSpec, DocumentRecord, Filter, MetadataKind, Modality, SearchHit, StoredDocument } from './store.ts';

/**
 * Thrown by a backend when the descriptor it was handed no longer describes the collection:
 * dropped (`missing`), or dropped and recreated, or given fields a write disagrees with
 * (`changed`), by another process since the layer cached it. The layer re-reads the
 * collection and answers from that (COLLECTION_NOT_FOUND, METADATA_INVALID, ...).
 */
export class StaleCollection extends Error {
  constructor(
    readonly collection: string,
    readonly why: 'missing' | 'changed',
  ) {
    super(`collection ${JSON.stringify(collection)} was ${why === 'missing' ? 'dropped' : 'changed'} by another process`);
  }
}

/** Restrictions every query takes (compiled by the backend's own filter compiler). */
export interface Restrictions {
  filter?: Filter;
  modality?: Modality;
  excludeIds?: readonly string[];
}

export interface ScanRow {
  id: string;
  modality: Modality;
  vector: Float32Array;
}

export interface StoreBackend<D extends CollectionDescriptor = CollectionDescriptor> {
  /** Where the store lives, for messages (never a password). */
  readonly location: string;
  readonly classifiers: ClassifierStore;
  /** The most dimensions a collection's vectors may have here. */
  readonly maxDimensions: number;
  /** DOCUMENT_INVALID naming `field` when this backend cannot store `value` (PostgreSQL: NUL). */
  checkText?(value: string, field: string): void;

  /** Every collection, read now. */
  list(): Promise<D[]>;
  /** The collection as stored now; undefined when there is none. */
  describe(name: string): Promise<D | undefined>;
  /** COLLECTION_EXISTS when the name is taken. The spec is valid. */
  create(spec: CollectionSpec, createdAt: string): Promise<D>;
  /** False when there was no such collection. */
  drop(name: string): Promise<boolean>;

  /**
   * Inserts or replaces valid documents by id, all or nothing. `fields` holds every metadata
   * field of the batch with its kind. In the same atomic step as the write, the backend checks
   * that `c` is still the collection and that no field is stored with another kind, and
   * records the new fields; StaleCollection otherwise, with nothing written. `remove`: ids
   * (none of them among `docs`) deleted in that same atomic step.
   */
  upsert(c: D, docs: readonly DocumentRecord[], fields: ReadonlyMap<string, MetadataKind>, remove?: readonly string[]): Promise<void>;
  delete(c: D, ids: readonly string[]): Promise<number>;
  /** The documents found, in any order. */
  get(c: D, ids: readonly string[], vectors: boolean): Promise<(StoredDocument & { vector?: Float32Array })[]>;
  hashes(c: D): Promise<Map<string, string>>;
  scan(c: D, pageSize: number): AsyncIterable<ScanRow[]>;
  /** The best `limit` hits by cosine similarity, best first. */
  search(c: D, query: Restrictions & { vector: Float32Array; limit: number }): Promise<SearchHit[]>;
  /** The best `limit` full-text (BM25) hits over text documents, best first. */
  fullTextSearch(c: D, query: Restrictions & { text: string; limit: number }): Promise<SearchHit[]>;
  count(c: D, filter?: Filter): Promise<number>;

  /** STORE_UNAVAILABLE when the backend cannot be reached now. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
