/**
 * `tessera index --status`: one collection's jobs across all workers, read from the queue
 * itself (job states, results of done jobs, reasons of failed ones, the workers connected).
 */
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { isConnectionError } from './coordinator.ts';
import { unavailable, type QueueUrl } from './connection.ts';
import type { IndexJobData, IndexJobResult, JobFailure } from './jobs.ts';

export interface QueueStatus {
  collection: string;
  queue: string;
  jobs: { total: number; done: number; inFlight: number; waiting: number; failed: number };
  /** Counts of the done jobs' documents. */
  documents: { added: number; updated: number; skipped: number; failed: number };
  /** Workers connected now, and those that did done jobs. */
  workers: { name: string; connected: boolean; jobs: number }[];
  failedJobs: { id: string; reason: string; attempts: number }[];
  /** Item failures recorded by done jobs (at most `limit`). */
  failures: JobFailure[];
}

const WAITING = ['wait', 'paused', 'prioritized', 'delayed', 'waiting-children'] as const;

export async function queueStatus(q: Queue<IndexJobData, IndexJobResult>, queue: QueueUrl, collection: string, limit = 100): Promise<QueueStatus> {
  try {
    const prefix = `${collection}.`;
    const ids = async (types: readonly string[]) => (await q.getRanges([...types] as never[], 0, -1, true)).filter((id) => id.startsWith(prefix));
    const [done, active, waiting, failed, connected] = await Promise.all([ids(['completed']), ids(['active']), ids(WAITING), ids(['failed']), q.getWorkers()]);
    const client = await q.client;

    const results = await hmget(client, q, done, ['returnvalue']);
    const documents = { added: 0, updated: 0, skipped: 0, failed: 0 };
    const byWorker = new Map<string, number>();
    const failures: JobFailure[] = [];
    for (const [raw] of results) {
      if (raw === null) continue;
      const r = JSON.parse(raw) as IndexJobResult;
      documents.added += r.added;
      documents.updated += r.updated;
      documents.skipped += r.skipped;
      documents.failed += r.failed;
      byWorker.set(r.worker, (byWorker.get(r.worker) ?? 0) + 1);
      for (const f of r.failures) if (failures.length < limit) failures.push(f);
    }
    const names = new Set(connected.map((w) => workerName(w.rawname ?? w.name ?? '')));
    const workers = [...new Set([...names, ...byWorker.keys()])].sort().map((name) => ({ name, connected: names.has(name), jobs: byWorker.get(name) ?? 0 }));
    // Failed jobs are few: read whole, through BullMQ, for their reason and attempts.
    const failedJobs = [];
    for (const id of failed.slice(0, limit)) {
      const job = await q.getJob(id);
      if (job) failedJobs.push({ id, reason: job.failedReason ?? '', attempts: job.attemptsMade });
    }
    // A job moves between lists while they are read: count it once, in the later state.
    const uniqueWaiting = waiting.filter((id) => !done.includes(id) && !active.includes(id));
    const total = new Set([...done, ...active, ...waiting, ...failed]).size;
    return {
      collection,
      queue: queue.shown,
      jobs: { total, done: done.length, inFlight: active.length, waiting: uniqueWaiting.length, failed: failed.length },
      documents,
      workers,
      failedJobs,
      failures,
    };
  } catch (err) {
    throw isConnectionError(err) ? unavailable(queue, err) : err;
  }
}

async function hmget(client: Awaited<Queue['client']>, q: Queue, ids: readonly string[], fields: string[]): Promise<(string | null)[][]> {
  const out: (string | null)[][] = [];
  for (let i = 0; i < ids.length; i += 500) {
    const pipe = (client as unknown as Redis).pipeline();
    for (const id of ids.slice(i, i + 500)) pipe.hmget(q.toKey(id), ...fields);
    for (const [err, value] of (await pipe.exec()) ?? []) {
      if (err) throw err;
      out.push(value as (string | null)[]);
    }
  }
  return out;
}

/** BullMQ names a worker's connection "<prefix>:<queue>:w:<name>". */
function workerName(raw: string): string {
  const at = raw.indexOf(':w:');
  return at < 0 ? raw : raw.slice(at + 3);
}

export function formatStatus(s: QueueStatus): string {
  const lines = [
    `collection ${JSON.stringify(s.collection)} on the queue at ${s.queue}`,
    `jobs: ${s.jobs.done} done, ${s.jobs.inFlight} in flight, ${s.jobs.waiting} waiting, ${s.jobs.failed} failed (${s.jobs.total} in all)`,
    `documents in done jobs: added ${s.documents.added}, updated ${s.documents.updated}, skipped ${s.documents.skipped}, failed ${s.documents.failed}`,
    `workers seen: ${s.workers.length === 0 ? 'none' : s.workers.map((w) => `${w.name} (${w.connected ? 'connected' : 'gone'}, ${w.jobs} job${w.jobs === 1 ? '' : 's'} done)`).join(', ')}`,
  ];
  for (const j of s.failedJobs) lines.push(`failed job ${j.id} after ${j.attempts} attempt${j.attempts === 1 ? '' : 's'}: ${j.reason}`);
  for (const f of s.failures) lines.push(`failed: ${f.message} [${f.code}]`);
  return lines.join('\n');
}
