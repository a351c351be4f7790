/**
 * Checks on what users hand the store: document ids, metadata and collection names. The HTTP
 * layer, the JSONL reader and every backend call these, so a bad value gets the same error,
 * naming the same field, wherever it comes in.
 */
import { TesseraError, describeValue } from '../errors.ts';
import { COLLECTION_NAME, MAX_ID_BYTES, METADATA_KEY, type DocumentRecord, type Metadata, type MetadataValue, type SearchOptions } from './store.ts';

/** A non-empty string of at most MAX_ID_BYTES UTF-8 bytes. DOCUMENT_ID_INVALID otherwise. */
export function validateDocumentId(id: unknown, field: string): string {
  if (typeof id !== 'string' || id.length === 0) {
    throw new TesseraError('DOCUMENT_ID_INVALID', `${field}: expected a non-empty string but received ${describeValue(id)}`);
  }
  const bytes = Buffer.byteLength(id, 'utf8');
  if (bytes > MAX_ID_BYTES) {
    throw new TesseraError('DOCUMENT_ID_INVALID', `${field}: an id is at most ${MAX_ID_BYTES} UTF-8 bytes but this one has ${bytes}`);
  }
  return id;
}

/** A metadata value: a string, a finite number or a boolean. */
export function isMetadataValue(value: unknown): value is MetadataValue {
  return typeof value === 'string' || typeof value === 'boolean' || (typeof value === 'number' && Number.isFinite(value));
}

/**
 * A flat object whose keys match METADATA_KEY and whose values are strings, finite numbers or
 * booleans. `undefined` means no metadata ({}). METADATA_INVALID otherwise, naming the key.
 */
export function validateMetadata(value: unknown, field: string): Metadata {
  if (value === undefined) return {};
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new TesseraError('METADATA_INVALID', `${field}: expected a flat JSON object but received ${describeValue(value)}`);
  }
  const out: Metadata = {};
  for (const [key, v] of Object.entries(value)) {
    if (!METADATA_KEY.test(key)) {
      throw new TesseraError('METADATA_INVALID', `${field}: key ${JSON.stringify(key)} is not 1-64 letters, digits or "_" starting with a letter or "_"`);
    }
    if (!isMetadataValue(v)) {
      throw new TesseraError('METADATA_INVALID', `${field}.${key}: expected a string, a finite number or a boolean but received ${describeValue(v)}`);
    }
    out[key] = v;
  }
  return out;
}

/** COLLECTION_NAME_INVALID unless `name` matches COLLECTION_NAME. */
export function validateCollectionName(name: unknown, field = 'name'): string {
  if (typeof name !== 'string' || !COLLECTION_NAME.test(name)) {
    throw new TesseraError('COLLECTION_NAME_INVALID', `${field}: expected 1-63 letters, digits, "_" or "-" starting with a letter or digit but received ${describeValue(name)}`);
  }
  return name;
}

/** The kind of a metadata value, as backends type their columns. */
export type MetadataKind = 'string' | 'number' | 'boolean';
export const kindOf = (value: MetadataValue): MetadataKind => typeof value as MetadataKind;

const MAX_K = 1000;
const badParameter = (message: string) => new TesseraError('SEARCH_PARAMETER_INVALID', message);

/** k, offset and modality of a search, as every backend takes them. SEARCH_PARAMETER_INVALID. */
export function checkPaging(options: SearchOptions): { k: number; offset: number } {
  const { k } = options;
  const offset = options.offset ?? 0;
  if (!Number.isInteger(k) || k < 1 || k > MAX_K) throw badParameter(`k: expected an integer from 1 to ${MAX_K} but received ${String(k)}`);
  if (!Number.isInteger(offset) || offset < 0) throw badParameter(`offset: expected a non-negative integer but received ${String(offset)}`);
  if (offset + k > 100_000) throw badParameter(`offset: offset + k is at most 100000 but is ${offset + k}`);
  if (options.modality !== undefined && options.modality !== 'text' && options.modality !== 'image') {
    throw badParameter(`modality: expected "text" or "image" but received ${JSON.stringify(options.modality)}`);
  }
  return { k, offset };
}

/** One document of an upsert, before anything is written (`i` names it in messages). */
export function validateDocument(doc: DocumentRecord, i: number, dims: number): void {
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

export function checkMinScore(minScore: number | undefined): void {
  if (minScore !== undefined && !Number.isFinite(minScore)) throw badParameter(`min_score: expected a number but received ${String(minScore)}`);
}
