import { parseArgs } from 'node:util';
import { Embedder } from '../engine/embedder.ts';
import { TesseraError, invalidArgument } from '../errors.ts';
import { indexSources, type IndexProgress, type IndexResult } from '../index/pipeline.ts';
import { counts, createReporter, type Reporter } from '../index/report.ts';
import type { MediaOptions } from '../index/media.ts';
import { resolveSource, type Source } from '../index/sources.ts';
import { DEFAULT_PDF_MAX_PAGES } from '../media/pdf.ts';
import { DEFAULT_VIDEO_INTERVAL, DEFAULT_VIDEO_MAX_FRAMES } from '../media/video.ts';
import { watchFolder } from '../index/watch.ts';
import { parseQueueUrl, type QueueUrl } from '../queue/connection.ts';
import { closeQueue, enqueueSources, openQueue } from '../queue/coordinator.ts';
import { DEFAULT_JOB_SIZE } from '../queue/jobs.ts';
import { formatStatus, queueStatus } from '../queue/status.ts';
import { parseDtype } from '../model/dtype.ts';
import { DEFAULT_MODEL } from '../model/source.ts';
import { modelRefOf } from '../search/collection.ts';
import { openStore } from '../store/open.ts';
import type { CollectionInfo, ModelRef, VectorStore } from '../store/store.ts';
import { validateCollectionName } from '../store/validate.ts';

const HELP = `usage: tessera index PATH... --collection NAME [options]
       tessera index FOLDER... --collection NAME --watch [options]
       tessera index PATH... --collection NAME --queue URL --store postgres://... [options]
       tessera index --status --collection NAME --queue URL [--json]

Embeds documents into a collection of the store, incrementally: what is unchanged (by
content hash) is skipped, what changed is updated, what is new is added. Writes go in
batches, each one atomic, so a run killed at any moment is completed by the next.

PATH is a folder (walked recursively: images of every format tessera decodes, videos
(MP4/MOV, WebM, MKV, AVI) and PDFs, all recognised by content; .txt and .md files as texts;
id = the path under the folder), a .jsonl file of
documents ({"id", "text" | "image", "metadata"?} per line; relative image paths resolve
against the file's folder), or a .txt file of image URLs, one a line (id = the URL).

  --collection NAME   the collection (created on first use)
  --model M           model of a new collection: hub id (default ${DEFAULT_MODEL}), a local
                      folder, or "demo"; an existing collection uses its own
  --dtype D           fp32 | fp16 | q8, for a new collection (default fp32)
  --store DIR|URL     the store: a folder or postgres://... (default $TESSERA_STORE, else
                      $XDG_DATA_HOME/tessera)
  --prune             remove documents of these PATHs whose file, line or URL is gone
  --strict            exit 1 when any item failed (default: report it and go on)
  --json              print {"added","updated","skipped","removed","failed"} on stdout
  --truncate          cut texts over the model's limit instead of failing them
  --batch N           documents per atomic write (default 256)
  --rehash            read and hash every file, even when size and mtime are unchanged
  --watch             index the FOLDERs, then keep running: a file added, changed, renamed or
                      deleted is searchable (or gone) seconds after it stops changing; a file
                      being copied is indexed once, whole. Implies --prune. Ctrl-C or SIGTERM
                      writes what is embedded and exits: 0 when everything noticed was
                      written, else 130 (the next start catches up, as it does with changes
                      made while nothing watched)
  --settle-ms N       with --watch: how long a changed file must stay the same (size, mtime)
                      with no event before it is indexed (default 1000)
  --allow-private-urls  let image URLs reach loopback and private addresses (UNSAFE on
                      shared networks; cloud metadata addresses stay refused)
  --fetch-timeout-ms N  time to download one image URL (default 10000)
  --threads N         ONNX Runtime intra-op threads per session (default: all cores)

Videos and PDFs (a folder's files; each is written whole in one atomic write):
  --ffmpeg DIR        the folder holding ffmpeg and ffprobe (default $TESSERA_FFMPEG, else
                      PATH); without FFmpeg, videos are passed over with a note
  --video-interval S  a frame at least every S seconds, besides one at each scene change
                      (default ${DEFAULT_VIDEO_INTERVAL}); frame ids are PATH#t=SECONDS
  --video-max-frames N  frames of one video at most (default ${DEFAULT_VIDEO_MAX_FRAMES}; a longer video is
                      sampled evenly)
  --pdf-max-pages N   pages of one PDF at most (default ${DEFAULT_PDF_MAX_PAGES}); a page is PATH#page=N
                      (its picture) and PATH#page=N&text (its text, when it has some)

Spread over many workers (see tessera worker --help):
  --queue URL         cut the work into jobs on this Redis queue (redis://[:password@]host
                      [:port][/db]; --status reads $TESSERA_QUEUE when it is left out)
                      instead of embedding here; the workers embed and write. Creates the
                      collection if new, then returns.
                      Jobs have fixed ids (collection, source, chunk, content): running this
                      again adds nothing for what is queued or done, and requeues failed jobs;
                      --json prints {"jobs","documents","added","existing","retried"} (jobs)
  --job-size N        documents per job (default ${DEFAULT_JOB_SIZE}); each job is one atomic write
  --shared-folder     PATHs and image paths are on storage every worker mounts at the same
                      path; without it a folder or a local image path is refused, as workers
                      elsewhere could not read it (use URLs or inline data)
  --status            progress of the collection's jobs across workers: done, in flight,
                      waiting, failed (with reasons), item failures and the workers seen;
                      with --json as one JSON object`;

