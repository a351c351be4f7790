/**
 * Downloads images from URLs that remote users send, without letting them reach what the
 * server can reach: every host is resolved here and every address vetted (see address.ts),
 * the connection goes to the vetted address (no second DNS lookup to rebind), redirects are
 * followed by hand and vetted hop by hop, and the transfer is bounded in time and size.
 */
import dns, { type LookupAddress } from 'node:dns';
import http, { type ClientRequest, type IncomingMessage } from 'node:http';
import https from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import { TesseraError, invalidArgument } from '../errors.ts';
import { blockedAddress, blockedHostName, normalizeAddress } from './address.ts';
import { ACCEPTED_FORMATS, FORMAT_NAMES, sniffFormat, type RasterFormat } from './format.ts';

export interface FetchPolicy {
  /** The whole download, DNS and every redirect included, in milliseconds. */
  timeoutMs: number;
  /** The most bytes an image body may have. */
  maxBytes: number;
  /** How many redirects are followed before giving up. */
  maxRedirects: number;
  /**
   * Fetch from loopback, private, link-local and other non-public addresses too (the
   * operator's --allow-private-urls). Unsafe wherever the server is reachable by people who
   * should not reach its network: any user can then make it fetch internal URLs. Cloud
   * metadata services stay refused even so.
   */
  allowPrivate: boolean;
  /** Test hook: addresses treated as public even though they are not (e.g. ['127.0.0.2']). */
  allowAddresses?: readonly string[];
}

export const DEFAULT_FETCH_POLICY: Readonly<FetchPolicy> = Object.freeze({
  timeoutMs: 10_000,
  maxBytes: 8 * 1024 * 1024, // Jina's hosted limit
  maxRedirects: 5,
  allowPrivate: false,
});

const USER_AGENT = 'tessera (image fetcher)';
const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const RASTER = new Set<string>(['jpeg', 'png', 'webp', 'gif', 'tiff', 'avif'] satisfies RasterFormat[]);
const PRIVATE_HINT = 'image URLs must point to public addresses (the server operator can allow private ones with --allow-private-urls)';

/**
 * The bytes of the image at `url` (http or https), checked to be a JPEG, PNG, WebP, GIF,
 * AVIF or TIFF by signature. Errors are TesseraErrors: IMAGE_URL_INVALID, IMAGE_URL_BLOCKED,
 * IMAGE_FETCH_FAILED, IMAGE_FETCH_TIMEOUT, IMAGE_TOO_LARGE, IMAGE_FORMAT_UNSUPPORTED, and
 * REQUEST_CANCELLED when `signal` aborts (or the signal's reason, if it is a TesseraError).
 *
 * @example
 *   const png = await fetchImage('https://example.com/cat.png', { timeoutMs: 3000 });
 */
export async function fetchImage(url: string, policy: Partial<FetchPolicy> = {}, signal?: AbortSignal): Promise<Buffer> {
  const settings = resolvePolicy(policy);
  const label = show(url);
  const start = parseUrl(url, () => label);
  if (signal?.aborted) throw cancelled(signal.reason, label);

  const deadline = new AbortController();
  const timer = setTimeout(() => {
    deadline.abort(new TesseraError('IMAGE_FETCH_TIMEOUT', `downloading ${label} took longer than the ${formatMs(settings.timeoutMs)} limit`));
  }, settings.timeoutMs);
  const onCallerAbort = () => deadline.abort(cancelled(signal?.reason, label));
  signal?.addEventListener('abort', onCallerAbort, { once: true });
  try {
    return await download(start, label, settings, deadline.signal);
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', onCallerAbort);
  }
}

function resolvePolicy(policy: Partial<FetchPolicy>): FetchPolicy {
  // An option given as undefined means the default, as if it were not given.
  const given = Object.fromEntries(Object.entries(policy).filter(([, value]) => value !== undefined));
  const merged: FetchPolicy = { ...DEFAULT_FETCH_POLICY, ...given };
  if (!(Number.isFinite(merged.timeoutMs) && merged.timeoutMs > 0)) throw invalidArgument('timeoutMs', 'a positive number of milliseconds', merged.timeoutMs);
  if (!(Number.isInteger(merged.maxBytes) && merged.maxBytes > 0)) throw invalidArgument('maxBytes', 'a positive integer', merged.maxBytes);
  if (!(Number.isInteger(merged.maxRedirects) && merged.maxRedirects >= 0)) throw invalidArgument('maxRedirects', 'a non-negative integer', merged.maxRedirects);
  if (typeof merged.allowPrivate !== 'boolean') throw invalidArgument('allowPrivate', 'a boolean', merged.allowPrivate);
  return merged;
}

