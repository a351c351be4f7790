/**
 * Optional per-key limits: requests per minute, tokens per minute, requests in flight.
 *
 * The per-minute limits are token buckets refilled continuously: a key's bucket holds at
 * most one minute's allowance and refills at limit/60 per second, so a key can burst up to
 * its limit and then runs at its limit on average over any stretch of time. (Unlike a
 * fixed window there is no cliff at the minute boundary; unlike a sliding log, a key's
 * state is two numbers.) A key whose buckets are full and has nothing in flight is
 * indistinguishable from one never seen, so such state is dropped: memory holds only keys
 * active in about the last minute.
 *
 * Tokens are billed by estimate at admission (the estimate must fit in what remains) and
 * corrected by `commitTokens` once the real count is known: a refund if fewer were used,
 * a debt the bucket pays off by refilling if more.
 *
 * Headers, for the answer to the client (only for limits that are set):
 * `X-RateLimit-Remaining-Requests`, `X-RateLimit-Remaining-Tokens`, and on 429 `Retry-After`
 * (whole seconds). On 429 they ride on the thrown TesseraError's `headers`.
 *
 * @example
 * const limiter = new RateLimiter({ requestsPerMinute: 60, tokensPerMinute: 100_000, concurrentRequests: 4 });
 * const admission = limiter.admit(keyId, estimatedTokens); // throws TesseraError (429) when over
 * try { ...; admission.commitTokens(usage.total_tokens); } finally { admission.release(); }
 * reply.headers(admission.headers);
 */
import { TesseraError, invalidArgument } from '../errors.ts';

/** Each limit applies per API key; undefined = unlimited. */
export interface LimitSettings {
  requestsPerMinute?: number;
  tokensPerMinute?: number;
  concurrentRequests?: number;
}

export interface Admission {
  /** Ends the request's concurrency slot; calling it again does nothing. */
  release(): void;
  /** Bills the tokens actually used, after the request ran (replaces the estimate; the last call counts). */
  commitTokens(tokens: number): void;
  /** The rate-limit headers, as of when they are read (so read them after `commitTokens`). */
  readonly headers: Record<string, string>;
}

export const REMAINING_REQUESTS_HEADER = 'X-RateLimit-Remaining-Requests';
export const REMAINING_TOKENS_HEADER = 'X-RateLimit-Remaining-Tokens';
export const RETRY_AFTER_HEADER = 'Retry-After';

const MINUTE_MS = 60_000;
/** Until a slot frees no time can be promised; a second is a polite first retry. */
const CONCURRENCY_RETRY_S = 1;

/** A continuously refilled bucket; `level` may go below zero when usage exceeded an estimate. */
class Bucket {
  level: number;
  private readonly perMs: number;

  constructor(readonly capacity: number, private updated: number) {
    this.level = capacity;
    this.perMs = capacity / MINUTE_MS;
  }

  refill(now: number): void {
    if (now > this.updated) this.level = Math.min(this.capacity, this.level + (now - this.updated) * this.perMs);
    this.updated = Math.max(this.updated, now);
  }

  /** Level that refill at `now` would give, without changing anything. */
  peek(now: number): number {
    return Math.min(this.capacity, this.level + Math.max(0, now - this.updated) * this.perMs);
  }

  /** Milliseconds until the bucket holds `amount`. */
  msUntil(amount: number): number {
    return Math.max(0, (amount - this.level) / this.perMs);
  }

  remaining(): number {
    return Math.max(0, Math.floor(this.level));
  }
}

interface KeyState {
  requests?: Bucket;
  tokens?: Bucket;
  inFlight: number;
}

export class RateLimiter {
  private readonly settings: Readonly<LimitSettings>;
  private readonly now: () => number;
  private readonly keys = new Map<string, KeyState>();
  private lastSweep: number;

