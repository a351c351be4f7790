// Output encodings: each one decodes back to the vector (or its signs), known small vectors
// by hand, base64 through the OpenAI Node SDK's own decoder, and the request field parser.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import OpenAI from 'openai';
import { ENCODINGS, encodeEmbedding, encodeFor, parseEncodings } from '../../src/encoding/encode.ts';
import { TesseraError } from '../../src/errors.ts';

const SMALL = new Float32Array([0.5, -1, 0, 2, -3, 4, 5, -6, 7]);

/** A deterministic 768-dim vector with both signs, zeros and non-representable decimals. */
function sample(dims = 768): Float32Array {
  const v = new Float32Array(dims);
  for (let i = 0; i < dims; i++) v[i] = i % 11 === 0 ? 0 : Math.sin(i * 1.7) * 0.1;
  return v;
}

function decodeBase64(s: string): Float32Array {
  const bytes = Buffer.from(s, 'base64');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return Float32Array.from({ length: bytes.byteLength / 4 }, (_, i) => view.getFloat32(i * 4, true));
}

function unpackBits(bytes: number[], dims: number): number[] {
  return Array.from({ length: dims }, (_, i) => (bytes[i >> 3]! >> (7 - (i & 7))) & 1);
}

const signs = (v: Float32Array) => Array.from(v, (x) => (x > 0 ? 1 : 0));

describe('encodeEmbedding', () => {
  test('float gives the float32 values as plain numbers', () => {
    const v = sample();
    const out = encodeEmbedding(v, 'float');
    assert.ok(Array.isArray(out));
    assert.deepEqual(out, Array.from(v));
    assert.deepEqual(new Float32Array(out), v);
    assert.deepEqual(encodeEmbedding(SMALL, 'float'), [0.5, -1, 0, 2, -3, 4, 5, -6, 7]);
  });

  test('base64 is the raw little-endian float32 bytes', () => {
    assert.equal(encodeEmbedding(new Float32Array([1]), 'base64'), 'AACAPw=='); // 0x3f800000 LE
    assert.equal(encodeEmbedding(new Float32Array([1, -2]), 'base64'), Buffer.from([0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0]).toString('base64'));
    const v = sample();
    const out = encodeEmbedding(v, 'base64');
    assert.equal(typeof out, 'string');
    assert.deepEqual(decodeBase64(out as string), v);
  });

  test('base64 of a view into a larger buffer encodes only the view', () => {
    const whole = new Float32Array([9, 1, 2, 9]);
    const view = whole.subarray(1, 3);
    assert.deepEqual(decodeBase64(encodeEmbedding(view, 'base64') as string), new Float32Array([1, 2]));
  });

  test('base64 decodes to the same vector through the OpenAI Node SDK', async () => {
    const vectors = [sample(), SMALL, new Float32Array([1e-30, -0, 3.4e38])];
    const client = new OpenAI({
      apiKey: 'test',
      baseURL: 'http://127.0.0.1:9/v1',
      maxRetries: 0,
      fetch: async (_url, init) => {
        const body = JSON.parse(String(init?.body)) as { encoding_format?: string };
        assert.equal(body.encoding_format, 'base64'); // the SDK's default when the caller sets none
        const data = vectors.map((v, index) => ({ object: 'embedding', index, embedding: encodeEmbedding(v, 'base64') }));
        return new Response(
          JSON.stringify({ object: 'list', model: 'jina-clip-v1', data, usage: { prompt_tokens: 1, total_tokens: 1 } }),
          { headers: { 'content-type': 'application/json' } },
        );
      },
    });
    const response = await client.embeddings.create({ model: 'jina-clip-v1', input: ['a', 'b', 'c'] });
    assert.equal(response.data.length, vectors.length);
    response.data.forEach((item, i) => assert.deepEqual(new Float32Array(item.embedding), vectors[i]));
  });

  test('ubinary and binary of a known 9-dim vector', () => {
    assert.deepEqual(encodeEmbedding(SMALL, 'ubinary'), [0b10010110, 0b10000000]);
    assert.deepEqual(encodeEmbedding(SMALL, 'ubinary'), [150, 128]);
    assert.deepEqual(encodeEmbedding(SMALL, 'binary'), [22, 0]);
  });

  test('ubinary edge values: zero, negative zero and NaN are 0 bits; all-positive is 255', () => {
    assert.deepEqual(encodeEmbedding(new Float32Array([0, -0, NaN, -1e-30, 1e-30, 1, 1, 1]), 'ubinary'), [0b00001111]);
    assert.deepEqual(encodeEmbedding(new Float32Array(8).fill(1), 'ubinary'), [255]);
    assert.deepEqual(encodeEmbedding(new Float32Array(8).fill(1), 'binary'), [127]);
    assert.deepEqual(encodeEmbedding(new Float32Array(8).fill(-1), 'binary'), [-128]);
    assert.deepEqual(encodeEmbedding(new Float32Array(0), 'ubinary'), []);
  });

  test('ubinary and binary of 768 dims are 96 bytes that unpack to the signs', () => {
    const v = sample();
    const u = encodeEmbedding(v, 'ubinary') as number[];
    const b = encodeEmbedding(v, 'binary') as number[];
    assert.equal(u.length, 96);
    assert.equal(b.length, 96);
    assert.ok(u.every((x) => Number.isInteger(x) && x >= 0 && x <= 255));
    assert.ok(b.every((x) => Number.isInteger(x) && x >= -128 && x <= 127));
    assert.deepEqual(unpackBits(u, 768), signs(v));
    assert.deepEqual(unpackBits(b.map((x) => x + 128), 768), signs(v));
    // int8 as two's complement is the uint8 byte minus 128, not a reinterpretation
    assert.deepEqual(b, u.map((x) => x - 128));
  });

  test('a dimension count not divisible by 8 pads the last byte with zeros', () => {
    for (const dims of [1, 7, 9, 15, 17, 100]) {
      const v = new Float32Array(dims).fill(1);
      const u = encodeEmbedding(v, 'ubinary') as number[];
      assert.equal(u.length, Math.ceil(dims / 8), `dims ${dims}`);
      const bits = unpackBits(u, u.length * 8);
      assert.deepEqual(bits.slice(0, dims), new Array(dims).fill(1));
      assert.deepEqual(bits.slice(dims), new Array(u.length * 8 - dims).fill(0));
    }
  });
});

