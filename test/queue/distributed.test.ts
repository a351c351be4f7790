/**
 * Indexing spread over two worker processes that share a PostgreSQL store through a Redis queue.
 * One worker is killed with SIGKILL while both hold a job; the other takes the dead worker's job
 * again once its lock expires and finishes. The collection then holds every document exactly
 * once, with the vectors a local `tessera index` of the same file computes, --status says all is
 * done, and running the coordinator again adds no work. A job that fails as a whole (the store
 * down) is retried with backoff and done once the store is back.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { cosine } from '../../src/engine/vectors.ts';
import { parseQueueUrl } from '../../src/queue/connection.ts';
import { resolveSource } from '../../src/index/sources.ts';
import { closeQueue, enqueueSources, openQueue } from '../../src/queue/coordinator.ts';
import { queueStatus, type QueueStatus } from '../../src/queue/status.ts';
import { openStore } from '../../src/store/open.ts';
import { tessera } from '../helpers/cli.ts';
import { solidImage } from '../helpers/images.ts';
import { tempDir } from '../helpers/models.ts';
import { startPostgres, type PgServer } from '../helpers/postgres.ts';
import { startRedis, type RedisServer } from '../helpers/redis.ts';
import { until as waitUntil } from '../helpers/wait.ts';

const until = (what: string, check: () => Promise<boolean>) => waitUntil(what, check, 120_000, 100);

const ROOT = new URL('../..', import.meta.url).pathname;
const TOTAL = 240;
const JOB_SIZE = 10;
const JOBS = TOTAL / JOB_SIZE;
/** Every job fetches one image this slow, so jobs last long enough to be killed in. */
const IMAGE_DELAY_MS = 700;

let redis: RedisServer;
let pg: PgServer;
let images: Server;
let imageBase: string;

before(async () => {
  [redis, pg] = await Promise.all([startRedis(), startPostgres()]);
  const png = await Promise.all(Array.from({ length: JOBS }, (_, i) => solidImage(20, 20, [(i * 53) % 256, (i * 97) % 256, 200])));
  images = createServer((req, res) => {
    const n = Number(/\/(\d+)\.png$/.exec(req.url ?? '')?.[1]);
    setTimeout(() => {
      if (!png[n]) return res.writeHead(404).end();
      res.writeHead(200, { 'content-type': 'image/png' }).end(png[n]);
    }, IMAGE_DELAY_MS);
  });
  await new Promise<void>((resolve) => images.listen(0, '127.0.0.1', resolve));
  imageBase = `http://127.0.0.1:${(images.address() as { port: number }).port}`;
});
after(async () => {
  await new Promise((r) => images?.close(r));
  await Promise.all([redis?.stop(), pg?.close()]);
});

interface WorkerProcess {
  child: ChildProcess;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function startWorker(store: string, name: string): WorkerProcess {
  // node itself, not ./bin/tessera: SIGKILL must hit the process that holds the job.
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), 'worker', '--store', store, '--queue', redis.url, '--name', name, '--lock-ms', '2000', '--stalled-ms', '1000', '--threads', '1'],
    { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let out = '';
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return { child, output: () => out, exited };
}

