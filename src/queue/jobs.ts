/**
 * What goes on the queue: jobs of N document descriptors each, cut from the sources by the
 * coordinator. A job carries everything a worker on another machine needs (inline texts, URLs,
 * data URIs; absolute paths only when they are on storage every worker shares), never a path
 * that means something only on the coordinator. Job ids are deterministic (collection, source,
 * chunk index, chunk content), so running the coordinator again adds no work for what is queued
 * or done already, and a changed chunk becomes a new job.
 */
import { stat } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { TesseraError } from '../errors.ts';
import { contentHash, type DocumentInput } from '../index/document.ts';
import { candidates, emptyReport, type Candidate, type Source, type WalkReport } from '../index/sources.ts';
import type { Metadata } from '../store/store.ts';

/** The one queue indexing jobs of every collection go through. */
export const QUEUE_NAME = 'tessera-index';
/** Documents per job unless --job-size says otherwise. */
export const DEFAULT_JOB_SIZE = 128;
/** Whole-job attempts (store or queue unavailable, a crashed session): then the job is failed. */
export const DEFAULT_ATTEMPTS = 5;
/** First retry delay; BullMQ doubles it on each attempt. */
export const DEFAULT_BACKOFF_MS = 2000;
/** Item failures kept in a job's result (the count is always whole). */
export const MAX_FAILURES_PER_JOB = 200;

export type JobItem =
  /** A JSONL line or a URL: the document itself. */
  | { kind: 'input'; input: DocumentInput; label: string }
  /** A file of a folder on shared storage. */
  | { kind: 'file'; id: string; path: string; type: 'image' | 'text'; bytes: number; mtime: string; metadata: Metadata; root: string }
  /** A line that could not be read as a document: the worker reports it, so --status lists it. */
  | { kind: 'bad'; id?: string; label: string; code: string; message: string };

export interface IndexJobData {
  v: 1;
  collection: string;
  /** The source's real path on the coordinator (documents' `_source`) and as given. */
  source: string;
  given: string;
  chunk: number;
  /** Whether image strings may be file paths (only with --shared-folder; they are absolute then). */
  allowPaths: boolean;
  truncate: boolean;
  fetch: { allowPrivate: boolean; timeoutMs?: number };
  items: JobItem[];
  /** Set once the job is done: its items were this many, and are dropped from Redis. */
  written?: number;
}

export interface JobFailure {
  item: string;
  code: string;
  message: string;
}

/** A job's return value: its counts and its item failures, which --status lists. */
export interface IndexJobResult {
  added: number;
  updated: number;
  skipped: number;
  failed: number;
  failures: JobFailure[];
  /** The worker that did it (host:pid). */
  worker: string;
}

export interface PlanOptions {
  collection: string;
  sources: readonly Source[];
  /** Folders and image paths are on storage every worker mounts at the same path. */
  sharedFolder: boolean;
  jobSize: number;
  truncate: boolean;
  fetch: { allowPrivate: boolean; timeoutMs?: number };
  onNote?: (line: string) => void;
}

export interface PlannedJob {
  id: string;
  data: IndexJobData;
}

/**
 * The jobs for `sources`, chunk by chunk. Refuses (INVALID_ARGUMENT, before anything is queued)
 * a folder or a JSONL image path unless `sharedFolder`: workers elsewhere could not read them.
 */
export async function* planJobs(options: PlanOptions): AsyncGenerator<PlannedJob> {
  for (const source of options.sources) await checkReachable(source, options.sharedFolder);
  const seen = new Map<string, string>();
  for (const source of options.sources) {
    const report: WalkReport = emptyReport();
    let chunk = 0;
    let items: JobItem[] = [];
    const cut = (): PlannedJob => {
      const data: IndexJobData = {
        v: 1,
        collection: options.collection,
        source: source.path,
        given: source.given,
        chunk,
        allowPaths: options.sharedFolder,
        truncate: options.truncate,
        fetch: options.fetch,
        items,
      };
      const job = { id: jobId(options.collection, source.path, chunk, items), data };
      chunk++;
      items = [];
      return job;
    };
    for await (const c of candidates(source, report)) {
      items.push(await toItem(c, seen, options.sharedFolder));
      if (items.length >= options.jobSize) yield cut();
    }
    if (items.length > 0) yield cut();
    for (const name of [...report.ignoredFormats.keys()].sort()) options.onNote?.(`passed over ${report.ignoredFormats.get(name)} ${name} file(s): not a format tessera decodes`);
    for (const link of report.outsideLinks) options.onNote?.(`not followed: ${link} is a symlink leading outside its root`);
    for (const u of report.unreadable) options.onNote?.(`could not read ${u.id}: ${u.reason}`);
  }
}

