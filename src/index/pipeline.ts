/**
 * The indexing pipeline: candidates from the sources -> change detection against what the
 * collection holds -> reading and embedding, many documents in flight so that the engine's
 * batches stay full -> batched, atomic writes that overlap with the embedding of what follows.
 *
 * Crash safety comes from the order of things: a document is counted only once the upsert
 * holding it has committed, each upsert is all or nothing (the store's contract), and a rerun
 * compares content hashes, so whatever committed before a crash is skipped and the rest done.
 */
import { readFile } from 'node:fs/promises';
import { TesseraError } from '../errors.ts';
import type { Embedder } from '../engine/embedder.ts';
import type { FetchPolicy } from '../image/fetch.ts';
import { PHOTO_KEYS, readPhotoMetadata } from '../image/photo-metadata.ts';
import type { DocumentRecord, Metadata, Modality, ModelRef, StoredDocument, VectorStore } from '../store/store.ts';
import { contentHash, isItemError, loadDocument, toRecord, type LoadedDocument } from './document.ts';
import { CONTAINER_KEYS, containerParts, embedParts, Gate, MediaTools, ownerOf, type MediaOptions } from './media.ts';
import { candidates, emptyReport, pathCandidates, readTextFile, SOURCE_KEY, type Candidate, type FileCandidate, type Source, type WalkReport } from './sources.ts';

export interface IndexSummary {
  added: number;
  updated: number;
  skipped: number;
  removed: number;
  failed: number;
}

export interface IndexFailure {
  /** The document id when known, else where the item is ("docs.jsonl line 3"). */
  item: string;
  code: string;
  message: string;
}

export interface IndexProgress extends IndexSummary {
  /** Candidates dealt with so far (skipped, failed, or embedded). */
  done: number;
  /** Candidates in all sources (known once they have been counted). */
  total: number;
  /** Embedded and waiting to be written. */
  pending: number;
}

export interface IndexOptions {
  store: VectorStore;
  collection: string;
  embedder: Embedder;
  /** The model writing (the collection's own; the store refuses another). */
  writer: ModelRef;
  sources: readonly Source[];
  /** Remove documents of these sources whose file, line or URL is gone. */
  prune?: boolean;
  /** Cut texts over the model's limit instead of failing them. */
  truncate?: boolean;
  /** Documents per upsert (default 256); a partly filled batch is written after `flushMs` too. */
  batchSize?: number;
  /** Write what is embedded at least this often, so that a crash loses little (default 5000). */
  flushMs?: number;
  /** Documents read and embedded at once (default 64). */
  concurrency?: number;
  /** Read and hash every file even when its size and mtime are unchanged (default false). */
  rehash?: boolean;
  /**
   * Deal with just these absolute paths under the folder sources instead of walking them whole
   * (the watcher's batches): a file is indexed as a walk would, a folder is walked, and the
   * documents of a path that is gone or no longer indexable (everything under a folder gone)
   * are removed, as `prune` would. Only the documents concerned are read from the store.
   */
  paths?: readonly string[];
  fetchPolicy?: Partial<FetchPolicy>;
  /** How videos and PDFs are read (media.ts). */
  media?: MediaOptions;
  /** Aborting stops taking new documents; what is embedded is still written. */
  signal?: AbortSignal;
  onFailure?: (failure: IndexFailure) => void;
  onProgress?: (progress: IndexProgress) => void;
  /** Informational lines (ignored formats, links out of the root, ...). */
  onNote?: (line: string) => void;
}

export interface IndexResult extends IndexSummary {
  failures: IndexFailure[];
  /** True when the signal stopped the run before every candidate was dealt with. */
  interrupted: boolean;
}

/** Image files larger than this are failed before being read (they would not fit anyway). */
export const MAX_IMAGE_FILE_BYTES = 256 * 1024 * 1024;
const STORED_PAGE = 500;

/** What change detection needs of a stored document. */
export interface StoredState {
  hash: string;
  modality: Modality;
  image?: string;
  root?: string;
  metadataKey: string;
  /** The metadata less the keys read from the file's content (PHOTO_KEYS): what a folder walk gives. */
  walkKey: string;
  source?: string;
  /** A video's frame or a PDF's page: the id of its file. */
  owner?: string;
}

/** Container files (videos, PDFs) read at once: each is a child process using a core. */
const CONTAINERS_AT_ONCE = 2;

