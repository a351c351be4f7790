/**
 * A queue worker: takes indexing jobs from Redis (BullMQ), does them (work.ts) and completes
 * them. While a job runs BullMQ renews its lock every lockDuration/2; a worker killed mid-job
 * stops renewing, and the stalled-job check of any other worker moves the job back to waiting
 * after at most lockDuration + stalledInterval, so nothing is lost.
 */
import { hostname } from 'node:os';
import { UnrecoverableError, Worker, type Job } from 'bullmq';
import { Embedder } from '../engine/embedder.ts';
import { TesseraError } from '../errors.ts';
import { parseDtype } from '../model/dtype.ts';
import type { ModelRef, VectorStore } from '../store/store.ts';
import { connect, probe, type QueueUrl } from './connection.ts';
import { QUEUE_NAME, type IndexJobData, type IndexJobResult } from './jobs.ts';
import { processJob } from './work.ts';

export interface QueueWorkerOptions {
  queue: QueueUrl;
  store: VectorStore;
  /** Jobs at once (default 1). */
  concurrency?: number;
  /** ONNX Runtime intra-op threads per session. */
  threads?: number;
  /** How long a job's lock lasts without renewal (default 30000). */
  lockMs?: number;
  /** How often stalled jobs are looked for (default 30000). */
  stalledMs?: number;
  /** Times a job may stall (its worker died) before it is failed (default 3). */
  maxStalled?: number;
  /** Shown by --status (default host:pid). */
  name?: string;
  onJob?: (event: { job: string; state: 'completed' | 'failed' | 'stalled'; result?: IndexJobResult; error?: string }) => void;
}

export interface QueueWorker {
  readonly name: string;
  /** Lets running jobs finish, then disconnects and unloads the models. */
  close(): Promise<void>;
}

/** Starts taking jobs; QUEUE_UNAVAILABLE at once when Redis cannot be reached. */
export async function startWorker(options: QueueWorkerOptions): Promise<QueueWorker> {
  await probe(options.queue);
  const name = options.name ?? `${hostname()}:${process.pid}`;
  const embedders = new Map<string, Promise<Embedder>>();
  const embedderFor = (model: ModelRef): Promise<Embedder> => {
    const key = `${model.model}\0${model.dtype}`;
    let found = embedders.get(key);
    if (!found) {
      found = Embedder.load(model.model, { dtype: parseDtype(model.dtype), intraOpThreads: options.threads });
      found.catch(() => embedders.delete(key));
      embedders.set(key, found);
    }
    return found;
  };

  const connection = connect(options.queue, 'worker');
  const worker = new Worker<IndexJobData, IndexJobResult>(
    QUEUE_NAME,
    async (job: Job<IndexJobData, IndexJobResult>, _token?: string, signal?: AbortSignal) => {
      try {
        const result = await processJob(job.data, { store: options.store, embedderFor, worker: name, signal });
        // Done jobs stay in Redis (their ids keep a rerun from adding the work again): without
        // their documents, so that inline images do not sit in Redis's memory for good. The
        // upsert has committed; a second run of this job would find nothing left to do.
        if (job.data.items.length > 0) await job.updateData({ ...job.data, items: [], written: job.data.items.length });
        return result;
      } catch (err) {
        if (err instanceof TesseraError) {
          const message = `${err.message} [${err.code}]`;
          // Retrying cannot bring back a collection or change its model: fail the job now.
          if (err.code === 'COLLECTION_NOT_FOUND' || err.code === 'COLLECTION_MODEL_MISMATCH') throw new UnrecoverableError(message);
          throw new Error(message, { cause: err });
        }
        throw err;
      }
    },
    {
      connection,
      name,
      concurrency: options.concurrency ?? 1,
      lockDuration: options.lockMs ?? 30_000,
      stalledInterval: options.stalledMs ?? 30_000,
      maxStalledCount: options.maxStalled ?? 3,
      autorun: true,
    },
  );
  worker.on('error', () => {}); // connection trouble: ioredis reconnects; jobs fail and retry
  worker.on('completed', (job, result) => options.onJob?.({ job: job.id ?? '', state: 'completed', result }));
  worker.on('failed', (job, err) => options.onJob?.({ job: job?.id ?? '', state: 'failed', error: err.message }));
  // This worker's stalled check found a job whose worker stopped renewing its lock (it died).
  worker.on('stalled', (job) => options.onJob?.({ job, state: 'stalled' }));
  await worker.waitUntilReady();

  return {
    name,
    async close() {
      await worker.close();
      connection.disconnect();
      for (const e of embedders.values()) await e.then((m) => m.close(), () => {});
    },
  };
}
