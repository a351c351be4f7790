import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { test } from 'node:test';
import { preprocessImage } from '../../src/image/preprocess.ts';
import { decodeBase64, readImageSource } from '../../src/image/source.ts';
import { FIXTURES, JINA } from './helpers.ts';
import { rejectsWith } from '../helpers/errors.ts';

const PATH = `${FIXTURES}rocket-410x400.jpg`;
const BYTES = readFileSync(PATH);
const BASE64 = BYTES.toString('base64');


test('path, Buffer, Uint8Array, base64, wrapped and URL-safe base64, data URI and file URL give identical pixels', async () => {
  const sources: Array<[string, string | Uint8Array]> = [
    ['Buffer', BYTES],
    ['Uint8Array', new Uint8Array(BYTES)],
    ['base64', BASE64],
    ['base64 wrapped at 76 columns', BASE64.replace(/.{76}/g, '$&\r\n')],
    ['base64 without padding', BASE64.replace(/=+$/, '')],
    ['URL-safe base64', BYTES.toString('base64url')],
    ['data URI', `data:image/jpeg;base64,${BASE64}`],
    ['data URI with another media type', `data:application/octet-stream;base64,${BASE64}`],
    ['file URL', pathToFileURL(PATH).href],
  ];
  const reference = await preprocessImage(PATH, JINA);
  assert.equal(reference.width, 410);
  assert.equal(reference.height, 400);
  for (const [kind, source] of sources) {
    const got = await preprocessImage(source, JINA);
    assert.deepEqual(got, reference, kind);
  }
});

test('http and https URLs are refused with a message saying the server fetches them', async () => {
  for (const url of ['https://example.com/cat.jpg', 'HTTP://example.com/cat.jpg']) {
    await assert.rejects(preprocessImage(url, JINA), rejectsWith('IMAGE_SOURCE_INVALID', /URL.*fetched by the server/));
  }
  await assert.rejects(readImageSource('ftp://example.com/cat.jpg'), rejectsWith('IMAGE_SOURCE_INVALID', /ftp: URL/));
});

test('a path that does not exist is IMAGE_NOT_FOUND naming the path', async () => {
  for (const path of ['/no/such/dir/cat.jpg', 'missing.png', './photos/x', '/a/b/cd', 'C:\\photos\\cat.jpg']) {
    await assert.rejects(preprocessImage(path, JINA), rejectsWith('IMAGE_NOT_FOUND', new RegExp(`no file at ${path.replace(/[\\.]/g, '\\$&')}$`)));
  }
});

test('strings that are neither path, base64 nor data URI are IMAGE_SOURCE_INVALID', async () => {
  for (const junk of ['hello world!', 'not an image', '{"image": 1}', '   ']) {
    await assert.rejects(preprocessImage(junk, JINA), rejectsWith('IMAGE_SOURCE_INVALID'), junk);
  }
  await assert.rejects(preprocessImage('', JINA), rejectsWith('IMAGE_SOURCE_INVALID', /empty/));
  await assert.rejects(preprocessImage(new Uint8Array(0), JINA), rejectsWith('IMAGE_SOURCE_INVALID', /empty/));
  // @ts-expect-error: JS callers can pass anything
  await assert.rejects(preprocessImage(42, JINA), rejectsWith('IMAGE_SOURCE_INVALID', /not number/));
});

test('malformed data URIs are IMAGE_SOURCE_INVALID', async () => {
  await assert.rejects(readImageSource('data:image/png;base64'), rejectsWith('IMAGE_SOURCE_INVALID', /no comma/));
  await assert.rejects(readImageSource('data:image/png;base64,@@@@'), rejectsWith('IMAGE_SOURCE_INVALID', /not valid base64/));
  await assert.rejects(readImageSource('data:image/png;base64,'), rejectsWith('IMAGE_SOURCE_INVALID', /no data/));
  await assert.rejects(readImageSource('data:image/png,%zz'), rejectsWith('IMAGE_SOURCE_INVALID', /percent-encoding/));
});

test('percent-encoded data URIs carry any bytes', async () => {
  const encoded = [...BYTES].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('');
  assert.deepEqual(await preprocessImage(`data:image/jpeg,${encoded}`, JINA), await preprocessImage(BYTES, JINA));
});

test('long base64 that is not an image decodes to bytes and fails as IMAGE_UNDECODABLE', async () => {
  const junk = Buffer.alloc(600, 7).toString('base64');
  await assert.rejects(preprocessImage(junk, JINA), rejectsWith('IMAGE_UNDECODABLE', /base64 image \(600 bytes\) could not be decoded/));
});

test('directories and devices are refused, not read', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'tessera-'));
  try {
    await assert.rejects(preprocessImage(dir, JINA), rejectsWith('IMAGE_SOURCE_INVALID', /not a regular file/));
    await assert.rejects(preprocessImage('/dev/zero', JINA), rejectsWith('IMAGE_SOURCE_INVALID', /not a regular file/));
  } finally {
    await rm(dir, { recursive: true });
  }
});

test('allowPaths: false never touches the file system', async () => {
  await assert.rejects(preprocessImage(PATH, JINA, { allowPaths: false }), rejectsWith('IMAGE_SOURCE_INVALID'));
  await assert.rejects(preprocessImage(pathToFileURL(PATH).href, JINA, { allowPaths: false }), rejectsWith('IMAGE_SOURCE_INVALID', /file URLs/));
  // base64 still works
  const got = await preprocessImage(BASE64, JINA, { allowPaths: false });
  assert.equal(got.width, 410);
});

test('decodeBase64 is strict', () => {
  assert.equal(Buffer.from(decodeBase64('aGk=')!).toString(), 'hi');
  assert.equal(Buffer.from(decodeBase64('aGk')!).toString(), 'hi');
  assert.equal(Buffer.from(decodeBase64('aG\nk=')!).toString(), 'hi');
  assert.equal(decodeBase64('aGk=x'), undefined, 'padding in the middle');
  assert.equal(decodeBase64('a'), undefined, 'impossible length');
  assert.equal(decodeBase64('ab+_'), undefined, 'mixed alphabets');
  assert.equal(decodeBase64('a.b'), undefined);
  assert.equal(decodeBase64(''), undefined);
});
