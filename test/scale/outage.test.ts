// A database outage as users meet it: two `tessera serve` replicas on one PostgreSQL behind
// HAProxy running deploy/haproxy.cfg as shipped, several clients embedding continuously and
// one searching a collection, and PostgreSQL stopped for several of HAProxy's health checks.
// The replicas must stay in rotation (their embeddings need no database), the store routes
// must answer tessera's 503 STORE_UNAVAILABLE quickly, and once PostgreSQL is back the
// searches must succeed again by themselves. Real processes, real servers.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { COLOURS } from '../../src/forge/colour.ts';
import { startHaproxy, startReplica, type Replica } from '../helpers/haproxy.ts';
import { startPostgres } from '../helpers/postgres.ts';
import { sample } from '../helpers/server.ts';
import { until } from '../helpers/wait.ts';

/** Where the database stood when a request was sent. */
type Phase = 'before' | 'stopping' | 'down' | 'starting' | 'after';

interface Outcome {
  phase: Phase;
  status: number;
  /** tessera's error code; undefined for a 200, or for an answer that is not tessera's JSON. */
  code?: string;
  /** An answer that is not tessera's JSON: HAProxy's own error page (no replica in rotation). */
  notOurs: boolean;
  sentAt: number;
  ms: number;
}

const EMBEDDING_CLIENTS = 6;
/** HAProxy checks every second and takes a replica out after 2 failures: 4 checks each prove it kept them. */
const CHECKS_DURING_OUTAGE = 4;