export async function main(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      collection: { type: 'string', short: 'c' },
      model: { type: 'string' },
      dtype: { type: 'string' },
      store: { type: 'string' },
      prune: { type: 'boolean' },
      strict: { type: 'boolean' },
      json: { type: 'boolean' },
      truncate: { type: 'boolean' },
      batch: { type: 'string' },
      rehash: { type: 'boolean' },
      watch: { type: 'boolean' },
      'settle-ms': { type: 'string' },
      'allow-private-urls': { type: 'boolean' },
      'fetch-timeout-ms': { type: 'string' },
      threads: { type: 'string' },
      ffmpeg: { type: 'string' },
      'video-interval': { type: 'string' },
      'video-max-frames': { type: 'string' },
      'pdf-max-pages': { type: 'string' },
      queue: { type: 'string' },
      'job-size': { type: 'string' },
      'shared-folder': { type: 'boolean' },
      status: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return console.log(HELP);
  if (values.status) {
    if (values.collection === undefined) throw new TesseraError('INVALID_ARGUMENT', '--status needs --collection NAME');
    if (positionals.length > 0) throw new TesseraError('INVALID_ARGUMENT', '--status takes no PATH');
    return showStatus(parseQueueUrl(values.queue), validateCollectionName(values.collection, '--collection'), values.json ?? false);
  }
  if (positionals.length === 0) throw new TesseraError('INVALID_ARGUMENT', 'nothing to index: give at least one PATH (a folder, a .jsonl file or a .txt file of image URLs)');
  if (values.collection === undefined) throw new TesseraError('INVALID_ARGUMENT', '--collection NAME is required');
  const name = validateCollectionName(values.collection, '--collection');
  const batchSize = positiveInteger(values.batch, '--batch', 256);
  const threads = values.threads === undefined ? undefined : positiveInteger(values.threads, '--threads', 1);
  const timeoutMs = values['fetch-timeout-ms'] === undefined ? undefined : positiveInteger(values['fetch-timeout-ms'], '--fetch-timeout-ms', 1);
  const sources = await Promise.all(positionals.map((p) => resolveSource(p)));
  const settleMs = positiveInteger(values['settle-ms'], '--settle-ms', 1000);
  const media: MediaOptions = {
    ffmpegDir: values.ffmpeg,
    videoInterval: positiveNumber(values['video-interval'], '--video-interval', DEFAULT_VIDEO_INTERVAL),
    videoMaxFrames: positiveInteger(values['video-max-frames'], '--video-max-frames', DEFAULT_VIDEO_MAX_FRAMES),
    pdfMaxPages: positiveInteger(values['pdf-max-pages'], '--pdf-max-pages', DEFAULT_PDF_MAX_PAGES),
  };
  if (values['settle-ms'] !== undefined && !values.watch) throw new TesseraError('INVALID_ARGUMENT', '--settle-ms goes with --watch');
  if (values.watch) {
    if (values.queue !== undefined) throw new TesseraError('INVALID_ARGUMENT', '--watch does not go with --queue: watch the folder with tessera index --watch (or tessera serve --watch) on a machine that sees it');
    const file = sources.find((s) => s.kind !== 'folder');
    if (file) throw new TesseraError('INVALID_ARGUMENT', `--watch keeps folders indexed; ${file.given} is a ${file.kind === 'jsonl' ? 'JSONL' : 'URL list'} file: index it without --watch`);
  }
  if (values.queue !== undefined || values['job-size'] !== undefined || values['shared-folder'] !== undefined) {
    if (values.prune) throw new TesseraError('INVALID_ARGUMENT', '--prune does not go with --queue: run tessera index --prune without --queue once the workers are done');
    if (values.rehash) throw new TesseraError('INVALID_ARGUMENT', '--rehash does not go with --queue: workers compare content hashes of every job anyway');
    const queue = parseQueueUrl(values.queue);
    const jobSize = positiveInteger(values['job-size'], '--job-size', DEFAULT_JOB_SIZE);
    return enqueue({ queue, name, sources, jobSize, values, threads, timeoutMs });
  }

  const store = await openStore(values.store);
  let embedder: Embedder | undefined;
  const reporter = createReporter();
  const stopping = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping.signal.aborted) process.exit(130);
    reporter.note(`${signal}: writing what is embedded, then stopping (again to stop at once)`);
    stopping.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let result: IndexResult;
  try {
    const { writer, loaded } = await openCollection(store, name, values.model, values.dtype, threads);
    embedder = loaded;
    if (values.watch) {
      result = await watchSources({ store, name, embedder, writer, sources, settleMs, batchSize, truncate: values.truncate ?? false, media, signal: stopping.signal, reporter });
    } else result = await indexSources({
      store,
      collection: name,
      embedder,
      writer,
      sources,
      prune: values.prune ?? false,
      truncate: values.truncate ?? false,
      batchSize,
      rehash: values.rehash ?? false,
      media,
      fetchPolicy: { allowPrivate: values['allow-private-urls'] ?? false, timeoutMs },
      signal: stopping.signal,
      onFailure: (f) => reporter.failure(f),
      onProgress: (p) => reporter.progress(p),
      onNote: (line) => reporter.note(line),
    });
  } finally {
    reporter.stop();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await embedder?.close();
    await store.close();
  }
  const summary = { added: result.added, updated: result.updated, skipped: result.skipped, removed: result.removed, failed: result.failed };
  if (values.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
  const where = `collection ${JSON.stringify(name)} in ${store.location}`;
  console.error(`tessera index: ${result.interrupted ? 'stopped early: ' : ''}${counts(summary)} (${where})`);
  if (values.watch && !result.interrupted) console.error('tessera index: everything noticed is written');
  if (result.interrupted) process.exitCode = 130;
  else if (values.strict && result.failed > 0) process.exitCode = 1;
}

