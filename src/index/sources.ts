/**
 * Where documents come from: a folder walked recursively, a JSONL file of documents, or a
 * text file of image URLs. Each source yields candidates in a stable order; reading their
 * content is left to the pipeline, so that unchanged files need not be read at all.
 */
import { createReadStream } from 'node:fs';
import { lstat, open, opendir, readFile, realpath, stat, type FileHandle } from 'node:fs/promises';
import { dirname, extname, isAbsolute, join, relative, sep } from 'node:path';
import { createInterface } from 'node:readline';
import { TesseraError, invalidArgument } from '../errors.ts';
import { FORMAT_NAMES, sniffFormat, type RasterFormat, type RefusedFormat } from '../image/format.ts';
import { isPdf } from '../media/pdf.ts';
import { sniffVideo } from '../media/video.ts';
import type { Metadata } from '../store/store.ts';
import { validateDocumentId } from '../store/validate.ts';
import { parseDocumentInput, type DocumentInput } from './document.ts';

export type SourceKind = 'folder' | 'jsonl' | 'urls';

export interface Source {
  kind: SourceKind;
  /** As given on the command line. */
  given: string;
  /** Real absolute path: what documents record as their `_source`, and what --prune matches. */
  path: string;
}

/** The metadata key naming the source a document was indexed from (set by the indexer). */
export const SOURCE_KEY = '_source';

/** A file found by a folder walk, not yet read. */
export interface FileCandidate {
  type: 'file';
  id: string;
  source: Source;
  /** Absolute path under the root (symlinks inside the root kept as they are). */
  path: string;
  /** Videos and PDFs are many documents each (media.ts). */
  kind: 'image' | 'text' | 'video' | 'pdf';
  bytes: number;
  mtime: string;
  metadata: Metadata;
}

/** A document given whole (a JSONL line, a URL). */
export interface InputCandidate {
  type: 'input';
  id: string;
  source: Source;
  input: DocumentInput;
  /** Relative image paths in a JSONL resolve against its folder. */
  baseDir: string;
}

/** Something that names a document but could not be turned into one. */
export interface BadCandidate {
  type: 'bad';
  /** The id when it is known, else undefined. */
  id?: string;
  /** Where it is, for messages: "docs.jsonl line 3". */
  label: string;
  source: Source;
  error: TesseraError;
}

export type Candidate = FileCandidate | InputCandidate | BadCandidate;

/** What a walk saw besides candidates: things it could not look into, and files it ignored. */
export interface WalkReport {
  /** Folders or files that could not be read: ids under them are not pruned. */
  unreadable: { id: string; reason: string }[];
  /** Files recognised as images of formats the engine does not decode, by format name. */
  ignoredFormats: Map<string, number>;
  /** Symlinks leading out of the root, not followed. */
  outsideLinks: string[];
}

export const TEXT_EXTENSIONS = new Set(['.txt', '.md']);
/** Text files longer than this are failed (or cut to it with --truncate) rather than read whole. */
export const MAX_TEXT_FILE_BYTES = 1024 * 1024;
const RASTER = new Set<string>(['jpeg', 'png', 'webp', 'gif', 'tiff', 'avif'] satisfies RasterFormat[]);
/** Enough for every format's signature: a PDF's header may come anywhere in its first 1024 bytes. */
const SNIFF_BYTES = 1024;

/** What PATH is: a folder, a .jsonl file, or a .txt file of URLs. INVALID_ARGUMENT otherwise. */
export async function resolveSource(given: string): Promise<Source> {
  let info;
  try {
    info = await stat(given);
  } catch (err) {
    throw new TesseraError('INVALID_ARGUMENT', `${given}: no such file or folder (${(err as NodeJS.ErrnoException).code ?? 'unreadable'})`, { cause: err });
  }
  const path = await realpath(given);
  if (info.isDirectory()) return { kind: 'folder', given, path };
  const ext = extname(given).toLowerCase();
  if (info.isFile() && ext === '.jsonl') return { kind: 'jsonl', given, path };
  if (info.isFile() && ext === '.txt') return { kind: 'urls', given, path };
  throw invalidArgument('PATH', 'a folder, a .jsonl file of documents or a .txt file of image URLs', given);
}

/** Candidates of one source, in a stable order. */
export function candidates(source: Source, report: WalkReport): AsyncGenerator<Candidate> {
  if (source.kind === 'folder') return walkFolder(source, report);
  if (source.kind === 'jsonl') return readJsonl(source, report);
  return readUrlList(source, report);
}

export function emptyReport(): WalkReport {
  return { unreadable: [], ignoredFormats: new Map(), outsideLinks: [] };
}

/**
 * Walks `source.path` depth first in name order. Images, videos and PDFs are recognised by
 * their first bytes (any name), `.txt`/`.md` files are texts, everything else is passed over. Symlinks
 * are followed only while they resolve inside the root; each real folder is entered once.
 */
