/**
 * Model downloads from the Hugging Face hub into the standard Hugging Face cache, shared with
 * Python's huggingface_hub:
 *
 *   $HF_HUB_CACHE/models--owner--name/
 *     blobs/<etag>                       file contents, named by sha256 (LFS) or git blob sha1
 *     refs/<revision>                    the commit a branch or tag resolved to
 *     snapshots/<commit>/<path>          relative symlinks into blobs/
 *
 * The transport (model info, paths info, resolve URLs with redirects, range reads) is
 * @huggingface/hub's. Cache writing is ours, because its downloadFileToCacheDir trusts any
 * renamed `.incomplete` file, restarts cut-off downloads from zero, reports no progress, and
 * prints to stdout. Here every blob is written to `<blob>.incomplete`, resumed with a Range
 * request after an interruption, checked against the size and hash the hub lists
 * (sha256 for LFS files, the git blob sha1 for others), and only then renamed into place.
 *
 * Several processes may fetch the same model at once (two workers on one machine): each blob
 * is placed under a lock file (file-lock.ts, `$HF_HUB_CACHE/.locks/models--owner--name/
 * <etag>.tessera.lock`), so one process downloads it while the others wait and then find it in
 * place; a lock whose holder died is taken over and its `.incomplete` file resumed. Refs and
 * snapshot links are replaced atomically (written aside, then renamed).
 */
import { createHash, randomUUID, type Hash } from 'node:crypto';
import { createReadStream, createWriteStream, readFileSync } from 'node:fs';
import { copyFile, mkdir, readFile, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { Readable } from 'node:stream';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { downloadFile, HubApiError, listFiles, modelInfo, pathsInfo, type PathInfo } from '@huggingface/hub';
import { invalidArgument, TesseraError } from '../errors.ts';
import { DTYPES, onnxGraphs, onnxLayoutOf, parseDtype, type Dtype } from './dtype.ts';
import { acquireFileLock } from './file-lock.ts';
import { downloadReporter, formatBytes, truthy, type DownloadReporter } from './progress.ts';

export interface DownloadOptions {
  dtype: Dtype;
  /** Branch, tag or commit sha. Default "main". */
  revision?: string;
  /** Show download progress on stderr (a bar on a terminal, a line per file otherwise). */
  progress?: boolean;
}

/** The hub-related environment, read the way Python's huggingface_hub reads it. */
export interface HubSettings {
  /** HF_ENDPOINT, default https://huggingface.co (no trailing slash). */
  endpoint: string;
  /** HF_TOKEN, else the token file `huggingface-cli login` writes (HF_TOKEN_PATH, HF_HOME/token). */
  token?: string;
  /** HF_HUB_OFFLINE: no network at all. */
  offline: boolean;
  /** HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub. */
  cacheDir: string;
  /** HF_HUB_ETAG_TIMEOUT (s, default 10): limit for metadata requests. */
  metadataTimeoutMs: number;
  /** HF_HUB_DOWNLOAD_TIMEOUT (s, default 10): a download with no bytes for this long is retried. */
  downloadTimeoutMs: number;
}

/** The files of a jina-clip repo taken when present, besides the ONNX graphs. */
export const MODEL_CONFIG_FILES = [
  'config.json',
  'preprocessor_config.json',
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'vocab.txt',
] as const;

const DEFAULT_ENDPOINT = 'https://huggingface.co';
const ADVICE = 'To continue, download it once with network access, pass a local model folder with --model <dir>, or use --model demo.';
const ATTEMPTS = 4;
const RETRY_DELAY_MS = 250;
const COMMIT = /^[0-9a-f]{40}$/;
const REPO_ID = /^(?:[A-Za-z0-9][\w.-]*\/)?[A-Za-z0-9][\w.-]*$/;

export function hubSettings(env: NodeJS.ProcessEnv = process.env): HubSettings {
  const home = expandHome(env.HF_HOME || join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'huggingface'));
  const cacheDir = expandHome(env.HF_HUB_CACHE || env.HUGGINGFACE_HUB_CACHE || join(home, 'hub'));
  const endpoint = (env.HF_ENDPOINT || DEFAULT_ENDPOINT).replace(/\/+$/, '');
  let url: URL | undefined;
  try {
    url = new URL(endpoint);
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    throw invalidArgument('HF_ENDPOINT', 'an http(s) URL such as https://huggingface.co', endpoint);
  }
  return {
    endpoint,
    token: readToken(env, home),
    offline: truthy(env.HF_HUB_OFFLINE),
    cacheDir: resolve(cacheDir),
    metadataTimeoutMs: seconds(env.HF_HUB_ETAG_TIMEOUT, 10) * 1000,
    downloadTimeoutMs: seconds(env.HF_HUB_DOWNLOAD_TIMEOUT, 10) * 1000,
  };
}

