/**
 * Checks on what users hand the store: document ids, metadata and collection names. The HTTP
 * layer, the JSONL reader and the collections layer call these, so a bad value gets the same
 * error, naming the same field, wherever it comes in.
 */
import { TesseraError, describeValue } from '../errors.ts';
import { COLLECTION_NAME, MAX_ID_BYTES, METADATA_KEY, type Metadata, type MetadataValue } from './store.ts';

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