async function* walkFolder(source: Source, report: WalkReport, start: string = source.path): AsyncGenerator<Candidate> {
  const root = source.path;
  const entered = new Set<string>([root, start === root ? root : await realpath(start).catch(() => start)]);
  const stack: string[] = [start];
  while (stack.length > 0) {
    const dir = stack.pop()!;
    let names: { name: string; isDir: boolean; isFile: boolean; isLink: boolean }[];
    try {
      const handle = await opendir(dir);
      names = [];
      for await (const entry of handle) names.push({ name: entry.name, isDir: entry.isDirectory(), isFile: entry.isFile(), isLink: entry.isSymbolicLink() });
    } catch (err) {
      report.unreadable.push({ id: toId(root, dir), reason: (err as Error).message });
      continue;
    }
    names.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const subdirs: string[] = [];
    for (const entry of names) {
      const path = join(dir, entry.name);
      let isDir = entry.isDir;
      let isFile = entry.isFile;
      if (entry.isLink) {
        let target: string;
        try {
          target = await realpath(path);
        } catch {
          continue; // a dangling link: nothing to index
        }
        if (!inside(root, target)) {
          report.outsideLinks.push(toId(root, path));
          continue;
        }
        const info = await stat(target).catch(() => undefined);
        if (!info) continue;
        isDir = info.isDirectory();
        isFile = info.isFile();
      }
      if (isDir) {
        const real = await realpath(path).catch(() => path);
        if (entered.has(real)) continue;
        entered.add(real);
        subdirs.push(path);
      } else if (isFile) {
        const found = await fileCandidate(source, path, report);
        if (found) yield found;
      }
    }
    // Reversed onto the stack so that folders come out in name order.
    for (let i = subdirs.length - 1; i >= 0; i--) stack.push(subdirs[i]!);
  }
}

/**
 * The candidates of some paths under a folder source, each as a walk of the whole folder would
 * yield it: a file (or a link to one inside the root) is one candidate or none, a folder is
 * walked. `covered` receives the id of every path whose documents this listing describes
 * wholly (a folder walked, a path gone or no longer indexable: ids under it that are not
 * yielded are gone) with `folder` false when it is known to be a plain file (so no id lies
 * below it). Paths outside the root are passed over; so are links to folders (a walk enters a
 * real folder once, by whichever name it meets first).
 */
export async function* pathCandidates(source: Source, paths: readonly string[], report: WalkReport, covered: { id: string; folder: boolean }[]): AsyncGenerator<Candidate> {
  const root = source.path;
  const yielded = new Set<string>(); // a path listed twice, or a file and a folder above it
  const once = async function* (found: AsyncIterable<Candidate> | Iterable<Candidate>): AsyncGenerator<Candidate> {
    for await (const c of found) {
      if (c.id !== undefined && yielded.has(c.id)) continue;
      if (c.id !== undefined) yielded.add(c.id);
      yield c;
    }
  };
  for (const path of paths) {
    if (!inside(root, path)) continue;
    const id = toId(root, path);
    const info = await lstat(path).catch(() => undefined);
    if (!info) {
      covered.push({ id, folder: true }); // gone: a file, or a folder with documents under it
      continue;
    }
    if (info.isDirectory()) {
      covered.push({ id, folder: true });
      yield* once(walkFolder(source, report, path));
      continue;
    }
    if (info.isSymbolicLink()) {
      const target = await realpath(path).catch(() => undefined);
      if (target !== undefined && !inside(root, target)) report.outsideLinks.push(id);
      const targetInfo = target !== undefined && inside(root, target) ? await stat(target).catch(() => undefined) : undefined;
      if (targetInfo?.isDirectory()) continue;
      if (!targetInfo?.isFile()) {
        covered.push({ id, folder: false }); // dangling or leading out: no document
        continue;
      }
    } else if (!info.isFile()) {
      covered.push({ id, folder: false });
      continue;
    }
    const found = await fileCandidate(source, path, report);
    if (found) yield* once([found]);
    else covered.push({ id, folder: false }); // not (or no longer) a file tessera indexes
  }
}

async function fileCandidate(source: Source, path: string, report: WalkReport): Promise<Candidate | undefined> {
  const id = toId(source.path, path);
  const ext = extname(path).toLowerCase();
  let handle: FileHandle | undefined;
  try {
    handle = await open(path, 'r');
    const info = await handle.stat();
    const head = Buffer.alloc(Math.min(SNIFF_BYTES, info.size));
    if (head.length > 0) await handle.read(head, 0, head.length, 0);
    const format = sniffFormat(head);
    let kind: FileCandidate['kind'];
    if (format && RASTER.has(format)) kind = 'image';
    else if (sniffVideo(head)) kind = 'video';
    else if (format === 'pdf' || isPdf(head)) kind = 'pdf';
    else if (TEXT_EXTENSIONS.has(ext)) kind = 'text';
    else {
      if (format) {
        const name = FORMAT_NAMES[format as RasterFormat | RefusedFormat];
        report.ignoredFormats.set(name, (report.ignoredFormats.get(name) ?? 0) + 1);
      }
      return undefined;
    }
    const mtime = info.mtime.toISOString();
    // No absolute path here: metadata goes out in search answers; the id is the path under the root.
    const metadata: Metadata = { ext: ext.replace(/^\./, ''), bytes: info.size, mtime, [SOURCE_KEY]: source.path };
    try {
      validateDocumentId(id, `${path}: the id (its path under ${source.path})`);
    } catch (err) {
      return { type: 'bad', label: path, source, error: err as TesseraError };
    }
    return { type: 'file', id, source, path, kind, bytes: info.size, mtime, metadata };
  } catch (err) {
    report.unreadable.push({ id, reason: (err as Error).message });
    return { type: 'bad', id, label: path, source, error: new TesseraError('IMAGE_NOT_FOUND', `cannot read ${path}: ${(err as Error).message}`, { cause: err }) };
  } finally {
    await handle?.close();
  }
}

