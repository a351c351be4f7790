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
