// Per-key limits kept in Redis: two limiters on one Redis (two replicas) share the request and
// token buckets and the concurrency slots, refuse with the local limiter's codes, messages and
// headers, free the slots of a limiter that died, and fall back to local limits while Redis is
// away.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { SharedRateLimiter } from '../../src/api/limits-redis.ts';
import type { Admission, LimitSettings } from '../../src/api/limits.ts';
import { TesseraError, type ErrorCode } from '../../src/errors.ts';
import { parseQueueUrl } from '../../src/queue/connection.ts';
import { startRedis, type RedisServer } from '../helpers/redis.ts';
import { eventually } from '../helpers/wait.ts';

let redis: RedisServer;
const open: SharedRateLimiter[] = [];
let prefixes = 0;

before(async () => {
  redis = await startRedis();
});

after(async () => {
  await Promise.all(open.map((l) => l.close()));
  await redis?.stop();
});

/** Two limiters with the same settings on the same Redis (and key prefix), like two replicas. */
async function replicas(settings: LimitSettings, options: { leaseMs?: number; count?: number } = {}): Promise<SharedRateLimiter[]> {
  const prefix = `test${++prefixes}`;
  const made = Array.from({ length: options.count ?? 2 }, () => new SharedRateLimiter(settings, parseQueueUrl(redis.url), { prefix, leaseMs: options.leaseMs }));
  open.push(...made);
  await Promise.all(made.map((l) => l.start()));
  for (const l of made) assert.equal(l.shared, true, 'connected to Redis');
  return made;
}

