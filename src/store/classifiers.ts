/**
 * Where few-shot classifiers live: beside the collections, in the same store (a folder for the
 * embedded store, tables for PostgreSQL, so that every replica on one database shares them).
 * Both backends pass the contract in test/store/classifier-contract.ts.
 *
 * Updates are compare-and-swap on `version`: a writer reads version v, computes, and stores
 * v + 1 only if the stored one is still v. A writer that loses re-reads and recomputes, so
 * concurrent trainings of one classifier (even from two machines) are serialised and none is
 * lost. An update is atomic: after a crash the classifier is the previous version or the new
 * one, whole.
 */

export type ClassifierAccess = 'private' | 'public';

export interface ClassifierRecord {
  /** A UUID. */
  id: string;
  /** The API key id that made it (`anonymous` without keys). */
  owner: string;
  access: ClassifierAccess;
  /** The model whose embeddings it classifies, as collections record it (--model, dtype). */
  model: string;
  dtype: string;
  /** What clients called the model (`model_name` in listings), e.g. jina-clip-v1. */
  modelName: string;
  dimensions: number;
  /** In the order they were first trained. */
  labels: string[];
  /** labels.length x dimensions, row-major (float64). */
  weights: Float64Array;
  /** Its labels were words when it was made: labels added later start from their zero-shot vectors. */
  zeroShot: boolean;
  /** 1 when made, +1 per training call: Jina's `updated_number`. */
  version: number;
  /** Examples trained on, all calls together. */
  samples: number;
  /** Classify calls that used it. */
  usedNumber: number;
  /** ISO 8601. */
  createdAt: string;
  updatedAt: string;
  usedAt: string | null;
}

export interface ClassifierStore {
  /**
   * Stores a new classifier (version 1), unless its owner has `maxPerOwner` already:
   * CLASSIFIER_COUNT_LIMIT. The check and the write are one step for writers of one process
   * (embedded store) or of one database (PostgreSQL).
   */
  create(record: ClassifierRecord, maxPerOwner: number): Promise<void>;
  get(id: string): Promise<ClassifierRecord | undefined>;
  /** The owner's classifiers, oldest first. */
  list(owner: string): Promise<ClassifierRecord[]>;
  countByOwner(owner: string): Promise<number>;
  /**
   * Replaces the classifier with `record` (whose version must be `expectedVersion` + 1) if the
   * stored version is still `expectedVersion`: true when written, false when another write came
   * first or the classifier is gone (re-read to tell which).
   */
  update(record: ClassifierRecord, expectedVersion: number): Promise<boolean>;
  /** Counts a use (used_number + 1, used_at = `at`); does not change the version. Gone: no-op. */
  recordUse(id: string, at: string): Promise<void>;
  /** False when there was no such classifier. */
  delete(id: string): Promise<boolean>;
}

/** Ids are UUIDs: anything else names no classifier (and never reaches a file name or query). */
export const CLASSIFIER_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The JSON form both backends can hold; weights as base64 of their float64 bytes (little-endian). */
export function weightsToBytes(weights: Float64Array): Buffer {
  return Buffer.from(weights.buffer, weights.byteOffset, weights.byteLength);
}

export function weightsFromBytes(bytes: Buffer | Uint8Array): Float64Array {
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  return new Float64Array(copy.buffer);
}
