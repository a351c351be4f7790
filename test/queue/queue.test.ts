/**
 * Indexing through the queue, against a real redis-server: the connection's errors, how sources
 * are cut into jobs (deterministic ids, what is refused), and one real worker process writing to
 * the embedded store, with item failures recorded in job results and whole-job failures shown
 * by --status and requeued by the next coordinator run.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { TesseraError } from '../../src/errors.ts';
import { resolveSource } from '../../src/index/sources.ts';
import { parseQueueUrl, probe } from '../../src/queue/connection.ts';
import { closeQueue, enqueueSources, openQueue } from '../../src/queue/coordinator.ts';
import { planJobs, type PlannedJob } from '../../src/queue/jobs.ts';
import { queueStatus, type QueueStatus } from '../../src/queue/status.ts';
import { openStore } from '../../src/store/open.ts';
import { tessera } from '../helpers/cli.ts';
import { solidImage } from '../helpers/images.ts';
import { tempDir } from '../helpers/models.ts';
import { freePort, startRedis, type RedisServer } from '../helpers/redis.ts';
import { until as waitUntil } from '../helpers/wait.ts';

const until = (what: string, check: () => Promise<boolean>) => waitUntil(what, check, 60_000, 250);

const ROOT = new URL('../..', import.meta.url).pathname;

let redis: RedisServer;
before(async () => {
  redis = await startRedis();
});
after(() => redis.stop());

async function collect(gen: AsyncIterable<PlannedJob>): Promise<PlannedJob[]> {
  const out: PlannedJob[] = [];
  for await (const j of gen) out.push(j);
  return out;
}

const plan = { sharedFolder: false, jobSize: 4, truncate: false, fetch: { allowPrivate: false } };

describe('the queue connection', () => {
  test('an unreachable Redis is QUEUE_UNAVAILABLE, quickly, naming the URL without its password', async () => {
    const port = await freePort();
    const url = parseQueueUrl(`redis://:hunter2secret@127.0.0.1:${port}/0`);
    const t0 = performance.now();
    const err = await probe(url).then(() => undefined, (e: unknown) => e);
    const ms = performance.now() - t0;
    assert.ok(err instanceof TesseraError, String(err));
    assert.equal(err.code, 'QUEUE_UNAVAILABLE');
    assert.match(err.message, new RegExp(`redis://:\\*\\*\\*@127\\.0\\.0\\.1:${port}/0`));
    assert.doesNotMatch(err.message, /hunter2secret/);
    assert.ok(ms < 4000, `took ${ms} ms`);
  });

  test('an address that drops packets times out within the connect timeout', async () => {
    // 10.255.255.1 is not routed here: the SYN goes unanswered, as with a firewalled Redis.
    const t0 = performance.now();
    const err = await probe(parseQueueUrl('redis://10.255.255.1:6379')).then(() => undefined, (e: unknown) => e);
    const ms = performance.now() - t0;
    assert.ok(err instanceof TesseraError && err.code === 'QUEUE_UNAVAILABLE', String(err));
    assert.ok(ms < 6000, `took ${ms} ms`);
  });

  test('the CLI reports QUEUE_UNAVAILABLE for index --queue, --status and worker, quickly', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'docs.jsonl'), '{"id":"a","text":"red"}\n');
    const url = `redis://:pw-not-shown@127.0.0.1:${await freePort()}`;
    for (const args of [
      ['index', join(dir, 'docs.jsonl'), '--collection', 'c', '--model', 'demo', '--store', join(dir, 'store'), '--queue', url],
      ['index', '--status', '--collection', 'c', '--queue', url],
      ['worker', '--store', join(dir, 'store'), '--queue', url],
    ]) {
      const t0 = performance.now();
      const run = await tessera(args);
      const ms = performance.now() - t0;
      assert.equal(run.code, 1, run.stderr);
      assert.match(run.stderr, /cannot reach the job queue at redis:\/\/:\*\*\*@127\.0\.0\.1:\d+/);
      assert.doesNotMatch(run.stderr, /pw-not-shown/);
      assert.ok(ms < 10_000, `${args[0]} took ${ms} ms`);
    }
  });

  test('--queue must be a redis URL', async () => {
    assert.throws(() => parseQueueUrl('http://x'), (e: unknown) => e instanceof TesseraError && e.code === 'INVALID_ARGUMENT');
    assert.throws(() => parseQueueUrl(''), /--queue URL is required/);
  });
});

describe('cutting sources into jobs', () => {
  test('chunks of --job-size with ids fixed by collection, source, chunk and content', async () => {
    const dir = await tempDir();
    const file = join(dir, 'docs.jsonl');
    const lines = Array.from({ length: 10 }, (_, i) => JSON.stringify({ id: `d${i}`, text: `text ${i}` }));
    await writeFile(file, `${lines.join('\n')}\n{not json\n${JSON.stringify({ id: 'd3', text: 'again' })}\n`);
    const sources = [await resolveSource(file)];
    const a = await collect(planJobs({ ...plan, collection: 'c', sources }));
    const b = await collect(planJobs({ ...plan, collection: 'c', sources }));
    assert.deepEqual(a.map((j) => j.data.items.length), [4, 4, 4]);
    assert.deepEqual(a.map((j) => j.id), b.map((j) => j.id));
    assert.equal(new Set(a.map((j) => j.id)).size, 3);
    assert.ok(a.every((j) => j.id.startsWith('c.')));
    const bad = a.flatMap((j) => j.data.items.filter((i) => i.kind === 'bad'));
    assert.deepEqual(bad.map((i) => i.kind === 'bad' && i.code), ['DOCUMENT_INVALID', 'DOCUMENT_ID_DUPLICATE']);
    // Another collection, or changed content, gives other ids; unchanged chunks keep theirs.
    const other = await collect(planJobs({ ...plan, collection: 'd', sources }));
    assert.ok(other.every((j, i) => j.id !== a[i]!.id));
    lines[9] = JSON.stringify({ id: 'd9', text: 'changed' });
    await writeFile(file, `${lines.join('\n')}\n`);
    const changed = await collect(planJobs({ ...plan, collection: 'c', sources }));
    assert.equal(changed[0]!.id, a[0]!.id);
    assert.equal(changed[1]!.id, a[1]!.id);
    assert.notEqual(changed[2]!.id, a[2]!.id);
  });

  test('a folder, or a JSONL naming local files, is refused without --shared-folder', async () => {
    const dir = await tempDir();
    await mkdir(join(dir, 'pics'));
    await writeFile(join(dir, 'pics', 'a.png'), await solidImage(8, 8, [255, 0, 0]));
    await writeFile(join(dir, 'docs.jsonl'), `${JSON.stringify({ id: 'p', image: 'pics/a.png' })}\n`);
    const folder = [await resolveSource(join(dir, 'pics'))];
    await assert.rejects(collect(planJobs({ ...plan, collection: 'c', sources: folder })), (e: unknown) => e instanceof TesseraError && e.code === 'INVALID_ARGUMENT' && /is a folder on this machine.*--shared-folder/.test(e.message));
    const jsonl = [await resolveSource(join(dir, 'docs.jsonl'))];
    await assert.rejects(collect(planJobs({ ...plan, collection: 'c', sources: jsonl })), (e: unknown) => e instanceof TesseraError && e.code === 'INVALID_ARGUMENT' && e.message.includes(join(dir, 'pics', 'a.png')));
    // Shared: the folder's files and the JSONL's relative path travel as absolute paths.
    const shared = await collect(planJobs({ ...plan, sharedFolder: true, collection: 'c', sources: [...folder, ...jsonl] }));
    const items = shared.flatMap((j) => j.data.items);
    assert.deepEqual(items.map((i) => (i.kind === 'file' ? i.path : i.kind === 'input' && 'image' in i.input ? i.input.image : '')), [join(dir, 'pics', 'a.png'), join(dir, 'pics', 'a.png')]);
    assert.ok(shared.every((j) => j.data.allowPaths));

    const run = await tessera(['index', join(dir, 'pics'), '--collection', 'c', '--model', 'demo', '--store', join(dir, 'store'), '--queue', redis.url]);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /is a folder on this machine, which workers elsewhere cannot read; give --shared-folder/);
  });
});

function startWorker(store: string, name: string): { child: ChildProcess; output: () => string; exited: Promise<number | null> } {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), 'worker', '--store', store, '--queue', redis.url, '--name', name, '--lock-ms', '2000', '--stalled-ms', '1000'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
  let out = '';
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, output: () => out, exited };
}

async function statusOf(collection: string): Promise<QueueStatus> {
  const run = await tessera(['index', '--status', '--collection', collection, '--queue', redis.url, '--json']);
  assert.equal(run.code, 0, run.stderr);
  return JSON.parse(run.stdout) as QueueStatus;
}

describe('one worker process and the embedded store', () => {
  test('jobs are done, item failures recorded, a rerun adds nothing, failed jobs shown and requeued', async () => {
    const dir = await tempDir();
    const store = join(dir, 'store');
    const red = await solidImage(16, 16, [255, 0, 0]);
    const docs: object[] = [];
    for (let i = 0; i < 30; i++) docs.push({ id: `t${i}`, text: `a note about the colour ${i % 2 ? 'red' : 'blue'} number ${i}`, metadata: { n: i } });
    for (let i = 0; i < 3; i++) docs.push({ id: `img${i}`, image: `data:image/png;base64,${red.toString('base64')}` });
    docs.push({ id: 'broken', image: 'data:image/png;base64,AAAAAAAAAAAA' });
    docs.push({ id: 'blocked', image: 'http://127.0.0.1:9/x.png' });
    const file = join(dir, 'docs.jsonl');
    await writeFile(file, `${docs.map((d) => JSON.stringify(d)).join('\n')}\nnot json\n`);

    const first = await tessera(['index', file, '--collection', 'one', '--model', 'demo', '--store', store, '--queue', redis.url, '--job-size', '8', '--json']);
    assert.equal(first.code, 0, first.stderr);
    assert.deepEqual(JSON.parse(first.stdout), { jobs: 5, documents: 36, added: 5, existing: 0, retried: 0 });
    const queued = await statusOf('one');
    assert.deepEqual(queued.jobs, { total: 5, done: 0, inFlight: 0, waiting: 5, failed: 0 });

    const w = startWorker(store, 'solo');
    try {
      await until('all jobs done', async () => (await statusOf('one')).jobs.done === 5);
      const s = await statusOf('one');
      assert.deepEqual(s.jobs, { total: 5, done: 5, inFlight: 0, waiting: 0, failed: 0 });
      assert.deepEqual(s.documents, { added: 33, updated: 0, skipped: 0, failed: 3 });
      assert.deepEqual(s.failures.map((f) => [f.item, f.code]).sort(), [
        ['blocked', 'IMAGE_URL_BLOCKED'],
        ['broken', 'IMAGE_UNDECODABLE'],
        [`${file} line 36`, 'DOCUMENT_INVALID'],
      ].sort());
      assert.deepEqual(s.workers, [{ name: 'solo', connected: true, jobs: 5 }]);
      const text = await tessera(['index', '--status', '--collection', 'one', '--queue', redis.url]);
      assert.match(text.stdout, /jobs: 5 done, 0 in flight, 0 waiting, 0 failed \(5 in all\)/);
      assert.match(text.stdout, /workers seen: solo \(connected, 5 jobs done\)/);

      const opened = await openStore(store);
      try {
        assert.equal(await opened.count('one'), 33);
      } finally {
        await opened.close();
      }
      // The same run again: every job is there already, nothing is added.
      const again = await tessera(['index', file, '--collection', 'one', '--store', store, '--queue', redis.url, '--job-size', '8', '--json']);
      assert.deepEqual(JSON.parse(again.stdout), { jobs: 5, documents: 36, added: 0, existing: 5, retried: 0 });
      assert.equal((await statusOf('one')).jobs.total, 5);

      // A job whose collection is gone fails at once, with its reason; re-running requeues it.
      const q = await openQueue(parseQueueUrl(redis.url));
      try {
        const two = join(dir, 'two.jsonl');
        await writeFile(two, `${JSON.stringify({ id: 'x', text: 'lonely' })}\n`);
        const src = [await resolveSource(two)];
        // Enqueued for a collection that does not exist (as if dropped after the coordinator ran).
        await enqueueSources(q, { ...plan, queue: parseQueueUrl(redis.url), collection: 'ghost', sources: src });
        await until('the ghost job failed', async () => (await queueStatus(q, parseQueueUrl(redis.url), 'ghost')).jobs.failed === 1);
        const ghost = await queueStatus(q, parseQueueUrl(redis.url), 'ghost');
        assert.match(ghost.failedJobs[0]!.reason, /no collection "ghost".*\[COLLECTION_NOT_FOUND\]/);
        assert.equal(ghost.failedJobs[0]!.attempts, 1, 'not retried: retrying cannot help');
        const created = await tessera(['index', two, '--collection', 'ghost', '--model', 'demo', '--store', store, '--queue', redis.url, '--job-size', '4', '--json']);
        assert.deepEqual(JSON.parse(created.stdout), { jobs: 1, documents: 1, added: 0, existing: 0, retried: 1 });
        await until('the ghost job done', async () => (await queueStatus(q, parseQueueUrl(redis.url), 'ghost')).jobs.done === 1);
      } finally {
        await closeQueue(q);
      }

      // A folder on shared storage: files travel as absolute paths; a changed file makes a new job,
      // in which the worker skips the unchanged files by size and mtime and updates the changed one.
      const pics = join(dir, 'pics');
      await mkdir(pics);
      await writeFile(join(pics, 'a.png'), red);
      await writeFile(join(pics, 'b.png'), await solidImage(16, 16, [0, 0, 255]));
      await writeFile(join(pics, 'note.txt'), 'a red square');
      const folderArgs = ['index', pics, '--collection', 'files', '--model', 'demo', '--store', store, '--queue', redis.url, '--shared-folder', '--json'];
      assert.deepEqual(JSON.parse((await tessera(folderArgs)).stdout), { jobs: 1, documents: 3, added: 1, existing: 0, retried: 0 });
      await until('the folder job done', async () => (await statusOf('files')).jobs.done === 1);
      assert.deepEqual((await statusOf('files')).documents, { added: 3, updated: 0, skipped: 0, failed: 0 });
      await writeFile(join(pics, 'note.txt'), 'a blue square, longer now');
      assert.deepEqual(JSON.parse((await tessera(folderArgs)).stdout), { jobs: 1, documents: 3, added: 1, existing: 0, retried: 0 });
      await until('the second folder job done', async () => (await statusOf('files')).jobs.done === 2);
      assert.deepEqual((await statusOf('files')).documents, { added: 3, updated: 1, skipped: 2, failed: 0 });
      const search = await tessera(['search', 'blue', '--collection', 'files', '--store', store, '--json']);
      assert.equal(search.code, 0, search.stderr);
      assert.ok(search.stdout.includes('a blue square, longer now'), search.stdout);
    } finally {
      w.child.kill('SIGTERM');
      assert.equal(await w.exited, 0, w.output());
    }
  });
});
