// The inference thread dying is never silent and not the end: the call it was running fails
// with INFERENCE_THREAD_DIED, a new thread re-creates the sessions from the same files, calls
// not yet sent run there, and the vectors are the same as before.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Embedder } from '../../src/engine/embedder.ts';
import { onInferenceThreadDeath, onInferenceThreadRestart, terminateInferenceThread, type ThreadDeath } from '../../src/model/session.ts';
import { forged } from '../helpers/models.ts';

const restarted = () => new Promise<void>((resolve) => {
  const off = onInferenceThreadRestart(() => (off(), resolve()));
});

test('terminating the inference thread fails the batch it ran, restarts it with the model, and runs the queued work there', async () => {
  const embedder = await Embedder.load(await forged('colour'), { maxWaitMs: 0 });
  const [before] = await embedder.embedTexts(['a red car']);
  const deaths: ThreadDeath[] = [];
  onInferenceThreadDeath((death) => deaths.push(death));
  const back = restarted();

  // About a second of inference: certainly inside the thread when it is terminated.
  const running = embedder.embedTexts(['red '.repeat(3000)]);
  await new Promise((r) => setTimeout(r, 100));
  // Waits behind the running batch in the scheduler: not sent to the thread yet.
  const queued = embedder.embedTexts(['a red car']);
  await terminateInferenceThread();

  await assert.rejects(running, { code: 'INFERENCE_THREAD_DIED', message: /died: it exited with code 1; it is being restarted with the model/ });
  assert.deepEqual(deaths.map((d) => [d.error.code, d.restarting]), [['INFERENCE_THREAD_DIED', true]]);
  const [retried] = await queued;
  assert.deepEqual(retried!.embedding, before!.embedding);
  await back;
  const [after] = await embedder.embedTexts(['a red car']);
  assert.deepEqual(after!.embedding, before!.embedding);
  assert.equal(deaths.length, 1);
  await embedder.close();
});

test('a thread terminated while idle comes back too, and a released model is not re-created', async () => {
  const embedder = await Embedder.load(await forged('tiny'), { maxWaitMs: 0 });
  const [before] = await embedder.embedTexts(['idle']);
  const back = restarted();
  await terminateInferenceThread();
  await back;
  const [after] = await embedder.embedTexts(['idle']);
  assert.deepEqual(after!.embedding, before!.embedding);
  await embedder.close();

  // No live session left: a death restarts nothing and the next model starts a fresh thread.
  const deaths: ThreadDeath[] = [];
  const off = onInferenceThreadDeath((death) => deaths.push(death));
  const other = await Embedder.load(await forged('tiny'), { maxWaitMs: 0 });
  await other.close();
  await terminateInferenceThread();
  off();
  assert.deepEqual(deaths.map((d) => d.restarting), [false]);
  const again = await Embedder.load(await forged('tiny'), { maxWaitMs: 0 });
  const [fresh] = await again.embedTexts(['idle']);
  assert.deepEqual(fresh!.embedding, before!.embedding);
  await again.close();
});
