// The probes and the store: /ready says whether this replica can embed, so a database outage
// reports the store as unavailable in its body but leaves it 200 (a load balancer keeps the
// replica, whose embeddings need no database); /ready?store=1 also requires the store and
// answers 503 STORE_UNAVAILABLE within about a second (a probe must not hang); the store
// routes fail fast while the database is down, and everything is back once it is.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { openPostgresStore } from '../../src/store/postgres.ts';
import { PG_PASSWORD, startPostgres } from '../helpers/postgres.ts';
import { startServer } from '../helpers/server.ts';
import { until } from '../helpers/wait.ts';

type Ready = { status: string; model: string; store?: { status: string; since: string; checked_at: string | null; detail?: string } };

test('PostgreSQL down: /ready stays 200 and reports the store, /ready?store=1 is 503 STORE_UNAVAILABLE at once, both recover', async () => {
  const pg = await startPostgres();
  after(() => pg.close());
  const store = await openPostgresStore(await pg.createDatabase());
  after(() => store.close());
  const server = await startServer({ store });
  const ready = async (query = '') => {
    const response = await fetch(`${server.url}/ready${query}`);
    return { status: response.status, body: (await response.json()) as Ready & { code?: string; detail?: string } };
  };
  const up = await ready();
  assert.equal(up.status, 200);
  assert.equal(up.body.store?.status, 'available');
  assert.equal((await ready('?store=1')).status, 200);

  await pg.stop();
  const started = performance.now();
  const down = await ready('?store=1');
  assert.ok(performance.now() - started < 3000, 'the probe is answered within its deadline');
  assert.equal(down.status, 503);
  assert.equal(down.body.code, 'STORE_UNAVAILABLE');
  assert.ok(!down.body.detail!.includes(PG_PASSWORD), 'the password never reaches an answer');
  // The replica can still embed: /ready stays 200 and says the store is down.
  const readyWhileDown = await ready();
  assert.equal(readyWhileDown.status, 200);
  assert.equal(readyWhileDown.body.store?.status, 'unavailable');
  assert.ok(readyWhileDown.body.store?.detail && !readyWhileDown.body.store.detail.includes(PG_PASSWORD));
  assert.equal((await server.post('/v1/embeddings', { model: 'jina-clip-v1', input: ['a blue sky'] })).status, 200);
  for (const probe of ['/live', '/health']) assert.equal((await fetch(`${server.url}${probe}`)).status, 200, probe);
  const listed = await fetch(`${server.url}/v1/collections`);
  assert.equal(listed.status, 503);
  assert.equal(((await listed.json()) as { code: string }).code, 'STORE_UNAVAILABLE');
  assert.equal((await ready('?store=maybe')).status, 422);

  await pg.start();
  await until('/ready?store=1 did not come back to 200 after PostgreSQL restarted', async () => (await ready('?store=1')).status === 200, 20_000);
  assert.equal((await ready()).body.store?.status, 'available');
  assert.equal((await fetch(`${server.url}/v1/collections`)).status, 200);
});

test('PostgreSQL hung (answers nothing): /ready answers at once, store requests fail fast once it is seen down, then resume', { timeout: 60_000 }, async () => {
  const pg = await startPostgres();
  after(() => pg.close());
  const store = await openPostgresStore(await pg.createDatabase());
  after(() => store.close());
  const server = await startServer({ model: 'colour', store });
  assert.equal((await server.post('/v1/collections', { name: 'c' })).status, 200);
  const search = async () => {
    const t = performance.now();
    const response = await server.post('/v1/collections/c/search', { query: 'a red thing', k: 1 });
    return { status: response.status, code: ((await response.json()) as { code?: string }).code, ms: performance.now() - t };
  };
  assert.equal((await search()).status, 200);
  await pg.freeze();
  try {
    // Seen down by the background ping within its period and deadline (1 s + 1 s), and /ready
    // never waits for the database meanwhile.
    let slowestReadyMs = 0;
    await until('the hung store was not reported unavailable', async () => {
      const t = performance.now();
      const response = await fetch(`${server.url}/ready`);
      slowestReadyMs = Math.max(slowestReadyMs, performance.now() - t);
      assert.equal(response.status, 200);
      return ((await response.json()) as Ready).store?.status === 'unavailable';
    }, 10_000);
    assert.ok(slowestReadyMs < 500, `/ready took ${Math.round(slowestReadyMs)} ms`);
    // Without the fast path each of these would wait out the connect deadline (2 s) or the
    // statement deadline (10 s) of the driver.
    for (let i = 0; i < 5; i++) {
      const failed = await search();
      assert.deepEqual([failed.status, failed.code], [503, 'STORE_UNAVAILABLE']);
      assert.ok(failed.ms < 500, `a store request took ${Math.round(failed.ms)} ms while the store was known to be down`);
    }
    assert.equal((await server.post('/v1/embeddings', { model: 'jina-clip-v1', input: ['a blue sky'] })).status, 200);
  } finally {
    await pg.thaw();
  }
  await until('searches did not resume after PostgreSQL answered again', async () => (await search()).status === 200, 20_000);
});

test('PostgreSQL restarting under load: store requests answer 200 or 503 STORE_UNAVAILABLE at once, embeddings are unaffected, and it all resumes', async () => {
  const pg = await startPostgres();
  after(() => pg.close());
  const store = await openPostgresStore(await pg.createDatabase());
  after(() => store.close());
  const server = await startServer({ model: 'colour', store });
  assert.equal((await server.post('/v1/collections', { name: 'c' })).status, 200);
  const documents = ['red', 'green', 'blue'].map((c) => ({ id: c, text: `a ${c} thing` }));
  assert.equal((await server.post('/v1/collections/c/documents', { documents })).status, 200);

  const seen = { ok: 0, unavailable: 0, other: [] as string[], slowestMs: 0, embeddingErrors: 0 };
  let running = true;
  const searcher = async () => {
    while (running) {
      const started = performance.now();
      const response = await server.post('/v1/collections/c/search', { query: 'a red thing', k: 2 });
      seen.slowestMs = Math.max(seen.slowestMs, performance.now() - started);
      const body = (await response.json()) as { code?: string; data?: { id: string }[] };
      if (response.status === 200 && body.data?.[0]?.id === 'red') seen.ok++;
      else if (response.status === 503 && body.code === 'STORE_UNAVAILABLE') seen.unavailable++;
      else seen.other.push(`${response.status} ${JSON.stringify(body)}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  const embedder = async () => {
    while (running) {
      const response = await server.post('/v1/embeddings', { model: 'jina-clip-v1', input: ['a blue sky'] });
      if (response.status !== 200) seen.embeddingErrors++;
      await response.arrayBuffer();
    }
  };
  const load = [searcher(), searcher(), searcher(), embedder()];
  try {
    await new Promise((r) => setTimeout(r, 300));
    await pg.stop();
    await new Promise((r) => setTimeout(r, 1000)); // down for a second, under load
    const okWhileUp = seen.ok;
    await pg.start();
    const deadline = Date.now() + 20_000;
    while (seen.ok < okWhileUp + 20) {
      assert.ok(Date.now() < deadline, 'searches did not resume after PostgreSQL came back');
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    running = false;
    await Promise.all(load);
  }
  assert.deepEqual(seen.other, [], 'only answers or STORE_UNAVAILABLE, never another error');
  assert.ok(seen.unavailable > 0, 'the outage was seen');
  assert.ok(seen.slowestMs < 5000, `a request took ${Math.round(seen.slowestMs)} ms: nothing hangs past the store's deadlines`);
  assert.equal(seen.embeddingErrors, 0, 'the embeddings API does not need the store');
});