  /**
   * @param settings the limits, each per key; undefined = unlimited
   * @param now milliseconds from a monotonic clock (tests pass a fake one)
   * @throws TesseraError INVALID_ARGUMENT for a limit that is not a positive number
   *   (`concurrentRequests`: a positive integer)
   */
  constructor(settings: LimitSettings, now: () => number = () => performance.now()) {
    for (const name of ['requestsPerMinute', 'tokensPerMinute', 'concurrentRequests'] as const) {
      const value = settings[name];
      if (value === undefined) continue;
      const integer = name === 'concurrentRequests';
      if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0 || (integer && !Number.isInteger(value))) {
        throw invalidArgument(name, integer ? 'a positive integer' : 'a positive number', value);
      }
    }
    this.settings = Object.freeze({ ...settings });
    this.now = now;
    this.lastSweep = now();
  }

  /** Whether any limit is set (when none is, the server may skip the limiter). */
  get enabled(): boolean {
    const { requestsPerMinute, tokensPerMinute, concurrentRequests } = this.settings;
    return requestsPerMinute !== undefined || tokensPerMinute !== undefined || concurrentRequests !== undefined;
  }

  /** How many keys hold state now (for metrics and tests). */
  get trackedKeys(): number {
    return this.keys.size;
  }

  /**
   * Admits one request of `keyId` expected to use `estimatedTokens`, or throws.
   * Nothing is consumed when the request is refused.
   *
   * @throws TesseraError RATE_CONCURRENCY_LIMIT_EXCEEDED, RATE_REQUEST_LIMIT_EXCEEDED or
   *   RATE_TOKEN_LIMIT_EXCEEDED (429, checked in that order), with `headers`
   */
  admit(keyId: string, estimatedTokens: number): Admission {
    if (!Number.isFinite(estimatedTokens) || estimatedTokens < 0) {
      throw invalidArgument('estimatedTokens', 'a non-negative number', estimatedTokens);
    }
    const now = this.now();
    this.sweep(now);
    const state = this.state(keyId, now);
    const { requestsPerMinute, tokensPerMinute, concurrentRequests } = this.settings;

    if (concurrentRequests !== undefined && state.inFlight >= concurrentRequests) {
      throw this.refusal(
        'RATE_CONCURRENCY_LIMIT_EXCEEDED',
        `this API key already has ${count(state.inFlight, 'request')} in flight, its limit is ${concurrentRequests}; ` +
          'retry when one of them has finished',
        state,
        CONCURRENCY_RETRY_S,
      );
    }
    if (state.requests && state.requests.level < 1) {
      const wait = retrySeconds(state.requests.msUntil(1));
      throw this.refusal(
        'RATE_REQUEST_LIMIT_EXCEEDED',
        `this API key is over its limit of ${requestsPerMinute} requests per minute; retry in ${wait} s`,
        state,
        wait,
      );
    }
    if (state.tokens && state.tokens.level < estimatedTokens) {
      if (estimatedTokens > state.tokens.capacity) {
        // Waiting never helps, so no Retry-After: the client must send less.
        throw this.refusal(
          'RATE_TOKEN_LIMIT_EXCEEDED',
          `this request needs about ${count(Math.ceil(estimatedTokens), 'token')}, more than this API key's whole limit of ` +
            `${tokensPerMinute} tokens per minute; split it into smaller requests`,
          state,
        );
      }
      const wait = retrySeconds(state.tokens.msUntil(estimatedTokens));
      throw this.refusal(
        'RATE_TOKEN_LIMIT_EXCEEDED',
        `this request needs about ${count(Math.ceil(estimatedTokens), 'token')} and this API key has ${state.tokens.remaining()} ` +
          `left of its limit of ${tokensPerMinute} tokens per minute; retry in ${wait} s`,
        state,
        wait,
      );
    }

    if (state.requests) state.requests.level -= 1;
    if (state.tokens) state.tokens.level -= estimatedTokens;
    state.inFlight += 1;
    return this.admission(keyId, estimatedTokens);
  }

  /** What `keyId` could still use now, for the limits that are set. */
  remaining(keyId: string): { requests?: number; tokens?: number } {
    const now = this.now();
    const state = this.keys.get(keyId);
    const out: { requests?: number; tokens?: number } = {};
    const { requestsPerMinute, tokensPerMinute } = this.settings;
    if (requestsPerMinute !== undefined) {
      out.requests = Math.max(0, Math.floor(state?.requests ? state.requests.peek(now) : requestsPerMinute));
    }
    if (tokensPerMinute !== undefined) {
      out.tokens = Math.max(0, Math.floor(state?.tokens ? state.tokens.peek(now) : tokensPerMinute));
    }
    return out;
  }

  private admission(keyId: string, estimatedTokens: number): Admission {
    const limiter = this;
    let released = false;
    let billed = estimatedTokens;
    return {
      release: () => {
        if (released) return;
        released = true;
        const state = limiter.keys.get(keyId);
        if (state && state.inFlight > 0) state.inFlight -= 1;
      },
      commitTokens: (tokens: number) => {
        if (!Number.isFinite(tokens) || tokens < 0) throw invalidArgument('tokens', 'a non-negative number', tokens);
        const bucket = limiter.state(keyId, limiter.now()).tokens;
        if (bucket) bucket.level = Math.min(bucket.capacity, bucket.level + billed - tokens);
        billed = tokens;
      },
      get headers(): Record<string, string> {
        return headersFor(limiter.remaining(keyId));
      },
    };
  }

  private refusal(code: RefusalCode, message: string, state: KeyState, retryAfter?: number): TesseraError {
    const headers = headersFor({ requests: state.requests?.remaining(), tokens: state.tokens?.remaining() });
    if (retryAfter !== undefined) headers[RETRY_AFTER_HEADER] = String(retryAfter);
    return new TesseraError(code, message, { headers });
  }

  /** The key's state, refilled to `now` (created full when absent). */
  private state(keyId: string, now: number): KeyState {
    let state = this.keys.get(keyId);
    if (!state) {
      const { requestsPerMinute, tokensPerMinute } = this.settings;
      state = {
        requests: requestsPerMinute === undefined ? undefined : new Bucket(requestsPerMinute, now),
        tokens: tokensPerMinute === undefined ? undefined : new Bucket(tokensPerMinute, now),
        inFlight: 0,
      };
      this.keys.set(keyId, state);
    }
    state.requests?.refill(now);
    state.tokens?.refill(now);
    return state;
  }

  /** Drops idle keys whose buckets are full again, at most once a minute. */
  private sweep(now: number): void {
    if (now - this.lastSweep < MINUTE_MS) return;
    this.lastSweep = now;
    for (const [keyId, state] of this.keys) {
      if (state.inFlight > 0) continue;
      const full = (bucket?: Bucket) => !bucket || bucket.peek(now) >= bucket.capacity;
      if (full(state.requests) && full(state.tokens)) this.keys.delete(keyId);
    }
  }
}

type RefusalCode = 'RATE_CONCURRENCY_LIMIT_EXCEEDED' | 'RATE_REQUEST_LIMIT_EXCEEDED' | 'RATE_TOKEN_LIMIT_EXCEEDED';

function headersFor(remaining: { requests?: number; tokens?: number }): Record<string, string> {
  const headers: Record<string, string> = {};
  if (remaining.requests !== undefined) headers[REMAINING_REQUESTS_HEADER] = String(remaining.requests);
  if (remaining.tokens !== undefined) headers[REMAINING_TOKENS_HEADER] = String(remaining.tokens);
  return headers;
}

/** Whole seconds for Retry-After, at least 1 (0 would invite an immediate, equally refused retry). */
function retrySeconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}

function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}
