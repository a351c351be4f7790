/**
 * What the MCP tools need of the process they run in. Two hosts give it: the HTTP server
 * (`/mcp`, http.ts: its served models, its store, the caller's API key and rate limits) and
 * `tessera mcp` (local.ts: a store and models loaded on first use, for one user on their own
 * machine). The tools (tools-*.ts) are written once against this.
 */
import type { ClassifierRequestLimits } from '../api/classifier-request.ts';
import type { Classifiers } from '../classifier/classifiers.ts';
import type { Embedder, Embedding } from '../engine/embedder.ts';
import type { Usage } from '../engine/usage.ts';
import type { FetchPolicy } from '../image/fetch.ts';
import type { ThumbnailCache } from '../search/thumbnail.ts';
import type { ClassifierRecord } from '../store/classifiers.ts';
import type { CollectionDescriptor, ModelRef, VectorStore } from '../store/store.ts';

/** A model ready to embed (the shape of the server's ModelHandle). */
export interface McpModel {
  /** The name answers carry, e.g. jina-clip-v1. */
  name: string;
  ref: ModelRef;
  engine: Embedder;
  dimensions: number;
}

export interface McpHost {
  /** The collections; without one the collection tools are not offered. */
  readonly store?: VectorStore;
  /** The few-shot classifiers (in the store): `classify` by classifier_id. */
  readonly classifiers?: Classifiers;
  /** Offer the tools that write (index_path, add_documents): --mcp-allow-writes. */
  readonly allowWrites: boolean;
  /** The collection a tool uses when its `collection` argument is left out (`tessera mcp --collection`). */
  readonly defaultCollection?: string;
  /**
   * The client runs on this machine as this user (`tessera mcp`): results show documents'
   * file paths, and image arguments may be paths. Never on the server, whose files are its own.
   */
  readonly local: boolean;
  readonly limits: ClassifierRequestLimits;
  readonly fetchPolicy: Partial<FetchPolicy>;
  /** Image URLs fetched at once per call. */
  readonly fetchConcurrency: number;
  readonly maxPixels: number;
  readonly thumbnails: ThumbnailCache;
  /** A model by the name a tool's `model` argument gives (none: the default one). MODEL_MISMATCH, NOT_READY. */
  model(requested?: string): Promise<McpModel>;
  /** The model that wrote a collection's vectors, to query or write it. COLLECTION_MODEL_MISMATCH when it cannot be had. */
  collectionModel(info: CollectionDescriptor): Promise<McpModel>;
  /** The model a classifier was trained on. CLASSIFIER_MODEL_MISMATCH. */
  classifierModel(record: ClassifierRecord): Promise<McpModel>;
  /** Says what went wrong in an unexpected failure (not a TesseraError), after logging it. */
  internalError(err: unknown): string;
}

/** Who calls a tool, and under which limits: per HTTP request on the server, once for `tessera mcp`. */
export interface McpCaller {
  /** The API key's id (classifier ownership), `anonymous` without keys. */
  owner: string;
  /** Aborts when the caller goes away or its deadline passes. */
  signal?: AbortSignal;
  /** The key's rate limits, before work of about `tokens` tokens (RATE_*_LIMIT_EXCEEDED). */
  admit(tokens: number): Promise<void>;
  /** Bills what the model embedded; the usage a tool reports. */
  bill(results: readonly Embedding[]): Usage;
  /** The call failed: nothing is billed (as a failed HTTP request is not). */
  failed?(): void;
}
