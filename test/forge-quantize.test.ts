// The q8 variant: the forge writes onnx/*_quantized.onnx, `dtype: 'q8'` loads them, and they
// stay close to fp32 on the same inputs.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Embedder } from '../src/engine/embedder.ts';
import { forgeModel } from '../src/forge/index.ts';
import { quantizeColumns } from '../src/forge/quantize.ts';
import { cosine, tempDir } from './helpers/models.ts';

test('quantizeColumns is symmetric per column and round-trips within half a step', () => {
  const w = Float32Array.from([0.5, -2, 0.25, 1, -0.5, 0]);
  const { q, scale } = quantizeColumns(w, 2, 3);
  assert.deepEqual([...scale], [1 / 127, 2 / 127, 0.25 / 127].map(Math.fround));
  for (let i = 0; i < w.length; i++) assert.ok(Math.abs(q[i]! * scale[i % 3]! - w[i]!) <= scale[i % 3]! / 2 + 1e-7);
  assert.equal(q[1], -127);
});

test('the q8 forge variant loads with dtype q8, runs, and stays close to fp32', async () => {
  const dir = await tempDir('tessera-q8-');
  const summary = await forgeModel({ preset: 'tiny', outDir: dir, quantized: true });
  assert.ok(summary.files.some((f) => f.path === 'onnx/text_model_quantized.onnx'));
  assert.ok(summary.files.some((f) => f.path === 'onnx/vision_model_quantized.onnx'));
  const fp32 = await Embedder.load(dir, { intraOpThreads: 1 });
  const q8 = await Embedder.load(dir, { dtype: 'q8', intraOpThreads: 1 });
  try {
    assert.ok(q8.model.text.session.inputNames.includes('input_ids'));
    const texts = ['a red apple', 'the quick brown fox jumps over the lazy dog', 'blue'];
    const pixels = new Float32Array(2 * 3 * 224 * 224).map((_, i) => Math.sin(i * 0.01));
    const [a, b] = await Promise.all([fp32.embedTexts(texts), q8.embedTexts(texts)]);
    const [pa, pb] = await Promise.all([fp32.embedPixels(pixels, 2), q8.embedPixels(pixels, 2)]);
    const cosines = [...a.map((e, k) => cosine(e.embedding, b[k]!.embedding)), ...pa.map((v, k) => cosine(v, pb[k]!))];
    // The tiny model's 32-wide layers quantise worse than the full model's 768-wide ones
    // (`tessera bench` measures those: q8.min_cosine); 0.95 still catches a mis-wired scale.
    for (const c of cosines) assert.ok(c > 0.95, `cosine ${c} between q8 and fp32`);
    assert.ok(cosines.some((c) => c < 1 - 1e-7), 'q8 gave exactly the fp32 vectors: the quantised graph did not run');
  } finally {
    await Promise.all([fp32.close(), q8.close()]);
  }
});