/** The cache folder of a model repo: `<cacheDir>/models--owner--name`. */
export function repoCacheFolder(cacheDir: string, repo: string): string {
  return join(cacheDir, ['models', ...repo.split('/')].join('--'));
}

/**
 * The repo files a dtype needs, in download order: config and tokenizer files the repo has,
 * then the external-data files of the graphs, then the graphs themselves (last, so that a
 * snapshot holding every graph is known to be complete even without a listing). The graphs are
 * the two towers (jina-clip-v1) or one combined graph (jina-clip-v2), whichever the repo has.
 */
export function modelFilesFor(dtype: Dtype, repoFiles: readonly string[], repo = 'the repository'): string[] {
  const have = new Set(repoFiles);
  const layout = onnxLayoutOf(dtype, have);
  if (!layout) {
    const offered = DTYPES.filter((d) => onnxLayoutOf(d, have) !== undefined);
    throw new TesseraError(
      'MODEL_FILE_MISSING',
      `${repo} has neither ${onnxGraphs(dtype, 'towers').join(' + ')} nor ${onnxGraphs(dtype, 'combined')[0]}, which dtype ${dtype} needs; ` +
        (offered.length > 0
          ? `it offers dtype ${offered.join(', ')}`
          : 'it has no onnx/text_model*.onnx + onnx/vision_model*.onnx pair and no onnx/model*.onnx (is it a jina-clip ONNX export?)'),
    );
  }
  const graphs = onnxGraphs(dtype, layout);
  const configs = MODEL_CONFIG_FILES.filter((f) => have.has(f));
  const data = graphs.flatMap((graph) => externalDataFiles(graph, repoFiles));
  return [...configs, ...data, ...graphs];
}

/** External-data files of an ONNX graph as exporters name them: `x.onnx_data`, `x.onnx.data`, chunks `_1`, `_2`... */
export function externalDataFiles(graph: string, repoFiles: readonly string[]): string[] {
  const pattern = new RegExp(`^${escapeRegExp(graph)}(?:_data|\\.data)(?:_\\d+)?$`);
  return repoFiles.filter((f) => pattern.test(f)).sort();
}

/**
 * Downloads (or finds in the cache) the files of `repo` that `dtype` needs and returns the
 * local snapshot folder `<cache>/models--owner--name/snapshots/<commit>`.
 *
 * Online, a complete snapshot costs one request (the revision lookup); a commit-sha revision
 * whose snapshot is complete costs none. With HF_HUB_OFFLINE set, or when the hub cannot be
 * reached, the cached snapshot of the revision is used if it holds the needed graphs.
 *
 * @example
 *   const dir = await downloadModel('jinaai/jina-clip-v1', { dtype: 'q8', progress: true });
 *   // dir/onnx/text_model_quantized.onnx, dir/tokenizer.json, ...
 */