interface WatchArgs {
  store: VectorStore;
  name: string;
  embedder: Embedder;
  writer: ModelRef;
  sources: Source[];
  settleMs: number;
  batchSize: number;
  truncate: boolean;
  media: MediaOptions;
  signal: AbortSignal;
  reporter: Reporter;
}

/**
 * --watch: one watcher per folder; the first scans show on the reporter (a bar on a
 * terminal), then each batch of changes is one line. Runs until `signal`, then stops the
 * watchers, which write what is embedded. Interrupted: something noticed was not written.
 */
async function watchSources(a: WatchArgs): Promise<IndexResult> {
  const lines = createReporter(process.stderr, { tty: false });
  let watching = false;
  const scans = new Map<string, IndexProgress>();
  const watches = a.sources.map((source) =>
    watchFolder({
      store: a.store,
      collection: a.name,
      embedder: a.embedder,
      writer: a.writer,
      source,
      settleMs: a.settleMs,
      batchSize: a.batchSize,
      truncate: a.truncate,
      media: a.media,
      onFailure: (f) => (watching ? lines : a.reporter).failure(f),
      onNote: (line) => (watching ? lines : a.reporter).note(line),
      onScanProgress: (p) => {
        if (watching) return;
        scans.set(source.path, p);
        const sum = { added: 0, updated: 0, skipped: 0, removed: 0, failed: 0, done: 0, total: 0, pending: 0 };
        for (const q of scans.values()) for (const k of Object.keys(sum) as (keyof typeof sum)[]) sum[k] += q[k];
        a.reporter.progress(sum);
      },
      onRun: (run) => {
        if (watching && run.added + run.updated + run.removed + run.failed > 0) lines.note(`${source.given}: ${counts(run)} (${run.pending} pending)`);
      },
    }),
  );
  const stopped = new Promise<void>((resolve) => (a.signal.aborted ? resolve() : a.signal.addEventListener('abort', () => resolve(), { once: true })));
  try {
    await Promise.race([Promise.all(watches.map((w) => w.ready)), stopped]);
  } catch (err) {
    await Promise.all(watches.map((w) => w.close()));
    throw err;
  } finally {
    a.reporter.stop();
  }
  watching = true;
  if (!a.signal.aborted) {
    const folders = watches.reduce((n, w) => n + w.watches, 0);
    const scanned = watches.reduce((t, w) => ({ added: t.added + w.totals.added, updated: t.updated + w.totals.updated, skipped: t.skipped + w.totals.skipped, removed: t.removed + w.totals.removed, failed: t.failed + w.totals.failed }), { added: 0, updated: 0, skipped: 0, removed: 0, failed: 0 });
    lines.note(`${counts(scanned)}; watching ${a.sources.map((s) => s.given).join(', ')} (${folders} folder watch${folders === 1 ? '' : 'es'}) for changes; Ctrl-C to stop`);
  }
  await stopped;
  const results = await Promise.all(watches.map((w) => w.close()));
  const sum = (k: 'added' | 'updated' | 'skipped' | 'removed' | 'failed' | 'pending') => results.reduce((n, r) => n + r[k], 0);
  return { added: sum('added'), updated: sum('updated'), skipped: sum('skipped'), removed: sum('removed'), failed: sum('failed'), failures: [], interrupted: sum('pending') > 0 };
}

