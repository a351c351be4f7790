/**
 * Folders kept indexed as they change (`tessera index --watch`, `tessera serve --watch`).
 *
 * Events only mark paths dirty. A settle loop stats the dirty paths and hands one on once its
 * size, mtime and inode have stayed the same for the settle period and no event came for that
 * long: a file being copied is indexed once, whole. Settled paths go through the indexing
 * pipeline in bounded batches (indexSources with `paths`): the same change detection,
 * embedding and atomic writes as `tessera index`, and a path gone has its documents removed.
 * At start the whole folder goes through the normal incremental scan (with prune), which finds
 * what changed while nothing watched; so does a burst of more changes than are tracked one by
 * one, which keeps memory bounded.
 *
 * On Linux the tree is watched with one non-recursive fs.watch (one inotify watch) per folder,
 * which reports its entries' changes by name. Node 20's recursive fs.watch there is written in
 * JavaScript over one inotify watch per file and per folder, set up synchronously, and it
 * re-reads a whole folder on each event in it; chokidar 4 also watches every file. Measured on
 * 100,000 files in 1,011 folders (docs/measurements/watch.json): per folder 0.9 s, +11 MB RSS,
 * 1,011 watches, the event loop free; recursive fs.watch 2.6 s with the event loop blocked
 * throughout, +231 MB, 101,012 watches; chokidar 19.8 s, +620 MB, 101,012 watches. Elsewhere
 * (macOS, Windows) Node's recursive fs.watch is the system's own and is used as it is.
 */
import { watch, type FSWatcher } from 'node:fs';
import { lstat, readdir, readFile } from 'node:fs/promises';
import { join, sep } from 'node:path';
import type { Embedder } from '../engine/embedder.ts';
import type { ModelRef, VectorStore } from '../store/store.ts';
import { indexSources, type IndexFailure, type IndexProgress, type IndexResult, type IndexSummary } from './pipeline.ts';
import type { MediaOptions } from './media.ts';
import { inside, type Source } from './sources.ts';

export interface WatchOptions {
  store: VectorStore;
  collection: string;
  embedder: Embedder;
  /** The collection's model. */
  writer: ModelRef;
  /** A folder (resolveSource). */
  source: Source;
  /** How long a changed path must stay the same, with no event, before it is indexed (default 1000 ms). */
  settleMs?: number;
  /** Settled paths per indexing run (default 256). */
  batchPaths?: number;
  /** Changed paths tracked one by one; past this many the folder is scanned whole instead (default 100,000). */
  maxTracked?: number;
  /** Documents per atomic write (default 256). */
  batchSize?: number;
  truncate?: boolean;
  /** How videos and PDFs are read. */
  media?: MediaOptions;
  /** Retry a run that failed (store unreachable, ...) after this long (default 5000 ms). */
  retryMs?: number;
  /** Scan the folder whole this often while some folder could not be watched (default 60 s). */
  rescanMs?: number;
  onFailure?: (failure: IndexFailure) => void;
  onNote?: (line: string) => void;
  /** Progress of the scans of the whole folder (the first one's bar). */
  onScanProgress?: (progress: IndexProgress) => void;
  /** After every indexing run, the scans included. */
  onRun?: (run: WatchRun) => void;
  /** Once the tree is watched, before the first scan: how many folder watches it took. */
  onWatching?: (watches: number) => void;
  /** Changed paths settled and handed to indexing (the files of a scan count when it ends). */
  onSeen?: (n: number) => void;
}

export interface WatchRun extends IndexSummary {
  /** A scan of the whole folder, or a batch of changed paths. */
  kind: 'scan' | 'paths';
  paths: number;
  ms: number;
  /** Changes noticed and not yet written, once the run is over. */
  pending: number;
}

export interface WatchTotals extends IndexSummary {
  /** Changed paths settled and handed to indexing, and files looked at by scans. */
  seen: number;
}

export interface WatchResult extends WatchTotals {
  /** Changes noticed and not written when it stopped (0: everything noticed is written). */
  pending: number;
}