/** Follows the chain of redirects from `start` and returns the image body. */
async function download(start: URL, label: string, policy: FetchPolicy, signal: AbortSignal): Promise<Buffer> {
  const allowed = new Set((policy.allowAddresses ?? []).map((a) => normalizeAddress(a) ?? a));
  let current = start;
  for (let redirects = 0; ; redirects++) {
    const where = redirects === 0 ? label : `${label} (redirected to ${show(current.href)})`;
    const addresses = await vet(current, where, policy, allowed, signal);
    const { req, res } = await send(current, addresses, where, signal);
    try {
      const status = res.statusCode ?? 0;
      if (REDIRECTS.has(status)) {
        const location = res.headers.location;
        if (!location) throw new TesseraError('IMAGE_FETCH_FAILED', `${where} answered HTTP ${status} (a redirect) without a Location header`);
        if (redirects >= policy.maxRedirects) {
          throw new TesseraError('IMAGE_FETCH_FAILED', `${label} redirected more than ${policy.maxRedirects} times (too many redirects)`);
        }
        current = parseUrl(location, (text) => `${where}, which redirected to ${show(text)},`, current);
        continue;
      }
      if (status < 200 || status > 299) {
        const text = res.statusMessage ? ` ${res.statusMessage}` : '';
        throw new TesseraError('IMAGE_FETCH_FAILED', `${where} answered HTTP ${status}${text}`);
      }
      checkContentType(res, where);
      const length = Number(res.headers['content-length']);
      if (res.headers['content-length'] !== undefined && length > policy.maxBytes) throw tooLarge(where, policy.maxBytes, length);
      const body = await readBody(req, res, where, policy.maxBytes, signal);
      checkSignature(body, where);
      return body;
    } finally {
      // Nothing is reused (agent: false): whatever happened, the connection goes now.
      req.destroy();
    }
  }
}

/**
 * The URL, if it is an http(s) URL without credentials. `describe` names it in messages;
 * `base` resolves relative redirect targets.
 */
function parseUrl(text: string, describe: (text: string) => string, base?: URL): URL {
  if (typeof text !== 'string') throw new TesseraError('IMAGE_URL_INVALID', `an image URL must be a string, not ${text === null ? 'null' : typeof text}`);
  let url: URL;
  try {
    url = new URL(text, base);
  } catch (err) {
    throw new TesseraError('IMAGE_URL_INVALID', `${describe(text)} is not a valid URL`, { cause: err });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new TesseraError('IMAGE_URL_INVALID', `${describe(text)} is a ${url.protocol} URL; only http and https image URLs are accepted`);
  }
  if (url.username || url.password) {
    throw new TesseraError('IMAGE_URL_INVALID', `${describe(text)} has credentials in it (user:password@); image URLs must not carry credentials`);
  }
  return url;
}

/** The addresses `url`'s host may be reached at, every one of them vetted. */
async function vet(url: URL, where: string, policy: FetchPolicy, allowed: ReadonlySet<string>, signal: AbortSignal): Promise<LookupAddress[]> {
  const host = bareHost(url.hostname);
  const family = isIP(host);
  const isAllowed = (address: string) => allowed.has(normalizeAddress(address) ?? address);
  const refuse = (what: string, metadata: boolean) =>
    new TesseraError('IMAGE_URL_BLOCKED', `${where} ${what}; ${metadata ? 'cloud metadata services are never fetched from' : PRIVATE_HINT}`);

  if (family !== 0) {
    const reason = isAllowed(host) ? undefined : blockedAddress(host, policy.allowPrivate);
    if (reason) throw refuse(`points to ${reason}`, reason.includes('metadata'));
    return [{ address: host, family }];
  }
  const nameReason = blockedHostName(host, policy.allowPrivate);
  if (nameReason) throw refuse(`points to ${nameReason}`, nameReason.includes('metadata'));

  const addresses = await lookupAll(host, where, signal);
  for (const { address } of addresses) {
    // The address itself is not shown: it would tell remote users what internal names resolve to.
    const reason = isAllowed(address) ? undefined : blockedAddress(address, policy.allowPrivate);
    if (reason) throw refuse(`resolves to ${reason}`, reason.includes('metadata'));
  }
  return addresses;
}

