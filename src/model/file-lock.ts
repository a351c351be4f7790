/**
 * An advisory lock between processes (on this machine, or on machines sharing a folder): a lock
 * file that exists while someone holds the lock, put in place atomically with its holder's
 * pid, host and a random token inside (written to a temporary file, then hard-linked to the
 * lock's name: `link` fails if the name exists, so there is no moment where a lock file exists
 * without its holder, as there is with create-then-write; an exclusive create where the file
 * system has no hard links). Node has no flock(2); this is the link-based lock file NFS
 * clients have long used.
 *
 * A lock is stale, and taken over, when its holder is a process of this host that is gone
 * (killed, crashed), or when its holder stopped refreshing it (mtime) for `staleMs` (a holder
 * on another host, or a pid reused). Breaking a stale lock is done under a second, short-lived
 * lock (`<lock>.break`) that re-reads the lock and removes it only if it is still the stale one
 * seen, so two waiters cannot remove each other's fresh lock. The holder checks on every
 * refresh that the lock is still its own and, if it is not, aborts `signal` so its work stops.
 */
import { randomUUID } from 'node:crypto';
import { link, mkdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export interface LockHolder {
  pid: number;
  host: string;
  token: string;
  /** When it was taken (ms since the epoch). */
  since: number;
}

export interface FileLock {
  readonly path: string;
  /** Aborted if the lock was taken from this holder (it was judged stale): stop writing. */
  readonly signal: AbortSignal;
  /** Removes the lock file if it is still this holder's; calling it again does nothing. */
  release(): Promise<void>;
}

export interface LockOptions {
  /** Told once when the lock is held by another, with who holds it. */
  onWait?(holder: LockHolder | undefined): void;
  /** Told when a stale lock is taken over, with whose it was and why. */
  onTakeOver?(holder: LockHolder | undefined, why: string): void;
  /** A lock not refreshed for this long is stale (default 60 s). */
  staleMs?: number;
  /** How often the holder refreshes the lock's mtime (default 5 s). */
  refreshMs?: number;
  /** Longest pause between two looks at a held lock (default 1 s). */
  maxPollMs?: number;
}

const STALE_MS = 60_000;
const REFRESH_MS = 5_000;
/** Breaking a stale lock takes milliseconds: a `.break` older than this was left by a dead process. */
const BREAK_STALE_MS = 10_000;

/** Waits until the lock at `path` is this process's (taking over a stale one), and returns it. */
export async function acquireFileLock(path: string, options: LockOptions = {}): Promise<FileLock> {
  const staleMs = options.staleMs ?? STALE_MS;
  await mkdir(dirname(path), { recursive: true });
  let pause = 25;
  let told = false;
  for (;;) {
    const me = await tryCreate(path);
    if (me) return held(path, me, options.refreshMs ?? REFRESH_MS);
    const seen = await inspect(path);
    if (seen === 'gone') continue; // released between the two looks
    const why = staleness(seen, staleMs);
    if (why !== undefined) {
      if (await breakStale(path, seen)) options.onTakeOver?.(seen.holder, why);
      continue;
    }
    if (!told) {
      told = true;
      options.onWait?.(seen.holder);
    }
    await sleep(pause);
    pause = Math.min(options.maxPollMs ?? 1000, pause * 2);
  }
}

interface Seen {
  /** undefined when the file does not parse (not ours, or damaged). */
  holder?: LockHolder;
  mtimeMs: number;
}

/** Puts a lock file of this process at `path`; undefined when one is there already. */
async function tryCreate(path: string): Promise<LockHolder | undefined> {
  const holder: LockHolder = { pid: process.pid, host: hostname(), token: randomUUID(), since: Date.now() };
  const temporary = `${path}.${holder.token}.tmp`;
  await writeFile(temporary, JSON.stringify(holder));
  try {
    await link(temporary, path);
    return holder;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return undefined;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS') throw err;
    // A file system without hard links: an exclusive create, then the holder written into it
    // (a waiter reading it empty in between takes it for a live holder: only mtime can age it).
    try {
      await writeFile(path, JSON.stringify(holder), { flag: 'wx' });
      return holder;
    } catch (inner) {
      if ((inner as NodeJS.ErrnoException).code === 'EEXIST') return undefined;
      throw inner;
    }
  } finally {
    await rm(temporary, { force: true });
  }
}

async function inspect(path: string): Promise<Seen | 'gone'> {
  try {
    const [text, info] = await Promise.all([readFile(path, 'utf8'), stat(path)]);
    return { holder: parseHolder(text), mtimeMs: info.mtimeMs };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'gone';
    throw err;
  }
}

function parseHolder(text: string): LockHolder | undefined {
  try {
    const v = JSON.parse(text) as Partial<LockHolder>;
    if (typeof v.pid === 'number' && typeof v.host === 'string' && typeof v.token === 'string' && typeof v.since === 'number') return v as LockHolder;
  } catch {
    // not a lock of ours
  }
  return undefined;
}

/** Why the lock `seen` is stale, or undefined while its holder may be at work. */
function staleness(seen: Seen, staleMs: number): string | undefined {
  const { holder } = seen;
  if (holder && holder.host === hostname() && !processAlive(holder.pid)) return `process ${holder.pid} that held it is gone`;
  const idle = Date.now() - seen.mtimeMs;
  if (idle > staleMs) return `it was not refreshed for ${Math.round(idle / 1000)} s`;
  return undefined;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0); // no signal: only asks whether the process exists
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'; // exists, another user's
  }
}

/**
 * Removes the stale lock `seen` unless it changed meanwhile, under `<path>.break`. True when
 * it removed it; false when another waiter is breaking it (or did) or the lock changed.
 */
async function breakStale(path: string, seen: Seen): Promise<boolean> {
  const guard = `${path}.break`;
  const me = await tryCreate(guard);
  if (!me) {
    // A guard left by a process that died within its few milliseconds: remove it, then all retry.
    const other = await inspect(guard);
    if (other !== 'gone' && staleness(other, BREAK_STALE_MS) !== undefined) await rm(guard, { force: true });
    await sleep(10);
    return false;
  }
  try {
    const now = await inspect(path);
    if (now === 'gone') return false;
    const same = now.holder && seen.holder ? now.holder.token === seen.holder.token : now.mtimeMs === seen.mtimeMs;
    if (!same) return false;
    await rm(path, { force: true });
    return true;
  } finally {
    await rm(guard, { force: true });
  }
}

function held(path: string, me: LockHolder, refreshMs: number): FileLock {
  const lost = new AbortController();
  let released = false;
  let checking: Promise<void> = Promise.resolve();
  const refresh = async () => {
    const seen = await inspect(path).catch(() => 'gone' as const);
    if (released) return;
    if (seen === 'gone' || seen.holder?.token !== me.token) {
      clearInterval(timer);
      lost.abort(new Error(`the lock ${path} was taken over by another process (it judged this one stale)`));
      return;
    }
    const now = new Date();
    await utimes(path, now, now).catch(() => undefined);
  };
  const timer = setInterval(() => {
    checking = checking.then(refresh);
  }, refreshMs);
  timer.unref();
  return {
    path,
    signal: lost.signal,
    async release() {
      if (released) return;
      released = true;
      clearInterval(timer);
      await checking;
      const seen = await inspect(path).catch(() => 'gone' as const);
      if (seen !== 'gone' && seen.holder?.token === me.token) await rm(path, { force: true });
    },
  };
}