/** /ready answers a replica has given with 200 (HAProxy's checks, and nothing else asks it here). */
async function readyAnswers(replica: Replica): Promise<{ ok: number; failed: number }> {
  const metrics = await (await fetch(`${replica.url}/metrics`)).text();
  const ok = sample(metrics, 'tessera_requests_total', { route: '/ready', status: '200' });
  const failed = sample(metrics, 'tessera_requests_total', { route: '/ready', status: '503' });
  return { ok, failed };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

test('PostgreSQL stopped under load behind HAProxy: embeddings all succeed, store routes fail fast with STORE_UNAVAILABLE, then recover by themselves', { timeout: 180_000 }, async (t) => {
  const pg = await startPostgres();
  after(() => pg.close());
  const store = await pg.createDatabase();
  const replicas = [await startReplica(store), await startReplica(store)];
  after(async () => {
    for (const r of replicas) r.child.kill('SIGTERM');
    await Promise.all(replicas.map((r) => r.exited));
  });
  const lb = await startHaproxy(replicas);
  after(() => lb.stop());

  const post = (path: string, body: unknown) => fetch(`${lb.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  assert.equal((await post('/v1/collections', { name: 'outage' })).status, 200);
  const documents = COLOURS.map((c, i) => ({ id: `doc-${i}`, text: `a ${c.name} thing` }));
  assert.equal((await post('/v1/collections/outage/documents', { documents })).status, 200);

  let phase: Phase = 'before';
  const embeddings: Outcome[] = [];
  const searches: Outcome[] = [];
  const call = async (path: string, body: unknown, into: Outcome[]) => {
    const sent = phase;
    const sentAt = performance.now();
    let outcome: Omit<Outcome, 'phase' | 'sentAt' | 'ms'>;
    try {
      const response = await post(path, body);
      const text = await response.text();
      const json = response.headers.get('content-type')?.includes('application/json') ? (JSON.parse(text) as { code?: string }) : undefined;
      outcome = { status: response.status, code: json?.code, notOurs: json === undefined };
    } catch (err) {
      outcome = { status: 0, code: `fetch: ${(err as Error).message}`, notOurs: true };
    }
    into.push({ ...outcome, phase: sent, sentAt, ms: performance.now() - sentAt });
  };
  let running = true;
  const load = [
    ...Array.from({ length: EMBEDDING_CLIENTS }, async (_, client) => {
      for (let i = 0; running; i++) await call('/v1/embeddings', { model: 'demo', input: [`a ${COLOURS[(client + i) % COLOURS.length]!.name} car`] }, embeddings);
    }),
    (async () => {
      while (running) {
        await call('/v1/collections/outage/search', { query: 'a blue thing', k: 1 }, searches);
        await delay(20);
      }
    })(),
  ];

  const inPhase = (outcomes: Outcome[], ...phases: Phase[]) => outcomes.filter((o) => phases.includes(o.phase));
  let stoppedAt = 0;
  let startedAt = 0;
  try {
    await until('the load ran with the database up', () => embeddings.length >= 20 && searches.filter((s) => s.status === 200).length >= 5, 30_000);

    phase = 'stopping';
    await pg.stop();
    phase = 'down';
    stoppedAt = performance.now();
    const checksAtStop = await Promise.all(replicas.map(readyAnswers));
    // Down long enough for HAProxy to have taken every replica out, had /ready failed with the store.
    await until(`HAProxy checked each replica ${CHECKS_DURING_OUTAGE} times with PostgreSQL down`, async () => {
      const now = await Promise.all(replicas.map(readyAnswers));
      return now.every((c, i) => c.ok + c.failed - checksAtStop[i]!.ok - checksAtStop[i]!.failed >= CHECKS_DURING_OUTAGE);
    }, 30_000);
    await until('searches were refused while PostgreSQL was down', () => inPhase(searches, 'down').length >= 10, 30_000);
    const checksDuringOutage = await Promise.all(replicas.map(readyAnswers));
    // Each replica itself says what is wrong, and stays ready.
    for (const r of replicas) {
      const ready = await fetch(`${r.url}/ready`);
      assert.equal(ready.status, 200);
      assert.equal(((await ready.json()) as { store: { status: string } }).store.status, 'unavailable');
    }
    assert.deepEqual(checksDuringOutage.map((c, i) => c.failed - checksAtStop[i]!.failed), [0, 0], 'no health check failed during the outage');

    phase = 'starting';
    await pg.start();
    phase = 'after';
    startedAt = performance.now();
    await until('searches succeeded again after PostgreSQL came back', () => inPhase(searches, 'after').some((s) => s.status === 200), 30_000);
  } finally {
    running = false;
    await Promise.all(load);
  }

  const outageMs = startedAt - stoppedAt;
  const duringOutage = inPhase(embeddings, 'stopping', 'down', 'starting');
  const embeddingFailures = duringOutage.filter((o) => o.status !== 200);
  const refused = inPhase(searches, 'down');
  const firstRefusal = refused[0]!;
  const recovered = inPhase(searches, 'after').find((s) => s.status === 200)!;
  const numbers = {
    outage_s: +(outageMs / 1000).toFixed(1),
    embeddings_during_outage: { succeeded: duringOutage.length - embeddingFailures.length, failed: embeddingFailures.length },
    haproxy_pages: [...embeddings, ...searches].filter((o) => o.notOurs).length,
    searches_during_outage: refused.length,
    search_refusal_ms: { median: Math.round(median(refused.map((s) => s.ms))), max: Math.round(Math.max(...refused.map((s) => s.ms))) },
    first_refusal_after_stop_ms: Math.round(firstRefusal.sentAt + firstRefusal.ms - stoppedAt),
    recovery_after_start_ms: Math.round(recovered.sentAt + recovered.ms - startedAt),
  };
  t.diagnostic(JSON.stringify(numbers));

  assert.ok(duringOutage.length >= 50, `only ${duringOutage.length} embedding requests ran during the outage`);
  assert.deepEqual(embeddingFailures.map((o) => `${o.status} ${o.code}`), [], 'every embedding request succeeded during the outage');
  assert.equal(numbers.haproxy_pages, 0, 'every answer came from a replica: HAProxy never ran out of servers');
  assert.deepEqual(
    refused.filter((s) => s.status !== 503 || s.code !== 'STORE_UNAVAILABLE').map((s) => `${s.status} ${s.code}`),
    [],
    'with PostgreSQL down every search is 503 STORE_UNAVAILABLE',
  );
  assert.ok(numbers.search_refusal_ms.max < 1000, `a search took ${numbers.search_refusal_ms.max} ms to be refused`);
  // Around the stop and the start a search may still get or already get its answer, never another error.
  assert.deepEqual(
    inPhase(searches, 'stopping', 'starting', 'after').filter((s) => s.status !== 200 && s.code !== 'STORE_UNAVAILABLE').map((s) => `${s.status} ${s.code}`),
    [],
  );
});
