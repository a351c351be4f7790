/**
 * `tessera worker --max-stalled N`: a job may lose its worker N times and is taken again each
 * time; the next loss fails it for good ("stalled more than allowable limit"), so a job that
 * kills every worker that takes it does not go round the fleet forever. Real worker processes
 * on a real redis-server, killed with SIGKILL while they hold the job (its one image is fetched
 * from a server here that never answers, so the job is certainly in hand at the kill).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { parseQueueUrl } from '../../src/queue/connection.ts';
import { closeQueue, openQueue } from '../../src/queue/coordinator.ts';
import { queueStatus } from '../../src/queue/status.ts';
import { tessera } from '../helpers/cli.ts';
import { tempDir } from '../helpers/models.ts';
import { startRedis, type RedisServer } from '../helpers/redis.ts';
import { until as waitUntil } from '../helpers/wait.ts';

const until = (what: string, check: () => Promise<boolean>) => waitUntil(what, check, 60_000, 100);

const ROOT = new URL('../..', import.meta.url).pathname;

let redis: RedisServer;
let images: Server;
let imageBase: string;
/** Requests for the image so far, and who waits for the next one. */
let fetches = 0;
let nextFetch: (() => void) | undefined;

before(async () => {
  redis = await startRedis();
  images = createServer(() => {
    fetches++;
    nextFetch?.();
    // Never answered: the worker holding the job stays inside it until it is killed.
  });
  await new Promise<void>((resolve) => images.listen(0, '127.0.0.1', resolve));
  imageBase = `http://127.0.0.1:${(images.address() as { port: number }).port}`;
});
after(async () => {
  images?.closeAllConnections();
  await new Promise((r) => images?.close(r));
  await redis?.stop();
});

const fetched = () => new Promise<void>((resolve) => (nextFetch = resolve));

function startWorker(store: string, name: string, maxStalled: string): { child: ChildProcess; output: () => string; exited: Promise<NodeJS.Signals | null> } {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), 'worker', '--store', store, '--queue', redis.url, '--name', name, '--lock-ms', '2000', '--stalled-ms', '500', '--max-stalled', maxStalled, '--threads', '1'],
    { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let out = '';
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
  return { child, output: () => out, exited };
}

test('--max-stalled 1: a job that loses its worker once is taken again; losing it a second time fails it', { timeout: 180_000 }, async () => {
  const dir = await tempDir('tessera-stalled-');
  const store = join(dir, 'store');
  const file = join(dir, 'docs.jsonl');
  await writeFile(file, `${JSON.stringify({ id: 'held', image: `${imageBase}/held.png` })}\n`);
  const queued = await tessera(['index', file, '--collection', 'stalled', '--model', 'demo', '--store', store, '--queue', redis.url, '--job-size', '1', '--allow-private-urls', '--json']);
  assert.equal(queued.code, 0, queued.stderr);
  assert.equal(JSON.parse(queued.stdout).jobs, 1);

  const queue = parseQueueUrl(redis.url);
  const q = await openQueue(queue);
  const workers: ReturnType<typeof startWorker>[] = [];
  try {
    // 1. The first worker takes the job and is killed holding it.
    let taken = fetched();
    workers.push(startWorker(store, 'worker-a', '1'));
    await taken;
    workers[0]!.child.kill('SIGKILL');
    assert.equal(await workers[0]!.exited, 'SIGKILL');

    // 2. Its first loss: the next worker's stalled check puts it back and that worker takes it.
    taken = fetched();
    workers.push(startWorker(store, 'worker-b', '1'));
    await taken;
    assert.equal(fetches, 2);
    const [id] = (await q.getRanges(['active'], 0, -1)).filter((j) => j.startsWith('stalled.'));
    assert.ok(id, 'the job is in hand again');
    await until('worker-b to say so', async () => workers[1]!.output().includes(`job ${id} lost its worker (lock expired); queued again`));
    workers[1]!.child.kill('SIGKILL');
    assert.equal(await workers[1]!.exited, 'SIGKILL');

    // 3. Its second loss is one more than --max-stalled 1 allows: failed, not taken again.
    workers.push(startWorker(store, 'worker-c', '1'));
    await until('the job failed', async () => (await queueStatus(q, queue, 'stalled')).jobs.failed === 1);
    const status = await queueStatus(q, queue, 'stalled');
    assert.deepEqual(status.jobs, { total: 1, done: 0, inFlight: 0, waiting: 0, failed: 1 });
    assert.match(status.failedJobs[0]!.reason, /stalled more than allowable limit/);
    assert.equal(fetches, 2, 'nobody took it a third time');
    const shown = await tessera(['index', '--status', '--collection', 'stalled', '--queue', redis.url]);
    assert.match(shown.stdout, /0 done, 0 in flight, 0 waiting, 1 failed/);
  } finally {
    for (const w of workers) w.child.kill('SIGKILL');
    await Promise.all(workers.map((w) => w.exited));
    await closeQueue(q);
  }
});

test('--max-stalled takes a positive integer', async () => {
  for (const bad of ['0', '-1', 'many']) {
    const run = await tessera(['worker', '--queue', redis.url, '--store', await tempDir(), '--max-stalled', bad]);
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stderr, /--max-stalled/);
  }
});
