/**
 * Optional API keys. With none configured the server is open and every caller is
 * `anonymous`; with any configured, each request needs `Authorization: Bearer <key>`.
 *
 * Keys come from a key file and/or the variable `TESSERA_API_KEYS`; both may be given
 * and their keys are merged. The file holds one key per line:
 *
 * ```
 * # a comment: '#' starts one only as a line's first non-blank character (keys may hold '#')
 * tk-3f9c2a7d51e8b460
 * alice:tk-0b1e44c9d27a8f35
 * ```
 *
 * A line `name:key` gives the key an id: the text before the FIRST colon is the name
 * (letters, digits, `.`, `_`, `-`), the rest is the key; so a key that itself contains a
 * colon must be written with a name in front. A key without a name gets the id `key-` +
 * the first 12 hex digits of its sha256: stable across edits of the file, and
 * safe to log for random keys.
 * Surrounding whitespace is trimmed; a key may not contain whitespace (which also catches
 * a comment written after a key). `TESSERA_API_KEYS` holds the same entries
 * separated by commas (empty entries skipped); an empty variable means "not set".
 *
 * Ids, never keys, are what the rest of the server sees (logs, metrics, rate limits).
 * A file or variable that is given but holds no key is an error rather than silently
 * turning authentication off; duplicate keys or names are errors too.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { TesseraError } from '../errors.ts';

export interface ApiKeys {
  /** How many keys are configured. */
  size: number;
  /** The key's id (its name, or `key-<sha256 prefix>`), or null when `presented` is no key. */
  match(presented: string): string | null;
}

/** The id `authenticate` returns when authentication is off. */
export const ANONYMOUS = 'anonymous';

/** The environment variable `loadApiKeys`'s `env` option is read from. */
export const API_KEYS_ENV = 'TESSERA_API_KEYS';

const NAME = /^[A-Za-z0-9._-]+$/;
/** Tokens some clients send when their key is unset (LlamaIndex Python: `Bearer None`). */
const NO_KEY = new Set(['', 'none', 'null', 'undefined']);

interface Entry {
  id: string;
  digest: Buffer;
  /** Where it came from, for errors: "keys.txt line 3" or "TESSERA_API_KEYS entry 2". */
  origin: string;
}

/**
 * Loads the configured keys; null when neither `file` nor a non-empty `env` is given
 * (authentication off).
 *
 * @param opts.file path of a key file (format at the top of this module)
 * @param opts.env raw value of `TESSERA_API_KEYS`
 * @throws TesseraError INVALID_ARGUMENT when the file cannot be read, an entry is
 *   malformed or repeated, or a given source holds no key (messages never show keys)
 */
export async function loadApiKeys(opts: { file?: string; env?: string }): Promise<ApiKeys | null> {
  const entries: Entry[] = [];
  if (opts.file !== undefined) {
    let text: string;
    try {
      text = await readFile(opts.file, 'utf8');
    } catch (cause) {
      const reason = (cause as NodeJS.ErrnoException).code ?? String(cause);
      throw new TesseraError('INVALID_ARGUMENT', `cannot read the API key file ${opts.file} (${reason})`, { cause });
    }
    const before = entries.length;
    text.split(/\r?\n/).forEach((line, i) => {
      const trimmed = line.trim();
      if (trimmed === '' || trimmed.startsWith('#')) return;
      entries.push(parseEntry(trimmed, `${opts.file} line ${i + 1}`));
    });
    if (entries.length === before) {
      throw new TesseraError('INVALID_ARGUMENT', `the API key file ${opts.file} holds no key; add keys or do not pass the file`);
    }
  }
  if (opts.env !== undefined && opts.env.trim() !== '') {
    const before = entries.length;
    opts.env.split(',').forEach((raw, i) => {
      const trimmed = raw.trim();
      if (trimmed !== '') entries.push(parseEntry(trimmed, `${API_KEYS_ENV} entry ${i + 1}`));
    });
    if (entries.length === before) {
      throw new TesseraError('INVALID_ARGUMENT', `${API_KEYS_ENV} holds no key; set it to comma-separated keys or unset it`);
    }
  }
  if (entries.length === 0) return null;
  checkUnique(entries);
  return keySet(entries);
}

