/**
 * A document's own file, for playing a video from a moment or opening a PDF at a page:
 * `GET /v1/collections/{name}/documents/{id}/file`. Only a folder document's file is served,
 * and only while its real path is still inside the folder it was indexed from (the same rule
 * as thumbnails); one byte range is honoured (`Range: bytes=...`), as players seek with them.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { TesseraError } from '../errors.ts';
import { documentFile, withPartFile } from '../search/thumbnail.ts';
import type { StoredDocument } from '../store/store.ts';

/** Content types of the files tessera indexes, by the extension the walk recorded. */
const TYPES: Record<string, string> = {
  mp4: 'video/mp4',
  m4v: 'video/mp4',
  mov: 'video/quicktime',
  webm: 'video/webm',
  mkv: 'video/x-matroska',
  avi: 'video/x-msvideo',
  pdf: 'application/pdf',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  png: 'image/png',
  webp: 'image/webp',
  gif: 'image/gif',
  tif: 'image/tiff',
  tiff: 'image/tiff',
  avif: 'image/avif',
};

/** `bytes=a-b`, `bytes=a-` or `bytes=-n` over a file of `size` bytes: the inclusive range, 'unsatisfiable', or undefined to send it whole (absent, malformed or several ranges). */
export function parseRange(header: string | undefined, size: number): { start: number; end: number } | 'unsatisfiable' | undefined {
  if (header === undefined) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  if (m[1] === '') {
    const n = Number(m[2]);
    if (n === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (start >= size || end < start) return 'unsatisfiable';
  return { start, end };
}

/** Sends the document's file, whole or the range asked for. DOCUMENT_NOT_FOUND when it has none that may be read. */
export async function sendDocumentFile(collection: string, given: StoredDocument, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const doc = withPartFile(given);
  const file = await documentFile(doc);
  if (!file) {
    throw new TesseraError('DOCUMENT_NOT_FOUND', `collection ${JSON.stringify(collection)}: document ${JSON.stringify(doc.id)} has no file to serve: it is not from an indexed folder, or its file is gone or no longer inside that folder`);
  }
  const { size, mtime } = await stat(file);
  const ext = typeof doc.metadata.ext === 'string' ? doc.metadata.ext.toLowerCase() : '';
  const etag = `"${size.toString(16)}-${mtime.getTime().toString(16)}"`;
  void reply
    .header('content-type', TYPES[ext] ?? 'application/octet-stream')
    .header('accept-ranges', 'bytes')
    .header('etag', etag)
    .header('cache-control', 'private, max-age=3600')
    // Played or shown by the browser, never run: no sniffing into HTML.
    .header('x-content-type-options', 'nosniff');
  if (request.headers['if-none-match'] === etag) return reply.code(304).send();
  const range = parseRange(typeof request.headers.range === 'string' ? request.headers.range : undefined, size);
  if (range === 'unsatisfiable') {
    throw new TesseraError('RANGE_NOT_SATISFIABLE', `Range ${JSON.stringify(request.headers.range)}: the file of document ${JSON.stringify(doc.id)} has ${size} bytes`, { headers: { 'content-range': `bytes */${size}` } });
  }
  if (!range) return reply.header('content-length', size).send(createReadStream(file));
  return reply
    .code(206)
    .header('content-range', `bytes ${range.start}-${range.end}/${size}`)
    .header('content-length', range.end - range.start + 1)
    .send(createReadStream(file, { start: range.start, end: range.end }));
}