function lookupAll(host: string, where: string, signal: AbortSignal): Promise<LookupAddress[]> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    // dns.lookup cannot be cancelled; the deadline stops waiting for it all the same.
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    dns.lookup(host, { all: true }, (err, addresses) => {
      signal.removeEventListener('abort', onAbort);
      if (signal.aborted) return reject(signal.reason);
      if (err) return reject(dnsError(err, host, where));
      if (addresses.length === 0) return reject(new TesseraError('IMAGE_FETCH_FAILED', `could not fetch ${where}: ${host} has no addresses (DNS)`));
      resolve(addresses);
    });
  });
}

/**
 * A lookup for http.request that answers only with the vetted addresses, so the socket
 * connects where we checked even if DNS now says otherwise. Node 20 asks for all
 * addresses (happy eyeballs) or for one, and may ask for one family.
 */
function pinnedLookup(addresses: readonly LookupAddress[]): LookupFunction {
  return ((hostname: string, options: dns.LookupOptions, callback: (...args: unknown[]) => void) => {
    const family = options.family === 'IPv4' ? 4 : options.family === 'IPv6' ? 6 : options.family ?? 0;
    const usable = family === 0 ? addresses : addresses.filter((a) => a.family === family);
    process.nextTick(() => {
      if (usable.length === 0) {
        const err: NodeJS.ErrnoException = new Error(`no vetted IPv${family} address for ${hostname}`);
        err.code = 'ENOTFOUND';
        return callback(err);
      }
      if (options.all) return callback(null, usable.map((a) => ({ ...a })));
      return callback(null, usable[0]!.address, usable[0]!.family);
    });
  }) as LookupFunction;
}

/** Sends the GET and waits for the response headers. */
function send(url: URL, addresses: readonly LookupAddress[], where: string, signal: AbortSignal): Promise<{ req: ClientRequest; res: IncomingMessage }> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const options: http.RequestOptions = {
      protocol: url.protocol,
      hostname: bareHost(url.hostname),
      port: url.port === '' ? undefined : Number(url.port),
      path: `${url.pathname}${url.search}`,
      method: 'GET',
      // A private agent: a pooled socket could be one connected under another policy.
      agent: false,
      lookup: pinnedLookup(addresses),
      headers: { 'user-agent': USER_AGENT, accept: 'image/*', 'accept-encoding': 'identity' },
    };
    const req = (url.protocol === 'https:' ? https : http).request(options);
    const onAbort = () => req.destroy(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    // Errors after the response are the body reader's business; this keeps them from
    // being unhandled.
    req.on('error', () => {});
    req.once('error', (err) => {
      signal.removeEventListener('abort', onAbort);
      reject(signal.aborted ? signal.reason : connectionError(err, where));
    });
    req.once('response', (res) => {
      signal.removeEventListener('abort', onAbort);
      resolve({ req, res });
    });
    req.end();
  });
}

/** The body, at most `maxBytes` of it: one byte more and the connection is cut. */
function readBody(req: ClientRequest, res: IncomingMessage, where: string, maxBytes: number, signal: AbortSignal): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    let settled = false;
    const settle = (err: unknown, body?: Buffer) => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      if (err !== undefined) {
        req.destroy();
        reject(err);
      } else {
        resolve(body!);
      }
    };
    const onAbort = () => settle(signal.reason);
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });

    res.on('data', (chunk: Buffer) => {
      if (settled) return;
      total += chunk.length;
      if (total > maxBytes) return settle(tooLarge(where, maxBytes));
      chunks.push(chunk);
    });
    res.on('end', () => settle(undefined, Buffer.concat(chunks, total)));
    res.on('error', (err) => settle(signal.aborted ? signal.reason : bodyError(err, where)));
    res.on('close', () => {
      if (!res.complete) settle(signal.aborted ? signal.reason : bodyError(undefined, where));
    });
  });
}

/**
 * Refuses bodies the server itself says are not images (an HTML error page, JSON). A
 * missing or generic type is let through: the signature decides.
 */