export async function downloadModel(repo: string, opts: DownloadOptions): Promise<string> {
  const ctx = context(repo, opts);
  if (ctx.settings.offline) return fromCache(ctx, 'HF_HUB_OFFLINE is set');
  if (COMMIT.test(ctx.revision)) {
    const cached = await lookupCache(ctx);
    if (cached.ok) return cached.snapshot;
  }

  const fetchHub = hubFetch(ctx.settings);
  let info: { sha?: string; filePaths?: string[] };
  try {
    info = await modelInfo({
      name: repo,
      revision: ctx.revision,
      additionalFields: ['sha', 'filePaths'],
      hubUrl: ctx.settings.endpoint,
      fetch: fetchHub,
    });
  } catch (err) {
    return afterLookupFailure(ctx, err);
  }
  const commit = info.sha;
  if (commit === undefined || !COMMIT.test(commit)) {
    throw new TesseraError('HUB_DOWNLOAD_FAILED', `the hub at ${ctx.settings.endpoint} did not say which commit revision ${ctx.revision} of ${repo} is`);
  }

  try {
    const repoFiles = info.filePaths ?? (await listRepoFiles(ctx, commit, fetchHub));
    const wanted = modelFilesFor(ctx.dtype, repoFiles, `${repo} (revision ${ctx.revision})`);
    if (ctx.revision !== commit) await writeRef(ctx.storage, ctx.revision, commit);
    const snapshot = join(ctx.storage, 'snapshots', commit);
    const missing: string[] = [];
    for (const path of wanted) if (!(await exists(join(snapshot, path)))) missing.push(path);
    if (missing.length === 0) return snapshot;

    const listed = await pathsInfo({
      repo: { type: 'model', name: repo },
      paths: missing,
      revision: commit,
      hubUrl: ctx.settings.endpoint,
      fetch: fetchHub,
    });
    const byPath = new Map(listed.map((entry) => [entry.path, entry]));
    for (const path of missing) {
      const entry = byPath.get(path);
      if (!entry) throw new TesseraError('HUB_DOWNLOAD_FAILED', `the hub lists ${path} in ${repo} but gives no details for it; try again`);
      await ensureFile(ctx, commit, path, entry, fetchHub);
    }
    return snapshot;
  } catch (err) {
    if (err instanceof TesseraError) throw err;
    throw new TesseraError('HUB_DOWNLOAD_FAILED', `downloading ${repo} from ${ctx.settings.endpoint} failed: ${describe(err)}. Run again to resume.`, { cause: err });
  }
}

/** The cached snapshot folder for `repo` at `revision` if it holds what `dtype` needs; no network. */
export async function findCachedModel(repo: string, opts: DownloadOptions): Promise<string | null> {
  const found = await lookupCache(context(repo, opts));
  return found.ok ? found.snapshot : null;
}

interface Context {
  repo: string;
  revision: string;
  dtype: Dtype;
  settings: HubSettings;
  storage: string;
  report: DownloadReporter;
}

function context(repo: string, opts: DownloadOptions): Context {
  if (typeof repo !== 'string' || !REPO_ID.test(repo) || repo.includes('..')) {
    throw invalidArgument('repo', 'a hub model id such as "jinaai/jina-clip-v1"', repo);
  }
  const revision = opts.revision ?? 'main';
  if (revision === '' || revision.split('/').some((part) => part === '' || part === '.' || part === '..')) {
    throw invalidArgument('revision', 'a branch, tag or commit sha', revision);
  }
  const settings = hubSettings();
  return {
    repo,
    revision,
    dtype: parseDtype(opts.dtype),
    settings,
    storage: repoCacheFolder(settings.cacheDir, repo),
    report: downloadReporter(opts.progress ?? false),
  };
}

type CacheLookup = { ok: true; snapshot: string } | { ok: false; why: string };

/**
 * Resolves refs/<revision> to a snapshot and checks the two graphs (downloaded last, see
 * modelFilesFor) and their links are there. Config files cannot be checked without a listing.
 */
async function lookupCache(ctx: Context): Promise<CacheLookup> {
  let commit = ctx.revision;
  if (!COMMIT.test(commit)) {
    const ref = await readFile(join(ctx.storage, 'refs', ctx.revision), 'utf8').catch(() => undefined);
    commit = ref?.trim() ?? '';
    if (!COMMIT.test(commit)) {
      return { ok: false, why: `the cache (${ctx.settings.cacheDir}) has no copy of ${ctx.repo} at revision ${ctx.revision}` };
    }
  }
  const snapshot = join(ctx.storage, 'snapshots', commit);
  for (const layout of ['towers', 'combined'] as const) {
    const graphs = onnxGraphs(ctx.dtype, layout);
    if ((await Promise.all(graphs.map((graph) => exists(join(snapshot, graph))))).every(Boolean)) return { ok: true, snapshot };
  }
  const wanted = `${onnxGraphs(ctx.dtype, 'towers').join(' + ')} or ${onnxGraphs(ctx.dtype, 'combined')[0]}`;
  return { ok: false, why: `neither ${wanted} (dtype ${ctx.dtype}) is in the cached snapshot ${snapshot}` };
}

