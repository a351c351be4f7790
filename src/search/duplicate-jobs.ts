/**
 * Duplicate scans as background jobs: a scan reads every document of a collection and runs one
 * neighbour search per document, minutes for a large collection, so the server never runs one
 * inside a request. A job is started, then polled for its progress and the groups found so
 * far; it is kept in this process's memory, within bounds:
 *
 *   - one scan runs at a time (each already keeps several searches in flight); the others
 *     wait in the order they came;
 *   - at most `kept` jobs are held, finished ones included; a new job pushes out the oldest
 *     finished one, and when every held job is queued or running it is QUEUE_FULL;
 *   - a finished job is forgotten `keepMs` after it finished.
 *
 * Jobs live in the process that started them: behind a load balancer, poll the replica that
 * answered the start (or run `tessera duplicates` beside the store).
 */
import { randomUUID } from 'node:crypto';
import { TesseraError } from '../errors.ts';
import type { Modality, VectorStore } from '../store/store.ts';
import { DuplicateScan, type DuplicateGroup, type DuplicateProgress } from './duplicates.ts';

export type DuplicateJobStatus = 'queued' | 'running' | 'done' | 'failed' | 'cancelled';

export interface DuplicateJobLimits {
  /** Jobs held at once, finished ones included. */
  kept: number;
  /** How long a finished job's results are kept (ms). */
  keepMs: number;
}

export const DUPLICATE_JOB_LIMITS: DuplicateJobLimits = { kept: 16, keepMs: 60 * 60 * 1000 };

export interface DuplicateJob {
  readonly id: string;
  readonly collection: string;
  readonly threshold: number;
  readonly modality: Modality | undefined;
  readonly status: DuplicateJobStatus;
  readonly createdAt: Date;
  readonly startedAt: Date | undefined;
  readonly finishedAt: Date | undefined;
  /** Why a failed job failed. */
  readonly error: { code: string; message: string } | undefined;
  readonly progress: DuplicateProgress;
  /** Found so far while it runs; the final groups once done. */
  groups(): DuplicateGroup[];
}

class Job implements DuplicateJob {
  readonly id = randomUUID();
  readonly createdAt = new Date();
  status: DuplicateJobStatus = 'queued';
  startedAt: Date | undefined;
  finishedAt: Date | undefined;
  error: { code: string; message: string } | undefined;
  readonly stop = new AbortController();

  constructor(readonly scan: DuplicateScan) {}

  get collection() {
    return this.scan.collection;
  }
  get threshold() {
    return this.scan.threshold;
  }
  get modality() {
    return this.scan.modality;
  }
  get progress() {
    return this.scan.progress;
  }
  get finished() {
    return this.status === 'done' || this.status === 'failed' || this.status === 'cancelled';
  }
  groups() {
    return this.scan.groups();
  }
}

const notFound = (collection: string, id: string, keepMs: number) =>
  new TesseraError('DUPLICATES_JOB_NOT_FOUND', `no duplicates job ${JSON.stringify(id)} for collection ${JSON.stringify(collection)} on this server: unknown, deleted, expired (results are kept ${Math.round(keepMs / 60_000)} minutes), or started on another replica; start one with POST /v1/collections/${collection}/duplicates`);

export class DuplicateJobs {
  readonly #store: VectorStore;
  readonly #limits: DuplicateJobLimits;
  /** In the order they were started. */
  readonly #jobs = new Map<string, Job>();
  /** The scans, one after another. */
  #chain: Promise<void> = Promise.resolve();
  #closed = false;

  constructor(store: VectorStore, limits: DuplicateJobLimits = DUPLICATE_JOB_LIMITS) {
    this.#store = store;
    this.#limits = limits;
  }

  /** Queues a scan of `collection` (which the caller has checked exists); QUEUE_FULL past the bound. */
  start(collection: string, options: { threshold?: number; modality?: Modality } = {}): DuplicateJob {
    if (this.#closed) throw new TesseraError('SHUTTING_DOWN', 'this server is stopping; retry on another replica');
    this.#expire();
    if (this.#jobs.size >= this.#limits.kept) {
      const oldestFinished = [...this.#jobs.values()].find((j) => j.finished);
      if (!oldestFinished) {
        throw new TesseraError('QUEUE_FULL', `${this.#jobs.size} duplicates jobs are queued or running on this server, the most it holds; wait for one to finish, or DELETE one, and retry`, { headers: { 'retry-after': '10' } });
      }
      this.#jobs.delete(oldestFinished.id);
    }
    const job = new Job(new DuplicateScan(this.#store, collection, options));
    this.#jobs.set(job.id, job);
    this.#chain = this.#chain.then(() => this.#run(job));
    return job;
  }

  /** DUPLICATES_JOB_NOT_FOUND unless `id` is a job of `collection` held here. */
  get(collection: string, id: string): DuplicateJob {
    this.#expire();
    const job = this.#jobs.get(id);
    if (!job || job.collection !== collection) throw notFound(collection, id, this.#limits.keepMs);
    return job;
  }

  /** The collection's jobs, oldest first. */
  list(collection: string): DuplicateJob[] {
    this.#expire();
    return [...this.#jobs.values()].filter((j) => j.collection === collection);
  }

  /** Stops the job if it is queued or running and forgets it; DUPLICATES_JOB_NOT_FOUND. */
  cancel(collection: string, id: string): DuplicateJob {
    const job = this.get(collection, id) as Job;
    this.#jobs.delete(id);
    if (!job.finished) {
      job.status = 'cancelled';
      job.finishedAt = new Date();
      job.stop.abort(new TesseraError('REQUEST_CANCELLED', 'the duplicates job was deleted'));
    }
    return job;
  }

  /** Stops every scan (the server is closing); resolves once none runs. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const job of this.#jobs.values()) {
      if (!job.finished) job.stop.abort(new TesseraError('SHUTTING_DOWN', 'the server stopped'));
    }
    await this.#chain;
  }

  async #run(job: Job): Promise<void> {
    if (job.stop.signal.aborted) {
      // Deleted, or the server closed, while it waited for its turn.
      job.status = 'cancelled';
      job.finishedAt ??= new Date();
      return;
    }
    job.status = 'running';
    job.startedAt = new Date();
    try {
      await job.scan.run(job.stop.signal);
      job.status = 'done';
    } catch (err) {
      if (job.stop.signal.aborted) {
        job.status = 'cancelled';
      } else {
        job.status = 'failed';
        job.error = err instanceof TesseraError ? { code: err.code, message: err.message } : { code: 'INTERNAL_ERROR', message: (err as Error)?.message ?? String(err) };
      }
    } finally {
      job.finishedAt ??= new Date();
    }
  }

  #expire(): void {
    const now = Date.now();
    for (const [id, job] of this.#jobs) {
      if (job.finished && job.finishedAt && now - job.finishedAt.getTime() >= this.#limits.keepMs) this.#jobs.delete(id);
    }
  }
}
