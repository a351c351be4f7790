/**
 * Thumbnails of image documents, for result grids. Only a document's own image is ever
 * read: the request names a document id, the store says where its image is, and a folder
 * document's file is read only while its real path (symlinks resolved) is still inside the
 * indexed root it was recorded with. Made once per document content (its hash), cached in
 * memory within a byte bound.
 */
import { readFile, realpath, stat } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import sharp from 'sharp';
import { TesseraError } from '../errors.ts';
import { fetchImage, type FetchPolicy } from '../image/fetch.ts';
import { readImageSource } from '../image/source.ts';
import { inside } from '../index/sources.ts';
import { findFfmpeg } from '../media/ffmpeg.ts';
import { findPoppler, renderPage } from '../media/pdf.ts';
import { frameAt } from '../media/video.ts';
import type { StoredDocument } from '../store/store.ts';

export const THUMBNAIL_SIZE = 256;
export const THUMBNAIL_TYPE = 'image/webp';
/** Bytes of thumbnails kept in memory (about 2,000 of 16 KiB). */
export const THUMBNAIL_CACHE_BYTES = 32 * 1024 * 1024;
/** Larger image files are not thumbnailed (a photo is rarely over 64 MiB); videos and PDFs are read in part by FFmpeg or Poppler. */
const MAX_SOURCE_BYTES = 64 * 1024 * 1024;
/** Time to take a frame of a video or render a page of a PDF for a thumbnail. */
const PART_DEADLINE_MS = 20_000;

export interface ThumbnailOptions {
  fetchPolicy?: Partial<FetchPolicy>;
  maxPixels?: number;
  signal?: AbortSignal;
}

const notFound = (collection: string, id: string, why: string) =>
  new TesseraError('DOCUMENT_NOT_FOUND', `collection ${JSON.stringify(collection)}: document ${JSON.stringify(id)} has no thumbnail: ${why}`);

/**
 * The file behind a folder document, if it may be read: its real path, inside the real path
 * of its recorded root. Undefined for anything else (no root, gone, moved out by a symlink).
 */
export async function documentFile(doc: StoredDocument): Promise<string | undefined> {
  if (!doc.image || !isAbsolute(doc.image) || !doc.root || !isAbsolute(doc.root)) return undefined;
  try {
    const [file, root] = await Promise.all([realpath(doc.image), realpath(doc.root)]);
    if (!inside(root, file)) return undefined;
    const info = await stat(file);
    return info.isFile() && (info.size <= MAX_SOURCE_BYTES || partOf(doc) !== undefined) ? file : undefined;
  } catch {
    return undefined;
  }
}

/** A video's frame or a PDF's page: where in its file the document is. */
export function partOf(doc: StoredDocument): { video: string; t: number } | { pdf: string; page: number } | undefined {
  const m = doc.metadata;
  if (typeof m.video === 'string' && typeof m.t === 'number') return { video: m.video, t: m.t };
  if (typeof m.pdf === 'string' && typeof m.page === 'number') return { pdf: m.pdf, page: m.page };
  return undefined;
}

/**
 * A part's document as its picture: a PDF page's text document (which records no file) shows
 * its page, found from the folder it was indexed from (`_source`) and the PDF's id.
 */
export function withPartFile(doc: StoredDocument): StoredDocument {
  const part = partOf(doc);
  const source = doc.metadata._source;
  if (!part || doc.image || typeof source !== 'string' || !('pdf' in part)) return doc;
  return { ...doc, image: join(source, part.pdf), root: source };
}

/** The frame or page a part of a video or PDF shows, encoded, at most THUMBNAIL_SIZE px. */
async function partImage(collection: string, doc: StoredDocument, file: string, signal?: AbortSignal): Promise<Uint8Array> {
  const part = partOf(doc)!;
  const limits = { deadlineMs: PART_DEADLINE_MS, signal };
  if ('video' in part) {
    const ffmpeg = await findFfmpeg(process.env.TESSERA_FFMPEG);
    if (!ffmpeg) throw notFound(collection, doc.id, 'FFmpeg is not installed on the server');
    return frameAt(ffmpeg, file, part.t, THUMBNAIL_SIZE, limits);
  }
  const poppler = await findPoppler();
  if (!poppler) throw notFound(collection, doc.id, 'Poppler is not installed on the server');
  return renderPage(poppler, file, part.page, THUMBNAIL_SIZE, limits);
}

