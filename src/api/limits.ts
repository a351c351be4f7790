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
 * Where the state lives is behind `Limiter`: `RateLimiter` here keeps it in this process (N
 * replicas give a key N times its limits); `SharedRateLimiter` (limits-redis.ts) keeps the same
 * buckets in Redis for every replica given it, and falls back to a `RateLimiter` while Redis
 * is away. Both refuse with the same codes, messages and headers (the `*Refusal` functions).
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

/**
 * Per-key limits wherever their state is kept (this process, or Redis shared by replicas).
 * `admit` throws (or rejects with) the TesseraError 429s below; nothing is consumed then.
 */
export interface Limiter {
  /** Whether any limit is set (when none is, the server may skip the limiter). */
  readonly enabled: boolean;
  admit(keyId: string, estimatedTokens: number): Admission | Promise<Admission>;
  /** Gets what the limiter needs (a connection) before the first request; never throws. */
  start(): Promise<void>;
  /** Lets go of what the limiter holds (connections, timers); admissions still out stay releasable. */
  close(): Promise<void>;
}

export const REMAINING_REQUESTS_HEADER = 'X-RateLimit-Remaining-Requests';
export const REMAINING_TOKENS_HEADER = 'X-RateLimit-Remaining-Tokens';
export const RETRY_AFTER_HEADER = 'Retry-After';

export const MINUTE_MS = 60_000;
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

  remaining(): number {
    return remainingOf(this.level);
  }
}

interface KeyState {
  requests?: Bucket;
  tokens?: Bucket;
  inFlight: number;
}

export class RateLimiter implements Limiter {
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
    this.settings = checkSettings(settings);
    this.now = now;
    this.lastSweep = now();
  }

  /** Whether any limit is set (when none is, the server may skip the limiter). */
  get enabled(): boolean {
    return anyLimit(this.settings);
  }

  async start(): Promise<void> {}

  async close(): Promise<void> {}

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
    checkEstimate(estimatedTokens);
    const now = this.now();
    this.sweep(now);
    const state = this.state(keyId, now);
    const { requestsPerMinute, tokensPerMinute, concurrentRequests } = this.settings;
    const remaining = { requests: state.requests?.remaining(), tokens: state.tokens?.remaining() };

    if (concurrentRequests !== undefined && state.inFlight >= concurrentRequests) {
      throw concurrencyRefusal(state.inFlight, concurrentRequests, remaining);
    }
    if (requestsPerMinute !== undefined && state.requests && state.requests.level < 1) {
      throw requestRefusal(requestsPerMinute, state.requests.level, remaining);
    }
    if (tokensPerMinute !== undefined && state.tokens && state.tokens.level < estimatedTokens) {
      throw tokenRefusal(estimatedTokens, tokensPerMinute, state.tokens.level, remaining);
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

/** What a key has left of the limits that are set (whole units, never below 0). */
export interface Remaining {
  requests?: number;
  tokens?: number;
}

/** The settings, checked and frozen. @throws TesseraError INVALID_ARGUMENT for a limit that is not a positive number (`concurrentRequests`: integer) */
export function checkSettings(settings: LimitSettings): Readonly<LimitSettings> {
  for (const name of ['requestsPerMinute', 'tokensPerMinute', 'concurrentRequests'] as const) {
    const value = settings[name];
    if (value === undefined) continue;
    const integer = name === 'concurrentRequests';
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0 || (integer && !Number.isInteger(value))) {
      throw invalidArgument(name, integer ? 'a positive integer' : 'a positive number', value);
    }
  }
  return Object.freeze({ ...settings });
}

export function anyLimit(settings: LimitSettings): boolean {
  return settings.requestsPerMinute !== undefined || settings.tokensPerMinute !== undefined || settings.concurrentRequests !== undefined;
}

export function checkEstimate(estimatedTokens: number): void {
  if (!Number.isFinite(estimatedTokens) || estimatedTokens < 0) {
    throw invalidArgument('estimatedTokens', 'a non-negative number', estimatedTokens);
  }
}

/** A bucket level as the headers show it. */
export function remainingOf(level: number): number {
  return Math.max(0, Math.floor(level));
}

/** RATE_CONCURRENCY_LIMIT_EXCEEDED: `inFlight` requests of the key run, `limit` may. */
export function concurrencyRefusal(inFlight: number, limit: number, remaining: Remaining): TesseraError {
  return refusal(
    'RATE_CONCURRENCY_LIMIT_EXCEEDED',
    `this API key already has ${count(inFlight, 'request')} in flight, its limit is ${limit}; retry when one of them has finished`,
    remaining,
    CONCURRENCY_RETRY_S,
  );
}

/** RATE_REQUEST_LIMIT_EXCEEDED: the key's request bucket (refilled at limit per minute) holds `level` < 1. */
export function requestRefusal(limit: number, level: number, remaining: Remaining): TesseraError {
  const wait = retrySeconds(msUntil(1, level, limit));
  return refusal('RATE_REQUEST_LIMIT_EXCEEDED', `this API key is over its limit of ${limit} requests per minute; retry in ${wait} s`, remaining, wait);
}

/** RATE_TOKEN_LIMIT_EXCEEDED: the key's token bucket holds `level` < `estimatedTokens`. */
export function tokenRefusal(estimatedTokens: number, limit: number, level: number, remaining: Remaining): TesseraError {
  if (estimatedTokens > limit) {
    // Waiting never helps, so no Retry-After: the client must send less.
    return refusal(
      'RATE_TOKEN_LIMIT_EXCEEDED',
      `this request needs about ${count(Math.ceil(estimatedTokens), 'token')}, more than this API key's whole limit of ` +
        `${limit} tokens per minute; split it into smaller requests`,
      remaining,
    );
  }
  const wait = retrySeconds(msUntil(estimatedTokens, level, limit));
  return refusal(
    'RATE_TOKEN_LIMIT_EXCEEDED',
    `this request needs about ${count(Math.ceil(estimatedTokens), 'token')} and this API key has ${remainingOf(level)} ` +
      `left of its limit of ${limit} tokens per minute; retry in ${wait} s`,
    remaining,
    wait,
  );
}

type RefusalCode = 'RATE_CONCURRENCY_LIMIT_EXCEEDED' | 'RATE_REQUEST_LIMIT_EXCEEDED' | 'RATE_TOKEN_LIMIT_EXCEEDED';

function refusal(code: RefusalCode, message: string, remaining: Remaining, retryAfter?: number): TesseraError {
  const headers = headersFor(remaining);
  if (retryAfter !== undefined) headers[RETRY_AFTER_HEADER] = String(retryAfter);
  return new TesseraError(code, message, { headers });
}

/** Milliseconds until a bucket refilled at `perMinute` goes from `level` to `amount`. */
function msUntil(amount: number, level: number, perMinute: number): number {
  return Math.max(0, (amount - level) / (perMinute / MINUTE_MS));
}

export function headersFor(remaining: Remaining): Record<string, string> {
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
