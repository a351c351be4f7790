/**
 * Reaching the job queue's Redis: its URL checked and shown without a password, connections that
 * fail fast in commands (a bounded connect timeout, a bounded number of retries) and that keep
 * retrying in workers (which must ride out a Redis restart) and in servers (whose shared rate
 * limits live there, api/limits-redis.ts), and one probe that turns "cannot
 * connect" into QUEUE_UNAVAILABLE naming the URL.
 */
import { Redis, type RedisOptions } from 'ioredis';
import { TesseraError, invalidArgument } from '../errors.ts';

/** How long a command waits for Redis to accept a connection before giving up. */
export const CONNECT_TIMEOUT_MS = 3000;
/** How long a server's request waits for Redis's answer before it goes on without it. */
export const SERVER_COMMAND_TIMEOUT_MS = 500;

export interface QueueUrl {
  /** As given. */
  url: string;
  /** For messages: the password replaced by "***". */
  shown: string;
}

/** `--queue URL`: a redis:// or rediss:// URL; INVALID_ARGUMENT otherwise. */
export function parseQueueUrl(given: string | undefined, flag = '--queue'): QueueUrl {
  const value = given ?? process.env.TESSERA_QUEUE;
  if (value === undefined || value === '') throw new TesseraError('INVALID_ARGUMENT', `${flag} URL is required (redis://[:password@]host[:port][/db], or $TESSERA_QUEUE)`);
  let parsed: URL;
  try {
    parsed = new URL(value);
  } catch {
    throw invalidArgument(flag, 'a redis:// or rediss:// URL', redactUrl(value));
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') throw invalidArgument(flag, 'a redis:// or rediss:// URL', redactUrl(value));
  return { url: value, shown: redactUrl(value) };
}

/** The URL with any password replaced by "***" (also for strings that are not quite URLs). */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    return parsed.toString();
  } catch {
    return url.replace(/\/\/([^:/@]*):[^@/]*@/, '//$1:***@');
  }
}

/**
 * ioredis options. Commands (`cli`): a few reconnection attempts, then errors instead of waiting
 * forever. Workers: reconnect for ever with a capped backoff; `maxRetriesPerRequest: null` is what
 * BullMQ requires of a worker's blocking connection. Servers (shared rate limits): reconnect for
 * ever, but a command never waits: none is queued while disconnected and an answer is given at
 * most SERVER_COMMAND_TIMEOUT_MS, so a request falls back to local limits instead of stalling.
 */
export function redisOptions(kind: 'cli' | 'worker' | 'server'): RedisOptions {
  if (kind === 'server') {
    return {
      connectTimeout: CONNECT_TIMEOUT_MS,
      commandTimeout: SERVER_COMMAND_TIMEOUT_MS,
      maxRetriesPerRequest: 0,
      enableOfflineQueue: false,
      autoResendUnfulfilledCommands: false,
      retryStrategy: (attempt) => Math.min(1000, 50 * 2 ** Math.min(attempt, 5)),
    };
  }
  if (kind === 'cli') {
    return {
      connectTimeout: CONNECT_TIMEOUT_MS,
      maxRetriesPerRequest: 1,
      retryStrategy: (attempt) => (attempt > 2 ? null : 200 * attempt),
      enableOfflineQueue: true,
    };
  }
  return {
    connectTimeout: CONNECT_TIMEOUT_MS,
    maxRetriesPerRequest: null,
    retryStrategy: (attempt) => Math.min(5000, 100 * 2 ** Math.min(attempt, 6)),
  };
}

/** A connection of the given kind (connected lazily by its first command). */
export function connect(queue: QueueUrl, kind: 'cli' | 'worker' | 'server'): Redis {
  const client = new Redis(queue.url, { ...redisOptions(kind), lazyConnect: true });
  // Errors surface through the commands; unhandled 'error' events would only spam stderr.
  client.on('error', () => {});
  return client;
}

/** Resolves once Redis at `queue` answers PING; QUEUE_UNAVAILABLE within about CONNECT_TIMEOUT_MS otherwise. */
export async function probe(queue: QueueUrl): Promise<void> {
  const client = new Redis(queue.url, {
    connectTimeout: CONNECT_TIMEOUT_MS,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    enableOfflineQueue: false,
    lazyConnect: true,
  });
  let lastError: unknown;
  client.on('error', (err) => (lastError = err));
  try {
    await client.connect();
    await client.ping();
  } catch (err) {
    throw unavailable(queue, lastError ?? err);
  } finally {
    client.disconnect();
  }
}

/** QUEUE_UNAVAILABLE naming the URL (without its password) and what went wrong. */
export function unavailable(queue: QueueUrl, cause: unknown): TesseraError {
  const reason = cause instanceof Error ? ((cause as NodeJS.ErrnoException).code ?? cause.message) : String(cause);
  return new TesseraError('QUEUE_UNAVAILABLE', `cannot reach the job queue at ${queue.shown} (${reason.replaceAll(queue.url, queue.shown)}); start Redis there or check --queue`, { cause });
}