/** Starts watching `options.source` (a folder) into `options.collection`; see FolderWatch. */
export function watchFolder(options: WatchOptions): FolderWatch {
  return new FolderWatch(options);
}

interface Dirty {
  lastEvent: number;
  sig?: string;
  sigSince: number;
  /** A folder that replaced another of its name: walked and pruned once what is under it settled. */
  reconcile?: boolean;
}

export class FolderWatch {
  readonly totals: WatchTotals = { seen: 0, added: 0, updated: 0, skipped: 0, removed: 0, failed: 0 };
  /**
   * Resolves once the first scan is written (or the watch is closed before); rejects when the
   * folder cannot be watched at all (gone since it was resolved).
   */
  readonly ready: Promise<void>;
  private readonly settleMs: number;
  private readonly root: string;
  private readonly dirty = new Map<string, Dirty>();
  private readonly settled = new Set<string>();
  private readonly tree: Tree;
  private readonly stopping = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  private current: Promise<void> | undefined;
  private inRun = 0;
  private scanPending = true;
  /** When the pending scan became due: it waits for a quiet moment, but not forever. */
  private scanDue = 0;
  private scanned = false;
  private lastEvent = 0;
  private lastScan = 0;
  private retryAt = 0;
  private degraded = false;
  private closed = false;
  private closing: Promise<WatchResult> | undefined;
  private markReady!: () => void;
  private failStart!: (err: unknown) => void;

  constructor(private readonly options: WatchOptions) {
    if (options.source.kind !== 'folder') throw new TypeError(`watchFolder: ${options.source.given} is not a folder`);
    this.root = options.source.path;
    this.settleMs = options.settleMs ?? 1000;
    this.ready = new Promise((resolve, reject) => {
      this.markReady = resolve;
      this.failStart = reject;
    });
    this.ready.catch(() => {}); // a caller that never awaits it is told nothing, and nothing crashes
    const events = { changed: (path: string) => this.mark(path), lost: () => this.lose(), limit: (line: string) => this.limit(line) };
    this.tree = process.platform === 'linux' ? new FolderWatchers(this.root, events) : new RecursiveWatcher(this.root, events);
    // Watch first, then scan: a change during the scan is seen by one or the other.
    void this.tree.start().then(
      () => {
        options.onWatching?.(this.tree.count);
        this.tick();
      },
      (err: unknown) => {
        this.failStart(new Error(`cannot watch ${this.root}: ${(err as Error).message}`));
        void this.close();
      },
    );
  }

  /** Whether close() was called. */
  get stopped(): boolean {
    return this.closed;
  }

  /** Changes noticed and not yet written. */
  get pending(): number {
    return this.dirty.size + this.settled.size + this.inRun;
  }

  /** Folders watched (one inotify watch each on Linux; 1 where the system watches a tree). */
  get watches(): number {
    return this.tree.count;
  }

  /**
   * Stops watching; a run under way stops taking new documents and writes what is embedded.
   * Resolves with the totals and what was left undone.
   */
  close(): Promise<WatchResult> {
    this.closing ??= (async () => {
      this.closed = true;
      clearTimeout(this.timer);
      this.tree.close();
      this.stopping.abort();
      await this.current;
      this.markReady();
      // A first scan that never ran leaves an unknown amount undone: at least one.
      return { ...this.totals, pending: this.pending || (this.scanned ? 0 : 1) };
    })();
    return this.closing;
  }

  private note(line: string): void {
    this.options.onNote?.(line);
  }

  private mark(path: string): void {
    if (this.closed || path === this.root || !inside(this.root, path)) return;
    const now = performance.now();
    this.lastEvent = now;
    const known = this.dirty.get(path);
    if (known) {
      known.lastEvent = now;
      return;
    }
    // A scan not yet started sees it anyway.
    if (this.scanPending) return;
    this.settled.delete(path); // changed again: settles again
    if (this.dirty.size + this.settled.size >= (this.options.maxTracked ?? 100_000)) {
      this.note(`over ${this.options.maxTracked ?? 100_000} changed paths at once: scanning ${this.root} whole once they settle`);
      this.lose();
      return;
    }
    this.dirty.set(path, { lastEvent: now, sigSince: now });
  }