test('two workers on PostgreSQL, one killed mid-job: every document stored once, with the local vectors', async () => {
  const dir = await tempDir();
  const url = await pg.createDatabase('queue_two');
  const red = await solidImage(16, 16, [255, 0, 0]);
  const docs: { id: string; text?: string; image?: string; metadata: Record<string, number> }[] = [];
  for (let i = 0; i < TOTAL; i++) {
    const id = `doc-${String(i).padStart(3, '0')}`;
    if (i % JOB_SIZE === 0) docs.push({ id, image: `${imageBase}/${i / JOB_SIZE}.png`, metadata: { i } });
    else if (i % JOB_SIZE === 5) docs.push({ id, image: `data:image/png;base64,${red.toString('base64')}`, metadata: { i } });
    else docs.push({ id, text: `document ${i}: a ${i % 3 === 0 ? 'green' : 'red'} thing`, metadata: { i } });
  }
  const file = join(dir, 'docs.jsonl');
  await writeFile(file, `${docs.map((d) => JSON.stringify(d)).join('\n')}\n`);
  const coordinator = ['index', file, '--collection', 'shared', '--model', 'demo', '--store', url, '--queue', redis.url, '--job-size', String(JOB_SIZE), '--allow-private-urls', '--json'];

  const queued = await tessera(coordinator);
  assert.equal(queued.code, 0, queued.stderr);
  assert.deepEqual(JSON.parse(queued.stdout), { jobs: JOBS, documents: TOTAL, added: JOBS, existing: 0, retried: 0 });

  const queue = parseQueueUrl(redis.url);
  const q = await openQueue(queue);
  const a = startWorker(url, 'worker-a');
  const b = startWorker(url, 'worker-b');
  try {
    // Kill A once it has done a job and both hold one.
    let status: QueueStatus | undefined;
    await until('both workers busy', async () => {
      status = await queueStatus(q, queue, 'shared');
      return status.jobs.inFlight === 2 && status.workers.some((w) => w.name === 'worker-a' && w.jobs >= 1);
    });
    const active = (await q.getRanges(['active'], 0, -1)).filter((id) => id.startsWith('shared.'));
    a.child.kill('SIGKILL');
    assert.deepEqual(await a.exited, { code: null, signal: 'SIGKILL' });
    assert.equal(active.length, 2, `two jobs in flight at the kill: ${active.join(', ')}`);

    await until('every job done', async () => (await queueStatus(q, queue, 'shared')).jobs.done === JOBS);
    const done = await queueStatus(q, queue, 'shared');
    assert.deepEqual(done.jobs, { total: JOBS, done: JOBS, inFlight: 0, waiting: 0, failed: 0 });
    assert.equal(done.documents.failed, 0, JSON.stringify(done.failures));
    // The dead worker's job came back through BullMQ's stalled check and B did it.
    const stalled = [...b.output().matchAll(/job (\S+) lost its worker/g)].map((m) => m[1]!);
    assert.ok(stalled.length >= 1 && stalled.every((id) => active.includes(id)), `stalled ${stalled.join(', ')}; active at the kill ${active.join(', ')}\n${b.output()}`);
    for (const id of stalled) assert.equal((await q.getJob(id))?.returnvalue?.worker, 'worker-b');
    // Workers seen: A gone (with the jobs it finished), B connected.
    const byName = new Map(done.workers.map((w) => [w.name, w]));
    assert.equal(byName.get('worker-a')?.connected, false);
    assert.ok((byName.get('worker-a')?.jobs ?? 0) >= 1);
    assert.equal(byName.get('worker-b')?.connected, true);
    assert.equal(byName.get('worker-a')!.jobs + byName.get('worker-b')!.jobs, JOBS);
    const shown = await tessera(['index', '--status', '--collection', 'shared', '--queue', redis.url]);
    assert.match(shown.stdout, new RegExp(`jobs: ${JOBS} done, 0 in flight, 0 waiting, 0 failed`));
    assert.match(shown.stdout, /worker-a \(gone, \d+ jobs? done\), worker-b \(connected, \d+ jobs? done\)/);

    // Running the coordinator again adds no work.
    const again = await tessera(coordinator);
    assert.deepEqual(JSON.parse(again.stdout), { jobs: JOBS, documents: TOTAL, added: 0, existing: JOBS, retried: 0 });
    assert.equal((await queueStatus(q, queue, 'shared')).jobs.total, JOBS);
  } finally {
    b.child.kill('SIGTERM');
    const exit = await b.exited;
    a.child.kill('SIGKILL');
    await closeQueue(q);
    assert.deepEqual(exit, { code: 0, signal: null }, b.output());
  }

  // The same file indexed here, without the queue, into another collection of the same store.
  const local = await tessera(['index', file, '--collection', 'local', '--model', 'demo', '--store', url, '--allow-private-urls', '--json']);
  assert.equal(local.code, 0, local.stderr);
  assert.equal(JSON.parse(local.stdout).added, TOTAL);

  const store = await openStore(url);
  try {
    assert.equal(await store.count('shared'), TOTAL);
    const ids: string[] = [];
    for await (const page of store.scan('shared', 100)) ids.push(...page.map((r) => r.id));
    assert.equal(ids.length, TOTAL);
    assert.deepEqual([...new Set(ids)].sort(), docs.map((d) => d.id).sort());
    const all = docs.map((d) => d.id);
    const [shared, mine] = await Promise.all([store.get('shared', all, { vectors: true }), store.get('local', all, { vectors: true })]);
    assert.equal(shared.length, TOTAL);
    for (let i = 0; i < TOTAL; i++) {
      const s = shared[i]!;
      const l = mine[i]!;
      assert.equal(s.id, l.id);
      assert.equal(s.hash, l.hash, s.id);
      assert.equal(s.text, l.text, s.id);
      assert.equal(s.image, l.image, s.id);
      assert.equal(s.metadata.i, docs[i]!.metadata.i);
      const c = cosine(s.vector!, l.vector!);
      assert.ok(c > 0.9999, `${s.id}: cosine ${c}`);
    }
  } finally {
    await store.close();
  }
});

