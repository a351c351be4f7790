/**
 * Per-key limits shared by every replica given the same Redis (`tessera serve --queue URL`).
 *
 * The state is limits.ts's, moved into Redis: per key a request bucket and a token bucket
 * (hashes `level`, `at`: token buckets refilled continuously at limit/60 per second, up to one
 * minute's allowance) and a sorted set of concurrency leases (lease id -> expiry). Each
 * admission is one Lua script, atomic in Redis, on Redis's own clock (TIME), so replicas with
 * drifting clocks agree: drop expired leases, check concurrency, requests, tokens in that
 * order, and only when all pass take one request, the estimated tokens and a lease. Token
 * corrections (`commitTokens`) and releases are sent without waiting for the answer.
 *
 * A lease lasts LEASE_MS and is renewed while its request runs, so a replica that dies
 * holding slots frees them within LEASE_MS. Idle keys expire once their buckets would be full
 * again, as the local limiter forgets them.
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

// A bucket's level refilled to `now`; a missing hash is a full bucket.
const LEVEL = `
local function level(key, capacity, now)
  local v = redis.call('HMGET', key, 'level', 'at')
  local l, at = tonumber(v[1]), tonumber(v[2])
  if not l or not at then return capacity end
  if now > at then l = math.min(capacity, l + (now - at) * capacity / 60000) end
  return l
end
local function save(key, capacity, l, now)
  redis.call('HSET', key, 'level', l, 'at', now)
  -- Gone once it would be full again: a missing bucket reads as full.
  redis.call('PEXPIRE', key, math.ceil((capacity - l) * 60000 / capacity) + 1000)
end
local function clock()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
end
`;

/**
 * KEYS: request bucket, token bucket, leases. ARGV: requests/min, tokens/min, concurrency (0:
 * unset), estimated tokens, lease id, lease ms.
 * Returns {verdict, in flight, request level, token level} ('' for a limit not set): the levels
 * after the admission when `ok`, before it when refused ('concurrency' | 'requests' | 'tokens').
 */
const ADMIT = `${LEVEL}
local now = clock()
local rpm, tpm, conc = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local estimate, lease, leaseMs = tonumber(ARGV[4]), ARGV[5], tonumber(ARGV[6])
local inflight, r, t = 0, nil, nil
if conc > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
  inflight = redis.call('ZCARD', KEYS[3])
end
if rpm > 0 then r = level(KEYS[1], rpm, now) end
if tpm > 0 then t = level(KEYS[2], tpm, now) end
local function answer(verdict)
  return {verdict, tostring(inflight), r and tostring(r) or '', t and tostring(t) or ''}
end
if conc > 0 and inflight >= conc then return answer('concurrency') end
if r and r < 1 then return answer('requests') end
if t and t < estimate then return answer('tokens') end
if r then r = r - 1; save(KEYS[1], rpm, r, now) end
if t then t = t - estimate; save(KEYS[2], tpm, t, now) end
if conc > 0 then
  redis.call('ZADD', KEYS[3], now + leaseMs, lease)
  redis.call('PEXPIRE', KEYS[3], leaseMs * 2)
  inflight = inflight + 1
end
return answer('ok')
`;

/** KEYS: token bucket. ARGV: tokens/min, tokens to give back (negative: to take). Returns the new level. */
const COMMIT = `${LEVEL}
local now = clock()
local tpm, delta = tonumber(ARGV[1]), tonumber(ARGV[2])
local t = math.min(tpm, level(KEYS[1], tpm, now) + delta)
save(KEYS[1], tpm, t, now)
return tostring(t)
`;

/** KEYS: leases. ARGV: lease id, lease ms. Pushes the lease's expiry on (adds it back after a Redis restart). */
const RENEW = `${LEVEL}
local now = clock()
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 2)
return 1
`;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    tesseraLimitAdmit(requests: string, tokens: string, leases: string, rpm: number, tpm: number, concurrency: number, estimate: number, lease: string, leaseMs: number): Result<string[], Context>;
    tesseraLimitCommit(tokens: string, tpm: number, delta: number): Result<string, Context>;
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
  /** Prefix of the Redis keys. Default "tessera:limits". */
  prefix?: string;
}