async function refused(admission: Promise<Admission>, code: ErrorCode): Promise<TesseraError> {
  let caught: unknown;
  try {
    await admission;
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof TesseraError, `expected ${code}, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  assert.equal(caught.status, 429);
  return caught;
}

describe('limits shared through Redis', () => {
  test('requests per minute: one bucket for both replicas, refused as the local limiter refuses', async () => {
    const [a, b] = await replicas({ requestsPerMinute: 3 });
    const seen = [await a!.admit('k', 0), await b!.admit('k', 0), await a!.admit('k', 0)].map((x) => x.headers['X-RateLimit-Remaining-Requests']);
    assert.deepEqual(seen, ['2', '1', '0']);
    for (const l of [a!, b!]) {
      const error = await refused(l.admit('k', 0), 'RATE_REQUEST_LIMIT_EXCEEDED');
      assert.equal(error.message, 'this API key is over its limit of 3 requests per minute; retry in 20 s');
      assert.deepEqual(error.headers, { 'X-RateLimit-Remaining-Requests': '0', 'Retry-After': '20' });
    }
    await b!.admit('other key', 0); // keys are independent
  });

  test('tokens per minute: estimates taken from one bucket, corrections seen by the other replica', async () => {
    const [a, b] = await replicas({ tokensPerMinute: 100 });
    const first = await a!.admit('k', 60);
    assert.equal(first.headers['X-RateLimit-Remaining-Tokens'], '40');
    const error = await refused(b!.admit('k', 50), 'RATE_TOKEN_LIMIT_EXCEEDED');
    assert.match(error.message, /^this request needs about 50 tokens and this API key has 40 left of its limit of 100 tokens per minute; retry in \d+ s$/);
    assert.ok(Number(error.headers!['Retry-After']) >= 6);
    first.commitTokens(10); // used 10 of the 60 estimated: 50 back
    assert.equal(first.headers['X-RateLimit-Remaining-Tokens'], '90');
    await eventually(async () => void (await b!.admit('k', 50)));
    const whole = await refused(a!.admit('k', 101), 'RATE_TOKEN_LIMIT_EXCEEDED');
    assert.equal(whole.headers!['Retry-After'], undefined, 'more than the whole limit: waiting never helps');
  });

  test('concurrency: slots shared, freed on release', async () => {
    const [a, b] = await replicas({ concurrentRequests: 1 });
    const running = await a!.admit('k', 0);
    const error = await refused(b!.admit('k', 0), 'RATE_CONCURRENCY_LIMIT_EXCEEDED');
    assert.equal(error.message, 'this API key already has 1 request in flight, its limit is 1; retry when one of them has finished');
    assert.equal(error.headers!['Retry-After'], '1');
    running.release();
    running.release(); // twice does nothing
    await eventually(async () => (await b!.admit('k', 0)).release());
  });

  test("a replica that dies holding a slot frees it once its lease runs out; a live one's lease is renewed", async () => {
    const [a, b, c] = await replicas({ concurrentRequests: 1 }, { leaseMs: 400, count: 3 });
    const held = await a!.admit('k', 0);
    await sleep(1000); // well past one lease: renewed all along
    await refused(b!.admit('k', 0), 'RATE_CONCURRENCY_LIMIT_EXCEEDED');
    held.release();
    await eventually(async () => void (await c!.admit('k', 0)));
    await c!.close(); // dies without releasing: no more renewals
    await refused(b!.admit('k', 0), 'RATE_CONCURRENCY_LIMIT_EXCEEDED');
    const started = Date.now();
    await eventually(async () => void (await b!.admit('k', 0)));
    assert.ok(Date.now() - started < 2000, 'the dead replica\'s slot came back within about a lease');
  });
});

describe('without Redis', () => {
  test('local limits while Redis is away (said once), shared again once it is back', async () => {
    const own = await startRedis();
    const news: string[] = [];
    const limiter = new SharedRateLimiter({ requestsPerMinute: 2 }, parseQueueUrl(own.url), {
      onChange: (shared, message) => news.push(`${shared ? 'shared' : 'local'}: ${message}`),
    });
    open.push(limiter);
    try {
      await limiter.start();
      assert.equal(limiter.shared, true);
      await limiter.admit('k', 0);
      await limiter.admit('k', 0);
      await refused(limiter.admit('k', 0), 'RATE_REQUEST_LIMIT_EXCEEDED');

      await own.stop();
      await eventually(async () => assert.equal(limiter.shared, false));
      // The local limiter of the same settings: a fresh bucket of 2, then refusals.
      assert.equal((await limiter.admit('k', 0)).headers['X-RateLimit-Remaining-Requests'], '1');
      await limiter.admit('k', 0);
      await refused(limiter.admit('k', 0), 'RATE_REQUEST_LIMIT_EXCEEDED');
      await refused(limiter.admit('k', 0), 'RATE_REQUEST_LIMIT_EXCEEDED');
      assert.equal(news.filter((n) => n.startsWith('local')).length, 1, news.join('\n'));
      assert.match(news.at(-1)!, /^local: lost Redis at redis:\/\/127\.0\.0\.1:\d+\/?.*: per-key limits apply per replica until it answers again$/);

      const again = await startRedis({ port: own.port });
      try {
        await eventually(async () => assert.equal(limiter.shared, true), 10_000);
        assert.equal((await limiter.admit('k', 0)).headers['X-RateLimit-Remaining-Requests'], '1', 'a new Redis: a fresh shared bucket');
        assert.deepEqual(news.map((n) => n.split(':')[0]), ['shared', 'local', 'shared']);
      } finally {
        await again.stop();
      }
    } finally {
      await limiter.close();
      await own.stop();
    }
  });

  test('Redis not there at start: start() returns within the connect timeout and the limits are local', async () => {
    const news: string[] = [];
    const port = (await startRedis().then(async (r) => (await r.stop(), r.port)));
    const limiter = new SharedRateLimiter({ requestsPerMinute: 1 }, parseQueueUrl(`redis://127.0.0.1:${port}`), { onChange: (shared, message) => news.push(`${shared}: ${message}`) });
    open.push(limiter);
    const started = Date.now();
    await limiter.start();
    assert.ok(Date.now() - started < 2000, 'a refused connection is not waited on');
    assert.deepEqual(news, [`false: cannot reach Redis at redis://127.0.0.1:${port} (ECONNREFUSED): per-key limits apply per replica until it answers`]);
    await limiter.admit('k', 0);
    await refused(limiter.admit('k', 0), 'RATE_REQUEST_LIMIT_EXCEEDED');
    await limiter.close();
  });
});