/** Indexes `sources` into `collection`; resolves with the counts once everything is written. */
export async function indexSources(options: IndexOptions): Promise<IndexResult> {
  const { store, collection, embedder } = options;
  const counts: IndexSummary = { added: 0, updated: 0, skipped: 0, removed: 0, failed: 0 };
  const failures: IndexFailure[] = [];
  const concurrency = options.concurrency ?? 64;
  const report: WalkReport = emptyReport();

  const covered: CoveredPath[] = [];
  const lists = await Promise.all(options.sources.map((s) => listCandidates(s, report, options.paths, covered)));
  const stored = options.paths ? await loadStoredStateOf(store, collection, lists, covered) : await loadStoredState(store, collection);
  const writer = new BatchWriter(
    store,
    collection,
    options.writer,
    options.batchSize ?? 256,
    options.flushMs ?? 5000,
    (kind, n) => {
      counts[kind] += n;
      progress();
    },
    (record, error) => fail(record.id, error),
  );
  const refresher = new Refresher(store, collection, writer);
  const parts = partsByOwner(stored);
  const media = new MediaTools(options.media);
  const gate = new Gate(CONTAINERS_AT_ONCE);

  const total = lists.reduce((n, l) => n + l.count, 0);
  let done = 0;
  const progress = () => options.onProgress?.({ ...counts, done, total, pending: writer.buffered });

  const fail = (item: string, error: TesseraError) => {
    const failure = { item, code: error.code, message: error.message };
    failures.push(failure);
    counts.failed++;
    options.onFailure?.(failure);
  };

  const seen = new Map<string, string>();
  const unsure = new Set<string>();
  const handle = async (c: Candidate): Promise<void> => {
    if (c.type === 'bad') {
      // A bad item is not a gone one: its document is kept. One whose id cannot be told
      // (a line that is not JSON) might be any document, so its source is not pruned at all.
      if (c.id !== undefined) seen.set(c.id, c.label);
      else unsure.add(c.source.path);
      return fail(c.id ?? c.label, c.error);
    }
    const first = seen.get(c.id);
    if (first !== undefined) {
      return fail(c.id, new TesseraError('DOCUMENT_ID_DUPLICATE', `${labelOf(c)}: the id ${JSON.stringify(c.id)} was given already by ${first}; the first one is indexed`));
    }
    seen.set(c.id, labelOf(c));
    if (c.type === 'file' && (c.kind === 'video' || c.kind === 'pdf')) return gate.run(() => handleContainer(c));
    const before = stored.get(c.id);
    if (c.type === 'file' && before && !options.rehash && unchangedFile(before, c)) {
      counts.skipped++;
      return;
    }
    let loaded: LoadedDocument;
    try {
      loaded = c.type === 'file' ? await loadFile(c, options.truncate ?? false) : await loadDocument(c.input, { allowPaths: true, baseDir: c.baseDir, fetchPolicy: options.fetchPolicy, signal: options.signal });
    } catch (err) {
      if (err instanceof TesseraError && isItemError(err)) return fail(c.id, prefixed(err, labelOf(c)));
      throw err;
    }
    if (before && before.hash === loaded.hash) {
      if (sameDocument(before, loaded)) {
        counts.skipped++;
        return;
      }
      // Same content, new metadata or location: rewrite it with the vector it has.
      await refresher.add(loaded);
      return;
    }
    let vector: Float32Array;
    try {
      const [embedding] = await embedder.embed([loaded.item], { truncate: options.truncate ?? false });
      vector = embedding!.embedding;
    } catch (err) {
      if (err instanceof TesseraError && isItemError(err)) return fail(c.id, prefixed(err, labelOf(c)));
      throw err;
    }
    writer.add(toRecord(loaded, vector), before ? 'updated' : 'added');
  };

  /**
   * A video or PDF: its parts read, embedded (or their vectors kept where their content is
   * unchanged) and written with the removal of its old parts in one atomic upsert. Counted as
   * one file: added, updated, skipped or failed.
   */
  const handleContainer = async (c: FileCandidate): Promise<void> => {
    const old = parts.get(c.id) ?? [];
    const states = old.map((id) => stored.get(id)!);
    if (old.length > 0 && !options.rehash && states.every((s) => unchangedPart(s, c))) {
      counts.skipped++;
      return;
    }
    let read: Awaited<ReturnType<typeof embedParts>>;
    try {
      const found = await containerParts(c, media, embedder.info.imageSize, options.signal);
      if (!found) return; // the tool is missing: noted once at the end, its old parts kept
      const unchanged = new Set(old.filter((id) => stored.get(id)!.hash !== undefined));
      read = await embedParts(embedder, found, (part) => unchanged.has(part.input.id) && stored.get(part.input.id)!.hash === part.hash);
    } catch (err) {
      if (err instanceof TesseraError && isItemError(err)) return fail(c.id, prefixed(err, c.path));
      throw err;
    }
    const kept = read.filter((r) => !r.vector).map((r) => r.part.input.id);
    const vectors = new Map<string, Float32Array>();
    for (let i = 0; i < kept.length; i += STORED_PAGE) {
      for (const doc of await store.get(collection, kept.slice(i, i + STORED_PAGE), { vectors: true })) vectors.set(doc.id, doc.vector!);
    }
    const records = read.flatMap((r) => {
      const vector = r.vector ?? vectors.get(r.part.input.id);
      return vector ? [toRecord(r.part, vector)] : [];
    });
    // Every part read as it was stored (a --rehash of an unchanged file): nothing to write.
    if (records.length === old.length && read.every((r) => !r.vector && sameDocument(stored.get(r.part.input.id)!, r.part))) {
      counts.skipped++;
      return;
    }
    try {
      await store.upsert(collection, records, options.writer, { remove: old });
    } catch (err) {
      if (err instanceof TesseraError && isItemError(err)) return fail(c.id, prefixed(err, c.path));
      throw err;
    }
    counts[old.length > 0 ? 'updated' : 'added']++;
    progress();
  };

  // A bounded number of documents in flight: enough to keep the engine's batches full while
  // files are read and decoded, few enough to bound memory. The writer's backlog bounds the rest.
  const inFlight = new Set<Promise<void>>();
  let firstError: unknown;
  let interrupted = false;
  const completedSources = new Set<string>();
  try {
    outer: for (const list of lists) {
      for await (const c of list.items()) {
        if (options.signal?.aborted) {
          interrupted = true;
          break outer;
        }
        while (inFlight.size >= concurrency) await Promise.race(inFlight);
        await writer.room();
        if (firstError !== undefined) break outer;
        const task: Promise<void> = handle(c)
          .catch((err: unknown) => {
            firstError ??= err;
          })
          .finally(() => {
            inFlight.delete(task);
            done++;
            progress();
          });
        inFlight.add(task);
      }
      completedSources.add(list.source.path);
    }
  } finally {
    await Promise.all(inFlight);
  }
  await refresher.flush();
  await writer.flush();
  if (firstError !== undefined) throw firstError;

  for (const name of [...report.ignoredFormats.keys()].sort()) {
    options.onNote?.(`passed over ${report.ignoredFormats.get(name)} ${name} file(s): not a format tessera decodes`);
  }
  for (const link of report.outsideLinks) options.onNote?.(`not followed: ${link} is a symlink leading outside its root`);
  for (const u of report.unreadable) options.onNote?.(`could not read ${u.id}: ${u.reason}`);
  for (const [hint, n] of media.missing) options.onNote?.(`passed over ${n} ${hint}`);

  if ((options.prune || options.paths) && !interrupted) {
    const doomed: string[] = [];
    const sources = new Set([...completedSources].filter((s) => !unsure.has(s)));
    for (const s of unsure) options.onNote?.(`not pruning ${s}: some of its lines could not be read as documents`);
    const unreadable = report.unreadable.map((u) => u.id);
    for (const [id, state] of stored) {
      // A frame or a page lives as long as its file is seen.
      const key = state.owner ?? id;
      if (state.source === undefined || !sources.has(state.source) || seen.has(key)) continue;
      if (options.paths && !covered.some((c) => c.source === state.source && (c.id === '' || key === c.id || key.startsWith(`${c.id}/`)))) continue;
      if (unreadable.some((u) => u === '' || key === u || key.startsWith(`${u}/`))) continue;
      doomed.push(id);
    }
    for (let i = 0; i < doomed.length; i += STORED_PAGE) {
      counts.removed += await store.delete(collection, doomed.slice(i, i + STORED_PAGE));
      progress();
    }
  }
  return { ...counts, failures, interrupted };
}