async function fromCache(ctx: Context, reason: string): Promise<string> {
  const found = await lookupCache(ctx);
  if (found.ok) return found.snapshot;
  throw new TesseraError(
    'HUB_OFFLINE',
    `cannot get ${ctx.repo} (revision ${ctx.revision}, dtype ${ctx.dtype}): ${reason}, and ${found.why}. ${ADVICE}`,
  );
}

async function afterLookupFailure(ctx: Context, err: unknown): Promise<string> {
  const { endpoint, token } = ctx.settings;
  if (err instanceof HubApiError && [401, 403, 404].includes(err.statusCode)) {
    const said = hubMessage(err);
    throw new TesseraError(
      'MODEL_NOT_FOUND',
      `model ${ctx.repo} (revision ${ctx.revision}) was not found on ${endpoint} (HTTP ${err.statusCode}${said ? `: ${said}` : ''}). ` +
        `Check the name and revision; a gated or private repo needs HF_TOKEN set to a token with access to it` +
        (token ? ' (a token is set: check its access)' : '') +
        '.',
      { cause: err },
    );
  }
  // Like huggingface_hub: when the hub cannot be asked, a complete cached snapshot will do.
  const reason = isUnreachable(err)
    ? `the hub at ${endpoint} is unreachable (${describe(err)})`
    : `the hub at ${endpoint} failed (${describe(err)})`;
  const found = await lookupCache(ctx);
  if (found.ok) {
    ctx.report.note(`${reason}; using the cached snapshot ${found.snapshot}`);
    return found.snapshot;
  }
  throw new TesseraError(
    isUnreachable(err) ? 'HUB_OFFLINE' : 'HUB_DOWNLOAD_FAILED',
    `cannot get ${ctx.repo} (revision ${ctx.revision}, dtype ${ctx.dtype}): ${reason}, and ${found.why}. ${ADVICE}`,
    { cause: err },
  );
}

async function listRepoFiles(ctx: Context, commit: string, fetchHub: typeof fetch): Promise<string[]> {
  const files: string[] = [];
  const entries = listFiles({
    repo: { type: 'model', name: ctx.repo },
    recursive: true,
    revision: commit,
    hubUrl: ctx.settings.endpoint,
    fetch: fetchHub,
  });
  for await (const entry of entries) if (entry.type === 'file') files.push(entry.path);
  return files;
}

async function writeRef(storage: string, revision: string, commit: string): Promise<void> {
  const refPath = join(storage, 'refs', revision);
  if ((await readFile(refPath, 'utf8').catch(() => undefined))?.trim() === commit) return;
  await mkdir(dirname(refPath), { recursive: true });
  await replaceWith(refPath, (temporary) => writeFile(temporary, commit));
}

/** Puts one file into blobs/ (reusing, resuming or downloading it) and links it into the snapshot. */
async function ensureFile(ctx: Context, commit: string, path: string, entry: PathInfo, fetchHub: typeof fetch): Promise<void> {
  // Blob names as huggingface_hub and @huggingface/hub give them: the LFS sha256, else (a
  // xet-only file, no sha256 known) the xet hash, else the git blob sha1.
  const expected: Expected = entry.lfs
    ? { etag: entry.lfs.oid, size: entry.lfs.size, algorithm: 'sha256' }
    : entry.xetHash
      ? { etag: entry.xetHash, size: entry.size, algorithm: 'size-only' }
      : { etag: entry.oid ?? '', size: entry.size, algorithm: 'git-sha1' };
  // The etag becomes a file name: accept only the hash shapes the hub uses.
  if (!(expected.algorithm === 'git-sha1' ? COMMIT : /^[0-9a-f]{64}$/).test(expected.etag)) {
    throw new TesseraError('HUB_DOWNLOAD_FAILED', `the hub gave no usable hash for ${path} in ${ctx.repo} (got ${JSON.stringify(expected.etag)})`);
  }
  const blob = join(ctx.storage, 'blobs', expected.etag);
  const pointer = join(ctx.storage, 'snapshots', commit, path);
  // Two calls in this process wanting the same blob share one download.
  let pending = blobsInFlight.get(blob);
  if (!pending) {
    pending = placeBlob(ctx, commit, path, expected, blob, fetchHub).finally(() => blobsInFlight.delete(blob));
    blobsInFlight.set(blob, pending);
  }
  await pending;
  await linkBlob(blob, pointer);
}