interface EnqueueArgs {
  queue: QueueUrl;
  name: string;
  sources: Source[];
  jobSize: number;
  values: { store?: string; model?: string; dtype?: string; json?: boolean; truncate?: boolean; 'shared-folder'?: boolean; 'allow-private-urls'?: boolean };
  threads: number | undefined;
  timeoutMs: number | undefined;
}

/** The coordinator: the collection made sure of, the sources cut into jobs on the queue. */
async function enqueue(a: EnqueueArgs): Promise<void> {
  // The queue first: a coordinator that cannot reach it should not load a model to find out.
  const q = await openQueue(a.queue);
  const store = await openStore(a.values.store);
  try {
    // Workers write with the collection's model; creating a new one needs its dimensions.
    if (!(await store.getCollection(a.name))) {
      const { loaded } = await openCollection(store, a.name, a.values.model, a.values.dtype, a.threads);
      await loaded.close();
    } else checkSameModel((await store.getCollection(a.name))!, a.values.model === undefined ? undefined : modelRefOf(a.values.model, a.values.dtype ?? 'fp32').model, a.values.dtype);
    const summary = await enqueueSources(q, {
      queue: a.queue,
      collection: a.name,
      sources: a.sources,
      sharedFolder: a.values['shared-folder'] ?? false,
      jobSize: a.jobSize,
      truncate: a.values.truncate ?? false,
      fetch: { allowPrivate: a.values['allow-private-urls'] ?? false, timeoutMs: a.timeoutMs },
      onNote: (line) => console.error(`tessera index: ${line}`),
    });
    if (a.values.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
    console.error(
      `tessera index: ${summary.documents} documents in ${summary.jobs} jobs for collection ${JSON.stringify(a.name)} on ${a.queue.shown}: ${summary.added} queued, ${summary.existing} there already, ${summary.retried} failed ones requeued; follow with tessera index --status --collection ${a.name} --queue URL`,
    );
  } finally {
    await closeQueue(q);
    await store.close();
  }
}

async function showStatus(queue: QueueUrl, name: string, json: boolean): Promise<void> {
  const q = await openQueue(queue);
  try {
    const status = await queueStatus(q, queue, name);
    if (json) process.stdout.write(`${JSON.stringify(status)}\n`);
    else console.log(formatStatus(status));
  } finally {
    await closeQueue(q);
  }
}

/**
 * The collection's model, loaded: an existing collection's own (a different --model or
 * --dtype is COLLECTION_MODEL_MISMATCH), or for a new one --model, created once the model
 * has loaded, so that a model that fails to load leaves no empty collection behind.
 */
async function openCollection(store: VectorStore, name: string, model: string | undefined, dtype: string | undefined, threads: number | undefined): Promise<{ writer: ModelRef; loaded: Embedder }> {
  const existing = await store.getCollection(name);
  const wanted = model === undefined ? undefined : modelRefOf(model, dtype ?? 'fp32').model;
  if (existing) {
    checkSameModel(existing, wanted, dtype);
    const loaded = await Embedder.load(existing.model, { dtype: parseDtype(existing.dtype), intraOpThreads: threads, progress: true });
    return { writer: { model: existing.model, dtype: existing.dtype }, loaded };
  }
  const writer: ModelRef = { model: wanted ?? DEFAULT_MODEL, dtype: parseDtype(dtype ?? 'fp32') };
  const loaded = await Embedder.load(writer.model, { dtype: parseDtype(writer.dtype), intraOpThreads: threads, progress: true });
  try {
    const [probe] = await loaded.embedTexts(['dimensions']);
    await store.createCollection({ name, model: writer.model, dtype: writer.dtype, dimensions: probe!.embedding.length });
  } catch (err) {
    // Another process created it meanwhile: use it if it is of the same model.
    if (!(err instanceof TesseraError && err.code === 'COLLECTION_EXISTS')) {
      await loaded.close();
      throw err;
    }
    const now = await store.getCollection(name);
    if (now) checkSameModel(now, writer.model, writer.dtype);
  }
  return { writer, loaded };
}

function checkSameModel(info: CollectionInfo, model: string | undefined, dtype: string | undefined): void {
  const dtypeWanted = dtype === undefined ? undefined : parseDtype(dtype);
  if ((model !== undefined && model !== info.model) || (dtypeWanted !== undefined && dtypeWanted !== info.dtype)) {
    throw new TesseraError(
      'COLLECTION_MODEL_MISMATCH',
      `collection ${JSON.stringify(info.name)} holds vectors of ${JSON.stringify(info.model)} (${info.dtype}), not ${JSON.stringify(model ?? info.model)} (${dtypeWanted ?? info.dtype}); leave out --model/--dtype to use its own, or index into another collection`,
    );
  }
}

function positiveNumber(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0) throw invalidArgument(name, 'a positive number of seconds', value);
  return n;
}

function positiveInteger(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw invalidArgument(name, 'a positive integer', value);
  return n;
}
