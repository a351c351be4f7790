// API keys and per-key limits over HTTP, with Jina's codes and headers.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadApiKeys } from '../../src/api/auth.ts';
import { startServer } from '../helpers/server.ts';

type ErrorBody = { detail: string; code: string };

test('API keys: missing or wrong key gets 401, the right one is served; health stays open', async () => {
  const apiKeys = await loadApiKeys({ env: 'alice:key-alice-123,key-bob-456' });
  const api = await startServer({ apiKeys });
  const body = { model: 'jina-clip-v1', input: ['secret'] };
  const missing = await api.post('/v1/embeddings', body);
  assert.equal(missing.status, 401);
  assert.equal(((await missing.json()) as ErrorBody).code, 'AUTH_API_KEY_MISSING');
  const none = await api.post('/v1/embeddings', body, { authorization: 'Bearer None' });
  assert.equal(((await none.json()) as ErrorBody).code, 'AUTH_API_KEY_MISSING');
  const wrong = await api.post('/v1/embeddings', body, { authorization: 'Bearer key-mallory' });
  assert.equal(wrong.status, 401);
  const wrongBody = (await wrong.json()) as ErrorBody;
  assert.equal(wrongBody.code, 'AUTH_API_KEY_INVALID');
  assert.ok(!wrongBody.detail.includes('key-mallory'));
  // Authentication comes before the body is looked at.
  assert.equal((await api.post('/v1/embeddings', '{broken', { authorization: 'Bearer nope' })).status, 401);
  assert.equal((await api.post('/v1/embeddings', body, { authorization: 'Bearer key-alice-123' })).status, 200);
  assert.equal((await api.post('/v1/embeddings', body, { authorization: 'bearer key-bob-456' })).status, 200);
  assert.equal((await fetch(`${api.url}/v1/models`)).status, 401);
  assert.equal((await fetch(`${api.url}/health`)).status, 200);
  assert.equal((await fetch(`${api.url}/ready`)).status, 200);
});

test('requests per minute: 429 RATE_REQUEST_LIMIT_EXCEEDED with the remaining-requests and Retry-After headers', async () => {
  const apiKeys = await loadApiKeys({ env: 'a:key-a,b:key-b' });
  const api = await startServer({ apiKeys, args: ['--rate-limit-rpm', '2'] });
  const send = (key: string) => api.post('/v1/embeddings', { model: 'jina-clip-v1', input: ['x'] }, { authorization: `Bearer ${key}` });
  const first = await send('key-a');
  assert.equal(first.status, 200);
  assert.equal(first.headers.get('x-ratelimit-remaining-requests'), '1');
  assert.equal((await send('key-a')).status, 200);
  const third = await send('key-a');
  assert.equal(third.status, 429);
  assert.equal(((await third.json()) as ErrorBody).code, 'RATE_REQUEST_LIMIT_EXCEEDED');
  assert.equal(third.headers.get('x-ratelimit-remaining-requests'), '0');
  // The window is strict: the first request counts for a whole minute, so the wait is about 60 s
  // (less the time since it, rounded up), not 60 / limit.
  assert.ok(['59', '60'].includes(third.headers.get('retry-after')!), `Retry-After ${third.headers.get('retry-after')}`);
  assert.equal((await send('key-b')).status, 200, 'limits are per key');
});

test('tokens per minute: 429 RATE_TOKEN_LIMIT_EXCEEDED; usage is billed as used', async () => {
  const api = await startServer({ args: ['--rate-limit-tpm', '60'] });
  const ok = await api.post('/v1/embeddings', { model: 'jina-clip-v1', input: ['hello world'] });
  assert.equal(ok.status, 200);
  const remaining = Number(ok.headers.get('x-ratelimit-remaining-tokens'));
  assert.ok(remaining < 60 && remaining > 40, `remaining ${remaining}`);
  const big = await api.post('/v1/embeddings', { model: 'jina-clip-v1', input: ['many words here '.repeat(40)] });
  assert.equal(big.status, 429);
  assert.equal(((await big.json()) as ErrorBody).code, 'RATE_TOKEN_LIMIT_EXCEEDED');
  assert.ok(big.headers.get('x-ratelimit-remaining-tokens'));
});

test('concurrent requests: 429 RATE_CONCURRENCY_LIMIT_EXCEEDED while one is in flight', async () => {
  const api = await startServer({ args: ['--rate-limit-concurrency', '1', '--batch-wait-ms', '200'] });
  const slow = api.post('/v1/embeddings', { model: 'jina-clip-v1', input: ['first'] });
  await new Promise((r) => setTimeout(r, 50));
  const second = await api.post('/v1/embeddings', { model: 'jina-clip-v1', input: ['second'] });
  assert.equal(second.status, 429);
  assert.equal(((await second.json()) as ErrorBody).code, 'RATE_CONCURRENCY_LIMIT_EXCEEDED');
  assert.equal((await slow).status, 200);
  assert.equal((await api.post('/v1/embeddings', { model: 'jina-clip-v1', input: ['third'] })).status, 200);
});
