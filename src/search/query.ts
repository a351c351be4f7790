/**
 * Search queries: a text, an image, an existing document ("more like this"), or a weighted
 * mix of them. `parseQuery` checks what an HTTP client sends; the CLI builds terms directly.
 */
import { TesseraError, describeValue } from '../errors.ts';
import type { ImageSource } from '../image/source.ts';
import { validateDocumentId } from '../store/validate.ts';

export type QueryTerm = (
  | { kind: 'text'; text: string; weight: number }
  /** Bytes, base64 or a data URI (a path only where the embedder allows paths: the CLI). */
  | { kind: 'image'; image: ImageSource; weight: number }
  /** An http(s) URL, fetched by the caller (SSRF-safe) before embedding. */
  | { kind: 'url'; url: string; weight: number }
  | { kind: 'id'; id: string; weight: number }
) & {
  /** How messages name the term: "query[1].image", "--like \"a.png\"". */
  field?: string;
};

/** The most terms one query may mix. */
export const MAX_QUERY_TERMS = 32;
/** Characters of one query text (the model reads far fewer tokens than this anyway). */
export const MAX_QUERY_CHARS = 10_000;

const invalid = (message: string) => new TesseraError('QUERY_INVALID', message);
const URL_PREFIX = /^https?:\/\//i;
const TERM_KEYS = new Set(['text', 'image', 'id', 'weight']);

/** A query text: non-blank and at most `maxChars` characters. */
export function checkQueryText(text: string, field: string, maxChars = MAX_QUERY_CHARS): string {
  if (text.trim() === '') throw invalid(`${field}: the query text is empty`);
  if (text.length > maxChars) throw invalid(`${field}: the query text has ${text.length} characters but at most ${maxChars} are accepted`);
  return text;
}

/** A weight: a finite number other than 0 (negative: away from that term). */
export function checkWeight(value: unknown, field: string): number {
  if (value === undefined || value === null) return 1;
  if (typeof value !== 'number' || !Number.isFinite(value) || value === 0) {
    throw invalid(`${field}: expected a finite number other than 0 but received ${describeValue(value)}`);
  }
  return value;
}

function parseTerm(value: unknown, field: string, maxChars: number): QueryTerm {
  const term = parseTermValue(value, field, maxChars);
  // Messages about the term name its value: "query[1].image", or "query" for a bare string.
  const key = term.kind === 'url' ? 'image' : term.kind;
  return { ...term, field: typeof value === 'string' ? field : `${field}.${key}` };
}

function parseTermValue(value: unknown, field: string, maxChars: number): QueryTerm {
  if (typeof value === 'string') return { kind: 'text', text: checkQueryText(value, field, maxChars), weight: 1 };
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw invalid(`${field}: expected a string, {"text"}, {"image"} or {"id"} but received ${describeValue(value)}`);
  }
  const term = value as Record<string, unknown>;
  const unknown = Object.keys(term).filter((k) => !TERM_KEYS.has(k));
  if (unknown.length > 0) throw invalid(`${field}: unknown field ${JSON.stringify(unknown[0])}; a query term has one of text, image or id, and an optional weight`);
  const kinds = (['text', 'image', 'id'] as const).filter((k) => term[k] !== undefined && term[k] !== null);
  if (kinds.length !== 1) throw invalid(`${field}: expected exactly one of "text", "image" or "id" but received ${kinds.length ? kinds.join(' and ') : 'none'}`);
  const weight = checkWeight(term.weight, `${field}.weight`);
  const kind = kinds[0]!;
  const raw = term[kind];
  if (kind === 'id') {
    try {
      return { kind: 'id', id: validateDocumentId(raw, `${field}.id`), weight };
    } catch (err) {
      throw err instanceof TesseraError ? invalid(err.message) : err;
    }
  }
  if (typeof raw !== 'string') throw invalid(`${field}.${kind}: expected a string but received ${describeValue(raw)}`);
  if (kind === 'text') return { kind: 'text', text: checkQueryText(raw, `${field}.text`, maxChars), weight };
  if (raw.trim() === '') throw invalid(`${field}.image: the image is empty`);
  if (URL_PREFIX.test(raw)) return { kind: 'url', url: raw, weight };
  // Remote clients never name files: only URLs, base64 and data URIs reach the engine.
  if (/^[a-z][a-z0-9+.-]*:/i.test(raw) && !/^data:/i.test(raw)) {
    throw invalid(`${field}.image: only http(s) URLs, base64 and data URIs are accepted, got ${describeValue(raw)}`);
  }
  return { kind: 'image', image: raw, weight };
}

/**
 * An HTTP query: a string, `{"text"}`, `{"image"}` (http(s) URL, base64, data URI),
 * `{"id"}`, or a non-empty list of those, each with an optional `weight` (default 1,
 * negative allowed). QUERY_INVALID naming the field otherwise.
 */
export function parseQuery(value: unknown, field = 'query', maxChars = MAX_QUERY_CHARS): QueryTerm[] {
  if (value === undefined || value === null) throw invalid(`${field} is required: a string, {"text"}, {"image"}, {"id"} or a list of them with weights`);
  if (!Array.isArray(value)) return [parseTerm(value, field, maxChars)];
  if (value.length === 0) throw invalid(`${field}: the list of query terms is empty`);
  if (value.length > MAX_QUERY_TERMS) throw invalid(`${field}: at most ${MAX_QUERY_TERMS} terms but received ${value.length}`);
  return value.map((v, i) => parseTerm(v, `${field}[${i}]`, maxChars));
}

/**
 * rclip-style weighted query words for the command line: "2:red" weighs 2, "-0.5:blue"
 * weighs -0.5, plain text weighs 1. A prefix that is not a number is part of the text.
 */
export function splitWeight(arg: string): { weight: number; rest: string } {
  const match = /^([+-]?(?:\d+(?:\.\d*)?|\.\d+)):(.*)$/s.exec(arg);
  if (!match) return { weight: 1, rest: arg };
  return { weight: checkWeight(Number(match[1]), `weight of ${JSON.stringify(arg)}`), rest: match[2]! };
}

/**
 * The command line's positional QUERY words as terms: words are joined into texts, and the
 * words "+" and "-" start a new text added or subtracted (rclip: `"cat" - "dog"`); each text
 * may carry a "W:" weight.
 */
export function parseQueryWords(words: readonly string[]): QueryTerm[] {
  const terms: QueryTerm[] = [];
  let sign = 1;
  let current: string[] = [];
  const flush = () => {
    if (current.length === 0) return;
    const { weight, rest } = splitWeight(current.join(' '));
    const field = `query ${JSON.stringify(current.join(' '))}`;
    terms.push({ kind: 'text', text: checkQueryText(rest, field), weight: sign * weight, field });
    current = [];
  };
  for (const word of words) {
    if (word === '+' || word === '-') {
      flush();
      sign = word === '-' ? -1 : 1;
    } else {
      current.push(word);
    }
  }
  flush();
  return terms;
}