export class SharedRateLimiter implements Limiter {
  private readonly settings: Readonly<LimitSettings>;
  private readonly local: RateLimiter;
  private readonly client: Redis;
  private readonly leaseMs: number;
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
    this.local = new RateLimiter(this.settings);
    this.leaseMs = options.leaseMs ?? LEASE_MS;
    if (!(Number.isInteger(this.leaseMs) && this.leaseMs > 0)) throw invalidArgument('leaseMs', 'a positive integer', this.leaseMs);
    this.prefix = options.prefix ?? 'tessera:limits';
    this.client = connect(queue, 'server');
    this.client.defineCommand('tesseraLimitAdmit', { numberOfKeys: 3, lua: ADMIT });
    this.client.defineCommand('tesseraLimitCommit', { numberOfKeys: 1, lua: COMMIT });
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
    const lease = concurrentRequests === undefined ? '' : randomUUID();
    let answer: string[];
    try {
      answer = await this.client.tesseraLimitAdmit(
        this.key(keyId, 'requests'),
        this.key(keyId, 'tokens'),
        this.key(keyId, 'leases'),
        requestsPerMinute ?? 0,
        tokensPerMinute ?? 0,
        concurrentRequests ?? 0,
        estimatedTokens,
        lease,
        this.leaseMs,
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

    const [verdict, inFlight, requests, tokens] = answer;
    const levelOf = (text: string | undefined) => (text === undefined || text === '' ? undefined : Number(text));
    const levels = { requests: levelOf(requests), tokens: levelOf(tokens) };
    const remaining = {
      requests: levels.requests === undefined ? undefined : remainingOf(levels.requests),
      tokens: levels.tokens === undefined ? undefined : remainingOf(levels.tokens),
    };
    if (verdict === 'concurrency') throw concurrencyRefusal(Number(inFlight), concurrentRequests!, remaining);
    if (verdict === 'requests') throw requestRefusal(requestsPerMinute!, levels.requests!, remaining);
    if (verdict === 'tokens') throw tokenRefusal(estimatedTokens, tokensPerMinute!, levels.tokens!, remaining);
    return this.admission(keyId, estimatedTokens, levels, lease);
  }

  /** A request admitted through Redis: its lease renewed until released, its headers from the levels the script gave. */
  private admission(keyId: string, estimatedTokens: number, levels: { requests?: number; tokens?: number }, lease: string): Admission {
    const limiter = this;
    const { requestsPerMinute, tokensPerMinute } = this.settings;
    const leasesKey = this.key(keyId, 'leases');
    if (lease !== '') this.leases.set(lease, leasesKey);
    // What the key had left as of the script, refilled by the time the headers are read (as
    // RateLimiter's headers are); other replicas' use meanwhile shows in the next answer.
    const admittedAt = performance.now();
    let tokenLevel = levels.tokens;
    let tokensAt = admittedAt;
    let released = false;
    let billed = estimatedTokens;
    return {
      release() {
        if (released) return;
        released = true;
        if (lease !== '' && limiter.leases.delete(lease)) limiter.client.zrem(leasesKey, lease).catch(() => undefined);
      },
      commitTokens(tokens: number) {
        if (!Number.isFinite(tokens) || tokens < 0) throw invalidArgument('tokens', 'a non-negative number', tokens);
        const refund = billed - tokens;
        billed = tokens;
        if (tokensPerMinute === undefined || tokenLevel === undefined || refund === 0) return;
        tokenLevel = Math.min(tokensPerMinute, refilled(tokenLevel, tokensPerMinute, tokensAt) + refund);
        tokensAt = performance.now();
        limiter.client.tesseraLimitCommit(limiter.key(keyId, 'tokens'), tokensPerMinute, refund).catch(() => undefined);
      },
      get headers(): Record<string, string> {
        return headersFor({
          requests: requestsPerMinute === undefined || levels.requests === undefined ? undefined : remainingOf(refilled(levels.requests, requestsPerMinute, admittedAt)),
          tokens: tokensPerMinute === undefined || tokenLevel === undefined ? undefined : remainingOf(refilled(tokenLevel, tokensPerMinute, tokensAt)),
        });
      },
    };
  }

  private key(keyId: string, what: 'requests' | 'tokens' | 'leases'): string {
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

/** A bucket `level` read at `since` (performance.now() ms), refilled to now. */
function refilled(level: number, perMinute: number, since: number): number {
  return Math.min(perMinute, level + ((performance.now() - since) * perMinute) / MINUTE_MS);
}
