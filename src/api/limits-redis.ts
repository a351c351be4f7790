/**
 * Per-key limits shared by every replica given the same Redis (`tessera serve --queue URL`).
 *
 * The state is limits.ts's, moved into Redis. Per key: the log of admissions of the last
 * minute, a sorted set (member "id:tokens billed", score the admission time in ms), with the
 * tokens of its members summed in a string key beside it (kept in step by every script, so a
 * check is O(1) and not a sum over the log), and a sorted set of concurrency leases (lease id
 * -> expiry). Each admission is one Lua script, atomic in Redis, on Redis's own clock (TIME), so
 * replicas with drifting clocks agree: drop the admissions that left the window
 * (ZREMRANGEBYSCORE) and expired leases, check concurrency, requests, tokens in that order, and
 * only when all pass log the admission and take a lease. So in any minute at most
 * `requestsPerMinute` admissions happen across all replicas. Token corrections
 * (`commitTokens`, rewriting the admission's entry) and releases are sent without waiting for
 * the answer.
 *
 * Memory: one member per admission of the last minute, so at most `requestsPerMinute` per key
 * (fine in Redis even for limits of 10,000 and more: each is a few dozen bytes; a refusal
 * over the token limit reads the oldest entries until enough would leave, in pages of 100).
 * Keys expire a window after their last admission, as the local limiter forgets idle keys.
 *
 * A lease lasts LEASE_MS and is renewed while its request runs, so a replica that dies
 * holding slots frees them within LEASE_MS.
 *
 * While Redis cannot be reached (or does not answer within SERVER_COMMAND_TIMEOUT_MS) the
 * replica admits with a local RateLimiter of the same settings: it keeps serving, with each
 * replica applying the limits alone, until Redis answers again. `onChange` is told of each
 * switch once.
 */
import { randomUUID } from 'node:crypto';
import type { Redis, Result } from 'ioredis';
import { invalidArgument } from '../errors.ts';
import { CONNECT_TIMEOUT_MS, connect, type QueueUrl } from '../queue/connection.ts';
import {
  MINUTE_MS,
  RateLimiter,
  anyLimit,
  checkEstimate,
  checkSettings,
  checkWindow,
  concurrencyRefusal,
  headersFor,
  remainingOf,
  requestRefusal,
  tokenRefusal,
  type Admission,
  type LimitSettings,
  type Limiter,
} from './limits.ts';

/** How long a concurrency slot outlives a replica that stopped renewing it. */
export const LEASE_MS = 30_000;
/** After a failed command, how long requests use the local limits before Redis is tried again. */
const RETRY_AFTER_FAILURE_MS = 1000;
const VERDICTS = new Set(['ok', 'concurrency', 'requests', 'tokens']);

// The log's helpers. A member is "id:tokens"; the sum key holds the tokens of all members.
const LOG = `
local function clock()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
end
local function tokensOf(member)
  return tonumber(string.match(member, ':([^:]*)$')) or 0
end
-- Drops the admissions at or before cutoff (they left the window); returns {count, tokens} left.
local function trim(log, sum, cutoff)
  local tokens = tonumber(redis.call('GET', sum) or '0') or 0
  for _, member in ipairs(redis.call('ZRANGEBYSCORE', log, '-inf', cutoff)) do tokens = tokens - tokensOf(member) end
  redis.call('ZREMRANGEBYSCORE', log, '-inf', cutoff)
  local count = redis.call('ZCARD', log)
  -- An empty log holds no tokens (whatever rounding or a lost sum key said).
  if count == 0 or tokens < 0 then tokens = 0 end
  return count, tokens
end
-- Both keys outlive their newest member by the window, no longer: an idle key is forgotten.
local function keep(log, sum, windowMs)
  redis.call('PEXPIRE', log, windowMs + 1000)
  redis.call('PEXPIRE', sum, windowMs + 1000)
end
`;

/**
 * KEYS: admission log, its token sum, leases. ARGV: requests/min, tokens/min, concurrency (0:
 * unset), estimated tokens (0 without a token limit), admission id, lease ms, window ms.
 * Returns {verdict, in flight, admissions in the window, tokens in the window, ms to wait}: the
 * counts after the admission when 'ok', before it when refused ('concurrency' | 'requests' |
 * 'tokens'); the wait (refused over requests or tokens) is until enough of the oldest admissions
 * have left for this one to fit.
 */
