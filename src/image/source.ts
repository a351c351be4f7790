import { readFile, stat } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { TesseraError } from '../errors.ts';
import { sniffFormat } from './format.ts';

/** An image item: a file path, encoded bytes, a raw base64 string, or a data URI. */
export type ImageSource = string | Uint8Array;

export interface SourceBytes {
  bytes: Uint8Array;
  /** How to name this image in messages: its path, or what kind of data it came as. */
  label: string;
}

export interface SourceOptions {
  /**
   * Whether a string may name a file on this machine (default true). Anything that passes
   * strings from remote users (the HTTP server) must set false: reading a path a client
   * chose would disclose files.
   */
  allowPaths?: boolean;
}

// A typed path that happens to be valid base64 (say "/a/b/cd") is still a path unless it
// decodes to an image signature or is longer than paths people type.
const LONG_BASE64 = 256;
const MAX_PATH = 4096;

/**
 * Turns an image item into its encoded bytes, deciding what kind of item it is.
 *
 * Strings, in order: a `data:` URI; a URL (refused: the server fetches URLs, this module
 * never touches the network); an existing file; base64 data (standard or URL-safe
 * alphabet, padding optional, line breaks allowed) that decodes to a known image signature
 * or is too long to be a path; otherwise a path that does not exist (IMAGE_NOT_FOUND) or
 * something that is none of these (IMAGE_SOURCE_INVALID).
 */
export async function readImageSource(source: ImageSource, options: SourceOptions = {}): Promise<SourceBytes> {
  const allowPaths = options.allowPaths ?? true;
  if (source instanceof Uint8Array) {
    if (source.length === 0) throw new TesseraError('IMAGE_SOURCE_INVALID', 'the image is empty (0 bytes)');
    return { bytes: source, label: `image bytes (${source.length} bytes)` };
  }
  if (typeof source !== 'string') {
    const kind = source === null ? 'null' : typeof source;
    throw new TesseraError('IMAGE_SOURCE_INVALID', `an image must be a path, a Buffer/Uint8Array, base64 or a data URI, not ${kind}`);
  }
  if (source.trim().length === 0) throw new TesseraError('IMAGE_SOURCE_INVALID', 'the image is an empty string');

  if (/^data:/i.test(source)) return { bytes: decodeDataUri(source), label: 'data URI image' };

  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(source)?.[1]?.toLowerCase();
  if (scheme === 'http' || scheme === 'https') {
    throw new TesseraError('IMAGE_SOURCE_INVALID', `${shorten(source)} is a URL: URLs are fetched by the server, not by image preprocessing; pass the downloaded bytes instead`);
  }
  if (scheme === 'file') {
    if (!allowPaths) throw new TesseraError('IMAGE_SOURCE_INVALID', 'file URLs are not accepted here');
    let path: string;
    try {
      path = fileURLToPath(source);
    } catch (err) {
      throw new TesseraError('IMAGE_SOURCE_INVALID', `${shorten(source)} is not a valid file URL`, { cause: err });
    }
    const bytes = await readPath(path);
    if (!bytes) throw new TesseraError('IMAGE_NOT_FOUND', `no file at ${path}`);
    return { bytes, label: path };
  }
  if (scheme) throw new TesseraError('IMAGE_SOURCE_INVALID', `${shorten(source)} is a ${scheme}: URL, which is not an accepted image source`);

  if (allowPaths && source.length <= MAX_PATH && !source.includes('\0')) {
    const bytes = await readPath(source);
    if (bytes) return { bytes, label: source };
  }

  const decoded = decodeBase64(source);
  if (decoded && decoded.length > 0 && (sniffFormat(decoded) !== undefined || source.length >= LONG_BASE64)) {
    return { bytes: decoded, label: `base64 image (${decoded.length} bytes)` };
  }
  if (allowPaths && looksLikePath(source)) throw new TesseraError('IMAGE_NOT_FOUND', `no file at ${source}`);
  throw new TesseraError(
    'IMAGE_SOURCE_INVALID',
    `${shorten(source)} is not ${allowPaths ? 'an existing file, ' : ''}base64 image data or a data URI`,
  );
}

/** The bytes of a regular file, or undefined when nothing is there. */
async function readPath(path: string): Promise<Uint8Array | undefined> {
  let info;
  try {
    info = await stat(path);
  } catch {
    return undefined;
  }
  // Devices, FIFOs and directories are refused: /dev/zero would never end.
  if (!info.isFile()) throw new TesseraError('IMAGE_SOURCE_INVALID', `${path} is not a regular file`);
  try {
    return await readFile(path);
  } catch (err) {
    throw new TesseraError('IMAGE_NOT_FOUND', `cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
}

function decodeDataUri(uri: string): Uint8Array {
  const comma = uri.indexOf(',');
  if (comma < 0) throw new TesseraError('IMAGE_SOURCE_INVALID', 'the data URI has no comma before its data');
  const params = uri.slice(5, comma).split(';').map((p) => p.trim().toLowerCase());
  const payload = uri.slice(comma + 1);
  if (payload.trim() === '') throw new TesseraError('IMAGE_SOURCE_INVALID', 'the data URI holds no data');
  let bytes: Uint8Array | undefined;
  if (params.includes('base64')) {
    bytes = decodeBase64(payload);
    if (!bytes) throw new TesseraError('IMAGE_SOURCE_INVALID', 'the data URI says base64 but its data is not valid base64');
  } else {
    bytes = percentDecode(payload);
  }
  return bytes;
}

/** RFC 3986 percent-decoding to bytes (decodeURIComponent would insist on UTF-8). */
function percentDecode(text: string): Uint8Array {
  const raw = Buffer.from(text, 'utf8');
  const out = new Uint8Array(raw.length);
  let n = 0;
  for (let i = 0; i < raw.length; i++) {
    if (raw[i] === 0x25) {
      const hex = raw.subarray(i + 1, i + 3).toString('latin1');
      if (!/^[0-9a-fA-F]{2}$/.test(hex)) throw new TesseraError('IMAGE_SOURCE_INVALID', 'the data URI has malformed percent-encoding');
      out[n++] = parseInt(hex, 16);
      i += 2;
    } else {
      out[n++] = raw[i]!;
    }
  }
  return out.subarray(0, n);
}

/**
 * Strict base64: standard or URL-safe alphabet (not mixed), padding optional but only at
 * the end, whitespace allowed (line-wrapped base64 is common). Undefined if not base64.
 * Node's own decoder silently skips invalid characters, so it cannot be the judge.
 */
export function decodeBase64(text: string): Uint8Array | undefined {
  const compact = text.replace(/[\s]+/g, '');
  if (compact.length === 0) return undefined;
  const standard = /^[A-Za-z0-9+/]*={0,2}$/.test(compact);
  const urlSafe = !standard && /^[A-Za-z0-9_-]*={0,2}$/.test(compact);
  if (!standard && !urlSafe) return undefined;
  const body = compact.replace(/=+$/, '');
  if (body.length % 4 === 1) return undefined;
  if (compact.length !== body.length && compact.length % 4 !== 0) return undefined;
  return Buffer.from(body, urlSafe ? 'base64url' : 'base64');
}

function looksLikePath(text: string): boolean {
  if (text.length > MAX_PATH || /[\0\r\n]/.test(text)) return false;
  return /[/\\.~]/.test(text);
}

function shorten(text: string): string {
  const shown = text.length > 60 ? `${text.slice(0, 57)}...` : text;
  return JSON.stringify(shown);
}
