/**
 * Measures the job queues indexing could run on, and indexing through the chosen one.
 *
 *   node --import tsx scripts/measure-queue.ts [--jobs 2000] [--docs 2000] [--out docs/measurements/queue.json]
 *
 * 1. Small jobs ({i}) through BullMQ on a redis-server and through pg-boss 10 on PostgreSQL 15,
 *    both started here (test/helpers): enqueue throughput (batches of 100), then take + complete
 *    throughput with 16 jobs at once, then the time a killed worker's job takes to be taken again
 *    (a child process takes one job and is SIGKILLed; lock / expiry 2 s, checks every 1 s for
 *    both). pg-boss is not a dependency of tessera: it is loaded from PGBOSS_DIR (default
 *    /tmp/qmeasure, made by `npm install pg-boss@10` there); when it cannot load or run, the
 *    JSON says why.
 * 2. `tessera index --queue` of a JSONL (texts and data-URI images, the demo model, a PostgreSQL
 *    store) with 1 and with 2 `tessera worker` processes, against the local pipeline in one
 *    process. Workers are started and idle before the jobs are queued; the time runs from
 *    queueing to the last job done.
 *
 * Prints a table and writes JSON with the CPU model: compare figures within one run only.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { startPostgres } from '../test/helpers/postgres.ts';
import { startRedis } from '../test/helpers/redis.ts';

const ROOT = new URL('..', import.meta.url).pathname;
const LOCK_MS = 2000;
const CHECK_MS = 1000;
const connections: Redis[] = [];

if (process.argv[2] === '--child') await child(process.argv[3]!, process.argv[4]!, process.argv[5]!);
else await measure();

/** The worker that is killed: takes one job, says so on stdout, and hangs on to it. */
async function child(kind: string, url: string, queueName: string): Promise<void> {
  if (kind === 'bullmq') {
    new Worker(queueName, async (job) => {
      process.stdout.write(`took ${job.id}\n`);
      await new Promise(() => {});
    }, { connection: new Redis(url, { maxRetriesPerRequest: null }), lockDuration: LOCK_MS, stalledInterval: CHECK_MS, autorun: true });
  } else {
    const { default: PgBoss } = await import(pgBossPath());
    const boss = new PgBoss({ connectionString: url, supervise: false, schedule: false });
    await boss.start();
    await boss.work(queueName, { pollingIntervalSeconds: 0.5, batchSize: 1 }, async (jobs: { id: string }[]) => {
      process.stdout.write(`took ${jobs[0]!.id}\n`);
      await new Promise(() => {});
    });
  }
}

function pgBossPath(): string {
  return join(process.env.PGBOSS_DIR ?? '/tmp/qmeasure', 'node_modules/pg-boss/src/index.js');
}

interface QueueFigures {
  queue: string;
  version: string;
  backend: string;
  jobs: number;
  enqueuePerSecond: number;
  takeCompletePerSecond: number;
  /** From SIGKILL of the worker holding a job to another worker starting it. */
  killedJobRetakenMs: number;
  /** pg-boss only: fetch + complete in a loop, without work()'s polling pause. */
  takeCompleteFetchLoopPerSecond?: number;
  settings: string;
}

