// The batch scheduler against a stand-in backend (the runText/runImages interface), so the
// batching itself is observable: sizes, order, cancellation, one batch at a time.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BatchScheduler, type BatchReport, type SchedulerOptions } from '../../src/engine/scheduler.ts';
import { TesseraError } from '../../src/errors.ts';

function backend(overrides: Partial<SchedulerOptions> = {}) {
  const reports: BatchReport[] = [];
  let running = 0;
  let overlapped = false;
  const slow = async <T>(value: T) => {
    running++;
    if (running > 1) overlapped = true;
    await new Promise((r) => setTimeout(r, 10));
    running--;
    return value;
  };
  const scheduler = new BatchScheduler({
    maxWaitMs: 2,
    maxImageBatch: 4,
    text: { maxBatch: 8, attentionBudgetBytes: 1 << 30 },
    heads: 2,
    equalLengthsOnly: false,
    // Each "embedding" encodes what it was given, so results can be matched to inputs.
    runText: (rows) => slow(rows.map((r) => Float32Array.of(r.length, r[0]!))),
    runImages: (images) => slow(images.map((p) => Float32Array.of(p[0]!))),
    ...overrides,
  });
  scheduler.listeners.add((r) => reports.push(r));
  return { scheduler, reports, overlapped: () => overlapped };
}

test('concurrent submissions form batches, and each caller gets its own result', async () => {
  const { scheduler, reports, overlapped } = backend();
  const texts = Array.from({ length: 20 }, (_, i) => Array.from({ length: 1 + (i % 5) }, () => i));
  const images = Array.from({ length: 10 }, (_, i) => Float32Array.of(100 + i));
  const results = await Promise.all([
    ...texts.map((ids) => scheduler.submitText(ids)),
    ...images.map((p) => scheduler.submitImage(p)),
  ]);
  texts.forEach((ids, i) => assert.deepEqual(Array.from(results[i]!.vector), [ids.length, ids[0]]));
  images.forEach((p, i) => assert.equal(results[texts.length + i]!.vector[0], p[0]));
  assert.ok(reports.some((r) => r.modality === 'text' && r.size > 1), 'texts were batched');
  assert.ok(reports.some((r) => r.modality === 'image' && r.size > 1), 'images were batched');
  assert.ok(reports.every((r) => r.size <= (r.modality === 'text' ? 8 : 4)), 'batch limits hold');
  assert.equal(overlapped(), false, 'one batch at a time across both towers');
});

test('a text batch groups the oldest text with texts of similar length', async () => {
  const { scheduler, reports } = backend();
  const lengths = [3, 300, 4, 290, 5, 310, 3, 305, 2, 299, 4, 301];
  await Promise.all(lengths.map((n, i) => scheduler.submitText(Array.from({ length: n }, () => i))));
  // With maxBatch 8 the 12 texts take two batches. In arrival order they would pad to
  // 8 x 310 + 4 x 301 = 3684 tokens; sorted by length around the oldest text (3 tokens), and
  // never padding a short text to a long one's width, the six short ones go first together
  // (6 x 5) and the six long ones after (6 x 310): 1890.
  assert.deepEqual(reports.map((r) => r.units), [30, 1860]);
});

test('jobs whose signal aborted are dropped before they reach the model', async () => {
  let seen = 0;
  const { scheduler } = backend({ runText: async (rows) => { seen += rows.length; return rows.map(() => new Float32Array(1)); } });
  const controller = new AbortController();
  const kept = scheduler.submitText([1, 2, 3]);
  const dropped = scheduler.submitText([4, 5, 6], controller.signal);
  controller.abort();
  await kept;
  await assert.rejects(dropped, (err: unknown) => err instanceof TesseraError && err.code === 'REQUEST_CANCELLED');
  assert.equal(seen, 1);
  await assert.rejects(scheduler.submitText([1], AbortSignal.abort()), /dropped before inference/);
});

test('a backend failure fails only the jobs of that batch', async () => {
  let calls = 0;
  const { scheduler } = backend({
    runText: async (rows) => {
      calls++;
      if (calls === 1) throw new Error('boom');
      return rows.map(() => new Float32Array(1));
    },
  });
  await assert.rejects(scheduler.submitText([1]), /boom/);
  await scheduler.submitText([2]);
});
