/**
 * Documents on their way into a collection, the one shape JSONL files, folder walks and the
 * HTTP API share: checked (parseDocumentInput), their content read and hashed
 * (loadDocument), embedded (embedDocuments) and turned into store records (toRecord).
 */
import { createHash } from 'node:crypto';
import { realpath, stat } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { mapConcurrent } from '../concurrency.ts';
import { TesseraError, describeValue } from '../errors.ts';
import type { Embedder, EmbedItem, Embedding } from '../engine/embedder.ts';
import { fetchImage, type FetchPolicy } from '../image/fetch.ts';
import { sniffFormat } from '../image/format.ts';
import { readPhotoMetadata } from '../image/photo-metadata.ts';
import { readImageSource } from '../image/source.ts';
import type { DocumentRecord, Metadata, Modality } from '../store/store.ts';
import { validateDocumentId, validateMetadata } from '../store/validate.ts';

export interface TextDocumentInput {
  id: string;
  text: string;
  metadata: Metadata;
}

export interface ImageDocumentInput {
  id: string;
  /** A path, an http(s) URL, base64 or a data URI, as in the embeddings API. */
  image: string;
  metadata: Metadata;
  /** Folder documents: the indexed root (real path); thumbnails are served only from inside it. */
  root?: string;
}

export type DocumentInput = TextDocumentInput | ImageDocumentInput;

const FIELDS = new Set(['id', 'text', 'image', 'metadata']);
const URL_PREFIX = /^https?:\/\//i;

/**
 * `value` as a DocumentInput: an object with `id`, exactly one of `text` or `image` (a
 * string), optional `metadata`, and nothing else. `position` names it in messages
 * ("documents[3]", "docs.jsonl line 7"). DOCUMENT_INVALID, DOCUMENT_ID_INVALID, METADATA_INVALID.
 *
 * @example
 *   parseDocumentInput({ id: 'a', text: 'a red car' }, 'documents[0]')
 *   // { id: 'a', text: 'a red car', metadata: {} }
 */
export function parseDocumentInput(value: unknown, position: string): DocumentInput {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new TesseraError('DOCUMENT_INVALID', `${position} must be an object with "id" and "text" or "image", not ${describeValue(value)}`);
  }
  const doc = value as Record<string, unknown>;
  const unknown = Object.keys(doc).filter((k) => !FIELDS.has(k));
  if (unknown.length > 0) {
    throw new TesseraError('DOCUMENT_INVALID', `${position} has unknown field${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => JSON.stringify(k)).join(', ')}; a document has id, text or image, and metadata`);
  }
  const id = validateDocumentId(doc.id, `${position}.id`);
  const metadata = validateMetadata(doc.metadata ?? undefined, `${position}.metadata`);
  const hasText = doc.text !== undefined && doc.text !== null;
  const hasImage = doc.image !== undefined && doc.image !== null;
  if (hasText === hasImage) {
    throw new TesseraError('DOCUMENT_INVALID', `${position} must have exactly one of "text" or "image", got ${hasText ? 'both' : 'neither'}`);
  }
  if (hasText) {
    if (typeof doc.text !== 'string') throw new TesseraError('DOCUMENT_INVALID', `${position}.text must be a string, not ${describeValue(doc.text)}`);
    if (doc.text.trim() === '') throw new TesseraError('DOCUMENT_INVALID', `${position}.text is empty`);
    return { id, text: doc.text, metadata };
  }
  if (typeof doc.image !== 'string' || doc.image.trim() === '') {
    throw new TesseraError('DOCUMENT_INVALID', `${position}.image must be a non-empty string (a path, an http(s) URL, base64 or a data URI), not ${describeValue(doc.image)}`);
  }
  return { id, image: doc.image, metadata };
}

