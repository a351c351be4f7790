/**
 * Files derived from a model file at load (the graph rewrite, the int8 forms, q8 quantised from
 * fp32), cached so that later loads only stat the files. What each step writes differs; where it
 * goes, how it is keyed and how a cached one is known to be valid is the same, and lives here:
 *
 *   - Beside the model file's real path when that folder is writable (ONNX Runtime refuses
 *     external data outside the real folder of the model it loads, so for a Hugging Face cache
 *     snapshot, symlinks into blobs/, "beside" means in blobs/). Otherwise, or when the external
 *     data is not in that folder, in `<cache root>/<hash of that folder>/`, next to hard links
 *     to the original files (copies for files under 64 MiB on another file system; larger ones
 *     are not copied and the step fails, so the model runs as it is).
 *   - A stamp (JSON) beside the derived files records the size, mtime and inode of every file
 *     the result depends on; a stamp whose files differ, or that cannot be read, is ignored and
 *     the file made again. The derived files themselves are named by a hash of the contents
 *     they come from.
 *   - Everything is written to a temporary name and renamed, so a process killed mid-write
 *     leaves a `.partial` file (removed by the next load once its process is gone), never a
 *     half file under the name a later load would trust.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { access, constants, copyFile, link, mkdir, open, readdir, readFile, realpath, rename, rm, stat, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';

export interface FileStamp {
  /** Relative to the folder the stamp's files are read from (or absolute). */
  name: string;
  size: number;
  mtimeMs: number;
  ino: number;
}

export async function fileStamp(dir: string, name: string): Promise<FileStamp> {
  const s = await stat(resolve(dir, name));
  return { name, size: s.size, mtimeMs: s.mtimeMs, ino: s.ino };
}

/** True when every file is there, readable, and unchanged since `files` was taken. */
export async function stampsMatch(dir: string, files: readonly FileStamp[]): Promise<boolean> {
  const current = await Promise.all(files.map((f) => fileStamp(dir, f.name).catch(() => undefined)));
  if (!current.every((c, i) => c && c.size === files[i]!.size && c.mtimeMs === files[i]!.mtimeMs && c.ino === files[i]!.ino)) return false;
  return Promise.all(files.map((f) => access(resolve(dir, f.name), constants.R_OK))).then(() => true, () => false);
}

/** sha256 of a file, hex, streamed (the fp32 graphs are hundreds of MB). */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 8 << 20 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export function shortHash(text: string, length = 16): string {
  return createHash('sha256').update(text).digest('hex').slice(0, length);
}

/** `$XDG_CACHE_HOME/tessera/<kind>` (default ~/.cache/tessera/<kind>). */
export function derivedCacheRoot(kind: string): string {
  return join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'tessera', kind);
}

/** Where a model file's derived files may go. */
export interface DerivedHome {
  /** The model file as given, resolved. */
  source: string;
  /** Its folder as given (external data is found from here). */
  dir: string;
  /** The file's real path, and its folder: where derived files go when writable. */
  real: string;
  home: string;
  /** The cache folder for this `home`, used when `home` cannot be. */
  fallback: string;
}

export async function derivedHome(path: string, cacheRoot: string): Promise<DerivedHome> {
  const source = resolve(path);
  const real = await realpath(source);
  const home = dirname(real);
  return { source, dir: dirname(source), real, home, fallback: join(cacheRoot, shortHash(home)) };
}

/**
 * The first valid stamp named `stampName` beside the model or in its cache folder: readable
 * JSON that `accept` takes, whose `files` (relative to the model's folder as given) are
 * unchanged, and whose `derived` files (relative to the stamp's folder) are unchanged.
 */
export async function findStamp<S extends { files: FileStamp[]; derived?: FileStamp[] }>(
  at: DerivedHome,
  stampName: string,
  accept: (stamp: S) => boolean,
): Promise<{ where: string; stamp: S } | undefined> {
  for (const where of [at.home, at.fallback]) {
    const stamp = await readStamp<S>(join(where, stampName));
    if (!stamp || !Array.isArray(stamp.files) || !accept(stamp)) continue;
    if (!(await stampsMatch(at.dir, stamp.files))) continue;
    if (stamp.derived && !(Array.isArray(stamp.derived) && (await stampsMatch(where, stamp.derived)))) continue;
    return { where, stamp };
  }
  return undefined;
}

export async function readStamp<S>(path: string): Promise<S | undefined> {
  try {
    const s = JSON.parse(await readFile(path, 'utf8')) as S;
    return typeof s === 'object' && s !== null ? s : undefined;
  } catch {
    return undefined;
  }
}

/** A temporary name beside `path`, with this process's id (see removeStale). */
export function partialPath(path: string): string {
  return `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.partial`;
}

/** Writes JSON to a temporary name, then renames it over `path`. */
export async function writeStamp(path: string, stamp: unknown): Promise<void> {
  const partial = partialPath(path);
  await writeFile(partial, `${JSON.stringify(stamp, null, 2)}\n`);
  await rename(partial, path);
}

