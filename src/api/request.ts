import { TesseraError } from '../errors.ts';
import { parseEncodings, type Encoding } from '../encoding/encode.ts';

/** One input item, as the server will embed it. */
export type RequestItem =
  | { kind: 'text'; text: string }
  /** Base64 or a data URI, decoded by the engine. */
  | { kind: 'image'; data: string }
  | { kind: 'url'; url: string };

export interface EmbeddingsRequest {
  model: string;
  items: RequestItem[];
  encodings: Encoding[];
  /** A list of encodings was asked for: each vector comes back keyed by encoding name. */
  keyed: boolean;
  normalized: boolean;
  truncate: boolean;
  /** Jina's `task` (e.g. retrieval.query): the engine applies it where the model has task instructions. */
  task?: string;
  dimensions?: number;
  /** Jina's `late_chunking`: refused when true, since no served model can do it. */
  lateChunking: boolean;
}

export interface ClassifyRequest {
  model: string;
  items: RequestItem[];
  labels: string[];
}

export interface RequestLimits {
  maxItems: number;
  maxTextChars: number;
}

export function invalid(message: string): TesseraError {
  return new TesseraError('REQUEST_INVALID', message);
}

/** A value as request errors show it: its kind and, for scalars, its start. */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `${typeof value} ${JSON.stringify(value)?.slice(0, 40)}`;
}

export function asObject(body: unknown): Record<string, unknown> {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw invalid(`the body must be a JSON object, got ${describe(body)}`);
  return body as Record<string, unknown>;
}

function optionalBoolean(body: Record<string, unknown>, field: string, fallback: boolean): boolean {
  const value = body[field];
  if (value === undefined || value === null) return fallback;
  if (typeof value !== 'boolean') throw invalid(`${field} must be true or false, got ${describe(value)}`);
  return value;
}

function requireModel(body: Record<string, unknown>): string {
  if (typeof body.model !== 'string' || body.model === '') throw invalid(`model is required and must be a string, got ${describe(body.model)}`);
  return body.model;
}

/** Very long texts are refused before tokenizing, which would hold up the server. */
function textItem(text: string, where: string, limits: RequestLimits): RequestItem {
  if (text.length > limits.maxTextChars) {
    throw new TesseraError('TEXT_TOO_LONG', `${where}: text has ${text.length} characters but this server accepts at most ${limits.maxTextChars}; split it`);
  }
  return { kind: 'text', text };
}

const URL_PREFIX = /^https?:\/\//i;

function imageItem(value: unknown, where: string, field: string): RequestItem {
  if (typeof value !== 'string' || value === '') throw invalid(`${where}.${field} must be a non-empty string (an http(s) URL, base64 or a data URI), got ${describe(value)}`);
  if (URL_PREFIX.test(value)) return { kind: 'url', url: value };
  if (field === 'url') throw invalid(`${where}.url must be an http(s) URL, got ${JSON.stringify(value.slice(0, 60))}`);
  if (/^[a-z][a-z0-9+.-]*:/i.test(value) && !value.startsWith('data:')) {
    throw invalid(`${where}.${field}: only http(s) URLs, base64 and data URIs are accepted, got ${JSON.stringify(value.slice(0, 60))}`);
  }
  return { kind: 'image', data: value };
}

/** One item of `input`: a string (text), {text}, {image}, or the older {url} / {bytes}. */
export function parseItem(value: unknown, where: string, limits: RequestLimits): RequestItem {
  if (typeof value === 'string') return textItem(value, where, limits);
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw invalid(`${where} must be a string or an object with "text", "image", "url" or "bytes", got ${describe(value)}`);
  }
  const item = value as Record<string, unknown>;
  const keys = ['text', 'image', 'url', 'bytes'].filter((k) => item[k] !== undefined);
  if (keys.length !== 1) {
    throw invalid(`${where} must have exactly one of "text", "image", "url" or "bytes", got ${keys.length ? keys.join(' and ') : `keys ${JSON.stringify(Object.keys(item))}`}`);
  }
  const key = keys[0]!;
  if (key === 'text') {
    if (typeof item.text !== 'string') throw invalid(`${where}.text must be a string, got ${describe(item.text)}`);
    return textItem(item.text, where, limits);
  }
  return imageItem(item[key], where, key);
}

function parseInput(body: Record<string, unknown>, limits: RequestLimits): RequestItem[] {
  const input = body.input;
  if (input === undefined || input === null) throw invalid('input is required: a string, an item, or a list of them');
  const list = Array.isArray(input) ? input : [input];
  if (list.length === 0) throw invalid('input must not be an empty list');
  if (list.length > limits.maxItems) {
    throw new TesseraError('TOO_MANY_ITEMS', `input has ${list.length} items but this server accepts at most ${limits.maxItems} per request; split it`);
  }
  return list.map((value, i) => parseItem(value, `input[${i}]`, limits));
}

/** Validates a /v1/embeddings body (Jina's fields, and OpenAI's encoding_format). */
export function parseEmbeddingsRequest(rawBody: unknown, limits: RequestLimits): EmbeddingsRequest {
  const body = asObject(rawBody);
  const model = requireModel(body);
  const items = parseInput(body, limits);
  const encodingField = ['embedding_type', 'encoding_type', 'encoding_format'].find((f) => body[f] !== undefined && body[f] !== null);
  const { encodings, keyed } = encodingField ? parseEncodings(body[encodingField], encodingField) : { encodings: ['float' as Encoding], keyed: false };
  let dimensions: number | undefined;
  if (body.dimensions !== undefined && body.dimensions !== null) {
    if (!Number.isInteger(body.dimensions) || (body.dimensions as number) < 1) throw invalid(`dimensions must be a positive integer, got ${describe(body.dimensions)}`);
    dimensions = body.dimensions as number;
  }
  let task: string | undefined;
  if (body.task !== undefined && body.task !== null) {
    if (typeof body.task !== 'string') throw invalid(`task must be a string, got ${describe(body.task)}`);
    task = body.task;
  }
  return {
    model,
    items,
    encodings,
    keyed,
    normalized: optionalBoolean(body, 'normalized', true),
    truncate: optionalBoolean(body, 'truncate', false),
    task,
    dimensions,
    lateChunking: optionalBoolean(body, 'late_chunking', false),
  };
}

/** Validates a /v1/classify body: zero-shot labels, texts and images. */
export function parseClassifyRequest(rawBody: unknown, limits: RequestLimits): ClassifyRequest {
  const body = asObject(rawBody);
  const model = requireModel(body);
  const items = parseInput(body, limits);
  const labels = body.labels;
  if (!Array.isArray(labels) || labels.length < 2) throw invalid(`labels must be a list of at least two strings, got ${describe(labels)}`);
  labels.forEach((label, i) => {
    if (typeof label !== 'string' || label.trim() === '') throw invalid(`labels[${i}] must be a non-empty string, got ${describe(label)}`);
  });
  if (new Set(labels).size !== labels.length) throw invalid('labels must not repeat');
  if (labels.length > limits.maxItems) throw new TesseraError('TOO_MANY_ITEMS', `labels has ${labels.length} entries but at most ${limits.maxItems} are accepted`);
  return { model, items, labels: labels as string[] };
}