function checkContentType(res: IncomingMessage, where: string): void {
  const type = (res.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type === '' || type.startsWith('image/')) return;
  const notImage =
    /^(text|audio|video|font|model|multipart|message)\//.test(type) ||
    /[+/](json|xml|javascript|ecmascript|html)$/.test(type) ||
    ['application/x-javascript', 'application/xhtml+xml', 'application/pdf', 'application/zip'].includes(type);
  if (notImage) throw new TesseraError('IMAGE_FETCH_FAILED', `${where} is not an image: the server says it is ${type}`);
}

function checkSignature(body: Buffer, where: string): void {
  if (body.length === 0) throw new TesseraError('IMAGE_FETCH_FAILED', `${where} answered with an empty body, not an image`);
  const format = sniffFormat(body);
  if (format !== undefined && RASTER.has(format)) return;
  if (format !== undefined) {
    throw new TesseraError('IMAGE_FORMAT_UNSUPPORTED', `${where} is a ${FORMAT_NAMES[format]} file; only ${ACCEPTED_FORMATS} images are accepted`);
  }
  throw new TesseraError('IMAGE_FORMAT_UNSUPPORTED', `${where} is not an image in a known format; only ${ACCEPTED_FORMATS} images are accepted`);
}

function tooLarge(where: string, maxBytes: number, length?: number): TesseraError {
  const size = length === undefined ? 'is larger than' : `is ${length} bytes, more than`;
  return new TesseraError('IMAGE_TOO_LARGE', `${where} ${size} the limit of ${formatBytes(maxBytes)}`);
}

function cancelled(reason: unknown, label: string): TesseraError {
  if (reason instanceof TesseraError) return reason;
  return new TesseraError('REQUEST_CANCELLED', `fetching ${label} was cancelled`, { cause: reason });
}

function connectionError(err: NodeJS.ErrnoException, where: string): TesseraError {
  const code = err.code ?? '';
  const why =
    code === 'ECONNREFUSED' ? 'the connection was refused'
    : code === 'ECONNRESET' || code === 'EPIPE' ? 'the connection was reset'
    : code === 'EHOSTUNREACH' || code === 'ENETUNREACH' ? 'the host is unreachable'
    : code === 'ETIMEDOUT' ? 'connecting timed out'
    : /CERT|SSL|TLS|SELF_SIGNED/.test(code) ? `the TLS handshake failed (${err.message})`
    : code === 'ENOTFOUND' ? 'no usable address'
    : err.message;
  return new TesseraError('IMAGE_FETCH_FAILED', `could not fetch ${where}: ${why}`, { cause: err });
}

function bodyError(err: NodeJS.ErrnoException | undefined, where: string): TesseraError {
  return new TesseraError('IMAGE_FETCH_FAILED', `could not fetch ${where}: the connection closed before the whole body arrived`, { cause: err });
}

function dnsError(err: NodeJS.ErrnoException, host: string, where: string): TesseraError {
  const why =
    err.code === 'ENOTFOUND' || err.code === 'EAI_NONAME' || err.code === 'EAI_NODATA' ? `the host name ${host} does not resolve (DNS lookup failed)`
    : err.code === 'EAI_AGAIN' ? `DNS lookup of ${host} failed temporarily`
    : `DNS lookup of ${host} failed (${err.code ?? err.message})`;
  return new TesseraError('IMAGE_FETCH_FAILED', `could not fetch ${where}: ${why}`, { cause: err });
}

/** WHATWG URL keeps IPv6 literals in brackets; http.request and dns want them bare. */
function bareHost(hostname: string): string {
  return hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
}

const MAX_SHOWN = 200;

function show(text: string): string {
  const value = typeof text === 'string' ? text : String(text);
  return JSON.stringify(value.length > MAX_SHOWN ? `${value.slice(0, MAX_SHOWN - 3)}...` : value);
}

function formatMs(ms: number): string {
  return ms >= 1000 && ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}

function formatBytes(bytes: number): string {
  if (bytes >= 1024 * 1024 && bytes % (1024 * 1024) === 0) return `${bytes / (1024 * 1024)} MiB`;
  if (bytes >= 1024 && bytes % 1024 === 0) return `${bytes / 1024} KiB`;
  return `${bytes} bytes`;
}
