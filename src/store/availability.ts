/**
 * Whether the store answers, known without asking it on every request: a background ping
 * (every second while it answers, every quarter second while it does not) and the failures of
 * real calls keep one state, and while that state is "unavailable" every call through the
 * guarded store fails at once with STORE_UNAVAILABLE instead of waiting out the driver's
 * deadlines (2 s to connect, 10 s a statement: a database that is partitioned or hung would
 * otherwise hold each request that long). The first ping that answers makes it available
 * again, so the store routes resume by themselves within a quarter second of the database.
 *
 * A call that fails with STORE_UNAVAILABLE does not decide alone (one statement timing out
 * on a heavy query is not an outage): it asks for a ping at once, and the ping decides.
 *
 * The server's /ready reports this state without failing on it (the embeddings need no
 * store), and `/ready?store=1` asks for a fresh ping (see api/health.ts).
 */
import { TesseraError } from '../errors.ts';
import type { ClassifierRecord, ClassifierStore } from './classifiers.ts';
import type {
  CollectionDescriptor,
  CollectionInfo,
  CollectionSpec,
  DocumentRecord,
  Filter,
  Modality,
  ModelRef,
  SearchHit,
  StoredDocument,
  TextSearch,
  VectorSearch,
  VectorStore,
  UpsertOptions,
} from './store.ts';

/** Ping period while the store answers (ms). */
export const STORE_CHECK_INTERVAL_MS = 1000;
/** Ping period while it does not (ms): how soon the store routes resume after the database. */
export const STORE_RECHECK_INTERVAL_MS = 250;
/** How long one ping may take before the store counts as unavailable (ms). */
export const STORE_PING_DEADLINE_MS = 1000;

export interface StoreState {
  available: boolean;
  /** When the store turned available or unavailable (at start: available, as it was just opened). */
  since: Date;
  /** When the last ping settled; null before the first. */
  checkedAt: Date | null;
  /** Why it is unavailable: the last failure, as the store words it (never a password). */
  reason?: string;
}

export interface StoreAvailabilityOptions {
  intervalMs?: number;
  recheckIntervalMs?: number;
  pingDeadlineMs?: number;
  /** Called when the store turns unavailable or available again (for the server's log). */
  onChange?: (state: StoreState) => void;
}

const isUnavailable = (err: unknown): boolean => err instanceof TesseraError && err.code === 'STORE_UNAVAILABLE';