const blobsInFlight = new Map<string, Promise<void>>();

/** Times a download is given back to wait for another process that took its lock over. */
const LOCK_TAKEN_ATTEMPTS = 3;

async function placeBlob(ctx: Context, commit: string, path: string, expected: Expected, blob: string, fetchHub: typeof fetch): Promise<void> {
  await mkdir(dirname(blob), { recursive: true });
  // Other processes (workers on this machine, or on machines sharing the cache) may want the
  // same blob: one downloads it, the others wait for the lock and then find the blob in place.
  const lockPath = join(ctx.settings.cacheDir, '.locks', basename(ctx.storage), `${expected.etag}.tessera.lock`);
  for (let attempt = 1; ; attempt++) {
    const lock = await acquireFileLock(lockPath, {
      onWait: (holder) => ctx.report.note(`${path}: another process${holder ? ` (pid ${holder.pid} on ${holder.host})` : ''} is downloading it; waiting for it`),
      onTakeOver: (_holder, why) => ctx.report.note(`${path}: taking over its download (${why})`),
    });
    try {
      await placeLocked(ctx, commit, path, expected, blob, fetchHub, lock.signal);
      return;
    } catch (err) {
      if (!lock.signal.aborted || attempt >= LOCK_TAKEN_ATTEMPTS) throw err;
      ctx.report.note(`${path}: ${describe(lock.signal.reason)}; waiting for that process`);
    } finally {
      await lock.release();
    }
  }
}

/** placeBlob's work, under the blob's lock (`lost`: aborted if the lock is taken from us). */
async function placeLocked(ctx: Context, commit: string, path: string, expected: Expected, blob: string, fetchHub: typeof fetch, lost: AbortSignal): Promise<void> {
  const incomplete = `${blob}.incomplete`;
  const present = await stat(blob).catch(() => undefined);
  if (present && present.size !== expected.size) {
    // A blob of the wrong size was not written by a verifying client: a shorter one is a
    // cut-off download worth resuming (the hash check below catches anything else).
    if (present.size < expected.size && !(await exists(incomplete))) await rename(blob, incomplete);
    else await rm(blob, { force: true });
  }
  if (!present || present.size !== expected.size) {
    await fetchBlob(ctx, commit, path, expected, incomplete, fetchHub, lost);
    lost.throwIfAborted(); // another process owns the .incomplete file now: it renames it
    await rename(incomplete, blob);
  }
}

interface Expected {
  etag: string;
  size: number;
  algorithm: 'sha256' | 'git-sha1' | 'size-only';
}

/** Local failures a retry cannot cure. */
const LOCAL_FAILURES = new Set(['ENOSPC', 'EDQUOT', 'EACCES', 'EPERM', 'EROFS']);

async function fetchBlob(ctx: Context, commit: string, path: string, expected: Expected, incomplete: string, fetchHub: typeof fetch, lost: AbortSignal): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await transfer(ctx, commit, path, expected, incomplete, fetchHub, lost);
      return;
    } catch (err) {
      if (err instanceof TesseraError || lost.aborted) throw err;
      const code = errorCode(err);
      if (code !== undefined && LOCAL_FAILURES.has(code)) {
        throw new TesseraError('HUB_DOWNLOAD_FAILED', `cannot write ${path} of ${ctx.repo} into ${ctx.settings.cacheDir}: ${describe(err)}`, { cause: err });
      }
      const partial = (await stat(incomplete).catch(() => undefined))?.size ?? 0;
      if (attempt >= ATTEMPTS) {
        throw new TesseraError(
          'HUB_DOWNLOAD_FAILED',
          `downloading ${path} of ${ctx.repo} from ${ctx.settings.endpoint} failed after ${attempt} tries: ${describe(err)}. ` +
            (partial > 0 ? `${formatBytes(partial)} of ${formatBytes(expected.size)} are kept; run again to resume.` : 'Run again to retry.'),
          { cause: err },
        );
      }
      ctx.report.note(`${path}: ${describe(err)}; retrying (${attempt}/${ATTEMPTS - 1})`);
      await sleep(RETRY_DELAY_MS * attempt);
    }
  }
}