/** A path of a `paths` run whose documents its listing describes wholly (pathCandidates). */
interface CoveredPath {
  source: string;
  id: string;
  folder: boolean;
}

type CandidateList = { source: Source; count: number; items: () => AsyncIterable<Candidate> };

/** The candidates of a source (of its `paths` only, when given) and how many there are, counted before any is processed. */
async function listCandidates(source: Source, report: WalkReport, paths?: readonly string[], covered: CoveredPath[] = []): Promise<CandidateList> {
  if (paths) {
    const all: Candidate[] = [];
    const mine: { id: string; folder: boolean }[] = [];
    if (source.kind === 'folder') for await (const c of pathCandidates(source, paths, report, mine)) all.push(c);
    covered.push(...mine.map((c) => ({ ...c, source: source.path })));
    return { source, count: all.length, items: () => iterate(all) };
  }
  if (source.kind === 'jsonl') {
    // Streamed twice (count, then read), so a large JSONL never sits in memory whole.
    let count = 0;
    for await (const _ of candidates(source, emptyReport())) count++;
    return { source, count, items: () => candidates(source, report) };
  }
  const all: Candidate[] = [];
  for await (const c of candidates(source, report)) all.push(c);
  return { source, count: all.length, items: () => iterate(all) };
}

async function* iterate<T>(items: readonly T[]): AsyncGenerator<T> {
  yield* items;
}

