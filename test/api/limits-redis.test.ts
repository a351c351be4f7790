// Per-key limits kept in Redis: two limiters on one Redis (two replicas) share one sliding
// window of admissions (a burst admits exactly the limit, never more in any window; Retry-After
// is when a retry is admitted) and the concurrency slots, refuse with the local limiter's codes,
// messages and headers, free the slots of a limiter that died, and fall back to local limits
// while Redis is away.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
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
async function replicas(settings: LimitSettings, options: { leaseMs?: number; windowMs?: number; count?: number } = {}): Promise<SharedRateLimiter[]> {
  const prefix = `test${++prefixes}`;
  const made = Array.from({ length: options.count ?? 2 }, () => new SharedRateLimiter(settings, parseQueueUrl(redis.url), { prefix, leaseMs: options.leaseMs, windowMs: options.windowMs }));
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
  test('requests per minute: one window for both replicas, refused as the local limiter refuses', async () => {
    const [a, b] = await replicas({ requestsPerMinute: 3 });
    const seen = [await a!.admit('k', 0), await b!.admit('k', 0), await a!.admit('k', 0)].map((x) => x.headers['X-RateLimit-Remaining-Requests']);
    assert.deepEqual(seen, ['2', '1', '0']);
    for (const l of [a!, b!]) {
      // Admitted a few ms ago, the three count for (all but those ms of) a minute more.
      const error = await refused(l.admit('k', 0), 'RATE_REQUEST_LIMIT_EXCEEDED');
      assert.equal(error.message, 'this API key is over its limit of 3 requests per minute; retry in 60 s');
      assert.deepEqual(error.headers, { 'X-RateLimit-Remaining-Requests': '0', 'Retry-After': '60' });
    }
    await b!.admit('other key', 0); // keys are independent
  });

  test('a burst of 150 requests across two replicas admits exactly the limit of 60', async () => {
    const [a, b] = await replicas({ requestsPerMinute: 60 });
    // 15 waves of 10 at once, 150 ms apart: over 2 s, in which a bucket refilled at the limit
    // would let 2 more through; a strict window lets none.
    type Outcome = { replica: number; admission?: Admission; error?: TesseraError };
    const outcomes: Outcome[] = [];
    const started = performance.now();
    for (let wave = 0; wave < 15; wave++) {
      if (wave > 0) await sleep(150);
      outcomes.push(
        ...(await Promise.all(
          Array.from({ length: 10 }, (_, i): Promise<Outcome> =>
            (i % 2 === 0 ? a! : b!).admit('k', 0).then(
              (admission) => ({ replica: i % 2, admission }),
              (error: TesseraError) => ({ replica: i % 2, error }),
            ),
          ),
        )),
      );
    }
    const ms = performance.now() - started;
    const ok = outcomes.filter((x) => x.admission);
    assert.ok(ms > 2000 && ms < 60_000, `the burst took ${ms.toFixed(0)} ms: over 2 s, within one window`);
    assert.equal(ok.length, 60, `${ok.length} of 150 admitted in ${ms.toFixed(0)} ms`);
    assert.ok(ok.some((x) => x.replica === 0) && ok.some((x) => x.replica === 1), 'both replicas admitted some');
    assert.deepEqual(ok.map((x) => x.admission!.headers['X-RateLimit-Remaining-Requests']).sort((x, y) => Number(x) - Number(y)), Array.from({ length: 60 }, (_, i) => String(i)));
    for (const { error } of outcomes.filter((x) => !x.admission)) {
      assert.equal(error!.code, 'RATE_REQUEST_LIMIT_EXCEEDED');
      assert.equal(error!.headers!['X-RateLimit-Remaining-Requests'], '0');
      // Until the first admission leaves, a minute after it: 60 s less the time since, rounded up.
      const retryAfter = Number(error!.headers!['Retry-After']);
      assert.ok(retryAfter <= 60 && retryAfter >= 60 - Math.ceil(ms / 1000), `Retry-After ${retryAfter}`);
    }
    // The 90 refused took nothing: still exactly 60 in the window, on either replica.
    await refused(a!.admit('k', 0), 'RATE_REQUEST_LIMIT_EXCEEDED');
    await refused(b!.admit('k', 0), 'RATE_REQUEST_LIMIT_EXCEEDED');
  });

  test('the window slides: a retry at Retry-After is admitted, exactly as many as have left the window', async () => {
    // A 3.5 s window (the scripts take its length), so that the test need not wait a minute. The
    // times are picked so that every check is at least 300 ms from where its answer would change.
    const [a, b] = await replicas({ requestsPerMinute: 3 }, { windowMs: 3500 });
    const first = performance.now();
    await a!.admit('k', 0); // leaves the window at first + 3.5 s (admitted a little after `first`)
    await sleep(1200);
    await b!.admit('k', 0); // these two leave at about first + 4.7 s
    await a!.admit('k', 0);
    const error = await refused(b!.admit('k', 0), 'RATE_REQUEST_LIMIT_EXCEEDED');
    const refusedAt = performance.now();
    assert.equal(error.headers!['Retry-After'], '3'); // the oldest leaves in about 2.3 s, rounded up
    await sleep(first + 3000 - performance.now()); // before the oldest leaves
    await refused(a!.admit('k', 0), 'RATE_REQUEST_LIMIT_EXCEEDED');
    await sleep(refusedAt + 3000 - performance.now()); // when Retry-After said: about first + 4.2 s
    assert.deepEqual((await a!.admit('k', 0)).headers, { 'X-RateLimit-Remaining-Requests': '0' });
    // Only the oldest had left: the next is refused until the two of 1.2 s leave, about 0.5 s on.
    const next = await refused(b!.admit('k', 0), 'RATE_REQUEST_LIMIT_EXCEEDED');
    assert.equal(next.headers!['Retry-After'], '1');
  });

  test('the log keys expire once the window has passed, as the local limiter forgets idle keys', async () => {
    const prefix = `test${++prefixes}`;
    const limiter = new SharedRateLimiter({ requestsPerMinute: 5, tokensPerMinute: 100 }, parseQueueUrl(redis.url), { prefix, windowMs: 1000 });
    open.push(limiter);
    await limiter.start();
    const raw = new Redis(redis.url);
    try {
      (await limiter.admit('k', 10)).commitTokens(20);
      const keys = (await raw.keys(`${prefix}:*`)).sort();
      assert.deepEqual(keys, [`${prefix}:{k}:log`, `${prefix}:{k}:log-tokens`]);
      for (const key of keys) {
        const ttl = await raw.pttl(key);
        assert.ok(ttl > 0 && ttl <= 2000, `${key} expires in ${ttl} ms`);
      }
      await eventually(async () => assert.equal(await raw.get(`${prefix}:{k}:log-tokens`), '20')); // the commit is not waited on
      await eventually(async () => assert.deepEqual(await raw.keys(`${prefix}:*`), []), 5000);
    } finally {
      raw.disconnect();
    }
  });

  test('tokens per minute: estimates logged in one window, corrections seen by the other replica', async () => {
    const [a, b] = await replicas({ tokensPerMinute: 100 });
    const first = await a!.admit('k', 60);
    assert.equal(first.headers['X-RateLimit-Remaining-Tokens'], '40');
    const error = await refused(b!.admit('k', 50), 'RATE_TOKEN_LIMIT_EXCEEDED');
    assert.match(error.message, /^this request needs about 50 tokens and this API key has 40 left of its limit of 100 tokens per minute; retry in \d+ s$/);
    assert.equal(error.headers!['Retry-After'], '60'); // the 60 leave the window a minute after admission
    first.commitTokens(10); // used 10 of the 60 estimated: 50 back
    assert.equal(first.headers['X-RateLimit-Remaining-Tokens'], '90');
    await eventually(async () => void (await b!.admit('k', 50)));
    const whole = await refused(a!.admit('k', 101), 'RATE_TOKEN_LIMIT_EXCEEDED');
    assert.equal(whole.headers!['Retry-After'], undefined, 'more than the whole limit: waiting never helps');
  });

  test('tokens: Retry-After is when enough of the oldest admissions have left for the estimate to fit', async () => {
    const [a, b] = await replicas({ tokensPerMinute: 1000 }, { windowMs: 4000 });
    for (let i = 0; i < 120; i++) await (i % 2 ? a! : b!).admit('k', 5); // 600 tokens in 120 entries, at t0
    await sleep(1500);
    assert.deepEqual((await a!.admit('k', 400)).headers, { 'X-RateLimit-Remaining-Tokens': '0' }); // at t0 + 1.5 s
    // 600 fit once all 120 small ones have left (past the first page of 100 the script reads),
    // in about 2.5 s; 700 only once the 400 has left too, in about 4 s; 1001 never.
    assert.equal((await refused(b!.admit('k', 600), 'RATE_TOKEN_LIMIT_EXCEEDED')).headers!['Retry-After'], '3');
    assert.equal((await refused(a!.admit('k', 700), 'RATE_TOKEN_LIMIT_EXCEEDED')).headers!['Retry-After'], '4');
    assert.equal((await refused(a!.admit('k', 1001), 'RATE_TOKEN_LIMIT_EXCEEDED')).headers!['Retry-After'], undefined);
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
      // The local limiter of the same settings: a fresh window of 2, then refusals.
      assert.equal((await limiter.admit('k', 0)).headers['X-RateLimit-Remaining-Requests'], '1');
      await limiter.admit('k', 0);
      await refused(limiter.admit('k', 0), 'RATE_REQUEST_LIMIT_EXCEEDED');
      await refused(limiter.admit('k', 0), 'RATE_REQUEST_LIMIT_EXCEEDED');
      assert.equal(news.filter((n) => n.startsWith('local')).length, 1, news.join('\n'));
      assert.match(news.at(-1)!, /^local: lost Redis at redis:\/\/127\.0\.0\.1:\d+\/?.*: per-key limits apply per replica until it answers again$/);

      const again = await startRedis({ port: own.port });
      try {
        await eventually(async () => assert.equal(limiter.shared, true), 10_000);
        assert.equal((await limiter.admit('k', 0)).headers['X-RateLimit-Remaining-Requests'], '1', 'a new Redis: a fresh shared window');
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