/** One try: continue `incomplete` from where it stops, then check size and hash. Throws plain errors to be retried. */
async function transfer(ctx: Context, commit: string, path: string, expected: Expected, incomplete: string, fetchHub: typeof fetch, lost: AbortSignal): Promise<void> {
  let have = (await stat(incomplete).catch(() => undefined))?.size ?? 0;
  if (have > expected.size) {
    await rm(incomplete);
    have = 0;
  }
  const hash = expected.algorithm === 'size-only' ? undefined : createHash(expected.algorithm === 'sha256' ? 'sha256' : 'sha1');
  if (expected.algorithm === 'git-sha1') hash?.update(`blob ${expected.size}\0`);
  if (have > 0 && hash) await hashFile(hash, incomplete);
  const resumedAt = have;

  if (have < expected.size) {
    const remote = await downloadFile({
      repo: { type: 'model', name: ctx.repo },
      path,
      revision: commit,
      hubUrl: ctx.settings.endpoint,
      fetch: fetchHub,
      // Size and etag are known from paths-info: skip the library's per-file probe request.
      downloadInfo: { size: expected.size, etag: expected.etag, url: resolveUrl(ctx, commit, path) },
      // Plain HTTP reads (the hub redirects LFS and xet files to a CDN): resumable with a Range request.
      xet: false,
    });
    if (!remote) throw new Error(`the hub has no ${path}`); // not reached: downloadInfo is given
    const progress = ctx.report.file(path, expected.size, have);
    try {
      const body = Readable.fromWeb((have > 0 ? remote.slice(have) : remote).stream() as NodeReadableStream<Uint8Array>);
      const stallMs = ctx.settings.downloadTimeoutMs;
      const stall = setTimeout(() => body.destroy(new Error(`no data for ${stallMs / 1000} s`)), stallMs);
      try {
        await pipeline(
          body,
          async function* (source: AsyncIterable<Buffer>) {
            for await (const chunk of source) {
              stall.refresh();
              hash?.update(chunk);
              progress.advance(chunk.length);
              yield chunk;
            }
          },
          createWriteStream(incomplete, { flags: have > 0 ? 'a' : 'w' }),
          { signal: lost },
        );
      } finally {
        clearTimeout(stall);
      }
    } finally {
      progress.end();
    }
  }

  const got = (await stat(incomplete)).size;
  if (got !== expected.size) throw new Error(`the transfer of ${path} ended at ${got} of ${expected.size} bytes`);
  const digest = hash?.digest('hex') ?? expected.etag;
  if (digest !== expected.etag) {
    await rm(incomplete, { force: true });
    const mismatch = `${path} does not match its ${expected.algorithm === 'sha256' ? 'sha256' : 'git sha1'} (expected ${expected.etag}, got ${digest})`;
    // A resumed file may have kept bad bytes from before: one more try from the start. A whole
    // download that does not match would only do the same again.
    if (resumedAt > 0) throw new Error(`${mismatch}; starting over`);
    throw new TesseraError('HUB_DOWNLOAD_FAILED', `downloading ${ctx.repo} from ${ctx.settings.endpoint}: ${mismatch}`);
  }
}

function resolveUrl(ctx: Context, commit: string, path: string): string {
  const segments = (p: string) => p.split('/').map(encodeURIComponent).join('/');
  return `${ctx.settings.endpoint}/${segments(ctx.repo)}/resolve/${commit}/${segments(path)}`;
}

async function hashFile(hash: Hash, file: string): Promise<void> {
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
}

/**
 * A relative symlink, as huggingface_hub makes; a copy where symlinks are not allowed (Windows
 * without developer mode). Made aside and renamed over the pointer, so that another process
 * linking the same file meanwhile never finds it missing (nor copies through the old link).
 */
async function linkBlob(blob: string, pointer: string): Promise<void> {
  await mkdir(dirname(pointer), { recursive: true });
  await replaceWith(pointer, async (temporary) => {
    try {
      await symlink(relative(dirname(pointer), blob), temporary);
    } catch {
      await copyFile(blob, temporary);
    }
  });
}

/** Replaces `path` at once with what `write` puts at a temporary name beside it. */
async function replaceWith(path: string, write: (temporary: string) => Promise<void>): Promise<void> {
  const temporary = `${path}.${randomUUID()}.tmp`;
  try {
    await write(temporary);
    await rename(temporary, path);
  } catch (err) {
    await rm(temporary, { force: true });
    throw err;
  }
}