const ADMIT = `${LOG}
local now = clock()
local rpm, tpm, conc = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local estimate, id, leaseMs, windowMs = tonumber(ARGV[4]), ARGV[5], tonumber(ARGV[6]), tonumber(ARGV[7])
local inflight, count, tokens = 0, 0, 0
if conc > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
  inflight = redis.call('ZCARD', KEYS[3])
end
local logged = rpm > 0 or tpm > 0
if logged then count, tokens = trim(KEYS[1], KEYS[2], now - windowMs) end
local function answer(verdict, wait)
  return {verdict, tostring(inflight), tostring(count), tostring(tokens), wait and tostring(wait) or ''}
end
-- When the admission with this rank (0: the oldest) leaves the window.
local function leaves(rank)
  local entry = redis.call('ZRANGE', KEYS[1], rank, rank, 'WITHSCORES')
  return tonumber(entry[2]) + windowMs - now
end
if conc > 0 and inflight >= conc then return answer('concurrency') end
if rpm > 0 and count >= rpm then return answer('requests', leaves(count - rpm)) end
if tpm > 0 and tokens + estimate > tpm then
  if estimate > tpm then return answer('tokens') end
  -- The oldest leave first: read them a page at a time until enough would have left.
  local left, rank = tokens, 0
  while rank < count do
    local page = redis.call('ZRANGE', KEYS[1], rank, rank + 99, 'WITHSCORES')
    for i = 1, #page, 2 do
      left = left - tokensOf(page[i])
      if left + estimate <= tpm then return answer('tokens', tonumber(page[i + 1]) + windowMs - now) end
    end
    rank = rank + 100
  end
  return answer('tokens', windowMs) -- only rounding gets here: in a window all will have left
end
if logged then
  redis.call('ZADD', KEYS[1], now, id .. ':' .. ARGV[4])
  count, tokens = count + 1, tokens + estimate
  if tpm > 0 then redis.call('SET', KEYS[2], tostring(tokens)) end
  keep(KEYS[1], KEYS[2], windowMs)
end
if conc > 0 then
  redis.call('ZADD', KEYS[3], now + leaseMs, id)
  redis.call('PEXPIRE', KEYS[3], leaseMs * 2)
  inflight = inflight + 1
end
return answer('ok')
`;

/**
 * KEYS: admission log, its token sum. ARGV: admission id, tokens billed so far, tokens used,
 * window ms. Rewrites the admission's entry (same time) with the tokens used; an entry already
 * gone (out of the window, or Redis restarted) is left alone. Returns the log's tokens, or ''.
 */
const COMMIT = `${LOG}
local old, new = ARGV[1] .. ':' .. ARGV[2], ARGV[1] .. ':' .. ARGV[3]
local at = redis.call('ZSCORE', KEYS[1], old)
if not at then return '' end
redis.call('ZREM', KEYS[1], old)
redis.call('ZADD', KEYS[1], at, new)
local tokens = math.max(0, (tonumber(redis.call('GET', KEYS[2]) or '0') or 0) + tonumber(ARGV[3]) - tonumber(ARGV[2]))
redis.call('SET', KEYS[2], tostring(tokens))
keep(KEYS[1], KEYS[2], tonumber(ARGV[4]))
return tostring(tokens)
`;

/** KEYS: leases. ARGV: lease id, lease ms. Pushes the lease's expiry on (adds it back after a Redis restart). */
const RENEW = `${LOG}
local now = clock()
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 2)
return 1
`;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    tesseraLimitAdmit(log: string, sum: string, leases: string, rpm: number, tpm: number, concurrency: number, estimate: number, id: string, leaseMs: number, windowMs: number): Result<string[], Context>;
    tesseraLimitCommit(log: string, sum: string, id: string, billed: number, used: number, windowMs: number): Result<string, Context>;
    tesseraLimitRenew(leases: string, lease: string, leaseMs: number): Result<number, Context>;
  }
}

export interface SharedLimiterOptions {
  /**
   * Told when the limits become shared (Redis answers) or local (it cannot be reached, or failed),
   * once per switch, with a line for the log; `first` on the first news after `start`.
   */
  onChange?(shared: boolean, message: string, first: boolean): void;
  /** Default LEASE_MS (tests shorten it). */
  leaseMs?: number;
  /** The window of the "per minute" limits, in ms. Default one minute (tests shorten it). */
  windowMs?: number;
  /** Prefix of the Redis keys. Default "tessera:limits". */
  prefix?: string;
}

export class SharedRateLimiter implements Limiter {
  private readonly settings: Readonly<LimitSettings>;
  private readonly local: RateLimiter;
  private readonly client: Redis;
  private readonly leaseMs: number;
  private readonly windowMs: number;
  private readonly prefix: string;
  /** Leases of requests admitted through Redis and still running: id -> leases key. */
  private readonly leases = new Map<string, string>();
  private renewer: NodeJS.Timeout | undefined;
  /** undefined until the first news after start. */
  private isShared: boolean | undefined;
  /** After a failed command: local limits until then (performance.now() ms). */
  private retryAt = 0;
  private lastError: unknown;
  private closed = false;

