/**
 * The coordinator's side: sources cut into jobs (jobs.ts) and put on the queue. A job whose id is
 * there already (queued, running or done) is left alone, so running the coordinator twice adds
 * no work; one that failed for good is retried, since running it again is what the user asks for.
 */
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { connect, probe, unavailable, type QueueUrl } from './connection.ts';
import { DEFAULT_ATTEMPTS, DEFAULT_BACKOFF_MS, QUEUE_NAME, planJobs, type IndexJobData, type IndexJobResult, type PlanOptions, type PlannedJob } from './jobs.ts';

export interface EnqueueOptions extends PlanOptions {
  queue: QueueUrl;
  attempts?: number;
  backoffMs?: number;
}

export interface EnqueueSummary {
  /** Jobs for these sources in all, and documents in them. */
  jobs: number;
  documents: number;
  /** Newly queued, there already (waiting, running or done), failed ones queued again. */
  added: number;
  existing: number;
  retried: number;
}

const ADD_BATCH = 100;

/** Opens the queue for a command: QUEUE_UNAVAILABLE quickly when Redis is not there. */
export async function openQueue(queue: QueueUrl): Promise<Queue<IndexJobData, IndexJobResult>> {
  await probe(queue);
  const connection = connect(queue, 'cli');
  const q = new Queue<IndexJobData, IndexJobResult>(QUEUE_NAME, { connection });
  q.on('error', () => {});
  connections.set(q, connection);
  return q;
}

const connections = new WeakMap<Queue, Redis>();

/** Closes the queue and its connection (a connection handed to BullMQ stays the caller's to close). */
export async function closeQueue(q: Queue): Promise<void> {
  await q.close().catch(() => {});
  connections.get(q)?.disconnect();
}

export async function enqueueSources(q: Queue<IndexJobData, IndexJobResult>, options: EnqueueOptions): Promise<EnqueueSummary> {
  const summary: EnqueueSummary = { jobs: 0, documents: 0, added: 0, existing: 0, retried: 0 };
  const opts = {
    attempts: options.attempts ?? DEFAULT_ATTEMPTS,
    backoff: { type: 'exponential', delay: options.backoffMs ?? DEFAULT_BACKOFF_MS },
    // Done jobs stay: their ids keep a second run from adding the work again, their results feed --status.
    removeOnComplete: false,
    removeOnFail: false,
  };
  let pending: PlannedJob[] = [];
  const flush = async () => {
    const batch = pending;
    pending = [];
    if (batch.length === 0) return;
    try {
      const states = await Promise.all(batch.map((j) => q.getJobState(j.id)));
      const fresh: PlannedJob[] = [];
      for (let i = 0; i < batch.length; i++) {
        const state = states[i];
        if (state === 'unknown') fresh.push(batch[i]!);
        else if (state === 'failed') {
          await (await q.getJob(batch[i]!.id))?.retry('failed');
          summary.retried++;
        } else summary.existing++;
      }
      if (fresh.length > 0) await q.addBulk(fresh.map((j) => ({ name: 'index', data: j.data, opts: { ...opts, jobId: j.id } })));
      summary.added += fresh.length;
    } catch (err) {
      throw isConnectionError(err) ? unavailable(options.queue, err) : err;
    }
  };
  for await (const job of planJobs(options)) {
    summary.jobs++;
    summary.documents += job.data.items.length;
    pending.push(job);
    if (pending.length >= ADD_BATCH) await flush();
  }
  await flush();
  return summary;
}

/** Errors of a connection that went away (as opposed to a refusal by Redis or BullMQ). */
export function isConnectionError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as NodeJS.ErrnoException).code ?? '';
  return /^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|EHOSTUNREACH|ENOTFOUND)$/.test(code) || /Connection is closed|max retries per request|Stream isn't writeable|connect ETIMEDOUT/i.test(err.message);
}