/**
 * Checks a request's `Authorization` header against `keys`.
 *
 * @returns the key's id, or `anonymous` when `keys` is null (authentication off)
 * @throws TesseraError AUTH_API_KEY_MISSING (no header, no key after `Bearer`, or a
 *   placeholder such as `Bearer None`) or AUTH_API_KEY_INVALID (another scheme, or an
 *   unknown key); the messages never contain what was sent
 */
export function authenticate(keys: ApiKeys | null, authorizationHeader: string | undefined): string {
  if (keys === null) return ANONYMOUS;
  const header = (authorizationHeader ?? '').trim();
  if (header === '') {
    throw new TesseraError('AUTH_API_KEY_MISSING', 'no API key was sent: add the header "Authorization: Bearer <your key>"');
  }
  const space = header.search(/\s/);
  const scheme = space < 0 ? header : header.slice(0, space);
  if (scheme.toLowerCase() !== 'bearer') {
    throw new TesseraError(
      'AUTH_API_KEY_INVALID',
      'the Authorization header must use the Bearer scheme: "Authorization: Bearer <your key>"',
    );
  }
  const token = space < 0 ? '' : header.slice(space).trim();
  if (NO_KEY.has(token.toLowerCase())) {
    throw new TesseraError(
      'AUTH_API_KEY_MISSING',
      'no API key was sent (the Authorization header has no key after "Bearer"): set your client\'s API key',
    );
  }
  const id = keys.match(token);
  if (id === null) throw new TesseraError('AUTH_API_KEY_INVALID', 'the API key is not valid for this server');
  return id;
}

function parseEntry(text: string, origin: string): Entry {
  const colon = text.indexOf(':');
  let name: string | undefined;
  let key = text;
  if (colon >= 0) {
    name = text.slice(0, colon).trim();
    key = text.slice(colon + 1).trim();
    if (!NAME.test(name)) {
      throw new TesseraError(
        'INVALID_ARGUMENT',
        `${origin}: the text before the first ':' is taken as the key's name and must be letters, digits, '.', '_' or '-'; ` +
          "a key that contains ':' needs a name in front (name:key)",
      );
    }
  }
  if (key === '') throw new TesseraError('INVALID_ARGUMENT', `${origin}: the key after '${name}:' is empty`);
  if (/\s/.test(key)) {
    throw new TesseraError('INVALID_ARGUMENT', `${origin}: a key must not contain whitespace (comments go on lines of their own)`);
  }
  const digest = sha256(key);
  return { id: name ?? `key-${digest.toString('hex').slice(0, 12)}`, digest, origin };
}

function checkUnique(entries: Entry[]): void {
  const ids = new Map<string, string>();
  const digests = new Map<string, string>();
  for (const entry of entries) {
    const hex = entry.digest.toString('hex');
    const sameKey = digests.get(hex);
    if (sameKey !== undefined) throw new TesseraError('INVALID_ARGUMENT', `${entry.origin}: the same key as ${sameKey}`);
    const sameId = ids.get(entry.id);
    if (sameId !== undefined) {
      throw new TesseraError('INVALID_ARGUMENT', `${entry.origin}: the name ${entry.id} is already used by ${sameId}`);
    }
    digests.set(hex, entry.origin);
    ids.set(entry.id, entry.origin);
  }
}

function keySet(entries: Entry[]): ApiKeys {
  const digests = entries.map((e) => e.digest);
  const ids = entries.map((e) => e.id);
  return {
    size: entries.length,
    match(presented: string): string | null {
      // Equal-length digests make timingSafeEqual applicable whatever was sent, and every
      // stored key is compared, so the time taken says nothing about which key (if any) matched.
      const digest = sha256(presented);
      let found = -1;
      for (let i = 0; i < digests.length; i++) {
        const equal = timingSafeEqual(digest, digests[i]!);
        found = equal ? i : found;
      }
      return found < 0 ? null : ids[found]!;
    },
  };
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}