/** sha256 of the content, lower-case hex: UTF-8 bytes for a string. */
export function contentHash(bytes: Buffer | Uint8Array | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export function modalityOf(input: DocumentInput): Modality {
  return 'text' in input ? 'text' : 'image';
}

export interface LoadOptions {
  /**
   * Whether `image` may name a local file (the CLI: yes; the HTTP server: never, or clients
   * could read the server's files). Relative paths resolve against `baseDir`.
   */
  allowPaths: boolean;
  /** Folder relative image paths resolve against (e.g. the JSONL file's); default the cwd. */
  baseDir?: string;
  /** How image URLs are fetched (fetchImage: SSRF-safe, bounded). */
  fetchPolicy?: Partial<FetchPolicy>;
  signal?: AbortSignal;
}

/** A document whose content has been read: what to embed, its hash, where it lives. */
export interface LoadedDocument {
  input: DocumentInput;
  modality: Modality;
  item: EmbedItem;
  hash: string;
  /** What the record's `image` holds: an absolute path, the URL, or a data URI. */
  location?: string;
  root?: string;
}

/**
 * Reads a document's content: fetches URLs, reads files (when allowed), decodes base64 and
 * data URIs, and hashes what came. Image errors (IMAGE_NOT_FOUND, IMAGE_FETCH_FAILED, ...)
 * are the image layer's TesseraErrors; decoding happens later, in the embedder. An image's
 * metadata gains the photo keys its bytes carry (readPhotoMetadata), under the document's own:
 * a key the document gives wins.
 */
export async function loadDocument(input: DocumentInput, options: LoadOptions): Promise<LoadedDocument> {
  if ('text' in input) return { input, modality: 'text', item: { text: input.text }, hash: contentHash(input.text) };
  const image = input.image;
  if (URL_PREFIX.test(image)) {
    const bytes = await fetchImage(image, options.fetchPolicy ?? {}, options.signal);
    return { input: await withPhotoKeys(input, bytes), modality: 'image', item: { image: bytes }, hash: contentHash(bytes), location: image, root: input.root };
  }
  if (/^data:/i.test(image) || !options.allowPaths) {
    const { bytes } = await readImageSource(image, { allowPaths: false });
    return { input: await withPhotoKeys(input, bytes), modality: 'image', item: { image: bytes }, hash: contentHash(bytes), location: dataUri(image, bytes), root: input.root };
  }
  // A path (relative ones resolve against baseDir) or, when no such file exists, base64.
  const path = isAbsolute(image) ? image : resolve(options.baseDir ?? process.cwd(), image);
  const exists = image.length <= 4096 && !image.includes('\0') && (await stat(path).then(() => true, () => false));
  if (exists) {
    const { bytes } = await readImageSource(path, { allowPaths: true });
    // The root of a listed file is its real folder: a thumbnail is served only while the
    // path still resolves there (a symlink swapped afterwards to point elsewhere is not).
    const root = input.root ?? (await realpath(dirname(path)).catch(() => dirname(path)));
    return { input: await withPhotoKeys(input, bytes), modality: 'image', item: { image: bytes }, hash: contentHash(bytes), location: path, root };
  }
  let bytes: Uint8Array;
  try {
    bytes = (await readImageSource(image, { allowPaths: false })).bytes;
  } catch (err) {
    if (err instanceof TesseraError && err.code === 'IMAGE_SOURCE_INVALID' && /[/\\.~]/.test(image) && image.length <= 4096) {
      throw new TesseraError('IMAGE_NOT_FOUND', `no file at ${path}`);
    }
    throw err;
  }
  return { input: await withPhotoKeys(input, bytes), modality: 'image', item: { image: bytes }, hash: contentHash(bytes), location: dataUri(image, bytes), root: input.root };
}

/** `input` with the photo keys of its bytes under its own metadata: a key the document gives wins. */
async function withPhotoKeys(input: ImageDocumentInput, bytes: Uint8Array): Promise<ImageDocumentInput> {
  return { ...input, metadata: { ...(await readPhotoMetadata(bytes)), ...input.metadata } };
}

/** Images that came as data are stored as a data URI, so they can be shown without a file. */
function dataUri(given: string, bytes: Uint8Array): string {
  if (/^data:/i.test(given)) return given;
  const format = sniffFormat(bytes) ?? 'octet-stream';
  const type = format === 'octet-stream' ? 'application/octet-stream' : `image/${format}`;
  return `data:${type};base64,${Buffer.from(bytes).toString('base64')}`;
}

/** The store record of a loaded document and its vector. */
export function toRecord(doc: LoadedDocument, vector: Float32Array): DocumentRecord {
  const base = { id: doc.input.id, modality: doc.modality, metadata: doc.input.metadata, hash: doc.hash, vector };
  if ('text' in doc.input) return { ...base, text: doc.input.text };
  return doc.root === undefined ? { ...base, image: doc.location } : { ...base, image: doc.location, root: doc.root };
}

export interface EmbedDocumentsOptions extends LoadOptions {
  /** Drop the tail of texts over the model's limit instead of failing (default false). */
  truncate?: boolean;
  /** Documents read or fetched at once (default 16). */
  concurrency?: number;
}

export type DocumentOutcome =
  | { ok: true; record: DocumentRecord; embedding: Embedding }
  /** `error` is about this document alone; its message does not name the document (the caller does). */
  | { ok: false; id: string; index: number; error: TesseraError };

/**
 * Loads and embeds every document on its own, so that one bad document fails alone: the
 * outcomes come in input order, each a record to upsert or the error for that document. Items are submitted to the embedder concurrently, so
 * they share its batches. Errors that are not about one document (QUEUE_FULL,
 * REQUEST_CANCELLED, a crashed session) reject the whole call.
 *
 * @example
 *   const outcomes = await embedDocuments(embedder, inputs, { allowPaths: false });
 *   const bad = outcomes.find((o) => !o.ok); if (bad) throw bad.error;
 */
export async function embedDocuments(embedder: Embedder, inputs: readonly DocumentInput[], options: EmbedDocumentsOptions): Promise<DocumentOutcome[]> {
  return mapConcurrent(inputs, options.concurrency ?? 16, (input, index) => embedOne(embedder, input, index, options));
}

/** One document's outcome; throws only what is not this document's fault. */
export async function embedOne(embedder: Embedder, input: DocumentInput, index: number, options: EmbedDocumentsOptions): Promise<DocumentOutcome> {
  try {
    const loaded = await loadDocument(input, options);
    const [embedding] = await embedder.embed([loaded.item], { truncate: options.truncate ?? false, signal: options.signal });
    return { ok: true, record: toRecord(loaded, embedding!.embedding), embedding: embedding! };
  } catch (err) {
    if (err instanceof TesseraError && isItemError(err)) {
      // embed() attributed it to item 0 of its one-item call: the caller names the document.
      const plain = err.item === undefined ? err : new TesseraError(err.code, err.message.replace(/^input\[0\]: /, ''), { cause: err.cause });
      return { ok: false, id: input.id, index, error: plain };
    }
    throw err;
  }
}

/** Errors that concern one document's content, not the engine or the caller. */
export function isItemError(err: TesseraError): boolean {
  return ITEM_ERRORS.has(err.code);
}

const ITEM_ERRORS = new Set<string>([
  'TEXT_TOO_LONG',
  'TEXT_INVALID',
  'IMAGE_SOURCE_INVALID',
  'IMAGE_NOT_FOUND',
  'IMAGE_UNDECODABLE',
  'IMAGE_TOO_LARGE',
  'IMAGE_FORMAT_UNSUPPORTED',
  'IMAGE_URL_INVALID',
  'IMAGE_URL_BLOCKED',
  'IMAGE_FETCH_FAILED',
  'IMAGE_FETCH_TIMEOUT',
  'DOCUMENT_INVALID',
  'DOCUMENT_ID_INVALID',
  'METADATA_INVALID',
  'VIDEO_UNDECODABLE',
  'VIDEO_TOO_LARGE',
  'VIDEO_TIMEOUT',
  'FFMPEG_MISSING',
  'PDF_UNREADABLE',
  'PDF_ENCRYPTED',
  'PDF_TIMEOUT',
  'POPPLER_MISSING',
]);
