// The forge's hub-like q8 variant: made as transformers.js's quantize script makes the hub's
// _quantized files (onnxruntime's quantize_dynamic arithmetic), loads with dtype q8 and stays
// close to fp32.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { main as forgeCli } from '../../src/cli/forge.ts';
import { Embedder } from '../../src/engine/embedder.ts';
import { forgeModel } from '../../src/forge/index.ts';
import { ortQuantize, ortScaleZeroPoint, roundHalfEven } from '../../src/forge/quantize.ts';
import { OnnxFile, summarizeInt8 } from '../../src/model/int8/index.ts';
import { cosine, tempDir } from '../helpers/models.ts';
import { forgedTiny, graphBytes, minCosine, run } from './helpers.ts';

test('roundHalfEven rounds ties to even, as numpy.round', () => {
  assert.deepEqual([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 2.4, -2.6, 3].map(roundHalfEven), [0, 2, 2, -0, -2, -2, 2, -3, 3]);
});

test('ortScaleZeroPoint and ortQuantize follow onnxruntime quant_utils', () => {
  // uint8, asymmetric: [min(w, 0), max(w, 0)] -> [0, 255]; scale in float64 then float32.
  const u = ortScaleZeroPoint(-1, 2, 'uint8', { symmetric: false, reduceRange: false });
  assert.equal(u.scale, Math.fround(3 / 255));
  assert.equal(u.zeroPoint, 85);
  // The range always holds zero.
  assert.deepEqual(ortScaleZeroPoint(0.5, 2, 'uint8', { symmetric: false, reduceRange: false }), { scale: Math.fround(2 / 255), zeroPoint: 0 });
  // int8, symmetric: [-max|w|, max|w|] -> [-127, 127], zero point 0; reduce_range [-64, 64].
  assert.deepEqual(ortScaleZeroPoint(-1, 2, 'int8', { symmetric: true, reduceRange: false }), { scale: Math.fround(4 / 254), zeroPoint: 0 });
  assert.deepEqual(ortScaleZeroPoint(-1, 2, 'int8', { symmetric: true, reduceRange: true }), { scale: Math.fround(4 / 128), zeroPoint: 0 });
  // uint8 reduce_range: [0, 127].
  assert.equal(ortScaleZeroPoint(-1, 2, 'uint8', { symmetric: false, reduceRange: true }).scale, Math.fround(3 / 127));
  // All zeros: scale 1, zero point 0.
  assert.deepEqual(ortScaleZeroPoint(0, 0, 'uint8', { symmetric: false, reduceRange: false }), { scale: 1, zeroPoint: 0 });

  const w = Float32Array.from([-1, 0, 0.25, 2]);
  const q = ortQuantize(w, 'uint8', { symmetric: false, reduceRange: false });
  assert.ok(q.q instanceof Uint8Array);
  assert.deepEqual([...q.q], [0, 85, 85 + 21, 255]); // 0.25 / (3 / 255) = 21.25
  // Per column ([2, 2], columns 2): each column its own scale.
  const pc = ortQuantize(Float32Array.from([1, -4, -1, 2]), 'int8', { symmetric: true, reduceRange: false }, 2);
  assert.deepEqual([...pc.scale], [Math.fround(2 / 254), Math.fround(8 / 254)]);
  assert.deepEqual([...pc.q], [127, -127, -127, roundHalfEven(Math.fround(2 / Math.fround(8 / 254)))]);
});

