// The inference thread dying is never silent and not the end: the call it was running fails
// with INFERENCE_THREAD_DIED, a new thread re-creates the sessions from the same files, calls
// not yet sent run there, and the vectors are the same as before.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Embedder } from '../../src/engine/embedder.ts';
import type { BatchGate } from '../../src/engine/scheduler.ts';
import { onInferenceThreadDeath, onInferenceThreadRestart, terminateInferenceThread, type ThreadDeath } from '../../src/model/session.ts';
import { forged } from '../helpers/models.ts';

const restarted = () => new Promise<void>((resolve) => {
  const off = onInferenceThreadRestart(() => (off(), resolve()));
});

/**
 * The batch gate embedders take (the hook `tessera serve` uses to run one batch of several
 * models at a time), letting every batch through at once, and calling `onNext` right after the
 * next batch has been handed to the inference thread: the batch picks its jobs and posts its run
 * to the thread synchronously, so a kill from `onNext` meets that run inside the thread, however
 * fast the machine finishes it. No clock involved.
 */
class HandOffGate implements BatchGate {
  onNext: (() => void) | undefined;
  run<T>(task: () => Promise<T>): Promise<T> {
    const running = task();
    const hook = this.onNext;
    this.onNext = undefined;
    hook?.();
    return running;
  }
}

test('terminating the inference thread fails the batch it ran, restarts it with the model, and runs the queued work there', async () => {
  const gate = new HandOffGate();
  const embedder = await Embedder.load(await forged('colour'), { maxWaitMs: 0, batchGate: gate });
  const [before] = await embedder.embedTexts(['a red car']);
  const deaths: ThreadDeath[] = [];
  onInferenceThreadDeath((death) => deaths.push(death));
  const back = restarted();

  // The moment the long batch is in the thread: queue another call behind it (it waits in the
  // scheduler, not sent to the thread yet), then terminate the thread.
  let queued!: ReturnType<Embedder['embedTexts']>;
  let killed!: Promise<void>;
  const handedOff = new Promise<void>((resolve) => {
    gate.onNext = () => {
      queued = embedder.embedTexts(['a red car']);
      killed = terminateInferenceThread();
      resolve();
    };
  });
  const running = embedder.embedTexts(['red '.repeat(3000)]);
  await handedOff;
  await killed;

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
