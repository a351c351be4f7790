// The inference thread dying is never silent: calls in flight and every later call fail
// with INFERENCE_THREAD_DIED, and the death listeners (the server's exit) hear it once.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Embedder } from '../../src/engine/embedder.ts';
import { onInferenceThreadDeath, terminateInferenceThread } from '../../src/model/session.ts';
import { forged } from '../helpers/models.ts';

test('terminating the inference thread fails work in flight and after, and tells the listeners', async () => {
  const embedder = await Embedder.load(await forged('tiny'), { maxWaitMs: 300 });
  await embedder.embedTexts(['warm']);
  const deaths: string[] = [];
  onInferenceThreadDeath((err) => deaths.push(err.code));
  const inFlight = embedder.embedTexts(['a text waiting for its batch']);
  await new Promise((r) => setTimeout(r, 50));
  await terminateInferenceThread();
  await assert.rejects(inFlight, { code: 'INFERENCE_THREAD_DIED', message: /the inference thread \(ONNX Runtime\) died: it exited with code 1/ });
  await assert.rejects(embedder.embedTexts(['after']), { code: 'INFERENCE_THREAD_DIED' });
  assert.deepEqual(deaths, ['INFERENCE_THREAD_DIED']);
});
