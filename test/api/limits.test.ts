// Per-key limits on a fake clock: each limit trips at the right count, the window slides (an
// admission counts for exactly one minute, never more than the limit in any minute), Retry-After
// is exactly when a retry is admitted, concurrency frees on release, headers and messages are
// right, idle keys go.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { RateLimiter, type Admission, type LimitSettings } from '../../src/api/limits.ts';
import { TesseraError, type ErrorCode } from '../../src/errors.ts';

function clock(start = 1_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => void (t += ms) };
}

function limiter(settings: LimitSettings) {
  const c = clock();
  return { limiter: new RateLimiter(settings, c.now), advance: c.advance };
}

/** Asserts admit() refuses with `code`, and returns the error for further checks. */
function refused(l: RateLimiter, key: string, tokens: number, code: ErrorCode): TesseraError {
  let caught: unknown;
  try {
    l.admit(key, tokens);
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof TesseraError, `expected ${code}, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  assert.equal(caught.status, 429);
  assert.ok(caught.headers, 'a refusal carries headers');
  return caught;
}

describe('requests per minute', () => {
  test('the limit+1-th request in a minute is refused, with Retry-After', () => {
    const { limiter: l } = limiter({ requestsPerMinute: 3 });
    const seen = [1, 2, 3].map(() => l.admit('k', 0).headers);
    assert.deepEqual(seen, [
      { 'X-RateLimit-Remaining-Requests': '2' },
      { 'X-RateLimit-Remaining-Requests': '1' },
      { 'X-RateLimit-Remaining-Requests': '0' },
    ]);
    // The three were admitted just now: they all count for a whole minute more.
    const error = refused(l, 'k', 0, 'RATE_REQUEST_LIMIT_EXCEEDED');
    assert.equal(error.message, 'this API key is over its limit of 3 requests per minute; retry in 60 s');
    assert.deepEqual(error.headers, { 'X-RateLimit-Remaining-Requests': '0', 'Retry-After': '60' });
  });

  test('the window slides: an admission counts for exactly one minute; Retry-After is when the oldest leaves', () => {
    const { limiter: l, advance } = limiter({ requestsPerMinute: 3 });
    l.admit('k', 0); // t = 0
    advance(10_000);
    l.admit('k', 0); // t = 10 s
    advance(10_000);
    assert.deepEqual(l.admit('k', 0).headers, { 'X-RateLimit-Remaining-Requests': '0' }); // t = 20 s
    advance(10_000);
    assert.equal(refused(l, 'k', 0, 'RATE_REQUEST_LIMIT_EXCEEDED').headers!['Retry-After'], '30'); // t = 0 leaves at 60 s
    advance(29_999);
    assert.equal(refused(l, 'k', 0, 'RATE_REQUEST_LIMIT_EXCEEDED').headers!['Retry-After'], '1'); // 1 ms left, rounded up
    assert.deepEqual(l.remaining('k'), { requests: 0 });
    advance(1); // t = 60 s: the first admission has left, exactly one request is back
    assert.deepEqual(l.remaining('k'), { requests: 1 });
    assert.deepEqual(l.admit('k', 0).headers, { 'X-RateLimit-Remaining-Requests': '0' });
    assert.equal(refused(l, 'k', 0, 'RATE_REQUEST_LIMIT_EXCEEDED').headers!['Retry-After'], '10'); // t = 10 s leaves at 70 s
    advance(10_000);
    l.admit('k', 0);
    advance(600_000); // never more than one minute's allowance
    assert.deepEqual(l.remaining('k'), { requests: 3 });
    for (let i = 0; i < 3; i++) l.admit('k', 0);
    refused(l, 'k', 0, 'RATE_REQUEST_LIMIT_EXCEEDED');
  });

  test('retrying when Retry-After says is admitted, and no 60 s ever sees more than the limit', () => {
    // A client hammering every 250 ms, and retrying at once when told to: it gets exactly the
    // limit in every minute, however the admissions fall.
    const { limiter: l, advance } = limiter({ requestsPerMinute: 60 });
    const admitted: number[] = [];
    let retryAt = 0;
    for (let t = 0; t < 300_000; t += 250) {
      try {
        l.admit('k', 0);
        admitted.push(t);
        if (retryAt !== 0) assert.equal(t, retryAt, 'admitted at the Retry-After it was given, not before');
        retryAt = 0;
      } catch (error) {
        const seconds = Number((error as TesseraError).headers!['Retry-After']);
        if (retryAt === 0) retryAt = t + seconds * 1000;
        assert.ok(t < retryAt, `refused at ${t} ms, after its Retry-After (${retryAt} ms)`);
      }
      advance(250);
    }
    for (let i = 60; i < admitted.length; i++) assert.ok(admitted[i]! - admitted[i - 60]! >= 60_000, `61 admissions within a minute, ending at ${admitted[i]} ms`);
    assert.equal(admitted.length, 300, 'the limit in each of the five minutes');
  });

  test('keys are independent', () => {
    const { limiter: l } = limiter({ requestsPerMinute: 1 });
    l.admit('alice', 0);
    refused(l, 'alice', 0, 'RATE_REQUEST_LIMIT_EXCEEDED');
    l.admit('bob', 0);
    assert.deepEqual(l.remaining('carol'), { requests: 1 });
  });

  test('a refused request consumes nothing', () => {
    const { limiter: l } = limiter({ requestsPerMinute: 2, tokensPerMinute: 100 });
    refused(l, 'k', 150, 'RATE_TOKEN_LIMIT_EXCEEDED');
    refused(l, 'k', 101, 'RATE_TOKEN_LIMIT_EXCEEDED');
    assert.deepEqual(l.remaining('k'), { requests: 2, tokens: 100 });
  });
});

describe('tokens per minute', () => {
  test('the estimate must fit in what remains', () => {
    const { limiter: l } = limiter({ tokensPerMinute: 1000 });
    assert.deepEqual(l.admit('k', 600).headers, { 'X-RateLimit-Remaining-Tokens': '400' });
    assert.deepEqual(l.admit('k', 400).headers, { 'X-RateLimit-Remaining-Tokens': '0' });
    const error = refused(l, 'k', 1, 'RATE_TOKEN_LIMIT_EXCEEDED');
    assert.equal(
      error.message,
      'this request needs about 1 token and this API key has 0 left of its limit of 1000 tokens per minute; retry in 60 s',
    );
    assert.deepEqual(error.headers, { 'X-RateLimit-Remaining-Tokens': '0', 'Retry-After': '60' });
  });

  test('Retry-After is when enough of the oldest admissions have left the window for the estimate to fit', () => {
    const { limiter: l, advance } = limiter({ tokensPerMinute: 6000 });
    l.admit('k', 1000); // t = 0
    advance(10_000);
    l.admit('k', 2000); // t = 10 s
    advance(10_000);
    l.admit('k', 3000); // t = 20 s: 6000 in the window
    advance(10_000);
    // 2500 fits once 1000 and 2000 have left: at 70 s, 40 s from now (1000 alone is not enough).
    const error = refused(l, 'k', 2500, 'RATE_TOKEN_LIMIT_EXCEEDED');
    assert.equal(error.headers!['Retry-After'], '40');
    assert.match(error.message, /has 0 left of its limit of 6000 tokens per minute; retry in 40 s$/);
    assert.equal(refused(l, 'k', 1000, 'RATE_TOKEN_LIMIT_EXCEEDED').headers!['Retry-After'], '30'); // 1000 fits at 60 s
    advance(30_000); // t = 60 s
    assert.deepEqual(l.remaining('k'), { tokens: 1000 });
    refused(l, 'k', 2500, 'RATE_TOKEN_LIMIT_EXCEEDED');
    advance(9_999);
    assert.equal(refused(l, 'k', 2500, 'RATE_TOKEN_LIMIT_EXCEEDED').headers!['Retry-After'], '1');
    advance(1); // t = 70 s
    assert.deepEqual(l.admit('k', 2500).headers, { 'X-RateLimit-Remaining-Tokens': '500' });
  });

  test('commitTokens corrects the admission in the window: a refund if fewer were used, a debt if more, gone with it', () => {
    const { limiter: l, advance } = limiter({ tokensPerMinute: 6000 });
    const a = l.admit('k', 3000); // t = 0
    assert.deepEqual(a.headers, { 'X-RateLimit-Remaining-Tokens': '3000' });
    a.commitTokens(1000);
    assert.deepEqual(a.headers, { 'X-RateLimit-Remaining-Tokens': '5000' }); // headers are read live
    a.commitTokens(1000); // the last commit counts, not their sum
    assert.deepEqual(l.remaining('k'), { tokens: 5000 });

    advance(10_000);
    const b = l.admit('k', 100); // t = 10 s
    b.commitTokens(7000); // far more than estimated: 1000 + 7000 in the window, 2000 over the limit
    assert.deepEqual(b.headers, { 'X-RateLimit-Remaining-Tokens': '0' });
    const error = refused(l, 'k', 1000, 'RATE_TOKEN_LIMIT_EXCEEDED');
    assert.equal(error.headers!['Retry-After'], '60'); // until b (7000) has left, at 70 s
    advance(50_000); // t = 60 s: a has left, b's 7000 alone are still over
    refused(l, 'k', 1000, 'RATE_TOKEN_LIMIT_EXCEEDED');
    advance(10_000); // t = 70 s
    l.admit('k', 1000);
    b.commitTokens(0); // b has left the window: nothing to correct any more
    assert.deepEqual(l.remaining('k'), { tokens: 5000 });
  });

  test('tokens and requests: at most the token limit admitted in any minute, by estimate', () => {
    const { limiter: l, advance } = limiter({ tokensPerMinute: 1000, requestsPerMinute: 100 });
    const admitted: [number, number][] = [];
    for (let t = 0; t < 180_000; t += 500) {
      const tokens = 50 + ((t / 500) * 37) % 200;
      try {
        l.admit('k', tokens);
        admitted.push([t, tokens]);
      } catch (error) {
        assert.equal((error as TesseraError).code, 'RATE_TOKEN_LIMIT_EXCEEDED');
      }
      advance(500);
    }
    for (const [start] of admitted) {
      const inWindow = admitted.filter(([t]) => t >= start && t < start + 60_000).reduce((sum, [, n]) => sum + n, 0);
      assert.ok(inWindow <= 1000, `${inWindow} tokens admitted in the minute from ${start} ms`);
    }
  });

  test('a refund never lifts the bucket above one minute of allowance', () => {
    const { limiter: l } = limiter({ tokensPerMinute: 1000 });
    const a = l.admit('k', 500);
    l.admit('other', 0);
    a.commitTokens(0);
    assert.deepEqual(l.remaining('k'), { tokens: 1000 });
  });

  test('a request larger than the whole limit is refused without Retry-After (waiting cannot help)', () => {
    const { limiter: l } = limiter({ tokensPerMinute: 1000 });
    const error = refused(l, 'k', 1500, 'RATE_TOKEN_LIMIT_EXCEEDED');
    assert.equal(
      error.message,
      "this request needs about 1500 tokens, more than this API key's whole limit of 1000 tokens per minute; split it into smaller requests",
    );
    assert.deepEqual(error.headers, { 'X-RateLimit-Remaining-Tokens': '1000' });
  });

  test('tokens are ignored when no token limit is set', () => {
    const { limiter: l } = limiter({ requestsPerMinute: 10 });
    const a = l.admit('k', 1e9);
    a.commitTokens(2e9);
    assert.deepEqual(a.headers, { 'X-RateLimit-Remaining-Requests': '9' });
  });
});

describe('concurrent requests', () => {
  test('the limit+1-th request in flight is refused; release frees a slot', () => {
    const { limiter: l } = limiter({ concurrentRequests: 2 });
    const a = l.admit('k', 0);
    const b = l.admit('k', 0);
    const error = refused(l, 'k', 0, 'RATE_CONCURRENCY_LIMIT_EXCEEDED');
    assert.equal(
      error.message,
      'this API key already has 2 requests in flight, its limit is 2; retry when one of them has finished',
    );
    assert.deepEqual(error.headers, { 'Retry-After': '1' });
    assert.deepEqual(a.headers, {}); // no per-minute limits set: no remaining headers
    l.admit('other', 0); // another key has its own slots
    a.release();
    const c = l.admit('k', 0);
    refused(l, 'k', 0, 'RATE_CONCURRENCY_LIMIT_EXCEEDED');
    b.release();
    c.release();
    l.admit('k', 0);
    l.admit('k', 0);
  });

  test('release is idempotent', () => {
    const { limiter: l } = limiter({ concurrentRequests: 2 });
    const a = l.admit('k', 0);
    l.admit('k', 0);
    a.release();
    a.release();
    a.release();
    l.admit('k', 0);
    refused(l, 'k', 0, 'RATE_CONCURRENCY_LIMIT_EXCEEDED');
  });

  test('concurrency is checked first, and a refusal there spends no request or tokens', () => {
    const { limiter: l } = limiter({ concurrentRequests: 1, requestsPerMinute: 5, tokensPerMinute: 100 });
    const a = l.admit('k', 10);
    const error = refused(l, 'k', 10, 'RATE_CONCURRENCY_LIMIT_EXCEEDED');
    assert.deepEqual(error.headers, {
      'X-RateLimit-Remaining-Requests': '4',
      'X-RateLimit-Remaining-Tokens': '90',
      'Retry-After': '1',
    });
    a.release();
    assert.deepEqual(l.admit('k', 10).headers, {
      'X-RateLimit-Remaining-Requests': '3',
      'X-RateLimit-Remaining-Tokens': '80',
    });
  });
});

describe('headers and state', () => {
  test('all limits set: both remaining headers on success and on each kind of refusal', () => {
    const { limiter: l } = limiter({ requestsPerMinute: 2, tokensPerMinute: 100 });
    assert.deepEqual(l.admit('k', 70).headers, {
      'X-RateLimit-Remaining-Requests': '1',
      'X-RateLimit-Remaining-Tokens': '30',
    });
    const tokenError = refused(l, 'k', 31, 'RATE_TOKEN_LIMIT_EXCEEDED');
    assert.deepEqual(tokenError.headers, {
      'X-RateLimit-Remaining-Requests': '1',
      'X-RateLimit-Remaining-Tokens': '30',
      'Retry-After': '60',
    });
    l.admit('k', 30);
    const requestError = refused(l, 'k', 0, 'RATE_REQUEST_LIMIT_EXCEEDED');
    assert.deepEqual(requestError.headers, {
      'X-RateLimit-Remaining-Requests': '0',
      'X-RateLimit-Remaining-Tokens': '0',
      'Retry-After': '60',
    });
  });

  test('remaining() of an unseen key is the full limit and creates no state', () => {
    const { limiter: l } = limiter({ requestsPerMinute: 5, tokensPerMinute: 50 });
    assert.deepEqual(l.remaining('nobody'), { requests: 5, tokens: 50 });
    assert.equal(l.trackedKeys, 0);
    assert.deepEqual(new RateLimiter({}).remaining('nobody'), {});
  });

  test('no limits set: everything is admitted and there are no headers', () => {
    const l = new RateLimiter({});
    assert.equal(l.enabled, false);
    const admissions: Admission[] = [];
    for (let i = 0; i < 1000; i++) admissions.push(l.admit('k', 1e6));
    assert.deepEqual(admissions[999]!.headers, {});
    assert.equal(new RateLimiter({ concurrentRequests: 1 }).enabled, true);
  });

  test('idle keys are dropped once their logs are empty; keys in flight are kept', () => {
    const { limiter: l, advance } = limiter({ requestsPerMinute: 60, tokensPerMinute: 600, concurrentRequests: 5 });
    for (let i = 0; i < 1000; i++) l.admit(`key-${i}`, 10).release();
    const busy = l.admit('busy', 10);
    advance(30_000);
    l.admit('recent', 10).release();
    assert.equal(l.trackedKeys, 1002);
    advance(31_000);
    l.admit('trigger', 0).release();
    assert.equal(l.trackedKeys, 3); // busy (in flight), recent (still in its window), trigger
    advance(61_000);
    l.admit('trigger', 0).release();
    assert.equal(l.trackedKeys, 2); // recent has left its window; trigger was admitted again after the sweep
    // a dropped key starts afresh, exactly as if it had been kept
    assert.deepEqual(l.remaining('key-1'), { requests: 60, tokens: 600 });
    // a slot held across the sweep is still released correctly
    busy.release();
    for (let i = 0; i < 5; i++) l.admit('busy', 0);
    refused(l, 'busy', 0, 'RATE_CONCURRENCY_LIMIT_EXCEEDED');
  });

  test('invalid settings and arguments are refused', () => {
    for (const settings of [{ requestsPerMinute: 0 }, { tokensPerMinute: -1 }, { concurrentRequests: 1.5 }, { requestsPerMinute: NaN }]) {
      assert.throws(() => new RateLimiter(settings), (e: unknown) => e instanceof TesseraError && e.code === 'INVALID_ARGUMENT');
    }
    const l = new RateLimiter({ tokensPerMinute: 10 });
    assert.throws(() => l.admit('k', -1), (e: unknown) => e instanceof TesseraError && e.code === 'INVALID_ARGUMENT');
    assert.throws(() => l.admit('k', 1).commitTokens(NaN), (e: unknown) => e instanceof TesseraError && e.code === 'INVALID_ARGUMENT');
  });

  test('a request limit is a whole number (no minute can hold 1.5 requests); a token limit may be fractional', () => {
    assert.throws(() => new RateLimiter({ requestsPerMinute: 1.5 }), /positive integer for requestsPerMinute/);
    const { limiter: l } = limiter({ tokensPerMinute: 2.5 });
    l.admit('k', 1.5);
    assert.deepEqual(l.admit('k', 1).headers, { 'X-RateLimit-Remaining-Tokens': '0' });
    refused(l, 'k', 0.5, 'RATE_TOKEN_LIMIT_EXCEEDED');
  });

  test('a shorter window (for tests) slides the same way', () => {
    const c = clock();
    const l = new RateLimiter({ requestsPerMinute: 2 }, c.now, 2_000);
    l.admit('k', 0);
    c.advance(500);
    l.admit('k', 0);
    assert.equal(refused(l, 'k', 0, 'RATE_REQUEST_LIMIT_EXCEEDED').headers!['Retry-After'], '2'); // 1.5 s, rounded up
    c.advance(1_500);
    l.admit('k', 0);
    assert.throws(() => new RateLimiter({}, c.now, 0), /windowMs/);
  });
});

test('forItem keeps the headers of a refusal', () => {
  const error = new TesseraError('RATE_TOKEN_LIMIT_EXCEEDED', 'over', { headers: { 'Retry-After': '3' } });
  assert.deepEqual(error.forItem(2).headers, { 'Retry-After': '3' });
  assert.equal(new TesseraError('REQUEST_INVALID', 'x').headers, undefined);
});
