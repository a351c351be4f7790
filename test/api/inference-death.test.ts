// The server when its inference thread dies: /ready turns 503 at once, the request the
// thread was running gets 503 INFERENCE_THREAD_DIED, requests during the restart succeed or
// get that 503 (never hang), and once the thread is back with the model /ready is 200 and
// the vectors are the ones served before.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { terminateInferenceThread } from '../../src/model/session.ts';
import { batchInThread, startServer } from '../helpers/server.ts';
import { solidImage } from '../helpers/images.ts';
import { maxAbsDiff } from '../helpers/models.ts';

type Answer = { status: number; code?: string; vectors?: number[][] };

test('a dead inference thread is restarted with the model and the server serves the same vectors again', async () => {
  const server = await startServer({ model: 'colour' });
  const image = `data:image/png;base64,${(await solidImage(64, 64, [220, 20, 20])).toString('base64')}`;
  const ask = async (input: unknown[]): Promise<Answer> => {
    const response = await fetch(`${server.url}/v1/embeddings`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'jina-clip-v1', input }),
      signal: AbortSignal.timeout(30_000), // a hang fails the test
    });
    const body = (await response.json()) as { code?: string; data?: { embedding: number[] }[] };
    return { status: response.status, code: body.code, vectors: body.data?.map((d) => d.embedding) };
  };
  const input = [{ text: 'a red car' }, { image }];
  const before = await ask(input);
  assert.equal(before.status, 200);

  // A long text, killed as soon as its batch is in the thread (looked at every turn of the event
  // loop, not after a sleep that a faster machine would outrun).
  const running = ask(['red '.repeat(3000)]);
  await batchInThread(server.embedder);
  const killed = terminateInferenceThread();
  const during = Array.from({ length: 8 }, () => ask(input));
  await killed;
  const ready = await fetch(`${server.url}/ready`);
  assert.equal(ready.status, 503);
  assert.equal(((await ready.json()) as { code: string }).code, 'INFERENCE_THREAD_DIED');
  assert.equal((await fetch(`${server.url}/health`)).status, 200);

  const lost = await running;
  assert.deepEqual([lost.status, lost.code], [503, 'INFERENCE_THREAD_DIED']);
  for (const answer of await Promise.all(during)) {
    // Batched with the others: equal up to float rounding.
    if (answer.status === 200) answer.vectors!.forEach((v, k) => assert.ok(maxAbsDiff(v, before.vectors![k]!) < 1e-5));
    else assert.deepEqual([answer.status, answer.code], [503, 'INFERENCE_THREAD_DIED']);
  }

  const deadline = Date.now() + 20_000;
  while ((await fetch(`${server.url}/ready`)).status !== 200) {
    assert.ok(Date.now() < deadline, '/ready did not come back to 200');
    await new Promise((r) => setTimeout(r, 50));
  }
  const after = await ask(input);
  assert.equal(after.status, 200);
  assert.deepEqual(after.vectors, before.vectors);
});
