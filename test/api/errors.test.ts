// Every way a request can be wrong gets a specific 4xx with `detail` naming the field or
// item, and the server keeps serving everyone else.
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { noiseImage } from '../helpers/images.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

let api: TestServer;
const image = await noiseImage(64, 64, 1);
const png = image.toString('base64');
const truncatedPng = image.subarray(0, 120).toString('base64');

before(async () => {
  api = await startServer({ args: ['--max-items', '4', '--max-body-bytes', '200000', '--max-text-chars', '60000'] });
});

const CASES: [string, string | Record<string, unknown>, number, string, RegExp][] = [
  ['bad JSON', '{"model": "jina-clip-v1", "input": [', 422, 'REQUEST_INVALID', /not valid JSON/],
  ['body not an object', '[1, 2]', 422, 'REQUEST_INVALID', /body must be a JSON object/],
  ['no model', { input: ['x'] }, 422, 'REQUEST_INVALID', /model is required/],
  ['unknown model', { model: 'gpt-4', input: ['x'] }, 400, 'MODEL_MISMATCH', /"gpt-4" is not served here/],
  ['no input', { model: 'jina-clip-v1' }, 422, 'REQUEST_INVALID', /input is required/],
  ['empty input', { model: 'jina-clip-v1', input: [] }, 422, 'REQUEST_INVALID', /must not be an empty list/],
  ['wrong item type', { model: 'jina-clip-v1', input: ['ok', 42] }, 422, 'REQUEST_INVALID', /input\[1\] must be a string or an object/],
  ['item with two kinds', { model: 'jina-clip-v1', input: [{ text: 'a', image: 'b' }] }, 422, 'REQUEST_INVALID', /input\[0\] must have exactly one of/],
  ['text not a string', { model: 'jina-clip-v1', input: [{ text: 5 }] }, 422, 'REQUEST_INVALID', /input\[0\]\.text must be a string/],
  ['too many items', { model: 'jina-clip-v1', input: ['a', 'b', 'c', 'd', 'e'] }, 422, 'TOO_MANY_ITEMS', /5 items but this server accepts at most 4/],
  ['unknown encoding', { model: 'jina-clip-v1', input: ['x'], embedding_type: 'int4' }, 422, 'REQUEST_INVALID', /embedding_type must be one of/],
  ['normalized not boolean', { model: 'jina-clip-v1', input: ['x'], normalized: 'yes' }, 422, 'REQUEST_INVALID', /normalized must be true or false/],
  ['bad dimensions', { model: 'jina-clip-v1', input: ['x'], dimensions: -3 }, 422, 'REQUEST_INVALID', /dimensions must be a positive integer/],
  ['over-long text', { model: 'jina-clip-v1', input: ['ok', 'word '.repeat(9000)] }, 422, 'TEXT_TOO_LONG', /input\[1\]: text has \d+ tokens but the model accepts at most 8192/],
  ['text over the character limit', { model: 'jina-clip-v1', input: ['ok', { text: 'x'.repeat(60_001) }], truncate: true }, 422, 'TEXT_TOO_LONG', /^input\[1\]: text has 60001 characters but this server accepts at most 60000/],
  ['undecodable image', { model: 'jina-clip-v1', input: ['ok', { image: truncatedPng }] }, 422, 'IMAGE_UNDECODABLE', /^input\[1\]: /],
  ['SVG image', { model: 'jina-clip-v1', input: [{ image: Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"><image href="file:///etc/passwd"/></svg>').toString('base64') }] }, 422, 'IMAGE_FORMAT_UNSUPPORTED', /^input\[0\]: /],
  ['local file path', { model: 'jina-clip-v1', input: [{ image: '/etc/passwd' }] }, 422, 'IMAGE_SOURCE_INVALID', /^input\[0\]: /],
  ['file URL', { model: 'jina-clip-v1', input: [{ image: 'file:///etc/passwd' }] }, 422, 'REQUEST_INVALID', /input\[0\]\.image: only http\(s\) URLs/],
  ['loopback URL', { model: 'jina-clip-v1', input: ['ok', { url: 'http://127.0.0.1:9/x.png' }] }, 422, 'IMAGE_URL_BLOCKED', /^input\[1\]: .*loopback/],
  ['metadata URL', { model: 'jina-clip-v1', input: [{ image: 'http://169.254.169.254/latest/meta-data/' }] }, 422, 'IMAGE_URL_BLOCKED', /^input\[0\]: /],
  ['body too large', { model: 'jina-clip-v1', input: ['x'.repeat(300_000)] }, 413, 'PAYLOAD_TOO_LARGE', /larger than 200000 bytes/],
];

for (const [name, body, status, code, detail] of CASES) {
  test(`${name}: ${status} ${code}`, async () => {
    const response = await api.post('/v1/embeddings', body);
    const answer = (await response.json()) as { detail: string; code: string; request_id: string };
    assert.equal(response.status, status, JSON.stringify(answer));
    assert.equal(answer.code, code);
    assert.match(answer.detail, detail);
    assert.equal(answer.request_id, response.headers.get('x-request-id'));
  });
}

test('wrong content type gets 415', async () => {
  const response = await fetch(`${api.url}/v1/embeddings`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'hello' });
  assert.equal(response.status, 415);
  assert.match(((await response.json()) as { detail: string }).detail, /application\/json/);
});

test('unknown routes get 404 with a detail', async () => {
  const response = await fetch(`${api.url}/v2/nothing`);
  assert.equal(response.status, 404);
  assert.match(((await response.json()) as { detail: string }).detail, /no route GET \/v2\/nothing/);
});

test('after all of that the server still serves, and /ready is honest', async () => {
  const bad = CASES.map(([, body]) => api.post('/v1/embeddings', body));
  const good = api.post('/v1/embeddings', { model: 'jina-clip-v1', input: ['still here', { image: png }] });
  await Promise.all(bad);
  assert.equal((await good).status, 200);
  assert.equal((await fetch(`${api.url}/ready`)).status, 200);
});