/**
 * fetch for @huggingface/hub calls: adds the token (only towards the hub's own origin, never to
 * a CDN it redirects to), limits metadata requests in time, and repairs a server that answers
 * a resumed range read with the whole file.
 */
function hubFetch(settings: HubSettings): typeof fetch {
  const hubOrigin = new URL(settings.endpoint).origin;
  return async (input, init) => {
    const url = new URL(typeof input === 'string' ? input : input instanceof URL ? input.href : input.url);
    const headers = new Headers(init?.headers);
    if (settings.token && url.origin === hubOrigin && !headers.has('authorization')) {
      headers.set('authorization', `Bearer ${settings.token}`);
    }
    if (!headers.has('user-agent')) headers.set('user-agent', 'tessera (@huggingface/hub)');
    const range = /^bytes=(\d+)-(\d*)$/.exec(headers.get('range') ?? '');
    const start = range ? Number(range[1]) : 0;
    const metadata = url.pathname.startsWith('/api/') || (range !== null && range[1] === '0' && range[2] === '0');
    if (metadata) {
      return fetch(url, { ...init, headers, signal: AbortSignal.timeout(settings.metadataTimeoutMs) });
    }
    // A download: limit the wait for the answer; stalls in the body are caught while reading.
    const controller = new AbortController();
    const timer = setTimeout(
      () => controller.abort(new Error(`no answer from ${url.origin} within ${settings.downloadTimeoutMs / 1000} s`)),
      settings.downloadTimeoutMs,
    );
    let response: Response;
    try {
      response = await fetch(url, { ...init, headers, signal: controller.signal });
    } finally {
      clearTimeout(timer);
    }
    if (start > 0 && response.status === 200 && response.body) return skipBytes(response, start);
    return response;
  };
}

function skipBytes(response: Response, count: number): Response {
  let toSkip = count;
  const body = response.body!.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        if (toSkip >= chunk.length) {
          toSkip -= chunk.length;
          return;
        }
        controller.enqueue(toSkip > 0 ? chunk.subarray(toSkip) : chunk);
        toSkip = 0;
      },
    }),
  );
  return new Response(body, { status: 206, headers: response.headers });
}

const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH',
  'EHOSTDOWN', 'EPIPE', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_SOCKET',
]);

/** Connection-level failures (refused, DNS, timeouts), as opposed to answers from the hub. */
function isUnreachable(err: unknown): boolean {
  if (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')) return true;
  if (err instanceof TypeError && err.message === 'fetch failed') return true;
  const code = errorCode(err);
  return code !== undefined && UNREACHABLE_CODES.has(code);
}

function errorCode(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e !== null && typeof e === 'object' && depth < 5; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    const inner = e instanceof AggregateError ? e.errors[0] : (e as { cause?: unknown }).cause;
    e = inner;
  }
  return undefined;
}

function describe(err: unknown): string {
  if (err instanceof HubApiError) return `HTTP ${err.statusCode}${hubMessage(err) ? `: ${hubMessage(err)}` : ''}`;
  if (err instanceof Error) {
    const code = errorCode(err);
    if (err.name === 'TimeoutError') return 'timed out';
    return code && err.message === 'fetch failed' ? code : code && !err.message.includes(code) ? `${err.message} (${code})` : err.message;
  }
  return String(err);
}

function hubMessage(err: HubApiError): string {
  const said = err.data?.error ?? err.data?.message;
  return typeof said === 'string' ? said.trim() : '';
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

function readToken(env: NodeJS.ProcessEnv, home: string): string | undefined {
  const fromEnv = env.HF_TOKEN || env.HUGGING_FACE_HUB_TOKEN;
  if (fromEnv) return fromEnv.trim();
  try {
    const stored = readFileSync(expandHome(env.HF_TOKEN_PATH || join(home, 'token')), 'utf8').trim();
    return stored || undefined;
  } catch {
    return undefined;
  }
}

function seconds(value: string | undefined, fallback: number): number {
  const n = Number(value);
  return value !== undefined && value !== '' && Number.isFinite(n) && n > 0 ? n : fallback;
}

function expandHome(p: string): string {
  return p === '~' || p.startsWith('~/') ? join(homedir(), p.slice(1)) : p;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