/**
 * `collection.source.chunk.content`: the same chunk of the same source gives the same id (BullMQ
 * then adds nothing), a chunk whose documents changed a new one. '.' never occurs in collection
 * names, so `collection.` prefixes exactly one collection's jobs.
 */
export function jobId(collection: string, sourcePath: string, chunk: number, items: readonly JobItem[]): string {
  return `${collection}.${contentHash(sourcePath).slice(0, 12)}.${chunk}.${contentHash(JSON.stringify(items)).slice(0, 16)}`;
}

export function collectionOfJob(id: string): string {
  return id.slice(0, id.indexOf('.'));
}

async function toItem(c: Candidate, seen: Map<string, string>, shared: boolean): Promise<JobItem> {
  if (c.type === 'bad') return { kind: 'bad', id: c.id, label: c.label, code: c.error.code, message: c.error.message };
  const label = c.type === 'file' ? c.path : c.source.kind === 'urls' ? c.id : `${c.source.given} (id ${JSON.stringify(c.id)})`;
  const first = seen.get(c.id);
  if (first !== undefined) {
    return { kind: 'bad', id: c.id, label, code: 'DOCUMENT_ID_DUPLICATE', message: `${label}: the id ${JSON.stringify(c.id)} was given already by ${first}; the first one is indexed` };
  }
  seen.set(c.id, label);
  if (c.type === 'file' && (c.kind === 'video' || c.kind === 'pdf')) {
    // A video or PDF is written whole in one atomic write (index/media.ts), which a worker's
    // per-document jobs do not do yet: it is reported, not half-indexed.
    return { kind: 'bad', id: c.id, label, code: 'INVALID_ARGUMENT', message: `${label}: ${c.kind === 'video' ? 'videos' : 'PDFs'} are indexed by \`tessera index\` without --queue (workers take images and texts)` };
  }
  if (c.type === 'file') {
    return { kind: 'file', id: c.id, path: c.path, type: c.kind as 'image' | 'text', bytes: c.bytes, mtime: c.mtime, metadata: c.metadata, root: c.source.path };
  }
  const input = { ...c.input };
  if ('image' in input && shared) {
    const path = await localPath(input.image, c.baseDir);
    if (path !== undefined) input.image = path;
  }
  return { kind: 'input', input, label };
}

/** The absolute path an image string names when it is a file that exists here, else undefined. */
async function localPath(image: string, baseDir: string): Promise<string | undefined> {
  if (/^(https?|data):/i.test(image) || image.length > 4096 || image.includes('\0')) return undefined;
  const path = isAbsolute(image) ? image : resolve(baseDir, image);
  return (await stat(path).then((s) => s.isFile(), () => false)) ? path : undefined;
}

/** INVALID_ARGUMENT for what only this machine can read, unless it is on shared storage. */
async function checkReachable(source: Source, shared: boolean): Promise<void> {
  if (shared) return;
  const advice = 'give --shared-folder when it is on storage every worker mounts at the same path, or list documents by http(s) URL or inline data (text, data URIs) in a .jsonl file';
  if (source.kind === 'folder') {
    throw new TesseraError('INVALID_ARGUMENT', `${source.given} is a folder on this machine, which workers elsewhere cannot read; ${advice}`);
  }
  if (source.kind !== 'jsonl') return;
  for await (const c of candidates(source, emptyReport())) {
    if (c.type !== 'input' || !('image' in c.input)) continue;
    const path = await localPath(c.input.image, c.baseDir);
    if (path !== undefined) {
      throw new TesseraError('INVALID_ARGUMENT', `${source.given}: document ${JSON.stringify(c.id)} names the file ${path}, which workers elsewhere cannot read; ${advice}`);
    }
  }
}