test('the hub-like variant: uint8 weights with ConvInteger in the vision tower, int8 in the text tower, tables through DequantizeLinear', async () => {
  const dir = await forgedTiny('hub-like');
  const vision = OnnxFile.parse(await graphBytes(dir, 'vision', true));
  const text = OnnxFile.parse(await graphBytes(dir, 'text', true));
  const v = summarizeInt8(vision);
  assert.equal(v.int8, 0);
  assert.equal(v.weights.ConvInteger?.uint8, 1, 'the patch embedding Conv is quantised (uint8)');
  assert.equal(v.weights.MatMulInteger?.uint8, 2 * 7 + 1, 'q, k, v, proj, w1, w2, w3 in each of 2 blocks, and the head');
  // The rotary rotate_half MatMul (a constant, not a trained weight) stays float.
  assert.ok(vision.nodes.some((n) => n.opType === 'MatMul' && n.inputs[1] === 'rope.rotate_half'));
  // q, k and v read one DynamicQuantizeLinear of their shared input.
  const dql = vision.nodes.filter((n) => n.opType === 'DynamicQuantizeLinear');
  assert.equal(new Set(dql.map((n) => n.inputs[0])).size, dql.length);
  assert.ok(dql.length < v.weights.MatMulInteger!.uint8 + 1);
  const t = summarizeInt8(text);
  assert.equal(t.uint8, 0);
  assert.ok(t.int8 > 0);
  const gathers = text.nodes.filter((n) => n.opType === 'Gather' && n.inputs[0]!.endsWith('_quantized'));
  assert.equal(gathers.length, 2, 'word and token type tables quantised');
  assert.equal(text.initializer('embeddings.word_embeddings.weight_quantized')?.dataType, 2, 'tables are uint8 (activation type)');
  assert.equal(text.nodes.filter((n) => n.opType === 'DequantizeLinear').length, 2);
  // Names as onnxruntime's quantizer gives them.
  assert.ok(vision.initializer('blocks.0.attn.q_proj.weight_quantized'));
  assert.ok(vision.initializer('blocks.0.attn.q_proj.weight_zero_point'));
  assert.ok(vision.nodes.some((n) => n.opType === 'ConvInteger' && n.name.endsWith('_quant')));
});

test('the hub-like variant runs close to fp32', async (t) => {
  const dir = await forgedTiny('hub-like');
  for (const tower of ['vision', 'text'] as const) {
    const fp32 = await run(await graphBytes(dir, tower, false), tower);
    const q8 = await run(await graphBytes(dir, tower, true), tower);
    const c = minCosine(fp32, q8);
    t.diagnostic(`${tower}: min cosine to fp32 ${c.toFixed(5)}`);
    assert.ok(c >= 0.99, `${tower}: min cosine ${c}`);
    assert.ok(c < 1 - 1e-7, `${tower}: the quantised graph gave the fp32 vectors`);
  }
});

test('forge --hub-like writes the variant, and dtype q8 loads it', async () => {
  const dir = await tempDir('tessera-int8-cli-');
  const log = console.log;
  const lines: string[] = [];
  console.log = (line: string) => void lines.push(line);
  const stderr = process.stderr.write;
  process.stderr.write = (() => true) as typeof process.stderr.write;
  try {
    await forgeCli(['--preset', 'tiny', '--out', dir, '--hub-like']);
  } finally {
    console.log = log;
    process.stderr.write = stderr;
  }
  assert.match(lines.join('\n'), /forged tiny/);
  const vision = await readFile(join(dir, 'onnx/vision_model_quantized.onnx'));
  assert.ok(vision.includes(Buffer.from('tessera_forge_q8')) && vision.includes(Buffer.from('hub-like')));
  const fp32 = await Embedder.load(dir, { intraOpThreads: 1 });
  const q8 = await Embedder.load(dir, { dtype: 'q8', intraOpThreads: 1 });
  try {
    const texts = ['a red apple', 'blue'];
    const [a, b] = await Promise.all([fp32.embedTexts(texts), q8.embedTexts(texts)]);
    for (const [k, e] of a.entries()) assert.ok(cosine(e.embedding, b[k]!.embedding) >= 0.99);
    const pixels = new Float32Array(3 * 224 * 224).map((_, i) => Math.cos(i * 0.003));
    const [pa, pb] = await Promise.all([fp32.embedPixels(pixels, 1), q8.embedPixels(pixels, 1)]);
    assert.ok(cosine(pa[0]!, pb[0]!) >= 0.99);
  } finally {
    await Promise.all([fp32.close(), q8.close()]);
  }
});

test('hub-like is refused for the presets it is not made for', async () => {
  await assert.rejects(forgeModel({ preset: 'v2-tiny', outDir: await tempDir(), quantized: true, q8Style: 'hub-like' }), /hub-like/);
});