  /**
   * @throws TesseraError INVALID_ARGUMENT for a limit that is not a positive number
   */
  constructor(settings: LimitSettings, private readonly queue: QueueUrl, private readonly options: SharedLimiterOptions = {}) {
    this.settings = checkSettings(settings);
    this.windowMs = checkWindow(options.windowMs ?? MINUTE_MS);
    this.local = new RateLimiter(this.settings, undefined, this.windowMs);
    this.leaseMs = options.leaseMs ?? LEASE_MS;
    if (!(Number.isInteger(this.leaseMs) && this.leaseMs > 0)) throw invalidArgument('leaseMs', 'a positive integer', this.leaseMs);
    this.prefix = options.prefix ?? 'tessera:limits';
    this.client = connect(queue, 'server');
    this.client.defineCommand('tesseraLimitAdmit', { numberOfKeys: 3, lua: ADMIT });
    this.client.defineCommand('tesseraLimitCommit', { numberOfKeys: 2, lua: COMMIT });
    this.client.defineCommand('tesseraLimitRenew', { numberOfKeys: 1, lua: RENEW });
    this.client.on('error', (err: unknown) => (this.lastError = err));
    this.client.on('ready', () => {
      this.retryAt = 0;
      this.setShared(true, this.isShared === undefined
        ? `per-key limits are shared by the replicas using Redis at ${this.queue.shown}`
        : `Redis at ${this.queue.shown} answers again: per-key limits are shared by the replicas`);
    });
    this.client.on('close', () => this.away());
  }

  get enabled(): boolean {
    return anyLimit(this.settings);
  }

  /** Whether admissions go through Redis now (false before `start`, and while Redis is away). */
  get shared(): boolean {
    return this.isShared === true;
  }

