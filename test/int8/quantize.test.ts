// Quantisation at load (q8 from an fp32 graph) and the lossless ONNX file editor under it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  floatMatMulWeights,
  integerWeights,
  OnnxFile,
  quantizeCacheKey,
  quantizeMatMuls,
  selectFloatWeights,
  summarizeInt8,
  toUnsigned,
} from '../../src/model/int8/index.ts';
import { forgedTiny, graphBytes, minCosine, run } from './helpers.ts';

test('OnnxFile writes back what it read: same graph, same outputs, unknown fields kept', async () => {
  const bytes = await graphBytes(await forgedTiny('hub-like'), 'vision', true);
  // An unknown ModelProto field (number 99, varint 7) must survive the round trip.
  const withUnknown = Buffer.concat([bytes, Uint8Array.of(0x98, 0x06, 0x07)]);
  const model = OnnxFile.parse(withUnknown);
  const again = OnnxFile.parse(model.toBytes());
  assert.deepEqual(again.nodes.map((n) => [n.name, n.opType, n.inputs, n.outputs]), model.nodes.map((n) => [n.name, n.opType, n.inputs, n.outputs]));
  assert.deepEqual(again.initializerNames().sort(), model.initializerNames().sort());
  for (const name of model.initializerNames()) assert.deepEqual(again.tensorBytes(name), model.tensorBytes(name), name);
  assert.ok(Buffer.from(model.toBytes()).subarray(-3).equals(Buffer.from([0x98, 0x06, 0x07])));
  assert.deepEqual(await run(model.toBytes(), 'vision'), await run(bytes, 'vision'));
});

test('OnnxFile reads zero points stored as int32_data (as onnx.helper.make_tensor writes them)', () => {
  // TensorProto { dims: [], data_type: INT8 (3), int32_data: [-128] (a 10-byte varint), name: "zp" }
  const tensor = Uint8Array.of(0x10, 0x03, 0x28, 0x80, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x42, 0x02, 0x7a, 0x70);
  const graph = Uint8Array.of(0x2a, tensor.length, ...tensor);
  const model = Uint8Array.of(0x08, 0x08, 0x3a, graph.length, ...graph);
  const file = OnnxFile.parse(model);
  assert.deepEqual([...file.int8Values('zp')], [-128]);
});

test('quantizeMatMuls: every MatMul by a float weight becomes the dynamic int8 pattern, per column', async (t) => {
  const dir = await forgedTiny('forge');
  for (const tower of ['vision', 'text'] as const) {
    const fp32Bytes = await graphBytes(dir, tower, false);
    const model = OnnxFile.parse(fp32Bytes);
    const weights = floatMatMulWeights(model).map((w) => w.name);
    const report = quantizeMatMuls(model, { keepFloat: ['rope.rotate_half'] });
    assert.deepEqual(report.quantized, weights.filter((w) => w !== 'rope.rotate_half'));
    const q = OnnxFile.parse(model.toBytes());
    assert.equal(summarizeInt8(q).int8, report.quantized.length);
    for (const w of integerWeights(q)) assert.equal(q.floats(w.uses[0]!.scale!.name).length, w.dims[1], 'a scale per column');
    for (const name of report.quantized) assert.equal(q.initializer(name), undefined, `${name}: the float weight is gone`);
    const fp32 = await run(fp32Bytes, tower);
    const eight = await run(model.toBytes(), tower);
    // 8-bit int8 may saturate on AVX2; its unsigned form cannot, nor can 7-bit.
    toUnsigned(q);
    const exact = await run(q.toBytes(), tower);
    const seven = OnnxFile.parse(fp32Bytes);
    quantizeMatMuls(seven, { keepFloat: ['rope.rotate_half'], reduceRange: true });
    const sevenOut = await run(seven.toBytes(), tower);
    t.diagnostic(`${tower}: int8 ${minCosine(fp32, eight).toFixed(5)}, as uint8 ${minCosine(fp32, exact).toFixed(5)}, 7-bit ${minCosine(fp32, sevenOut).toFixed(5)}`);
    assert.ok(minCosine(fp32, exact) >= 0.99);
    assert.ok(minCosine(fp32, sevenOut) >= 0.99);
  }
});

test('quantizeMatMuls leaves the weights asked for in float', async () => {
  const model = OnnxFile.parse(await graphBytes(await forgedTiny('forge'), 'vision', false));
  const report = quantizeMatMuls(model, { keepFloat: ['head.weight', 'rope.rotate_half'] });
  assert.deepEqual(report.keptFloat.sort(), ['head.weight', 'rope.rotate_half']);
  assert.ok(model.nodes.some((n) => n.opType === 'MatMul' && n.inputs[1] === 'head.weight'));
  assert.ok(model.initializer('head.weight'));
});

test('quantizeCacheKey depends on the source and the options, not on keepFloat order', () => {
  const a = quantizeCacheKey('abc', { keepFloat: ['x', 'y'] });
  assert.equal(a, quantizeCacheKey('abc', { keepFloat: ['y', 'x'] }));
  assert.match(a, /^[0-9a-f]{16}$/);
  assert.notEqual(a, quantizeCacheKey('abd', { keepFloat: ['x', 'y'] }));
  assert.notEqual(quantizeCacheKey('abc'), quantizeCacheKey('abc', { reduceRange: true }));
  assert.equal(quantizeCacheKey('abc'), quantizeCacheKey('abc', { weightType: 'int8', perChannel: true }));
});

test('selectFloatWeights leaves the costliest groups in float until the bound holds', async () => {
  // Each group costs this much cosine when quantised; costs add.
  const cost: Record<string, number> = { a: 0.001, b: 0.008, c: 0.004, d: 0.0005 };
  const groups = [['a'], ['b'], ['c'], ['d']];
  const evaluate = async (keepFloat: string[]) => 1 - Object.entries(cost).filter(([g]) => !keepFloat.includes(g)).reduce((s, [, c]) => s + c, 0);
  const s = await selectFloatWeights(groups, evaluate, 0.99);
  assert.deepEqual(s.keepFloat, ['b']);
  assert.ok(s.holds && s.minCosine >= 0.99);
  assert.equal(s.evaluations.length, 1 + 4 + 1);
  // Already within the bound: nothing stays float, one evaluation.
  const easy = await selectFloatWeights(groups, evaluate, 0.98);
  assert.deepEqual([easy.keepFloat, easy.evaluations.length], [[], 1]);
  // Out of reach: every group in float and still short.
  const hard = await selectFloatWeights(groups, async () => 0.5, 0.99);
  assert.equal(hard.holds, false);
});
