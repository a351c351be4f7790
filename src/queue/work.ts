/**
 * One job, done by a worker: change detection against what the store holds for the job's ids,
 * reading and embedding what changed (the local pipeline's own loading, hashing and record
 * code), then every document of the job in one atomic upsert. A job done twice (its worker
 * died after the upsert, before completing it) writes the same records again: upsert is
 * idempotent by id, so each document is stored once.
 *
 * Item failures (an undecodable image, a bad URL) go into the result; anything else (the store
 * unreachable, a crashed session) rejects, and BullMQ retries the whole job with backoff.
 */
import { mapConcurrent } from '../concurrency.ts';
import type { Embedder } from '../engine/embedder.ts';
import { TesseraError } from '../errors.ts';
import { isItemError, loadDocument, toRecord, type LoadedDocument } from '../index/document.ts';
import { loadFile, prefixed, sameDocument, stateOf, unchangedFile, writeRecords } from '../index/pipeline.ts';
import type { FileCandidate } from '../index/sources.ts';
import type { DocumentRecord, ModelRef, VectorStore } from '../store/store.ts';
import { MAX_FAILURES_PER_JOB, type IndexJobData, type IndexJobResult, type JobFailure, type JobItem } from './jobs.ts';

export interface JobContext {
  store: VectorStore;
  /** The collection's model (the worker keeps one per model and dtype). */
  embedderFor(model: ModelRef): Promise<Embedder>;
  /** Documents of one job read and embedded at once (default 64). */
  concurrency?: number;
  worker: string;
  signal?: AbortSignal;
}

/** What the job's collection is written with; COLLECTION_NOT_FOUND when it is gone. */
export async function jobWriter(store: VectorStore, data: IndexJobData): Promise<ModelRef> {
  const info = await store.getCollection(data.collection);
  if (!info) throw new TesseraError('COLLECTION_NOT_FOUND', `no collection ${JSON.stringify(data.collection)} in the store at ${store.location}; the coordinator creates it: run tessera index --queue again with this worker's --store`);
  return { model: info.model, dtype: info.dtype };
}

export async function processJob(data: IndexJobData, ctx: JobContext): Promise<IndexJobResult> {
  const { store } = ctx;
  const writer = await jobWriter(store, data);
  const embedder = await ctx.embedderFor(writer);
  const result: IndexJobResult = { added: 0, updated: 0, skipped: 0, failed: 0, failures: [], worker: ctx.worker };
  const fail = (failure: JobFailure) => {
    result.failed++;
    if (result.failures.length < MAX_FAILURES_PER_JOB) result.failures.push(failure);
  };

  const ids = data.items.flatMap((item) => (item.kind === 'bad' ? [] : [idOf(item)]));
  const stored = new Map((await store.get(data.collection, ids)).map((doc) => [doc.id, stateOf(doc)]));
  const records: { record: DocumentRecord; kind: 'added' | 'updated' }[] = [];
  const refresh: LoadedDocument[] = [];

  const handle = async (item: JobItem): Promise<void> => {
    if (item.kind === 'bad') return fail({ item: item.id ?? item.label, code: item.code, message: item.message });
    const id = idOf(item);
    const label = item.kind === 'file' ? item.path : item.label;
    const before = stored.get(id);
    const file = item.kind === 'file' ? fileCandidate(item, data) : undefined;
    if (file && before && unchangedFile(before, file)) {
      result.skipped++;
      return;
    }
    let loaded: LoadedDocument;
    let vector: Float32Array;
    try {
      loaded = file
        ? await loadFile(file, data.truncate)
        : await loadDocument((item as Extract<JobItem, { kind: 'input' }>).input, { allowPaths: data.allowPaths, fetchPolicy: data.fetch, signal: ctx.signal });
      if (before && before.hash === loaded.hash) {
        if (sameDocument(before, loaded)) result.skipped++;
        else refresh.push(loaded); // same content, new metadata: rewritten with its stored vector
        return;
      }
      const [embedding] = await embedder.embed([loaded.item], { truncate: data.truncate, signal: ctx.signal });
      vector = embedding!.embedding;
    } catch (err) {
      if (err instanceof TesseraError && isItemError(err)) {
        const named = prefixed(err, label);
        return fail({ item: id, code: named.code, message: named.message });
      }
      throw err;
    }
    records.push({ record: toRecord(loaded, vector), kind: before ? 'updated' : 'added' });
  };
  await mapConcurrent(data.items, Math.max(1, Math.min(ctx.concurrency ?? 64, data.items.length || 1)), (item) => handle(item), ctx.signal);

  if (refresh.length > 0) {
    const found = await store.get(data.collection, refresh.map((d) => d.input.id), { vectors: true });
    const vectors = new Map(found.map((d) => [d.id, d.vector]));
    for (const doc of refresh) {
      const vector = vectors.get(doc.input.id);
      if (vector) records.push({ record: toRecord(doc, vector), kind: 'updated' });
    }
  }
  // Input order, so that a job done twice writes the same batch.
  const order = new Map(ids.map((id, i) => [id, i]));
  records.sort((a, b) => order.get(a.record.id)! - order.get(b.record.id)!);
  if (records.length > 0) {
    await writeRecords(
      store,
      data.collection,
      writer,
      records,
      (committed) => {
        for (const c of committed) result[c.kind]++;
      },
      (record, error) => fail({ item: record.id, code: error.code, message: error.message }),
    );
  }
  return result;
}

function idOf(item: Exclude<JobItem, { kind: 'bad' }>): string {
  return item.kind === 'file' ? item.id : item.input.id;
}

function fileCandidate(item: Extract<JobItem, { kind: 'file' }>, data: IndexJobData): FileCandidate {
  return {
    type: 'file',
    id: item.id,
    source: { kind: 'folder', given: data.given, path: item.root },
    path: item.path,
    kind: item.type,
    bytes: item.bytes,
    mtime: item.mtime,
    metadata: item.metadata,
  };
}