  /**
   * Connects, waiting at most about CONNECT_TIMEOUT_MS: Redis refusing, or not answering by
   * then, is told through `onChange` and the limits are local until it answers; never throws.
   */
  async start(): Promise<void> {
    if (this.renewer) return;
    this.renewer = setInterval(() => this.renew(), Math.max(1, Math.floor(this.leaseMs / 3)));
    this.renewer.unref();
    const ready = new Promise<boolean>((resolve) => {
      const done = (ok: boolean) => () => {
        clearTimeout(timer);
        this.client.off('ready', yes).off('close', no);
        resolve(ok);
      };
      const yes = done(true);
      const no = done(false);
      const timer = setTimeout(no, CONNECT_TIMEOUT_MS);
      timer.unref();
      this.client.once('ready', yes).once('close', no);
    });
    this.client.connect().catch((err: unknown) => (this.lastError = err));
    if (!(await ready)) this.away();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.renewer);
    // A polite QUIT when connected (bounded: Redis may hang); a lazy client never started must not connect now.
    if (this.client.status === 'ready') {
      await Promise.race([this.client.quit().catch(() => undefined), new Promise((r) => setTimeout(r, 1000).unref())]);
    }
    this.client.disconnect();
  }

  /**
   * Admits one request through Redis when it answers, else through the local limits.
   *
   * @throws TesseraError RATE_CONCURRENCY_LIMIT_EXCEEDED, RATE_REQUEST_LIMIT_EXCEEDED or
   *   RATE_TOKEN_LIMIT_EXCEEDED (429, checked in that order), with `headers`, as RateLimiter
   */
  async admit(keyId: string, estimatedTokens: number): Promise<Admission> {
    checkEstimate(estimatedTokens);
    if (this.closed || this.client.status !== 'ready' || performance.now() < this.retryAt) return this.local.admit(keyId, estimatedTokens);
    const { requestsPerMinute, tokensPerMinute, concurrentRequests } = this.settings;
    // Names the admission's log entry and its lease. Without a token limit it is billed 0
    // tokens (as locally), so the log's token sum stays 0 and commits are no-ops.
    const id = randomUUID();
    const billed = tokensPerMinute === undefined ? 0 : estimatedTokens;
    let answer: string[];
    try {
      answer = await this.client.tesseraLimitAdmit(
        this.key(keyId, 'log'),
        this.key(keyId, 'log-tokens'),
        this.key(keyId, 'leases'),
        requestsPerMinute ?? 0,
        tokensPerMinute ?? 0,
        concurrentRequests ?? 0,
        billed,
        id,
        this.leaseMs,
        this.windowMs,
      );
      if (!Array.isArray(answer) || !VERDICTS.has(String(answer[0]))) throw new Error(`the limit script answered ${JSON.stringify(answer)}`);
    } catch (err) {
      // A failure, not a refusal: this request and those of the next moment go on locally.
      this.lastError = err;
      this.retryAt = performance.now() + RETRY_AFTER_FAILURE_MS;
      this.setShared(false, `Redis at ${this.queue.shown} failed${this.reason()}: per-key limits apply per replica until it answers again`);
      return this.local.admit(keyId, estimatedTokens);
    }
    this.setShared(true, `Redis at ${this.queue.shown} answers again: per-key limits are shared by the replicas`);

    const [verdict, inFlight, count, tokens, wait] = answer;
    const used = { requests: Number(count), tokens: Number(tokens) };
    const remaining = this.remaining(used);
    const waitMs = wait === undefined || wait === '' ? undefined : Number(wait);
    if (verdict === 'concurrency') throw concurrencyRefusal(Number(inFlight), concurrentRequests!, remaining);
    if (verdict === 'requests') throw requestRefusal(requestsPerMinute!, waitMs!, remaining);
    if (verdict === 'tokens') throw tokenRefusal(estimatedTokens, tokensPerMinute!, waitMs, remaining);
    return this.admission(keyId, id, billed, used, concurrentRequests !== undefined);
  }

  /** What is left of the limits that are set, given the admissions and tokens in the window. */
  private remaining(used: { requests: number; tokens: number }): { requests?: number; tokens?: number } {
    const { requestsPerMinute, tokensPerMinute } = this.settings;
    return {
      requests: requestsPerMinute === undefined ? undefined : remainingOf(requestsPerMinute - used.requests),
      tokens: tokensPerMinute === undefined ? undefined : remainingOf(tokensPerMinute - used.tokens),
    };
  }

  /**
   * A request admitted through Redis: its lease renewed until released, its headers from the
   * window as the script saw it, with this request's own token corrections. (Admissions leaving
   * the window, or other replicas' meanwhile, show in the key's next answer.)
   */
  private admission(keyId: string, id: string, billed: number, used: { requests: number; tokens: number }, leased: boolean): Admission {
    const limiter = this;
    const leasesKey = this.key(keyId, 'leases');
    if (leased) this.leases.set(id, leasesKey);
    let released = false;
    return {
      release() {
        if (released) return;
        released = true;
        if (leased && limiter.leases.delete(id)) limiter.client.zrem(leasesKey, id).catch(() => undefined);
      },
      commitTokens(tokens: number) {
        if (!Number.isFinite(tokens) || tokens < 0) throw invalidArgument('tokens', 'a non-negative number', tokens);
        if (limiter.settings.tokensPerMinute === undefined || tokens === billed) return;
        used.tokens = Math.max(0, used.tokens + tokens - billed);
        // Sent in order on one connection, so each commit finds the entry the previous one wrote.
        limiter.client.tesseraLimitCommit(limiter.key(keyId, 'log'), limiter.key(keyId, 'log-tokens'), id, billed, tokens, limiter.windowMs).catch(() => undefined);
        billed = tokens;
      },
      get headers(): Record<string, string> {
        return headersFor(limiter.remaining(used));
      },
    };
  }

  private key(keyId: string, what: 'log' | 'log-tokens' | 'leases'): string {
    // One hash slot per API key ({...}), so the script's keys stay together on a Redis Cluster.
    return `${this.prefix}:{${keyId}}:${what}`;
  }

  private renew(): void {
    if (this.client.status !== 'ready') return;
    for (const [lease, key] of this.leases) this.client.tesseraLimitRenew(key, lease, this.leaseMs).catch(() => undefined);
  }

  /** The connection is down, or never came up. */
  private away(): void {
    if (this.isShared === undefined) {
      this.setShared(false, `cannot reach Redis at ${this.queue.shown}${this.reason()}: per-key limits apply per replica until it answers`);
    } else {
      this.setShared(false, `lost Redis at ${this.queue.shown}${this.reason()}: per-key limits apply per replica until it answers again`);
    }
  }

  private setShared(shared: boolean, message: string): void {
    if (this.isShared === shared || this.closed) return;
    const first = this.isShared === undefined;
    this.isShared = shared;
    this.options.onChange?.(shared, message, first);
  }

  private reason(): string {
    const err = this.lastError;
    if (err === undefined) return '';
    const text = err instanceof Error ? ((err as NodeJS.ErrnoException).code ?? err.message) : String(err);
    return ` (${text.replaceAll(this.queue.url, this.queue.shown)})`;
  }
}