/** Hash, modality, location and metadata of every stored document, read in pages. */
async function loadStoredState(store: VectorStore, collection: string): Promise<Map<string, StoredState>> {
  return statesOf(store, collection, [...(await store.hashes(collection)).keys()]);
}

/**
 * The stored state of the documents a `paths` run concerns: its candidates', and those under
 * a path it covers that held no document itself (a folder: found among all ids, one read).
 */
async function loadStoredStateOf(store: VectorStore, collection: string, lists: readonly CandidateList[], covered: readonly CoveredPath[]): Promise<Map<string, StoredState>> {
  const ids = new Set<string>(covered.map((c) => c.id));
  for (const list of lists) for await (const c of list.items()) if (c.id !== undefined) ids.add(c.id);
  const state = await statesOf(store, collection, [...ids]);
  const prefixes = covered.filter((c) => c.folder && !state.has(c.id)).map((c) => `${c.id}/`);
  // Any file may be (or have been) a video or a PDF, whose parts are "FILE#...": looked for
  // only where the collection holds such parts.
  const { fields } = await store.requireCollection(collection);
  if (fields.has('video') || fields.has('pdf')) prefixes.push(...[...ids].map((id) => `${id}#`));
  if (prefixes.length > 0) {
    const under = [...(await store.hashes(collection)).keys()].filter((id) => !state.has(id) && prefixes.some((p) => p === '/' || id.startsWith(p)));
    for (const [id, s] of await statesOf(store, collection, under)) state.set(id, s);
  }
  return state;
}

async function statesOf(store: VectorStore, collection: string, ids: readonly string[]): Promise<Map<string, StoredState>> {
  const state = new Map<string, StoredState>();
  for (let i = 0; i < ids.length; i += STORED_PAGE) {
    for (const doc of await store.get(collection, ids.slice(i, i + STORED_PAGE))) state.set(doc.id, stateOf(doc));
  }
  return state;
}

export function stateOf(doc: StoredDocument): StoredState {
  const source = doc.metadata[SOURCE_KEY];
  return {
    hash: doc.hash,
    modality: doc.modality,
    image: doc.image,
    root: doc.root,
    metadataKey: metadataKey(doc.metadata),
    walkKey: metadataKey(withoutPhotoKeys(doc.metadata)),
    source: typeof source === 'string' ? source : undefined,
    owner: ownerOf(doc.metadata),
  };
}

/** Metadata in a canonical form, for comparing. */
function metadataKey(metadata: Metadata): string {
  return JSON.stringify(Object.keys(metadata).sort().map((k) => [k, metadata[k]]));
}

/** Keys read from a file's content (a photo's EXIF, a video's or a PDF's own): not the walk's. */
const PHOTO_KEY_SET = new Set<string>([...PHOTO_KEYS, ...CONTAINER_KEYS]);

function withoutPhotoKeys(metadata: Metadata): Metadata {
  return Object.fromEntries(Object.entries(metadata).filter(([k]) => !PHOTO_KEY_SET.has(k)));
}

/**
 * rclip's shortcut: same path, size and mtime means same content, so the file is not even read.
 * Only what the walk knows is compared: the photo keys stored beside it come from the content.
 * A walk key stored but no longer given (or given anew) still counts as a change.
 */