/** One JSON document per line; blank lines are passed over. */
async function* readJsonl(source: Source, _report: WalkReport): AsyncGenerator<Candidate> {
  const lines = createInterface({ input: createReadStream(source.path, { encoding: 'utf8' }), crlfDelay: Infinity });
  let n = 0;
  for await (const raw of lines) {
    n++;
    const line = raw.trim();
    if (line === '') continue;
    const label = `${source.given} line ${n}`;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (err) {
      yield { type: 'bad', label, source, error: new TesseraError('DOCUMENT_INVALID', `${label} is not valid JSON: ${(err as Error).message}`) };
      continue;
    }
    const id = typeof value === 'object' && value !== null && typeof (value as { id?: unknown }).id === 'string' ? (value as { id: string }).id : undefined;
    try {
      const input = parseDocumentInput(value, label);
      input.metadata = { ...input.metadata, [SOURCE_KEY]: source.path };
      yield { type: 'input', id: input.id, source, input, baseDir: dirname(source.path) };
    } catch (err) {
      yield { type: 'bad', id, label, source, error: err as TesseraError };
    }
  }
}

/** One image URL per line; blank lines and lines starting with # are passed over. */
async function* readUrlList(source: Source, _report: WalkReport): AsyncGenerator<Candidate> {
  const text = await readFile(source.path, 'utf8');
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const url = lines[i]!.trim();
    if (url === '' || url.startsWith('#')) continue;
    const label = `${source.given} line ${i + 1}`;
    if (!/^https?:\/\//i.test(url)) {
      yield { type: 'bad', label, source, error: new TesseraError('IMAGE_URL_INVALID', `${label}: expected an http(s) URL but received ${JSON.stringify(url.slice(0, 80))}`) };
      continue;
    }
    try {
      validateDocumentId(url, `${label}: the URL as a document id`);
    } catch (err) {
      yield { type: 'bad', label, source, error: err as TesseraError };
      continue;
    }
    yield { type: 'input', id: url, source, input: { id: url, image: url, metadata: { url, [SOURCE_KEY]: source.path } }, baseDir: dirname(source.path) };
  }
}

/** Reads a text file for a text document: UTF-8 (BOM dropped), at most MAX_TEXT_FILE_BYTES. */
export async function readTextFile(path: string, truncate: boolean): Promise<{ text: string; bytes: Buffer }> {
  const info = await stat(path);
  let bytes: Buffer;
  if (info.size > MAX_TEXT_FILE_BYTES) {
    if (!truncate) {
      throw new TesseraError('TEXT_TOO_LONG', `${path} has ${info.size} bytes; text files of at most ${MAX_TEXT_FILE_BYTES} bytes are indexed (use --truncate to index the beginning)`);
    }
    const handle = await open(path, 'r');
    try {
      bytes = Buffer.alloc(MAX_TEXT_FILE_BYTES);
      const { bytesRead } = await handle.read(bytes, 0, bytes.length, 0);
      bytes = bytes.subarray(0, bytesRead);
    } finally {
      await handle.close();
    }
  } else {
    bytes = await readFile(path);
  }
  let text: string;
  try {
    // A cut may split the last character: fatal decoding would then refuse a good file.
    text = new TextDecoder('utf-8', { fatal: !truncate || info.size <= MAX_TEXT_FILE_BYTES, ignoreBOM: false }).decode(bytes);
  } catch {
    throw new TesseraError('TEXT_INVALID', `${path} is not UTF-8 text`);
  }
  if (text.trim() === '') throw new TesseraError('DOCUMENT_INVALID', `${path} is empty (no text to embed)`);
  return { text, bytes };
}

/** The id of `path` under `root`: relative, with '/' separators on every platform. */
export function toId(root: string, path: string): string {
  const rel = relative(root, path);
  return sep === '/' ? rel : rel.split(sep).join('/');
}

/** Whether `path` (real) is `root` (real) or below it. */
export function inside(root: string, path: string): boolean {
  const rel = relative(root, path);
  if (rel === '') return true;
  return rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel);
}
