/**
 * Optional per-key limits: requests per minute, tokens per minute, requests in flight.
 *
 * The per-minute limits are strict sliding windows: in ANY 60 s, a key gets at most its
 * request limit of admissions, and the tokens billed to the requests admitted in those 60 s
 * fit in its token limit. (That is what a user reads into "60 requests per minute"; a token
 * bucket, refilling while a burst runs, lets a few more through, and a fixed window lets
 * twice the limit through across its boundary.) The state is a log per key of the admissions
 * of the last minute (time, tokens billed), oldest first, with the tokens summed: an
 * admission is O(1) amortized, a key holds at most `requestsPerMinute` entries (with only a
 * token limit, at most tokensPerMinute / 2, every request being estimated at 2 tokens or more).
 * A key with an empty log and nothing in flight is indistinguishable from one never seen, so
 * such state is dropped: memory holds only keys active in about the last minute.
 *
 * Tokens are billed by estimate at admission (the estimate must fit in what remains of the
 * window) and corrected by `commitTokens` once the real count is known, in the admission's
 * own entry: a refund if fewer were used, a debt if more, both leaving the window with it a
 * minute after admission. (A correction after that, of a request that ran over a minute,
 * changes nothing.)
 *
 * Where the state lives is behind `Limiter`: `RateLimiter` here keeps it in this process (N
 * replicas give a key N times its limits); `SharedRateLimiter` (limits-redis.ts) keeps the same
 * logs in Redis for every replica given it, and falls back to a `RateLimiter` while Redis
 * is away. Both refuse with the same codes, messages and headers (the `*Refusal` functions).
 *
 * Headers, for the answer to the client (only for limits that are set):
 * `X-RateLimit-Remaining-Requests` (the request limit less the key's admissions in the last
 * minute), `X-RateLimit-Remaining-Tokens` (the token limit less the tokens billed to those),
 * and on 429 `Retry-After`: whole seconds, rounded up, until enough of the oldest admissions
 * have left the window for this request to fit, so that a retry then is admitted (unless
 * other requests of the key take the room first). On 429 they ride on the thrown
 * TesseraError's `headers`.
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
  /** A positive integer: at most this many admissions in any minute. */
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

/** One admission, while it is in the window: when, and the tokens billed for it. */
interface Entry {
  readonly at: number;
  tokens: number;
}

/**
 * A key's admissions of the last window, oldest first, and their tokens summed. Entries only
 * leave from the front, so it is a queue: `first` skips those gone and the array is cut now
 * and then, which keeps each admission O(1) amortized however large the limit.
 */
class AdmissionLog {
  private entries: Entry[] = [];
  private first = 0;
  /** The tokens of the entries in the log. */
  tokens = 0;

  get count(): number {
    return this.entries.length - this.first;
  }

  /** Forgets the admissions at or before `cutoff` (now - window): they have left the window. */
  trim(cutoff: number): void {
    const entries = this.entries;
    while (this.first < entries.length && entries[this.first]!.at <= cutoff) this.tokens -= entries[this.first++]!.tokens;
    if (this.first === entries.length) {
      this.entries = [];
      this.first = 0;
      this.tokens = 0; // no rounding dust left behind by fractional token counts
    } else if (this.first >= 1024 && this.first * 2 >= entries.length) {
      this.entries = entries.slice(this.first);
      this.first = 0;
    }
  }

  add(entry: Entry): void {
    this.entries.push(entry);
    this.tokens += entry.tokens;
  }

  /** The time of the `n`-th oldest admission (0: the oldest). */
  at(n: number): number {
    return this.entries[this.first + n]!.at;
  }

  /** The time of the oldest admission whose leaving brings the log's tokens to `target` or below. */
  atWhenTokensFit(target: number): number {
    let tokens = this.tokens;
    for (let i = this.first; i < this.entries.length; i++) {
      tokens -= this.entries[i]!.tokens;
      if (tokens <= target) return this.entries[i]!.at;
    }
    return this.entries[this.entries.length - 1]!.at; // only rounding can get here: once all have left, anything fits
  }
}

interface KeyState {
  /** Absent when no per-minute limit is set. */
  log?: AdmissionLog;
  inFlight: number;
}