export function unchangedFile(before: StoredState, c: FileCandidate): boolean {
  if (before.modality !== c.kind || before.walkKey !== metadataKey(withoutPhotoKeys(c.metadata))) return false;
  return c.kind === 'text' || (before.image === c.path && before.root === c.source.path);
}

/** A stored part of container `c` whose file is unchanged by the walk's keys (size, mtime, place). */
function unchangedPart(before: StoredState, c: FileCandidate): boolean {
  if (before.walkKey !== metadataKey(withoutPhotoKeys(c.metadata))) return false;
  return before.modality === 'text' || (before.image === c.path && before.root === c.source.path);
}

/** Stored frames and pages by the id of their file. */
function partsByOwner(stored: ReadonlyMap<string, StoredState>): Map<string, string[]> {
  const parts = new Map<string, string[]>();
  for (const [id, state] of stored) {
    if (state.owner === undefined) continue;
    const list = parts.get(state.owner);
    if (list) list.push(id);
    else parts.set(state.owner, [id]);
  }
  return parts;
}

export function sameDocument(before: StoredState, loaded: LoadedDocument): boolean {
  return before.modality === loaded.modality && before.image === loaded.location && before.root === loaded.root && before.metadataKey === metadataKey(loaded.input.metadata);
}

export async function loadFile(c: FileCandidate, truncate: boolean): Promise<LoadedDocument> {
  if (c.kind === 'text') {
    const { text } = await readTextFile(c.path, truncate);
    return { input: { id: c.id, text, metadata: c.metadata }, modality: 'text', item: { text }, hash: contentHash(text) };
  }
  if (c.bytes > MAX_IMAGE_FILE_BYTES) {
    throw new TesseraError('IMAGE_TOO_LARGE', `${c.path} has ${c.bytes} bytes; image files of at most ${MAX_IMAGE_FILE_BYTES} bytes are indexed`);
  }
  let bytes: Buffer;
  try {
    bytes = await readFile(c.path);
  } catch (err) {
    throw new TesseraError('IMAGE_NOT_FOUND', `cannot read ${c.path}: ${(err as Error).message}`, { cause: err });
  }
  // The walk's keys win over the photo's (they never share a name today).
  const metadata = { ...(await readPhotoMetadata(bytes)), ...c.metadata };
  return {
    input: { id: c.id, image: c.path, metadata, root: c.source.path },
    modality: 'image',
    item: { image: bytes },
    hash: contentHash(bytes),
    location: c.path,
    root: c.source.path,
  };
}

function labelOf(c: Exclude<Candidate, { type: 'bad' }>): string {
  return c.type === 'file' ? c.path : c.source.kind === 'urls' ? c.id : `${c.source.given} (id ${JSON.stringify(c.id)})`;
}

/** The error with `label` in front, unless its message names it already. */
export function prefixed(err: TesseraError, label: string): TesseraError {
  // The image layer names in-memory images by their size; the label says which file it was.
  const message = err.message.replace(/^input\[0\]: /, '').replace(/^image bytes \(\d+ bytes\) /, '');
  return message.includes(label) ? new TesseraError(err.code, message, { cause: err.cause }) : new TesseraError(err.code, `${label}: ${message}`, { cause: err.cause });
}

/**
 * Collects records and writes them `batchSize` at a time, one upsert (one atomic commit) after
 * another, while the caller goes on embedding. Counts reach `onCommitted` only after the commit.
 */
class BatchWriter {
  private queue: { record: DocumentRecord; kind: 'added' | 'updated' }[] = [];
  private writing: Promise<void> = Promise.resolve();
  private inWrite = 0;
  private error: unknown;
  private oldest = 0;
  private readonly timer: NodeJS.Timeout;
  private waiters: (() => void)[] = [];

  constructor(
    private readonly store: VectorStore,
    private readonly collection: string,
    private readonly writer: ModelRef,
    private readonly batchSize: number,
    flushMs: number,
    private readonly onCommitted: (kind: 'added' | 'updated', n: number) => void,
    private readonly onRejected: (record: DocumentRecord, error: TesseraError) => void,
  ) {
    // A slow model fills batches slowly: write what there is now and then, so a crash loses little.
    this.timer = setInterval(() => {
      if (this.queue.length > 0 && this.inWrite === 0 && performance.now() - this.oldest >= flushMs) this.startWrite();
    }, Math.max(50, Math.min(flushMs, 1000)));
    this.timer.unref();
  }

  /** Embedded, not yet committed. */
  get buffered(): number {
    return this.queue.length + this.inWrite;
  }

