// A thread that keeps dying is not restarted forever: past RESTART_LIMIT deaths in a minute
// it stays dead, the listeners hear that it is not restarting, and calls fail at once.
// Its own file: the thread stays dead for the rest of the process.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Embedder } from '../../src/engine/embedder.ts';
import { onInferenceThreadDeath, onInferenceThreadRestart, RESTART_LIMIT, terminateInferenceThread, type ThreadDeath } from '../../src/model/session.ts';
import { forged } from '../helpers/models.ts';

test(`after ${RESTART_LIMIT.deaths + 1} deaths within a minute the thread is not restarted again`, async () => {
  const embedder = await Embedder.load(await forged('tiny'), { maxWaitMs: 0 });
  await embedder.embedTexts(['warm']);
  const deaths: ThreadDeath[] = [];
  onInferenceThreadDeath((death) => deaths.push(death));
  let restarts = 0;
  onInferenceThreadRestart(() => restarts++);
  for (let k = 1; k <= RESTART_LIMIT.deaths; k++) {
    const back = new Promise<void>((resolve) => {
      const off = onInferenceThreadRestart(() => (off(), resolve()));
    });
    await terminateInferenceThread();
    await back;
    await embedder.embedTexts(['still serving']);
  }
  assert.equal(restarts, RESTART_LIMIT.deaths);
  await terminateInferenceThread();
  assert.deepEqual(deaths.map((d) => d.restarting), [...Array(RESTART_LIMIT.deaths).fill(true), false]);
  assert.match(deaths.at(-1)!.error.message, /died 6 times within 60 s, so it is not restarted again/);
  await assert.rejects(embedder.embedTexts(['no more']), { code: 'INFERENCE_THREAD_DIED', message: /not restarted again/ });
  await embedder.close(); // releasing on a dead thread is a no-op, not an error
});
