// /ready asks the store too: with PostgreSQL stopped it answers 503 STORE_UNAVAILABLE within
// about a second (a probe must not hang), and 200 again once the database is back.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { openPostgresStore } from '../../src/store/postgres.ts';
import { PG_PASSWORD, startPostgres } from '../helpers/postgres.ts';
import { startServer } from '../helpers/server.ts';

test('/ready is 503 STORE_UNAVAILABLE while PostgreSQL is down and 200 once it is back', async () => {
  const pg = await startPostgres();
  after(() => pg.close());
  const store = await openPostgresStore(await pg.createDatabase());
  after(() => store.close());
  const server = await startServer({ store });
  assert.equal((await fetch(`${server.url}/ready`)).status, 200);

  await pg.stop();
  const started = performance.now();
  const down = await fetch(`${server.url}/ready`);
  assert.ok(performance.now() - started < 3000, 'the probe is answered within its deadline');
  assert.equal(down.status, 503);
  const body = (await down.json()) as { code: string; detail: string };
  assert.equal(body.code, 'STORE_UNAVAILABLE');
  assert.ok(!body.detail.includes(PG_PASSWORD), 'the password never reaches an answer');
  assert.equal((await fetch(`${server.url}/health`)).status, 200); // the process is alive

  await pg.start();
  const deadline = Date.now() + 20_000;
  while ((await fetch(`${server.url}/ready`)).status !== 200) {
    assert.ok(Date.now() < deadline, '/ready did not come back to 200 after PostgreSQL restarted');
    await new Promise((r) => setTimeout(r, 100));
  }
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