  /** Changes were missed (too many, or the system said so): the next scan finds them. */
  private lose(): void {
    this.dirty.clear();
    this.settled.clear();
    this.requestScan();
  }

  private requestScan(): void {
    if (this.scanPending) return;
    this.scanPending = true;
    this.scanDue = performance.now();
  }

  private limit(line: string): void {
    this.note(line);
    this.degraded = true;
  }

  private get tickMs(): number {
    return Math.min(250, Math.max(20, this.settleMs / 4));
  }

  private schedule(): void {
    if (this.closed) return;
    this.timer = setTimeout(() => this.tick(), this.tickMs);
  }

  private tick(): void {
    if (this.closed) return;
    void this.settle()
      .catch((err: unknown) => this.note(`watch: ${(err as Error).message}`))
      .finally(() => {
        this.pump();
        this.schedule();
      });
  }

  /** Stats what had no event for a tick (a file being written has one every tick); moves what stayed the same for the settle period to `settled`. */
  private async settle(): Promise<void> {
    const now = performance.now();
    const due = [...this.dirty].filter(([, d]) => now - d.lastEvent >= this.tickMs);
    const limit = 64;
    for (let i = 0; i < due.length; i += limit) {
      await Promise.all(due.slice(i, i + limit).map(([path, d]) => this.check(path, d, now)));
      if (this.closed) return;
    }
  }

  private async check(path: string, d: Dirty, now: number): Promise<void> {
    const info = await lstat(path).catch(() => undefined);
    if (this.dirty.get(path) !== d) return; // dropped meanwhile
    if (info?.isDirectory()) {
      const how = await this.tree.appeared(path, info.ino);
      if (how === 'replaced') d.reconcile = true;
      if (!d.reconcile) {
        this.dirty.delete(path);
        return;
      }
    }
    const sig = info ? `${info.size}:${info.mtimeMs}:${info.ino}` : 'gone';
    if (sig !== d.sig) {
      d.sig = sig;
      d.sigSince = now;
      return;
    }
    if (now - d.sigSince < this.settleMs || now - d.lastEvent < this.settleMs) return;
    // A folder is walked only once nothing under it is still settling.
    if (d.reconcile && this.anyUnder(path)) return;
    if (!info?.isDirectory()) this.tree.gone(path);
    this.dirty.delete(path);
    this.settled.add(path);
    this.totals.seen++;
    this.options.onSeen?.(1);
  }

  private anyUnder(folder: string): boolean {
    const prefix = folder + sep;
    for (const p of this.dirty.keys()) if (p.startsWith(prefix)) return true;
    for (const p of this.settled) if (p.startsWith(prefix)) return true;
    return false;
  }

  /** Starts the next run when none is under way: a scan when one is due, else a batch of settled paths. */
  private pump(): void {
    if (this.closed || this.current || performance.now() < this.retryAt) return;
    const now = performance.now();
    if (this.degraded && this.scanned && now - this.lastScan >= (this.options.rescanMs ?? 60_000)) this.requestScan();
    let run: Promise<void> | undefined;
    // A rescan waits for the folder to be quiet a settle period, at most ten: events are not
    // tracked meanwhile, and a file still being written when it starts is seen again after.
    if (this.scanPending && (!this.scanned || now - this.lastEvent >= this.settleMs || now - this.scanDue >= 10 * this.settleMs)) {
      run = this.scan();
    } else if (!this.scanPending && this.settled.size > 0) {
      const batch: string[] = [];
      for (const p of this.settled) {
        batch.push(p);
        if (batch.length >= (this.options.batchPaths ?? 256)) break;
      }
      for (const p of batch) this.settled.delete(p);
      run = this.runPaths(batch);
    }
    if (!run) return;
    this.current = run.finally(() => {
      this.current = undefined;
      if (this.closed) return; // inRun keeps what the run left undone
      this.inRun = 0;
      this.pump();
    });
  }

