// The server when its inference thread dies: the request in flight and later ones get 503
// INFERENCE_THREAD_DIED, /ready turns 503, /health still answers (the process is alive).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { terminateInferenceThread } from '../../src/model/session.ts';
import { startServer } from '../helpers/server.ts';

test('a dead inference thread turns /ready and embeddings into 503 INFERENCE_THREAD_DIED', async () => {
  const server = await startServer({ args: ['--batch-wait-ms', '300'] });
  assert.equal((await fetch(`${server.url}/ready`)).status, 200);
  const inFlight = server.post('/v1/embeddings', { model: 'jina-clip-v1', input: ['waiting for its batch'] });
  await new Promise((r) => setTimeout(r, 50));
  await terminateInferenceThread();
  const answer = await inFlight;
  assert.equal(answer.status, 503);
  assert.equal(((await answer.json()) as { code: string }).code, 'INFERENCE_THREAD_DIED');
  const later = await server.post('/v1/embeddings', { model: 'jina-clip-v1', input: ['later'] });
  assert.equal(later.status, 503);
  assert.equal((await fetch(`${server.url}/ready`)).status, 503);
  assert.equal((await fetch(`${server.url}/health`)).status, 200);
});