async function measure(): Promise<void> {
  const { values } = parseArgs({ options: { jobs: { type: 'string', default: '2000' }, docs: { type: 'string', default: '2000' }, out: { type: 'string', default: join(ROOT, 'docs/measurements/queue.json') } } });
  const jobs = Number(values.jobs);
  const cpu = lscpu();
  console.log(`CPU: ${cpu.model} (${cpu.cores} cores)`);
  const [redis, pg] = await Promise.all([startRedis(), startPostgres()]);
  const result: Record<string, unknown> = { date: new Date().toISOString(), cpu, node: process.version };
  try {
    const queues: (QueueFigures | { queue: string; error: string })[] = [];
    queues.push(await measureBullmq(redis.url, jobs));
    try {
      queues.push(await measurePgBoss(await pg.createDatabase('boss'), jobs));
    } catch (err) {
      queues.push({ queue: 'pg-boss', error: `could not run here: ${(err as Error).message}` });
    }
    result.queues = queues;
    console.table(queues);
    const [bull, boss] = queues as QueueFigures[];
    result.choice =
      `BullMQ on Redis. Taking and completing small jobs: ${bull!.takeCompletePerSecond}/s against pg-boss ${boss?.takeCompletePerSecond ?? '?'}/s through work() ` +
      `(each work() loop pauses pollingIntervalSeconds, at least 0.5 s, between fetches) or ${boss?.takeCompleteFetchLoopPerSecond ?? '?'}/s with a hand-written fetch/complete loop. ` +
      `A killed worker's job came back in ${bull!.killedJobRetakenMs} ms against ${boss?.killedJobRetakenMs ?? '?'} ms at the same settings (2 s lock or expiry, checks every 1 s): both are bounded by the lock plus one check. ` +
      'BullMQ also renews locks while a job runs (no expiry to size against the slowest job), lists the connected workers (getWorkers) and retries with backoff; ' +
      'pg-boss 10 is the last line that runs on Node 20 (11 and 12 need Node 22). The cost is one more server (Redis) beside the store\'s PostgreSQL.';
    console.log(result.choice);
    const indexing = await measureIndexing(redis.url, await pg.createDatabase('indexing'), Number(values.docs));
    result.indexing = indexing;
    console.table(indexing.runs);
  } finally {
    await Promise.all([redis.stop(), pg.close()]);
  }
  mkdirSync(dirname(values.out!), { recursive: true });
  writeFileSync(values.out!, `${JSON.stringify(result, null, 2)}\n`);
  console.log(`wrote ${values.out}`);
}

function lscpu(): { model: string; cores: number; flags: string } {
  const out = execFileSync('lscpu', { encoding: 'utf8' });
  const model = /Model name:\s*(.+)/.exec(out)?.[1]?.trim() ?? cpus()[0]?.model ?? 'unknown';
  const flags = /Flags:\s*(.+)/.exec(out)?.[1] ?? '';
  const simd = ['avx2', 'avx512f', 'avx512_vnni', 'amx_tile'].filter((f) => flags.split(' ').includes(f)).join(' ');
  return { model, cores: cpus().length, flags: simd };
}