export class RateLimiter implements Limiter {
  private readonly settings: Readonly<LimitSettings>;
  private readonly now: () => number;
  private readonly windowMs: number;
  private readonly keys = new Map<string, KeyState>();
  private lastSweep: number;

  /**
   * @param settings the limits, each per key; undefined = unlimited
   * @param now milliseconds from a monotonic clock (tests pass a fake one)
   * @param windowMs the window of the "per minute" limits (tests shorten it)
   * @throws TesseraError INVALID_ARGUMENT for a limit that is not a positive number
   *   (`requestsPerMinute`, `concurrentRequests`: a positive integer)
   */
  constructor(settings: LimitSettings, now: () => number = () => performance.now(), windowMs = MINUTE_MS) {
    this.settings = checkSettings(settings);
    this.now = now;
    this.windowMs = checkWindow(windowMs);
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
   * Nothing is consumed (logged) when the request is refused.
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
    const log = state.log;
    const remaining = this.remainingIn(log);

    if (concurrentRequests !== undefined && state.inFlight >= concurrentRequests) {
      throw concurrencyRefusal(state.inFlight, concurrentRequests, remaining);
    }
    if (requestsPerMinute !== undefined && log!.count >= requestsPerMinute) {
      // Room comes when the admission that brings the count under the limit leaves: the oldest one.
      throw requestRefusal(requestsPerMinute, log!.at(log!.count - requestsPerMinute) + this.windowMs - now, remaining);
    }
    if (tokensPerMinute !== undefined && log!.tokens + estimatedTokens > tokensPerMinute) {
      const wait = estimatedTokens > tokensPerMinute ? undefined : log!.atWhenTokensFit(tokensPerMinute - estimatedTokens) + this.windowMs - now;
      throw tokenRefusal(estimatedTokens, tokensPerMinute, wait, remaining);
    }

    // Without a token limit nothing reads the entry's tokens: bill none, so commits are no-ops.
    const entry = log && { at: now, tokens: tokensPerMinute === undefined ? 0 : estimatedTokens };
    if (entry) log!.add(entry);
    state.inFlight += 1;
    return this.admission(keyId, entry);
  }

  /** What `keyId` could still use now, for the limits that are set. */
  remaining(keyId: string): Remaining {
    const log = this.keys.get(keyId)?.log;
    log?.trim(this.now() - this.windowMs);
    return this.remainingIn(log);
  }

  private remainingIn(log: AdmissionLog | undefined): Remaining {
    const { requestsPerMinute, tokensPerMinute } = this.settings;
    const out: Remaining = {};
    if (requestsPerMinute !== undefined) out.requests = remainingOf(requestsPerMinute - (log?.count ?? 0));
    if (tokensPerMinute !== undefined) out.tokens = remainingOf(tokensPerMinute - (log?.tokens ?? 0));
    return out;
  }

  private admission(keyId: string, entry: Entry | undefined): Admission {
    const limiter = this;
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        const state = limiter.keys.get(keyId);
        if (state && state.inFlight > 0) state.inFlight -= 1;
      },
      commitTokens: (tokens: number) => {
        if (!Number.isFinite(tokens) || tokens < 0) throw invalidArgument('tokens', 'a non-negative number', tokens);
        if (!entry || limiter.settings.tokensPerMinute === undefined) return;
        const now = limiter.now();
        // Out of the window, the entry has left the log (or is about to): nothing to correct.
        if (entry.at <= now - limiter.windowMs) return;
        const log = limiter.state(keyId, now).log!;
        log.tokens += tokens - entry.tokens;
        entry.tokens = tokens;
      },
      get headers(): Record<string, string> {
        return headersFor(limiter.remaining(keyId));
      },
    };
  }

  /** The key's state, its log trimmed to `now` (created empty when absent). */
  private state(keyId: string, now: number): KeyState {
    let state = this.keys.get(keyId);
    if (!state) {
      const { requestsPerMinute, tokensPerMinute } = this.settings;
      state = { log: requestsPerMinute === undefined && tokensPerMinute === undefined ? undefined : new AdmissionLog(), inFlight: 0 };
      this.keys.set(keyId, state);
    }
    state.log?.trim(now - this.windowMs);
    return state;
  }

  /** Drops idle keys whose logs are empty, at most once a window. */
  private sweep(now: number): void {
    if (now - this.lastSweep < this.windowMs) return;
    this.lastSweep = now;
    for (const [keyId, state] of this.keys) {
      if (state.inFlight > 0) continue;
      state.log?.trim(now - this.windowMs);
      if (!state.log || state.log.count === 0) this.keys.delete(keyId);
    }
  }
}

