// Scale-out as a user deploys it: two `tessera serve` replicas and two `tessera worker`s
// sharing one PostgreSQL store, a Redis queue, and HAProxy running deploy/haproxy.cfg as
// shipped in front of the replicas. Real processes, real servers.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { after, before, describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { COLOURS as KNOWN } from '../../src/forge/colour.ts';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startHaproxy, startReplica, type LoadBalancer, type Replica } from '../helpers/haproxy.ts';
import { startPostgres, type PgServer } from '../helpers/postgres.ts';
import { startRedis, type RedisServer } from '../helpers/redis.ts';
import { tessera } from '../helpers/cli.ts';
import { tempDir } from '../helpers/models.ts';

async function post(url: string, body: unknown): Promise<{ status: number; json: any }> {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: response.status, json: await response.json() };
}

// The words the demo (colour) model knows: every query embeds to a meaningful vector.
const COLOURS = KNOWN.map((c) => c.name);

describe('two replicas and two workers on one PostgreSQL store, behind HAProxy', () => {
  let pg: PgServer;
  let redis: RedisServer;
  let store: string;
  let replicas: Replica[];
  let workers: ChildProcess[];
  let lb: LoadBalancer;

  before(async () => {
    [pg, redis] = await Promise.all([startPostgres(), startRedis()]);
    store = await pg.createDatabase();
    replicas = [await startReplica(store), await startReplica(store)];
    workers = [1, 2].map((n) => spawn('./bin/tessera', ['worker', '--store', store, '--queue', redis.url, '--name', `worker-${n}`, '--threads', '1'], { stdio: 'ignore' }));
    lb = await startHaproxy(replicas);
  });

  after(async () => {
    for (const r of replicas ?? []) r.child.kill('SIGTERM');
    await Promise.all([lb?.stop(), ...(replicas ?? []).map((r) => r.exited), ...(workers ?? []).map((w) => (w.kill('SIGTERM'), once(w, 'exit')))]);
    await Promise.all([pg?.close(), redis?.stop()]);
  });

  test('documents indexed by the workers through the queue are found through both replicas', async () => {
    const dir = await tempDir('tessera-replica-docs-');
    const file = join(dir, 'docs.jsonl');
    const documents = Array.from({ length: 60 }, (_, i) => ({ id: `w-${i}`, text: `a ${COLOURS[i % COLOURS.length]} thing number ${i}` }));
    await writeFile(file, documents.map((d) => JSON.stringify(d)).join('\n') + '\n');
    const queued = await tessera(['index', file, '--collection', 'from-workers', '--model', 'demo', '--store', store, '--queue', redis.url, '--job-size', '10']);
    assert.equal(queued.code, 0, queued.stderr);
    const deadline = Date.now() + 90_000;
    let status: { jobs: { done: number; total: number; failed: number }; workers: { name: string; connected: boolean }[] };
    do {
      assert.ok(Date.now() < deadline, 'the workers did not finish the 6 jobs');
      const run = await tessera(['index', '--status', '--collection', 'from-workers', '--queue', redis.url, '--json']);
      assert.equal(run.code, 0, run.stderr);
      status = JSON.parse(run.stdout);
    } while (status.jobs.done < 6);
    assert.deepEqual([status.jobs.total, status.jobs.failed], [6, 0]);
    assert.deepEqual(status.workers.filter((w) => w.connected).map((w) => w.name).sort(), ['worker-1', 'worker-2']);
    const count = async (url: string) => ((await (await fetch(`${url}/v1/collections`)).json()) as { data: { name: string; count: number }[] }).data.find((c) => c.name === 'from-workers')?.count;
    assert.deepEqual(await Promise.all(replicas.map((r) => count(r.url))), [60, 60]);
    const [a, b] = await Promise.all(replicas.map((r) => post(`${r.url}/v1/collections/from-workers/search`, { query: 'a blue thing', k: 5 })));
    assert.equal(a!.status, 200, JSON.stringify(a!.json));
    assert.deepEqual(a!.json.data, b!.json.data);
    assert.ok(a!.json.data.every((h: { text: string }) => h.text.includes('blue')), JSON.stringify(a!.json.data));
  });

  test('what is written through one replica is found through the other', async () => {
    const [a, b] = replicas;
    assert.equal((await post(`${a!.url}/v1/collections`, { name: 'shared' })).status, 200);
    const documents = COLOURS.map((c, i) => ({ id: `doc-${i}`, text: `a ${c} thing`, metadata: { colour: c, n: i } }));
    const written = await post(`${a!.url}/v1/collections/shared/documents`, { documents });
    assert.equal(written.status, 200, JSON.stringify(written.json));
    assert.equal(written.json.added, COLOURS.length);
    const listed = (await (await fetch(`${b!.url}/v1/collections`)).json()) as { data: { name: string; count: number }[] };
    assert.deepEqual(listed.data.filter((c) => c.name === 'shared').map((c) => c.count), [COLOURS.length]);
    const found = await post(`${b!.url}/v1/collections/shared/search`, { query: 'a blue thing', k: 1 });
    assert.equal(found.status, 200, JSON.stringify(found.json));
    assert.equal(found.json.data[0].id, 'doc-2');
  });

  test('32 clients over both replicas through HAProxy: no errors, every answer what one server alone gives', async () => {
    const [a] = replicas;
    // What one server alone answers, asked one request at a time.
    const expected = new Map<string, unknown>();
    const requests = COLOURS.flatMap((c) => [
      { path: '/v1/embeddings', body: { model: 'demo', input: [`a ${c} car`] } },
      { path: '/v1/collections/shared/search', body: { query: `a ${c} thing`, k: 5 } },
    ]);
    const answer = (path: string, json: any) => (path === '/v1/embeddings' ? json.data.map((d: { embedding: number[] }) => d.embedding) : json.data.map((h: { id: string; score: number }) => [h.id, h.score.toFixed(5)]));
    for (const r of requests) {
      const got = await post(`${a!.url}${r.path}`, r.body);
      assert.equal(got.status, 200, JSON.stringify(got.json));
      expected.set(JSON.stringify(r), answer(r.path, got.json));
    }
    let errors = 0;
    let mismatches = 0;
    const served = new Map<string, number>();
    await Promise.all(
      Array.from({ length: 32 }, async (_, client) => {
        for (let i = 0; i < 6; i++) {
          const r = requests[(client * 7 + i) % requests.length]!;
          const response = await fetch(`${lb.url}${r.path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(r.body) });
          if (response.status !== 200) {
            errors++;
            continue;
          }
          const json = await response.json();
          const got = answer(r.path, json);
          const want = expected.get(JSON.stringify(r)) as number[][] | [string, string][];
          if (r.path === '/v1/embeddings') {
            const [g, w] = [(got as number[][])[0]!, (want as number[][])[0]!];
            if (g.some((x, k) => Math.abs(x - w[k]!) > 1e-6)) mismatches++;
          } else if (JSON.stringify(got) !== JSON.stringify(want)) mismatches++;
          const by = response.headers.get('x-tessera-replica') ?? '';
          served.set(by, (served.get(by) ?? 0) + 1);
        }
      }),
    );
    assert.equal(errors, 0);
    assert.equal(mismatches, 0);
    assert.deepEqual([...served.keys()].sort(), ['replica1', 'replica2']);
  });

  test('a replica stopped with SIGTERM under load: it exits 0 and clients through HAProxy see no errors', async () => {
    const [, b] = replicas;
    let errors = 0;
    let answered = 0;
    let running = true;
    const clients = Array.from({ length: 16 }, async (_, client) => {
      while (running) {
        const response = await fetch(`${lb.url}/v1/embeddings`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'demo', input: [`a ${COLOURS[client % COLOURS.length]} car`] }) });
        if (response.status === 200) answered++;
        else errors++;
        await response.arrayBuffer();
      }
    });
    await delay(500);
    b!.child.kill('SIGTERM');
    assert.equal(await b!.exited, 0, b!.stderr());
    await delay(1500); // load goes on against the one replica left
    running = false;
    await Promise.all(clients);
    assert.ok(answered > 50, `${answered} answered`);
    assert.equal(errors, 0);
  });
});