function killedChild(kind: string, url: string, queueName: string): { proc: ChildProcess; took: Promise<string> } {
  const proc = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'scripts/measure-queue.ts'), '--child', kind, url, queueName], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  const took = new Promise<string>((resolve, reject) => {
    let out = '';
    proc.stdout!.on('data', (d) => {
      out += d;
      const m = /took (\S+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    proc.on('exit', (code) => reject(new Error(`child exited ${code}`)));
  });
  return { proc, took };
}

function redisClient(url: string): Redis {
  const c = new Redis(url, { maxRetriesPerRequest: null });
  c.on('error', () => {});
  connections.push(c);
  return c;
}

async function measureBullmq(url: string, n: number): Promise<QueueFigures> {
  const connection = redisClient(url);
  const name = 'bench';
  const queue = new Queue(name, { connection });
  let t0 = performance.now();
  for (let i = 0; i < n; i += 100) await queue.addBulk(Array.from({ length: Math.min(100, n - i) }, (_, k) => ({ name: 'j', data: { i: i + k }, opts: { jobId: `j${i + k}` } })));
  const enqueueMs = performance.now() - t0;
  t0 = performance.now();
  let done = 0;
  let allDone: () => void;
  const finished = new Promise<void>((resolve) => (allDone = resolve));
  const worker = new Worker(name, async () => {
    if (++done === n) setImmediate(allDone);
  }, { connection: redisClient(url), concurrency: 16 });
  await finished;
  const processMs = performance.now() - t0;
  await worker.close();

  // A killed worker's job: the child takes it, is killed, our worker's stalled check hands it back.
  const stallName = 'stall';
  const stallQueue = new Queue(stallName, { connection });
  await stallQueue.add('j', { x: 1 }, { jobId: 'victim' });
  const { proc, took } = killedChild('bullmq', url, stallName);
  await took;
  let retaken: (ms: number) => void;
  const again = new Promise<number>((r) => (retaken = r));
  let killedAt = 0;
  const rescuer = new Worker(stallName, async () => retaken(performance.now() - killedAt), { connection: redisClient(url), lockDuration: LOCK_MS, stalledInterval: CHECK_MS });
  killedAt = performance.now();
  proc.kill('SIGKILL');
  const killedMs = await again;
  await rescuer.close();
  await stallQueue.close();
  await queue.close();
  for (const c of connections.splice(0)) c.disconnect();
  const { version } = (await import('bullmq/package.json', { with: { type: 'json' } })).default as { version: string };
  return {
    queue: 'bullmq',
    version,
    backend: `redis-server ${execFileSync('redis-server', ['--version'], { encoding: 'utf8' }).match(/v=(\S+)/)?.[1]}`,
    jobs: n,
    enqueuePerSecond: Math.round((n / enqueueMs) * 1000),
    takeCompletePerSecond: Math.round((n / processMs) * 1000),
    killedJobRetakenMs: Math.round(killedMs),
    settings: `addBulk of 100; worker concurrency 16; lockDuration ${LOCK_MS} ms, stalledInterval ${CHECK_MS} ms`,
  };
}

async function measurePgBoss(url: string, n: number): Promise<QueueFigures> {
  const { default: PgBoss } = await import(pgBossPath());
  const version = (await import(join(dirname(pgBossPath()), '../package.json'), { with: { type: 'json' } })).default.version as string;
  const boss = new PgBoss({ connectionString: url, maintenanceIntervalSeconds: 1, monitorStateIntervalSeconds: 1 });
  boss.on('error', () => {});
  await boss.start();
  const name = 'bench';
  await boss.createQueue(name);
  let t0 = performance.now();
  for (let i = 0; i < n; i += 100) await boss.insert(Array.from({ length: Math.min(100, n - i) }, (_, k) => ({ name, data: { i: i + k } })));
  const enqueueMs = performance.now() - t0;
  t0 = performance.now();
  let done = 0;
  let finish: () => void;
  const finished = new Promise<void>((r) => (finish = r));
  // 16 at once, as with BullMQ: batches of 16 per fetch, the shortest polling interval (0.5 s).
  await boss.work(name, { batchSize: 16, pollingIntervalSeconds: 0.5 }, async (batch: unknown[]) => {
    done += batch.length;
    if (done >= n) finish();
  });
  await finished;
  const processMs = performance.now() - t0;
  await boss.offWork(name);
  // Without work()'s polling pause: fetch 16, complete them, again, as fast as the database goes.
  for (let i = 0; i < n; i += 100) await boss.insert(Array.from({ length: Math.min(100, n - i) }, (_, k) => ({ name, data: { i: i + k } })));
  t0 = performance.now();
  for (let got = 0; got < n; ) {
    const batch = (await boss.fetch(name, { batchSize: 16 })) as { id: string }[];
    if (batch.length === 0) continue;
    await boss.complete(name, batch.map((j) => j.id));
    got += batch.length;
  }
  const loopMs = performance.now() - t0;

  const stallName = 'stall';
  await boss.createQueue(stallName, { retryLimit: 3, retryDelay: 0, expireInSeconds: LOCK_MS / 1000 });
  await boss.send(stallName, { x: 1 }, { retryLimit: 3, retryDelay: 0, expireInSeconds: LOCK_MS / 1000 });
  const { proc, took } = killedChild('pg-boss', url, stallName);
  await took;
  const killedAt = performance.now();
  proc.kill('SIGKILL');
  let retaken: (ms: number) => void;
  const again = new Promise<number>((r) => (retaken = r));
  await boss.work(stallName, { pollingIntervalSeconds: 0.5 }, async () => retaken(performance.now() - killedAt));
  const killedMs = await Promise.race([again, new Promise<number>((_, reject) => setTimeout(() => reject(new Error('the killed job was not taken again within 120 s')), 120_000))]);
  await boss.stop({ graceful: false, wait: true });
  return {
    queue: 'pg-boss',
    version,
    backend: 'PostgreSQL 15',
    jobs: n,
    enqueuePerSecond: Math.round((n / enqueueMs) * 1000),
    takeCompletePerSecond: Math.round((n / processMs) * 1000),
    takeCompleteFetchLoopPerSecond: Math.round((n / loopMs) * 1000),
    killedJobRetakenMs: Math.round(killedMs),
    settings: `insert of 100; work batchSize 16, pollingIntervalSeconds 0.5 (its minimum; work() waits that long between fetches, which bounds it to 32 jobs/s); fetch loop: fetch 16 + complete; expireInSeconds ${LOCK_MS / 1000}, maintenanceIntervalSeconds ${CHECK_MS / 1000} (minimums: 1 s)`,
  };
}

interface IndexRun {
  mode: string;
  documents: number;
  seconds: number;
  documentsPerSecond: number;
}

async function measureIndexing(redisUrl: string, storeUrl: string, n: number): Promise<{ model: string; jobSize: number; runs: IndexRun[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-measure-'));
  const { solidImage } = await import('../test/helpers/images.ts');
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    if (i % 8 === 0) {
      const png = await solidImage(32, 32, [(i * 37) % 256, (i * 91) % 256, (i * 13) % 256]);
      lines.push(JSON.stringify({ id: `d${i}`, image: `data:image/png;base64,${png.toString('base64')}` }));
    } else lines.push(JSON.stringify({ id: `d${i}`, text: `document ${i}: a ${['red', 'green', 'blue'][i % 3]} thing among many, number ${i}` }));
  }
  const file = join(dir, 'docs.jsonl');
  writeFileSync(file, `${lines.join('\n')}\n`);
  const runs: IndexRun[] = [];
  try {
    // The local pipeline, one process; its time from the progress callback's first to the end.
    const local = await cli(['index', file, '--collection', 'local', '--model', 'demo', '--store', storeUrl, '--json']);
    runs.push({ mode: 'local pipeline (one process, incl. ~2 s start and model load)', documents: n, seconds: local.seconds, documentsPerSecond: Math.round(n / local.seconds) });
    for (const [workers, threads] of [[1, undefined], [2, undefined], [2, 1]] as const) {
      const collection = `queued${workers}t${threads ?? 'all'}`;
      // Create the collection first (the coordinator loads the model for that), then queue.
      const { Queue: Q } = await import('bullmq');
      const procs = Array.from({ length: workers }, (_, i) => spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), 'worker', '--store', storeUrl, '--queue', redisUrl, '--name', `w${i}`, ...(threads ? ['--threads', String(threads)] : [])], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] }));
      const connection = redisClient(redisUrl);
      const q = new Q('tessera-index', { connection });
      try {
        while ((await q.getWorkers()).length < workers) await new Promise((r) => setTimeout(r, 100));
        const t0 = performance.now();
        const queued = await cli(['index', file, '--collection', collection, '--model', 'demo', '--store', storeUrl, '--queue', redisUrl, '--json']);
        const { jobs } = JSON.parse(queued.stdout) as { jobs: number };
        for (;;) {
          const ids = (await q.getRanges(['completed'], 0, -1)).filter((id) => id.startsWith(`${collection}.`));
          if (ids.length >= jobs) break;
          await new Promise((r) => setTimeout(r, 50));
        }
        const seconds = (performance.now() - t0) / 1000;
        runs.push({ mode: `queue, ${workers} worker${workers > 1 ? 's' : ''}${threads ? `, --threads ${threads} each` : ''} (incl. coordinator: ~2 s start, model load, ${queued.seconds.toFixed(1)} s in all)`, documents: n, seconds: round(seconds), documentsPerSecond: Math.round(n / seconds) });
      } finally {
        for (const p of procs) p.kill('SIGTERM');
        await Promise.all(procs.map((p) => new Promise((r) => (p.exitCode === null ? p.on('exit', r) : r(null)))));
        await q.close();
        connection.disconnect();
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return { model: 'demo (forged, 32-dimensional)', jobSize: 128, runs };
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}

function cli(args: string[]): Promise<{ stdout: string; seconds: number }> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('exit', (code) => (code === 0 ? resolve({ stdout, seconds: round((performance.now() - t0) / 1000) }) : reject(new Error(`tessera ${args.join(' ')}: ${code}\n${stderr}`))));
  });
}