  private async scan(): Promise<void> {
    this.scanPending = false;
    const started = performance.now();
    this.inRun = 1;
    const result = await this.index({ prune: true, onProgress: (p) => ((this.inRun = Math.max(1, p.total - p.done + p.pending)), this.options.onScanProgress?.(p)) });
    this.lastScan = performance.now();
    if (!result) {
      this.requestScan();
      return;
    }
    const files = result.added + result.updated + result.skipped + result.failed;
    this.totals.seen += files;
    this.options.onSeen?.(files);
    if (!result.interrupted) this.inRun = 0;
    this.report('scan', files, result, started);
    if (!result.interrupted && !this.scanned) {
      this.scanned = true;
      this.markReady();
    }
  }

  private async runPaths(paths: string[]): Promise<void> {
    const started = performance.now();
    this.inRun = paths.length;
    const result = await this.index({ paths, onProgress: (p) => (this.inRun = Math.max(1, p.total - p.done + p.pending)) });
    if (!result) {
      // Not written: back in line for the next try.
      for (const p of paths) if (!this.dirty.has(p)) this.settled.add(p);
      return;
    }
    if (!result.interrupted) this.inRun = 0;
    this.report('paths', paths.length, result, started);
  }

  /** One indexing run; undefined when it failed as a whole (noted, retried after retryMs). */
  private async index(extra: { prune?: boolean; paths?: string[]; onProgress: (p: IndexProgress) => void }): Promise<IndexResult | undefined> {
    const o = this.options;
    try {
      return await indexSources({
        store: o.store,
        collection: o.collection,
        embedder: o.embedder,
        writer: o.writer,
        sources: [o.source],
        truncate: o.truncate,
        batchSize: o.batchSize,
        media: o.media,
        signal: this.stopping.signal,
        onFailure: o.onFailure,
        onNote: o.onNote,
        ...extra,
      });
    } catch (err) {
      if (this.closed) return undefined;
      this.retryAt = performance.now() + (o.retryMs ?? 5000);
      this.note(`indexing ${this.root} failed: ${(err as Error).message}; trying again in ${Math.round((o.retryMs ?? 5000) / 1000)} s`);
      return undefined;
    }
  }

  private report(kind: 'scan' | 'paths', paths: number, r: IndexResult, started: number): void {
    for (const k of ['added', 'updated', 'skipped', 'removed', 'failed'] as const) this.totals[k] += r[k];
    this.options.onRun?.({ kind, paths, added: r.added, updated: r.updated, skipped: r.skipped, removed: r.removed, failed: r.failed, ms: performance.now() - started, pending: this.pending });
  }
}

interface TreeEvents {
  changed(path: string): void;
  /** Events were lost: scan whole. */
  lost(): void;
  /** A folder could not be watched for a limit of the system. */
  limit(line: string): void;
}

/** What watches the tree: reports changed paths, and is told of folders appearing and going. */
interface Tree {
  start(): Promise<void>;
  /** A folder is at `path` (inode `ino`): watch it and report its files, unless it is watched already. */
  appeared(path: string, ino: number): Promise<'new' | 'same' | 'replaced'>;
  gone(path: string): void;
  close(): void;
  readonly count: number;
}

/** Linux: one non-recursive fs.watch per folder (inotify reports a folder's entries by name). */
class FolderWatchers implements Tree {
  private readonly watchers = new Map<string, { watcher: FSWatcher; ino: number }>();
  private closed = false;
  private limited = false;

  constructor(
    private readonly root: string,
    private readonly events: TreeEvents,
  ) {}

  get count(): number {
    return this.watchers.size;
  }

  async start(): Promise<void> {
    await lstat(this.root); // a folder that is not there fails the start
    await this.add(this.root, false);
  }

  async appeared(path: string, ino: number): Promise<'new' | 'same' | 'replaced'> {
    const known = this.watchers.get(path);
    if (known && known.ino === ino) return 'same';
    if (known) this.gone(path);
    await this.add(path, true);
    return known ? 'replaced' : 'new';
  }

