/**
 * Output encodings of one embedding, as the Jina Embeddings API (and OpenAI's
 * `encoding_format`) defines them:
 *
 * - `float`: the float32 values as plain JSON numbers.
 * - `base64`: base64 of the raw little-endian float32 bytes (the OpenAI Node SDK asks for
 *   this by default and decodes it with `new Float32Array(Buffer.from(s, 'base64').buffer)`).
 * - `ubinary`: the sign bits (x > 0 -> 1) packed 8 per byte, first dimension in the highest
 *   bit, as uint8 numbers; the last byte is padded with zeros (768 dims -> 96 bytes).
 * - `binary`: the same bytes as int8 (byte - 128).
 *
 * @example
 * encodeEmbedding(new Float32Array([0.5, -1, 0, 2, -3, 4, 5, -6, 7]), 'ubinary') // [150, 128]
 * encodeEmbedding(new Float32Array([0.5, -1, 0, 2, -3, 4, 5, -6, 7]), 'binary')  // [22, 0]
 */
import { endianness } from 'node:os';
import { TesseraError } from '../errors.ts';

export const ENCODINGS = ['float', 'base64', 'binary', 'ubinary'] as const;
export type Encoding = (typeof ENCODINGS)[number];

/** What a request asked for: the encodings, and whether the response keys vectors by name. */
export interface EncodingChoice {
  encodings: Encoding[];
  /** true: `embedding: { float: [...], base64: '...' }`; false: `embedding` is the one value. */
  keyed: boolean;
}

export type EncodedEmbedding = number[] | string;

const LITTLE_ENDIAN = endianness() === 'LE';

export function encodeEmbedding(vector: Float32Array, encoding: Encoding): EncodedEmbedding {
  switch (encoding) {
    case 'float':
      return Array.from(vector);
    case 'base64':
      return float32Bytes(vector).toString('base64');
    case 'ubinary':
      return Array.from(signBits(vector));
    case 'binary':
      return Array.from(signBits(vector), (byte) => byte - 128);
  }
}

/** The value of a response's `embedding` field for `choice` (see `parseEncodings`). */
export function encodeFor(
  vector: Float32Array,
  choice: EncodingChoice,
): EncodedEmbedding | Partial<Record<Encoding, EncodedEmbedding>> {
  if (!choice.keyed) return encodeEmbedding(vector, choice.encodings[0] ?? 'float');
  const keyed: Partial<Record<Encoding, EncodedEmbedding>> = {};
  for (const encoding of choice.encodings) keyed[encoding] = encodeEmbedding(vector, encoding);
  return keyed;
}

/**
 * Reads a request's encoding field (`embedding_type`, `encoding_type` or
 * `encoding_format`): one name, or a list of names. A list, even of one, asks for vectors
 * keyed by encoding name; a plain name asks for the bare value. Absent (`undefined` or
 * `null`, as Python clients send `None`) means `float`, unkeyed. Duplicates in a list are
 * kept once, in first-seen order.
 *
 * @throws TesseraError REQUEST_INVALID naming `field` and the valid values.
 */
export function parseEncodings(value: unknown, field: string): EncodingChoice {
  if (value === undefined || value === null) return { encodings: ['float'], keyed: false };
  if (!Array.isArray(value)) return { encodings: [encodingName(value, field)], keyed: false };
  if (value.length === 0) throw invalidEncoding(field, value);
  const encodings: Encoding[] = [];
  value.forEach((item: unknown, index) => {
    const encoding = encodingName(item, `${field}[${index}]`);
    if (!encodings.includes(encoding)) encodings.push(encoding);
  });
  return { encodings, keyed: true };
}

function encodingName(value: unknown, field: string): Encoding {
  if (typeof value === 'string' && (ENCODINGS as readonly string[]).includes(value)) return value as Encoding;
  throw invalidEncoding(field, value);
}

function invalidEncoding(field: string, value: unknown): TesseraError {
  const valid = ENCODINGS.map((name) => `"${name}"`).join(', ');
  return new TesseraError(
    'REQUEST_INVALID',
    `${field} must be one of ${valid}, or a non-empty list of them, but received ${shown(value)}`,
  );
}

function shown(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value);
  if (Array.isArray(value)) return value.length === 0 ? 'an empty list' : 'a list';
  if (value === null) return 'null';
  return typeof value === 'object' ? 'an object' : `${typeof value} ${String(value)}`;
}

/** The vector's float32 values as little-endian bytes (a view, without copying, on LE hosts). */
function float32Bytes(vector: Float32Array): Buffer {
  if (LITTLE_ENDIAN) return Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength);
  const bytes = Buffer.allocUnsafe(vector.byteLength);
  vector.forEach((value, i) => bytes.writeFloatLE(value, i * 4));
  return bytes;
}

/** Sign bits, 8 per byte, first dimension in the highest bit; NaN and zero count as 0. */
function signBits(vector: Float32Array): Uint8Array {
  const bytes = new Uint8Array(Math.ceil(vector.length / 8));
  for (let i = 0; i < vector.length; i++) {
    if (vector[i]! > 0) bytes[i >> 3] |= 0x80 >> (i & 7);
  }
  return bytes;
}