/**
 * Writes `chunks` to a temporary name, then renames the file to `path`; with `sync` (default)
 * flushed to disk first, so that a crash after the rename cannot leave a file whose contents
 * never reached the disk. Files that may be deleted soon (candidates being measured) skip it
 * and are synced with syncFile once kept.
 */
export async function writeChunksAtomically(path: string, chunks: Iterable<Uint8Array>, sync = true): Promise<void> {
  const partial = partialPath(path);
  const file = await open(partial, 'w');
  try {
    for (const chunk of chunks) {
      for (let done = 0; done < chunk.length;) done += (await file.write(chunk, done, chunk.length - done)).bytesWritten;
    }
    if (sync) await file.sync();
  } catch (err) {
    await file.close();
    await rm(partial, { force: true });
    throw err;
  }
  await file.close();
  await rename(partial, path);
}

/** Flushes a written file to disk (see writeChunksAtomically). */
export async function syncFile(path: string): Promise<void> {
  const file = await open(path, 'r');
  try {
    await file.sync();
  } finally {
    await file.close();
  }
}

export async function writable(dir: string): Promise<boolean> {
  const probe = join(dir, `.tessera-probe-${process.pid}-${Math.random().toString(36).slice(2)}`);
  try {
    await writeFile(probe, '');
    await rm(probe, { force: true });
    return true;
  } catch {
    return false;
  }
}

/** The most a derived file in the cache folder copies of a file it cannot hard-link. */
export const MAX_COPY_BYTES = 64 << 20;

export interface Placement {
  /** The folder the derived files go to. */
  where: string;
  /** How a file there refers to each original (real path -> path relative to `where`). */
  named: Map<string, string>;
}

export interface PlaceOptions {
  /** Use the cache folder even when the model's folder is writable (tests). */
  forceCacheRoot?: boolean;
  /**
   * Keep the external data names the model file uses (`locations`, relative to its folder):
   * for derived files that copy the original's references as they are (the int8 forms). The
   * model's real folder only qualifies when each location there is the real file; in the cache
   * folder the links take the location names. Otherwise links are named after the real files
   * and the caller renames references (the rewrite does).
   */
  keepNames?: boolean;
}

/** Where derived files of the model at `at` go, and what they call its files from there. */
export async function placeDerived(at: DerivedHome, locations: readonly string[], options: PlaceOptions = {}): Promise<Placement> {
  const reals = await Promise.all(locations.map((l) => realpath(join(at.dir, l))));
  const inHome = options.keepNames
    ? locations.every((l, i) => resolve(at.home, l) === reals[i])
    : reals.every((r) => r.startsWith(at.home + sep));
  if (!options.forceCacheRoot && inHome && (await writable(at.home))) {
    return { where: at.home, named: new Map([at.real, ...reals].map((r) => [r, relative(at.home, r)])) };
  }
  const where = at.fallback;
  await mkdir(where, { recursive: true });
  const named = new Map<string, string>();
  const wanted: [string, string | undefined][] = [[at.real, undefined], ...reals.map((r, i): [string, string] => [r, options.keepNames ? locations[i]! : undefined!])];
  for (const [r, keep] of wanted) {
    if (named.has(r)) continue;
    let name = keep ?? basename(r);
    if (!keep) for (let i = 1; [...named.values()].includes(name); i++) name = `${i}-${basename(r)}`;
    named.set(r, name);
    const target = join(where, name);
    const same = await Promise.all([stat(r), stat(target).catch(() => undefined)]).then(([a, b]) => b !== undefined && a.ino === b.ino && a.dev === b.dev);
    if (same) continue;
    await mkdir(dirname(target), { recursive: true });
    await rm(target, { force: true });
    await link(r, target).catch(async (err: NodeJS.ErrnoException) => {
      // Another file system: a copy, for small models only.
      const size = (await stat(r)).size;
      if (size > MAX_COPY_BYTES) throw new Error(`${r} cannot be linked into ${where} (${err.code ?? err.message}) and is too large to copy (${Math.round(size / 2 ** 20)} MiB)`);
      const partial = partialPath(target);
      await copyFile(r, partial);
      await rename(partial, target);
    });
  }
  return { where, named };
}

/**
 * Removes, in `dir`, the files `stale` matches that are not in `keep` (derived files of older
 * versions or older contents), and `.partial` files whose writing process is gone (killed
 * mid-write: see writeChunksAtomically).
 */
export async function removeStale(dir: string, stale: RegExp, keep: readonly string[]): Promise<void> {
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const partial = /\.(\d+)\.[0-9a-z]+\.partial$/.exec(name);
    // A process of that id may be writing it yet (or another machine's, on a shared folder):
    // only a partial file left alone for a minute by a process that is gone is removed.
    const gone = partial !== null && !processAlive(Number(partial[1])) && (await stat(join(dir, name)).then((s) => Date.now() - s.mtimeMs > 60_000, () => false));
    if ((stale.test(name) && !keep.includes(name)) || gone) await rm(join(dir, name), { force: true }).catch(() => undefined);
  }
}

function processAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
