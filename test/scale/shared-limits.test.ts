// Per-key limits held across replicas: two real servers given the same Redis (`--queue`) admit
// one key's requests from one sliding window and one set of concurrency slots; with Redis gone each
// keeps serving on its own limits and says so in /metrics, and shares again once it is back.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadApiKeys, type ApiKeys } from '../../src/api/auth.ts';
import { startRedis, type RedisServer } from '../helpers/redis.ts';
import { sample, startServer, type TestServer } from '../helpers/server.ts';
import { eventually } from '../helpers/wait.ts';

type ErrorBody = { detail: string; code: string };

let redis: RedisServer;
let keys: ApiKeys;

before(async () => {
  redis = await startRedis();
  keys = (await loadApiKeys({ env: 'alice:key-alice,bob:key-bob' }))!;
});

after(async () => {
  await redis?.stop();
});

const embed = (server: TestServer, key: string, text = 'a red car') =>
  server.post('/v1/embeddings', { model: 'jina-clip-v1', input: [text] }, { authorization: `Bearer ${key}` });

async function sharedGauge(server: TestServer): Promise<number> {
  return sample(await (await fetch(`${server.url}/metrics`)).text(), 'tessera_limits_shared');
}

describe('requests per minute across two replicas on one Redis', () => {
  let a: TestServer;
  let b: TestServer;

  before(async () => {
    const args = ['--queue', redis.url, '--rate-limit-rpm', '60'];
    [a, b] = [await startServer({ apiKeys: keys, args }), await startServer({ apiKeys: keys, args })];
  });

  test('150 requests alternating between the replicas: 60 succeed, the rest are 429 with Retry-After', async (t) => {
    assert.equal(await sharedGauge(a), 1);
    assert.equal(await sharedGauge(b), 1);
    const started = performance.now();
    const answers: { replica: 'a' | 'b'; status: number; retryAfter: string | null; code?: string }[] = [];
    // Four clients at a time, request i to replica a or b by turns.
    let next = 0;
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        for (let i = next++; i < 150; i = next++) {
          const replica = i % 2 === 0 ? 'a' : 'b';
          const response = await embed(replica === 'a' ? a : b, 'key-alice', `text ${i}`);
          const body = (await response.json()) as ErrorBody;
          answers.push({ replica, status: response.status, retryAfter: response.headers.get('retry-after'), code: body.code });
        }
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    const ok = answers.filter((x) => x.status === 200);
    const refused = answers.filter((x) => x.status !== 200);
    t.diagnostic(`${ok.length} of 150 succeeded in ${seconds.toFixed(2)} s`);
    // One strict window of 60 a minute across both (the burst takes well under a minute):
    // exactly 60. Two separate limits would have let 120 through.
    assert.ok(seconds < 60, `the burst took ${seconds.toFixed(1)} s`);
    assert.equal(ok.length, 60, `${ok.length} succeeded in ${seconds.toFixed(1)} s`);
    assert.ok(ok.some((x) => x.replica === 'a') && ok.some((x) => x.replica === 'b'), 'both replicas served some');
    assert.equal(refused.length, 150 - ok.length);
    for (const r of refused) {
      assert.equal(r.status, 429);
      assert.equal(r.code, 'RATE_REQUEST_LIMIT_EXCEEDED');
      assert.ok(Number(r.retryAfter) >= 1, `Retry-After ${r.retryAfter}`);
    }
    assert.ok(refused.some((x) => x.replica === 'a') && refused.some((x) => x.replica === 'b'), 'both replicas refused some');
  });

  test('Redis stopped: both keep serving on their own limits and say so; Redis back: shared again', async () => {
    const port = redis.port;
    await redis.stop();
    // Each replica now counts alone: a fresh local window of 60 each.
    await eventually(async () => {
      assert.equal(await sharedGauge(a), 0);
      assert.equal(await sharedGauge(b), 0);
    }, 5000);
    const fromA = await embed(a, 'key-bob');
    const fromB = await embed(b, 'key-bob');
    assert.equal(fromA.status, 200);
    assert.equal(fromB.status, 200);
    assert.equal(fromA.headers.get('x-ratelimit-remaining-requests'), '59');
    assert.equal(fromB.headers.get('x-ratelimit-remaining-requests'), '59', 'b counts apart from a');
    // The local limit still holds: replica a refuses bob once its own 60 are used, b does not.
    let sent = 1;
    let last: Response;
    do {
      last = await embed(a, 'key-bob');
      sent++;
    } while (last.status === 200 && sent < 80);
    assert.equal(last.status, 429);
    assert.equal(((await last.json()) as ErrorBody).code, 'RATE_REQUEST_LIMIT_EXCEEDED');
    assert.equal(sent, 61, `replica a refused after ${sent} requests`);
    assert.equal((await embed(b, 'key-bob')).status, 200);

    redis = await startRedis({ port });
    await eventually(async () => {
      assert.equal(await sharedGauge(a), 1);
      assert.equal(await sharedGauge(b), 1);
    }, 10_000);
    // One window again (the new Redis starts empty): each answer counts the other's.
    const remaining = [];
    for (const server of [a, b, a, b]) {
      const response = await embed(server, 'key-bob');
      assert.equal(response.status, 200);
      remaining.push(response.headers.get('x-ratelimit-remaining-requests'));
    }
    assert.deepEqual(remaining, ['59', '58', '57', '56']);
  });
});

describe('the concurrency limit across two replicas on one Redis', () => {
  test('a request in flight on one replica takes the key\'s only slot on the other', async () => {
    const args = ['--queue', redis.url, '--rate-limit-concurrency', '1', '--batch-wait-ms', '300'];
    const [a, b] = [await startServer({ apiKeys: keys, args }), await startServer({ apiKeys: keys, args })];
    const slow = embed(a, 'key-alice', 'first');
    await sleep(100);
    const second = await embed(b, 'key-alice', 'second');
    assert.equal(second.status, 429);
    assert.equal(((await second.json()) as ErrorBody).code, 'RATE_CONCURRENCY_LIMIT_EXCEEDED');
    assert.equal(second.headers.get('retry-after'), '1');
    assert.equal((await embed(b, 'key-bob', 'another key')).status, 200, 'slots are per key');
    assert.equal((await slow).status, 200);
    await eventually(async () => assert.equal((await embed(b, 'key-alice', 'third')).status, 200), 3000);
  });
});
