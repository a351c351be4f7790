// The forge's hub-like q8 variant: made as transformers.js's quantize script makes the hub's
// _quantized files (onnxruntime's quantize_dynamic arithmetic), loads with dtype q8 and stays
// close to fp32.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { main as forgeCli } from '../../src/cli/forge.ts';
import { Embedder } from '../../src/engine/embedder.ts';
import { forgeModel } from '../../src/forge/index.ts';
import { ortQuantize, ortScaleZeroPoint, roundHalfEven } from '../../src/forge/quantize.ts';
import { OnnxFile, summarizeInt8 } from '../../src/model/int8/index.ts';
import { noiseImage, solidImage } from '../helpers/images.ts';
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

/** Names of the float weights the fp32 graph multiplies by (MatMul B, Conv W), trained ones only. */
function floatWeightsOf(model: OnnxFile): { matmul: Set<string>; conv: Set<string> } {
  const trained = (name: string | undefined): name is string => name !== undefined && model.initializer(name) !== undefined && !name.endsWith('rope.rotate_half');
  return {
    matmul: new Set(model.nodes.filter((n) => n.opType === 'MatMul').map((n) => n.inputs[1]).filter(trained)),
    conv: new Set(model.nodes.filter((n) => n.opType === 'Conv').map((n) => n.inputs[1]).filter(trained)),
  };
}

/** fp32 and q8 embeddings of a few texts and images through the engine: min cosine of each. */
async function engineCosines(dir: string): Promise<{ texts: number; images: number }> {
  const fp32 = await Embedder.load(dir, { intraOpThreads: 1 });
  const q8 = await Embedder.load(dir, { dtype: 'q8', intraOpThreads: 1 });
  try {
    const texts = ['a red apple on a wooden table', 'blue', 'two dogs running on the beach at sunset'];
    const images = [await noiseImage(320, 240, 1, 'jpeg'), await noiseImage(200, 300, 2), await solidImage(64, 64, [200, 40, 30])];
    const min = (a: { embedding: Float32Array }[], b: { embedding: Float32Array }[]): number => Math.min(...a.map((e, k) => cosine(e.embedding, b[k]!.embedding)));
    return {
      texts: min(await fp32.embedTexts(texts), await q8.embedTexts(texts)),
      images: min(await fp32.embedImages(images), await q8.embedImages(images)),
    };
  } finally {
    await Promise.all([fp32.close(), q8.close()]);
  }
}

test('v2-tiny hub-like: one self-contained graph, uint8 weights throughout (it holds a Conv), close to fp32', async (t) => {
  const dir = await tempDir('tessera-int8-v2-hub-');
  const summary = await forgeModel({ preset: 'v2-tiny', outDir: dir, quantized: true, q8Style: 'hub-like' });
  // Self-contained, as the hub's model_quantized.onnx: no data file of its own.
  assert.deepEqual(summary.files.filter((f) => f.path.startsWith('onnx/')).map((f) => f.path).sort(), ['onnx/model.onnx', 'onnx/model.onnx_data', 'onnx/model_quantized.onnx']);
  const bytes = await readFile(join(dir, 'onnx/model_quantized.onnx'));
  const q8 = OnnxFile.parse(bytes);
  // Loads from bytes alone: no weight lives in an external data file.
  await (await ort.InferenceSession.create(bytes)).release();
  assert.ok(bytes.includes(Buffer.from('tessera_forge_q8')) && bytes.includes(Buffer.from('hub-like')));
  const fp32 = floatWeightsOf(OnnxFile.parse(await readFile(join(dir, 'onnx/model.onnx')), join(dir, 'onnx')));
  const s = summarizeInt8(q8);
  assert.equal(s.int8, 0, 'no int8 weights: the combined graph has a Conv, so every weight is uint8, text tower included');
  assert.equal(s.weights.ConvInteger?.uint8, fp32.conv.size);
  assert.equal(s.weights.MatMulInteger?.uint8, fp32.matmul.size, 'every trained MatMul weight quantised');
  assert.ok(fp32.matmul.size > 10);
  // Per tensor: one scale per weight.
  for (const name of fp32.matmul) assert.deepEqual(q8.initializer(`${name}_scale`)?.dims, [], name);
  // The word and token-type tables through Gather + DequantizeLinear, uint8.
  const tables = q8.nodes.filter((n) => n.opType === 'Gather' && n.inputs[0]!.endsWith('_quantized')).map((n) => n.inputs[0]!);
  assert.equal(tables.length, 2);
  assert.ok(tables.every((name) => q8.initializer(name)?.dataType === 2));
  assert.equal(q8.nodes.filter((n) => n.opType === 'DequantizeLinear').length, 2);
  const c = await engineCosines(dir);
  t.diagnostic(`v2-tiny hub-like: min cosine to fp32, texts ${c.texts.toFixed(5)}, images ${c.images.toFixed(5)}`);
  assert.ok(c.texts >= 0.99 && c.images >= 0.99, JSON.stringify(c));
  assert.ok(c.texts < 1 - 1e-7 && c.images < 1 - 1e-7, 'the q8 graph gave the fp32 vectors');
});

test('clip-tiny hub-like: int8 text tower, uint8 vision tower (ConvInteger), close to fp32', async (t) => {
  const dir = await tempDir('tessera-int8-clip-hub-');
  await forgeModel({ preset: 'clip-tiny', outDir: dir, quantized: true, q8Style: 'hub-like' });
  for (const tower of ['text', 'vision'] as const) {
    const fp32 = floatWeightsOf(OnnxFile.parse(await graphBytes(dir, tower, false)));
    const q8 = OnnxFile.parse(await graphBytes(dir, tower, true));
    const s = summarizeInt8(q8);
    const type = tower === 'vision' ? 'uint8' : 'int8';
    assert.equal(s[type === 'uint8' ? 'int8' : 'uint8'], 0, `${tower}: one weight type per file`);
    assert.equal(s.weights.MatMulInteger?.[type], fp32.matmul.size, `${tower}: every MatMul weight is ${type}`);
    assert.equal(s.weights.ConvInteger?.[type] ?? 0, fp32.conv.size);
    for (const name of fp32.matmul) assert.deepEqual(q8.initializer(`${name}_scale`)?.dims, [], `${tower} ${name}: per tensor`);
  }
  const vision = summarizeInt8(OnnxFile.parse(await graphBytes(dir, 'vision', true)));
  assert.equal(vision.weights.ConvInteger?.uint8, 1, 'the patch embedding');
  const text = OnnxFile.parse(await graphBytes(dir, 'text', true));
  assert.equal(text.initializer('text_model.embeddings.token_embedding.weight_quantized')?.dataType, 2, 'the token table, uint8 through DequantizeLinear');
  const c = await engineCosines(dir);
  t.diagnostic(`clip-tiny hub-like: min cosine to fp32, texts ${c.texts.toFixed(5)}, images ${c.images.toFixed(5)}`);
  assert.ok(c.texts >= 0.99 && c.images >= 0.99, JSON.stringify(c));
  assert.ok(c.texts < 1 - 1e-7 && c.images < 1 - 1e-7, 'the q8 graphs gave the fp32 vectors');
});