/** The encoded bytes of an image document, from wherever the index recorded it. DOCUMENT_NOT_FOUND when it may not or cannot be read. */
export async function documentImageBytes(collection: string, doc: StoredDocument, options: ThumbnailOptions = {}): Promise<Uint8Array> {
  const image = doc.image;
  if (doc.modality !== 'image' || !image) throw notFound(collection, doc.id, 'it is a text document');
  if (/^data:/i.test(image)) return (await readImageSource(image, { allowPaths: false })).bytes;
  if (/^https?:\/\//i.test(image)) {
    try {
      return await fetchImage(image, options.fetchPolicy ?? {}, options.signal);
    } catch (err) {
      throw notFound(collection, doc.id, `its image URL could not be fetched (${err instanceof Error ? err.message : String(err)})`);
    }
  }
  const file = await documentFile(doc);
  if (!file) throw notFound(collection, doc.id, 'its file is gone or no longer inside the indexed folder');
  return readFile(file);
}

/** A WebP at most THUMBNAIL_SIZE on its longer side, EXIF orientation applied. */
export async function makeThumbnail(bytes: Uint8Array, maxPixels = 100_000_000): Promise<Buffer> {
  return sharp(bytes, { limitInputPixels: maxPixels, failOn: 'error' })
    .rotate()
    .resize(THUMBNAIL_SIZE, THUMBNAIL_SIZE, { fit: 'inside', withoutEnlargement: true })
    .webp({ quality: 80 })
    .toBuffer();
}

/** Least-recently-used thumbnails within a byte bound. */
export class ThumbnailCache {
  private readonly entries = new Map<string, Buffer>();
  private bytes = 0;
  /** How many thumbnails were made (cache misses): observable for tests and metrics. */
  made = 0;

  constructor(private readonly maxBytes = THUMBNAIL_CACHE_BYTES) {}

  get size(): number {
    return this.entries.size;
  }

  private take(key: string): Buffer | undefined {
    const hit = this.entries.get(key);
    if (hit) {
      this.entries.delete(key);
      this.entries.set(key, hit);
    }
    return hit;
  }

  private put(key: string, value: Buffer): void {
    if (value.length > this.maxBytes) return;
    this.entries.set(key, value);
    this.bytes += value.length;
    for (const [k, v] of this.entries) {
      if (this.bytes <= this.maxBytes) break;
      this.entries.delete(k);
      this.bytes -= v.length;
    }
  }

  /**
   * The thumbnail of `doc`. The document's file is checked on every call (a cached
   * thumbnail of a file that has since left its root is not served); only decoding and
   * resizing are saved.
   */
  async thumbnail(collection: string, given: StoredDocument, options: ThumbnailOptions = {}): Promise<Buffer> {
    const doc = withPartFile(given);
    const key = `${collection}\0${doc.id}\0${doc.hash}`;
    const isFile = doc.image !== undefined && isAbsolute(doc.image);
    const file = isFile ? await documentFile(doc) : undefined;
    if (isFile && !file) throw notFound(collection, doc.id, 'its file is gone or no longer inside the indexed folder');
    const cached = this.take(key);
    if (cached) return cached;
    const bytes = file && partOf(doc) ? await partImage(collection, doc, file, options.signal) : file ? await readFile(file) : await documentImageBytes(collection, doc, options);
    let thumb: Buffer;
    try {
      thumb = await makeThumbnail(bytes, options.maxPixels);
    } catch (err) {
      throw new TesseraError('IMAGE_UNDECODABLE', `collection ${JSON.stringify(collection)}: the image of document ${JSON.stringify(doc.id)} could not be decoded (${err instanceof Error ? err.message : String(err)})`);
    }
    this.made++;
    this.put(key, thumb);
    return thumb;
  }
}
