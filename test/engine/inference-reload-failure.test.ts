// A restarted thread that cannot load the model again (its files are gone) stays dead and
// says why, instead of serving without a model. Its own file: the thread stays dead.
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { Embedder } from '../../src/engine/embedder.ts';
import { onInferenceThreadDeath, terminateInferenceThread, type ThreadDeath } from '../../src/model/session.ts';
import { forgedCopy } from '../helpers/models.ts';

test('when the model files are gone, the restarted thread gives up and calls fail with INFERENCE_THREAD_DIED', async () => {
  const dir = await forgedCopy('tiny');
  const embedder = await Embedder.load(dir, { maxWaitMs: 0 });
  await embedder.embedTexts(['warm']);
  await rm(join(dir, 'onnx'), { recursive: true, force: true });
  const deaths: ThreadDeath[] = [];
  const gone = new Promise<void>((resolve) => onInferenceThreadDeath((death) => (deaths.push(death), !death.restarting && resolve())));
  await terminateInferenceThread();
  await gone;
  assert.deepEqual(deaths.map((d) => d.restarting), [true, false]);
  assert.match(deaths[1]!.error.message, /restarted but could not load the model again/);
  await assert.rejects(embedder.embedTexts(['after']), { code: 'INFERENCE_THREAD_DIED', message: /could not load the model again/ });
  await embedder.close();
});