  gone(path: string): void {
    if (!this.watchers.has(path)) return;
    const prefix = path + sep;
    for (const [dir, w] of this.watchers) {
      if (dir !== path && !dir.startsWith(prefix)) continue;
      w.watcher.close();
      this.watchers.delete(dir);
    }
  }

  close(): void {
    this.closed = true;
    for (const w of this.watchers.values()) w.watcher.close();
    this.watchers.clear();
  }

  /** Watches `dir` and the folders below it, each before reading it (so no file slips between); with `mark`, reports the files found. */
  private async add(dir: string, mark: boolean): Promise<void> {
    const stack = [dir];
    while (stack.length > 0 && !this.closed) {
      const d = stack.pop()!;
      if (this.watchers.has(d)) continue;
      const ino = await lstat(d).then((i) => (i.isDirectory() ? i.ino : undefined), () => undefined);
      if (ino === undefined || this.closed) continue;
      let watcher: FSWatcher;
      try {
        watcher = watch(d, { persistent: true }, (_event, name) => {
          if (name === null) this.events.lost();
          else this.events.changed(join(d, name));
        });
      } catch (err) {
        this.refused(d, err as NodeJS.ErrnoException);
        continue;
      }
      // The folder went (or was moved, and its watch with it): its parent reports that.
      watcher.on('error', () => {
        watcher.close();
        if (this.watchers.get(d)?.watcher === watcher) this.watchers.delete(d);
      });
      this.watchers.set(d, { watcher, ino });
      const entries = await readdir(d, { withFileTypes: true }).catch(() => []);
      for (const e of entries) {
        const path = join(d, e.name);
        if (e.isDirectory()) stack.push(path);
        else if (mark) this.events.changed(path);
      }
    }
  }

  private refused(dir: string, err: NodeJS.ErrnoException): void {
    if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return;
    if (err.code === 'ENOSPC' || err.code === 'EMFILE') {
      if (this.limited) return;
      this.limited = true;
      void inotifyLimit().then((max) =>
        this.events.limit(
          `cannot watch ${dir}: the inotify watch limit is reached (fs.inotify.max_user_watches = ${max ?? 'unknown'}, shared by every program of this user; tessera takes one per folder and holds ${this.watchers.size} here). ` +
            `Changes in the folders not watched are found by a scan of the whole folder every minute meanwhile. Raise the limit, e.g. sudo sysctl fs.inotify.max_user_watches=524288 (and a line in /etc/sysctl.d/ to keep it), then restart.`,
        ),
      );
      return;
    }
    this.events.limit(`cannot watch ${dir}: ${err.message}; changes in it are found by a scan of the whole folder every minute`);
  }
}

async function inotifyLimit(): Promise<number | undefined> {
  const text = await readFile('/proc/sys/fs/inotify/max_user_watches', 'utf8').catch(() => undefined);
  return text === undefined ? undefined : Number(text.trim());
}

/** macOS, Windows: the system watches the tree (FSEvents, ReadDirectoryChangesW). */
class RecursiveWatcher implements Tree {
  private watcher: FSWatcher | undefined;
  readonly count = 1;

  constructor(
    private readonly root: string,
    private readonly events: TreeEvents,
  ) {}

  async start(): Promise<void> {
    this.watcher = watch(this.root, { persistent: true, recursive: true }, (_event, name) => {
      if (name === null) this.events.lost();
      else this.events.changed(join(this.root, name));
    });
    this.watcher.on('error', (err) => this.events.limit(`watching ${this.root} failed: ${err.message}; changes are found by a scan of the whole folder every minute`));
  }

  /** A folder that appeared may have come whole (moved in): its files are reported. */
  async appeared(path: string): Promise<'new'> {
    const stack = [path];
    while (stack.length > 0) {
      const d = stack.pop()!;
      for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) {
        if (e.isDirectory()) stack.push(join(d, e.name));
        else this.events.changed(join(d, e.name));
      }
    }
    return 'new';
  }

  gone(): void {}

  close(): void {
    this.watcher?.close();
  }
}