/** What a key has left of the limits that are set (whole units, never below 0). */
export interface Remaining {
  requests?: number;
  tokens?: number;
}

/**
 * The settings, checked and frozen.
 * @throws TesseraError INVALID_ARGUMENT for a limit that is not a positive number (`requestsPerMinute`
 *   and `concurrentRequests`: integer; "1.5 requests in any minute" cannot be held strictly)
 */
export function checkSettings(settings: LimitSettings): Readonly<LimitSettings> {
  for (const name of ['requestsPerMinute', 'tokensPerMinute', 'concurrentRequests'] as const) {
    const value = settings[name];
    if (value === undefined) continue;
    const integer = name !== 'tokensPerMinute';
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0 || (integer && !Number.isInteger(value))) {
      throw invalidArgument(name, integer ? 'a positive integer' : 'a positive number', value);
    }
  }
  return Object.freeze({ ...settings });
}

/** The window of the per-minute limits, checked. @throws TesseraError INVALID_ARGUMENT when not a positive integer */
export function checkWindow(windowMs: number): number {
  if (!(Number.isInteger(windowMs) && windowMs > 0)) throw invalidArgument('windowMs', 'a positive integer', windowMs);
  return windowMs;
}

export function anyLimit(settings: LimitSettings): boolean {
  return settings.requestsPerMinute !== undefined || settings.tokensPerMinute !== undefined || settings.concurrentRequests !== undefined;
}

export function checkEstimate(estimatedTokens: number): void {
  if (!Number.isFinite(estimatedTokens) || estimatedTokens < 0) {
    throw invalidArgument('estimatedTokens', 'a non-negative number', estimatedTokens);
  }
}

/** A count left of a limit, as the headers show it. */
export function remainingOf(left: number): number {
  return Math.max(0, Math.floor(left));
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

/** RATE_REQUEST_LIMIT_EXCEEDED: the key had `limit` admissions in the window; one leaves it in `waitMs`. */
export function requestRefusal(limit: number, waitMs: number, remaining: Remaining): TesseraError {
  const wait = retrySeconds(waitMs);
  return refusal('RATE_REQUEST_LIMIT_EXCEEDED', `this API key is over its limit of ${limit} requests per minute; retry in ${wait} s`, remaining, wait);
}

/**
 * RATE_TOKEN_LIMIT_EXCEEDED: `estimatedTokens` do not fit in what is left of the window
 * (`remaining.tokens`); they will once the admissions leaving within `waitMs` have left.
 * `waitMs` undefined: the estimate is over the whole limit.
 */
export function tokenRefusal(estimatedTokens: number, limit: number, waitMs: number | undefined, remaining: Remaining): TesseraError {
  if (estimatedTokens > limit || waitMs === undefined) {
    // Waiting never helps, so no Retry-After: the client must send less.
    return refusal(
      'RATE_TOKEN_LIMIT_EXCEEDED',
      `this request needs about ${count(Math.ceil(estimatedTokens), 'token')}, more than this API key's whole limit of ` +
        `${limit} tokens per minute; split it into smaller requests`,
      remaining,
    );
  }
  const wait = retrySeconds(waitMs);
  return refusal(
    'RATE_TOKEN_LIMIT_EXCEEDED',
    `this request needs about ${count(Math.ceil(estimatedTokens), 'token')} and this API key has ${remaining.tokens ?? 0} ` +
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

export function headersFor(remaining: Remaining): Record<string, string> {
  const headers: Record<string, string> = {};
  if (remaining.requests !== undefined) headers[REMAINING_REQUESTS_HEADER] = String(remaining.requests);
  if (remaining.tokens !== undefined) headers[REMAINING_TOKENS_HEADER] = String(remaining.tokens);
  return headers;
}

/**
 * Whole seconds for Retry-After: rounded up, so that a retry then finds the admission gone; at
 * least 1 (0 would invite an immediate, equally refused retry).
 */
function retrySeconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}

function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}