  add(record: DocumentRecord, kind: 'added' | 'updated'): void {
    if (this.queue.length === 0) this.oldest = performance.now();
    this.queue.push({ record, kind });
    if (this.queue.length >= this.batchSize && this.inWrite === 0) this.startWrite();
  }

  /** Waits while the backlog is over two batches, so that embedding cannot outrun writing without bound. */
  async room(): Promise<void> {
    while (this.error === undefined && this.buffered >= 3 * this.batchSize) {
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
    if (this.error !== undefined) throw this.error;
  }

  /** Writes everything left; rejects with the first write error. */
  async flush(): Promise<void> {
    clearInterval(this.timer);
    while (this.error === undefined && (this.queue.length > 0 || this.inWrite > 0)) {
      if (this.inWrite === 0) this.startWrite();
      await this.writing;
    }
    if (this.error !== undefined) throw this.error;
  }

  private startWrite(): void {
    const batch = this.queue.splice(0, this.batchSize);
    if (batch.length === 0) return;
    this.inWrite = batch.length;
    if (this.queue.length > 0) this.oldest = performance.now();
    this.writing = (async () => {
      try {
        await this.write(batch);
      } catch (err) {
        this.error ??= err;
      } finally {
        this.inWrite = 0;
        const waiters = this.waiters.splice(0);
        for (const wake of waiters) wake();
        // Keep writing while full batches wait.
        if (this.error === undefined && this.queue.length >= this.batchSize) this.startWrite();
      }
    })();
  }

  private async write(batch: { record: DocumentRecord; kind: 'added' | 'updated' }[]): Promise<void> {
    await writeRecords(this.store, this.collection, this.writer, batch, (b) => {
      const added = b.filter((x) => x.kind === 'added').length;
      if (added > 0) this.onCommitted('added', added);
      if (b.length > added) this.onCommitted('updated', b.length - added);
    }, this.onRejected);
  }
}

/**
 * One upsert; when the store refuses the batch for one document's sake (metadata whose type
 * differs from the collection's, say), the halves are written apart until that document is
 * alone, and it alone fails. `onCommitted` hears of each committed part. The queue's workers
 * write a job's documents through this too.
 */
export async function writeRecords<T extends { record: DocumentRecord }>(
  store: VectorStore,
  collection: string,
  writer: ModelRef,
  batch: T[],
  onCommitted: (committed: T[]) => void,
  onRejected: (record: DocumentRecord, error: TesseraError) => void,
): Promise<void> {
  try {
    await store.upsert(collection, batch.map((b) => b.record), writer);
  } catch (err) {
    if (!(err instanceof TesseraError) || !WRITE_ITEM_ERRORS.has(err.code)) throw err;
    if (batch.length === 1) {
      onRejected(batch[0]!.record, new TesseraError(err.code, err.message.replace(/^documents\[0\]\.?/, `${batch[0]!.record.id}: `), { cause: err }));
      return;
    }
    const half = Math.ceil(batch.length / 2);
    await writeRecords(store, collection, writer, batch.slice(0, half), onCommitted, onRejected);
    await writeRecords(store, collection, writer, batch.slice(half), onCommitted, onRejected);
    return;
  }
  onCommitted(batch);
}

/** Errors of upsert that concern one document of the batch, not the store. */
const WRITE_ITEM_ERRORS = new Set<string>(['DOCUMENT_INVALID', 'DOCUMENT_ID_INVALID', 'METADATA_INVALID', 'VECTOR_DIMENSIONS_MISMATCH']);

/**
 * Documents whose content is unchanged but whose metadata or location changed: their stored
 * vectors are read back in pages and written again with the new fields, without embedding.
 */
class Refresher {
  private pending: LoadedDocument[] = [];

  constructor(
    private readonly store: VectorStore,
    private readonly collection: string,
    private readonly writer: BatchWriter,
  ) {}

  async add(doc: LoadedDocument): Promise<void> {
    this.pending.push(doc);
    if (this.pending.length >= 64) await this.flush();
  }

  async flush(): Promise<void> {
    while (this.pending.length > 0) {
      const docs = this.pending.splice(0, 64);
      const found = await this.store.get(this.collection, docs.map((d) => d.input.id), { vectors: true });
      const vectors = new Map(found.map((d) => [d.id, d.vector]));
      for (const doc of docs) {
        const vector = vectors.get(doc.input.id);
        if (vector) this.writer.add(toRecord(doc, vector), 'updated');
      }
    }
  }
}