test('a job that fails as a whole (the store down) is retried with backoff and done once the store is back', async () => {
  const dir = await tempDir();
  const url = await pg.createDatabase('queue_outage');
  const file = join(dir, 'docs.jsonl');
  await writeFile(file, `${Array.from({ length: 12 }, (_, i) => JSON.stringify({ id: `o${i}`, text: `outage document ${i}` })).join('\n')}\n`);
  // The coordinator creates the collection while the store is up; the jobs then meet an outage.
  const store = await openStore(url);
  try {
    await store.createCollection({ name: 'outage', model: 'demo', dtype: 'fp32', dimensions: 32 });
  } finally {
    await store.close();
  }
  const queue = parseQueueUrl(redis.url);
  const q = await openQueue(queue);
  const w = startWorker(url, 'worker-o');
  try {
    await until('the worker connected', async () => (await queueStatus(q, queue, 'outage')).workers.some((x) => x.name === 'worker-o' && x.connected));
    await pg.stop();
    const summary = await enqueueSources(q, { queue, collection: 'outage', sources: [await resolveSource(file)], sharedFolder: false, jobSize: 6, truncate: false, fetch: { allowPrivate: false }, attempts: 8, backoffMs: 300 });
    assert.equal(summary.added, 2);
    // Both jobs fail on the store and wait for their next attempt.
    await until('a failed attempt', async () => {
      const ids = (await q.getRanges(['delayed'], 0, -1)).filter((id) => id.startsWith('outage.'));
      return ids.length > 0;
    });
    const delayed = (await q.getRanges(['delayed'], 0, -1)).find((id) => id.startsWith('outage.'))!;
    const job = await q.getJob(delayed);
    assert.ok(job && job.attemptsMade >= 1);
    assert.match(job.failedReason, /STORE_UNAVAILABLE/);
    assert.equal((await queueStatus(q, queue, 'outage')).jobs.failed, 0, 'not failed for good');
    await pg.start();
    await until('both jobs done', async () => (await queueStatus(q, queue, 'outage')).jobs.done === 2);
    const s = await queueStatus(q, queue, 'outage');
    assert.deepEqual(s.documents, { added: 12, updated: 0, skipped: 0, failed: 0 });
    assert.ok((await q.getJob(delayed))!.attemptsMade >= 1);
    const after = await openStore(url);
    try {
      assert.equal(await after.count('outage'), 12);
    } finally {
      await after.close();
    }
  } finally {
    w.child.kill('SIGTERM');
    await w.exited;
    await closeQueue(q);
  }
});