describe('parseEncodings', () => {
  test('one plain name: that encoding, not keyed', () => {
    for (const name of ENCODINGS) assert.deepEqual(parseEncodings(name, 'embedding_type'), { encodings: [name], keyed: false });
  });

  test('a list, even of one, is keyed; duplicates kept once in order', () => {
    assert.deepEqual(parseEncodings(['float'], 'embedding_type'), { encodings: ['float'], keyed: true });
    assert.deepEqual(parseEncodings(['ubinary', 'float', 'ubinary', 'base64'], 'embedding_type'), {
      encodings: ['ubinary', 'float', 'base64'],
      keyed: true,
    });
  });

  test('absent (undefined, or null from Python None) means float, not keyed', () => {
    assert.deepEqual(parseEncodings(undefined, 'encoding_type'), { encodings: ['float'], keyed: false });
    assert.deepEqual(parseEncodings(null, 'encoding_type'), { encodings: ['float'], keyed: false });
  });

  const VALID = '"float", "base64", "binary", "ubinary"';
  const cases: Array<[unknown, string, string]> = [
    ['int8', 'embedding_type', `embedding_type must be one of ${VALID}, or a non-empty list of them, but received "int8"`],
    ['Float', 'encoding_format', `encoding_format must be one of ${VALID}, or a non-empty list of them, but received "Float"`],
    [3, 'embedding_type', `embedding_type must be one of ${VALID}, or a non-empty list of them, but received number 3`],
    [true, 'embedding_type', `embedding_type must be one of ${VALID}, or a non-empty list of them, but received boolean true`],
    [{ float: true }, 'embedding_type', `embedding_type must be one of ${VALID}, or a non-empty list of them, but received an object`],
    [[], 'embedding_type', `embedding_type must be one of ${VALID}, or a non-empty list of them, but received an empty list`],
    [['float', 'int8'], 'embedding_type', `embedding_type[1] must be one of ${VALID}, or a non-empty list of them, but received "int8"`],
    [['float', null], 'encoding_type', `encoding_type[1] must be one of ${VALID}, or a non-empty list of them, but received null`],
    [[['float']], 'embedding_type', `embedding_type[0] must be one of ${VALID}, or a non-empty list of them, but received a list`],
  ];
  for (const [value, field, message] of cases) {
    test(`rejects ${JSON.stringify(value)} with REQUEST_INVALID naming ${field}`, () => {
      assert.throws(
        () => parseEncodings(value, field),
        (error: unknown) => {
          assert.ok(error instanceof TesseraError);
          assert.equal(error.code, 'REQUEST_INVALID');
          assert.equal(error.status, 422);
          assert.equal(error.message, message);
          return true;
        },
      );
    });
  }

  test('a long unknown name is shortened in the message', () => {
    assert.throws(() => parseEncodings('x'.repeat(1000), 'embedding_type'), (error: unknown) => {
      assert.ok(error instanceof TesseraError);
      assert.ok(error.message.length < 200, error.message);
      return true;
    });
  });
});

describe('encodeFor', () => {
  test('not keyed: the bare value', () => {
    assert.deepEqual(encodeFor(SMALL, parseEncodings('binary', 'embedding_type')), [22, 0]);
  });

  test('keyed: one entry per encoding', () => {
    const out = encodeFor(SMALL, parseEncodings(['ubinary', 'float', 'base64'], 'embedding_type'));
    assert.deepEqual(Object.keys(out), ['ubinary', 'float', 'base64']);
    assert.deepEqual(out, {
      ubinary: [150, 128],
      float: Array.from(SMALL),
      base64: Buffer.from(SMALL.buffer).toString('base64'),
    });
  });
});