export class StoreAvailability {
  /** The store to serve from: every call fails fast with STORE_UNAVAILABLE while it is down. */
  readonly store: VectorStore;
  readonly #inner: VectorStore;
  readonly #intervalMs: number;
  readonly #recheckMs: number;
  readonly #deadlineMs: number;
  readonly #onChange: ((state: StoreState) => void) | undefined;
  #state: StoreState;
  #pinging: Promise<StoreState> | undefined;
  /** Pings started, and the latest of them whose answer is in #state: an older answer never overwrites a newer one. */
  #started = 0;
  #applied = 0;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(inner: VectorStore, options: StoreAvailabilityOptions = {}) {
    this.#inner = inner;
    this.#intervalMs = options.intervalMs ?? STORE_CHECK_INTERVAL_MS;
    this.#recheckMs = options.recheckIntervalMs ?? STORE_RECHECK_INTERVAL_MS;
    this.#deadlineMs = options.pingDeadlineMs ?? STORE_PING_DEADLINE_MS;
    this.#onChange = options.onChange;
    this.#state = { available: true, since: new Date(), checkedAt: null };
    this.store = new GuardedStore(inner, this);
  }

  /** Starts the background pings (the first one now). */
  start(): void {
    this.#stopped = false;
    void this.check();
  }

  get state(): StoreState {
    return { ...this.#state };
  }

  /** STORE_UNAVAILABLE at once while the store is known to be down. */
  gate(): void {
    const state = this.#state;
    if (state.available) return;
    throw new TesseraError(
      'STORE_UNAVAILABLE',
      `the store at ${this.#inner.location} has not answered since ${state.since.toISOString()} (${state.reason ?? 'no answer'}); retry shortly`,
    );
  }

  /** A call failed: STORE_UNAVAILABLE makes a ping decide at once whether the store is down. */
  observe(err: unknown): void {
    if (isUnavailable(err) && this.#state.available) void this.check();
  }

  /** Pings the store now, or joins the background ping in flight; resolves with the state it leaves. */
  check(): Promise<StoreState> {
    this.#pinging ??= this.#ping().then((state) => {
      this.#pinging = undefined;
      this.#schedule();
      return state;
    });
    return this.#pinging;
  }

  /** A ping of its own, started now (a probe that must not take an answer given before it asked). */
  probe(): Promise<StoreState> {
    return this.#ping();
  }

  /** Ends the background pings (the server closing); the store itself is the caller's to close. */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }

  async #ping(): Promise<StoreState> {
    const seq = ++this.#started;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new TesseraError('STORE_UNAVAILABLE', `the store at ${this.#inner.location} did not answer a ping within ${this.#deadlineMs} ms`)),
        this.#deadlineMs,
      );
    });
    let reason: string | undefined;
    try {
      await Promise.race([this.#inner.ping(), deadline]);
    } catch (err) {
      reason = err instanceof Error ? err.message : String(err);
    } finally {
      clearTimeout(timer);
    }
    const now = new Date();
    const available = reason === undefined;
    if (seq < this.#applied) return this.state; // a later ping answered first: its answer stands
    this.#applied = seq;
    const changed = available !== this.#state.available;
    this.#state = { available, since: changed ? now : this.#state.since, checkedAt: now, ...(available ? {} : { reason }) };
    if (changed && !this.#stopped) this.#onChange?.(this.state);
    return this.state;
  }

  #schedule(): void {
    clearTimeout(this.#timer);
    if (this.#stopped) return;
    this.#timer = setTimeout(() => void this.check(), this.#state.available ? this.#intervalMs : this.#recheckMs);
    this.#timer.unref(); // never what keeps a process alive
  }
}

/** The inner store's calls, each refused at once while the store is down and watched for outages. */
class GuardedStore implements VectorStore {
  readonly #inner: VectorStore;
  readonly #availability: StoreAvailability;
  readonly classifiers: ClassifierStore;

  constructor(inner: VectorStore, availability: StoreAvailability) {
    this.#inner = inner;
    this.#availability = availability;
    const c = inner.classifiers;
    const run = <T>(work: () => Promise<T>) => this.#run(work);
    this.classifiers = {
      create: (record: ClassifierRecord, maxPerOwner: number) => run(() => c.create(record, maxPerOwner)),
      get: (id: string) => run(() => c.get(id)),
      list: (owner: string) => run(() => c.list(owner)),
      countByOwner: (owner: string) => run(() => c.countByOwner(owner)),
      update: (record: ClassifierRecord, expectedVersion: number) => run(() => c.update(record, expectedVersion)),
      recordUse: (id: string, at: string) => run(() => c.recordUse(id, at)),
      delete: (id: string) => run(() => c.delete(id)),
    };
  }

  get location(): string {
    return this.#inner.location;
  }

  async #run<T>(work: () => Promise<T>): Promise<T> {
    this.#availability.gate();
    try {
      return await work();
    } catch (err) {
      this.#availability.observe(err);
      throw err;
    }
  }

  listCollections(): Promise<CollectionInfo[]> {
    return this.#run(() => this.#inner.listCollections());
  }
  getCollection(name: string): Promise<CollectionInfo | undefined> {
    return this.#run(() => this.#inner.getCollection(name));
  }
  requireCollection(name: string, model?: ModelRef): Promise<CollectionDescriptor> {
    return this.#run(() => this.#inner.requireCollection(name, model));
  }
  createCollection(spec: CollectionSpec): Promise<CollectionInfo> {
    return this.#run(() => this.#inner.createCollection(spec));
  }
  dropCollection(name: string): Promise<boolean> {
    return this.#run(() => this.#inner.dropCollection(name));
  }
  upsert(collection: string, docs: readonly DocumentRecord[], writer: ModelRef, options?: UpsertOptions): Promise<void> {
    return this.#run(() => this.#inner.upsert(collection, docs, writer, options));
  }
  delete(collection: string, ids: readonly string[]): Promise<number> {
    return this.#run(() => this.#inner.delete(collection, ids));
  }
  get(collection: string, ids: readonly string[], options?: { vectors?: boolean }): Promise<(StoredDocument & { vector?: Float32Array })[]> {
    return this.#run(() => this.#inner.get(collection, ids, options));
  }
  hashes(collection: string): Promise<Map<string, string>> {
    return this.#run(() => this.#inner.hashes(collection));
  }
  async *scan(collection: string, pageSize?: number): AsyncIterable<{ id: string; modality: Modality; vector: Float32Array }[]> {
    this.#availability.gate();
    try {
      yield* this.#inner.scan(collection, pageSize);
    } catch (err) {
      this.#availability.observe(err);
      throw err;
    }
  }
  search(collection: string, query: VectorSearch): Promise<SearchHit[]> {
    return this.#run(() => this.#inner.search(collection, query));
  }
  fullTextSearch(collection: string, query: TextSearch): Promise<SearchHit[]> {
    return this.#run(() => this.#inner.fullTextSearch(collection, query));
  }
  count(collection: string, filter?: Filter): Promise<number> {
    return this.#run(() => this.#inner.count(collection, filter));
  }
  /** Always asks the store itself: the availability's own pings go through here too. */
  ping(): Promise<void> {
    return this.#inner.ping();
  }
  close(): Promise<void> {
    this.#availability.stop();
    return this.#inner.close();
  }
}
