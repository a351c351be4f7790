// Integer weight rewrites on forged models: signed / unsigned (exact: the same integer
// products), 7-bit (never saturates), and what each gives on this CPU.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { attr, GraphBuilder } from '../../src/forge/graph.ts';
import { DataType } from '../../src/forge/onnx-proto.ts';
import { writeModel } from '../../src/forge/writer.ts';
import {
  detectCpuInt8Features,
  int8KernelClass,
  integerWeights,
  OnnxFile,
  SEVEN_BIT_MAX,
  summarizeInt8,
  toSevenBit,
  toSigned,
  toUnsigned,
} from '../../src/model/int8/index.ts';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tempDir } from '../helpers/models.ts';
import { forgedTiny, graphBytes, identical, minCosine, run } from './helpers.ts';

const kernel = int8KernelClass(detectCpuInt8Features());

/** (w - zero point) of every weight element, per weight, as the integer ops read them. */
function centred(model: OnnxFile): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const w of integerWeights(model)) {
    const u = w.uses[0]!;
    const zpIndex = u.op === 'MatMulIntegerToFloat' ? 5 : 3;
    const zpName = u.node.inputs[zpIndex] ?? '';
    const zp = zpName ? [...model.int8Values(zpName)] : [0];
    const columns = w.dims[w.dims.length - 1]!;
    out.set(w.name, [...model.int8Values(w.name)].map((v, i) => v - zp[zp.length === 1 ? 0 : i % columns]!));
  }
  return out;
}

test('toSigned makes every uint8 weight int8 with the same (w - zero point), ConvInteger included', async () => {
  const bytes = await graphBytes(await forgedTiny('hub-like'), 'vision', true);
  const before = OnnxFile.parse(bytes);
  const model = OnnxFile.parse(bytes);
  const report = toSigned(model);
  assert.equal(report.skipped.length, 0);
  assert.equal(report.converted.length, summarizeInt8(before).uint8);
  const after = OnnxFile.parse(model.toBytes());
  assert.deepEqual(summarizeInt8(after).weights, { ConvInteger: { uint8: 0, int8: 1 }, MatMulInteger: { uint8: 0, int8: 15 } });
  assert.deepEqual(centred(after), centred(before));
  // And back: the same bytes as the original weights.
  toUnsigned(after);
  for (const w of integerWeights(before)) assert.deepEqual(new Uint8Array(after.tensorBytes(w.name)), new Uint8Array(before.tensorBytes(w.name)));
});

test('toUnsigned handles a zero point shared by every weight (the forge q8) and weights without one', async () => {
  const bytes = await graphBytes(await forgedTiny('forge'), 'vision', true);
  const before = OnnxFile.parse(bytes);
  const shared = new Set(integerWeights(before).map((w) => w.uses[0]!.node.inputs[3]));
  assert.equal(shared.size, 1, 'the forge q8 shares one zero point');
  const model = OnnxFile.parse(bytes);
  toUnsigned(model);
  const after = OnnxFile.parse(model.toBytes());
  assert.equal(summarizeInt8(after).int8, 0);
  assert.deepEqual(centred(after), centred(before));
  assert.equal(after.int8Values([...shared][0]!)[0], 128);
});

test('a weight also read by another op is left alone; a missing zero point is added', async () => {
  const g = new GraphBuilder('t');
  const x = g.input('x', DataType.UINT8, [2, 4]);
  g.param('w', [4, 3], 'weight', DataType.UINT8);
  g.param('w2', [4, 3], 'weight', DataType.UINT8);
  g.param('xz', [], 'bias', DataType.UINT8);
  g.param('s', [], 'scale');
  const a = g.node('MatMulInteger', [x, 'w', 'xz']); // no weight zero point: 0
  g.node('Add', [a, g.node('MatMulInteger', [x, 'w2', 'xz'])], {}, 'y');
  g.node('DequantizeLinear', ['w2', 's'], {}, 'w2_float');
  g.output('y', 6 as never, [2, 3]);
  g.output('w2_float', DataType.FLOAT, [4, 3]);
  const path = join(await tempDir('tessera-int8-'), 'm.onnx');
  await writeModel(path, g, (p) => (p.name === 's' ? Float32Array.of(0.5) : Int8Array.from({ length: p.dims.reduce((m, d) => m * d, 1) }, (_, i) => (i * 37) % 256 - 128)), {
    producerName: 't', producerVersion: '1', docString: '', metadata: {}, opsetVersion: 17, irVersion: 8,
  });
  const model = OnnxFile.parse(await readFile(path));
  const report = toSigned(model);
  assert.deepEqual(report.converted, ['w']);
  assert.match(report.skipped[0]!.reason, /DequantizeLinear/);
  const mm = model.nodes.find((n) => n.opType === 'MatMulInteger' && n.inputs[1] === 'w')!;
  assert.equal(mm.inputs.length, 4);
  assert.equal(model.int8Values(mm.inputs[3]!)[0], -128);
  // It still runs, and gives what the original gives (uint8 weights in [0, 255], x in [0, 3]: no saturation).
  const ort = await import('onnxruntime-node');
  const feeds = { x: new ort.Tensor('uint8', Uint8Array.from([0, 1, 2, 3, 3, 2, 1, 0]), [2, 4]) };
  const runBytes = async (b: Uint8Array) => {
    const s = await ort.InferenceSession.create(b);
    const out = (await s.run(feeds)).y!.data as Int32Array;
    await s.release();
    return [...out];
  };
  assert.deepEqual(await runBytes(model.toBytes()), await runBytes(await readFile(path)));
});

test('signed weights give the same outputs as unsigned ones wherever no pair of products passes 16 bits', async () => {
  // uint8 weights in [64, 192]: as int8 in [-64, 64], 255 x 64 x 2 < 32767, so even AVX2's
  // vpmaddubsw cannot saturate: the outputs must be identical to the bit on any CPU.
  const g = new GraphBuilder('t');
  const x = g.input('x', DataType.FLOAT, [8, 64]);
  const [xq, xs, xz] = g.nodeN('DynamicQuantizeLinear', [x], 3);
  g.param('w', [64, 32], 'weight', DataType.UINT8);
  g.param('wz', [], 'bias', DataType.UINT8);
  g.param('ws', [], 'scale');
  const product = g.node('Cast', [g.node('MatMulInteger', [xq!, 'w', xz!, 'wz'])], { to: attr.int(DataType.FLOAT) });
  g.node('Mul', [product, g.node('Mul', [xs!, 'ws'])], {}, 'y');
  g.output('y', DataType.FLOAT, [8, 32]);
  const path = join(await tempDir('tessera-int8-'), 'm.onnx');
  await writeModel(path, g, (p) => {
    if (p.name === 'ws') return Float32Array.of(0.01);
    if (p.name === 'wz') return new Int8Array(Uint8Array.of(131).buffer);
    return new Int8Array(Uint8Array.from({ length: 64 * 32 }, (_, i) => 64 + ((i * 97) % 129)).buffer);
  }, { producerName: 't', producerVersion: '1', docString: '', metadata: {}, opsetVersion: 17, irVersion: 8 });
  const original = await readFile(path);
  const model = OnnxFile.parse(original);
  toSigned(model);
  const ort = await import('onnxruntime-node');
  const input = new ort.Tensor('float32', Float32Array.from({ length: 8 * 64 }, (_, i) => Math.sin(i * 0.37) * 3), [8, 64]);
  const runBytes = async (b: Uint8Array) => {
    const s = await ort.InferenceSession.create(b, { graphOptimizationLevel: 'basic' });
    const out = (await s.run({ x: input })).y!.data as Float32Array;
    await s.release();
    return out;
  };
  assert.deepEqual(await runBytes(model.toBytes()), await runBytes(original));
});

test('toSevenBit: int8 weights in [-64, 64], zero point 0, one scale per column; close to fp32', async (t) => {
  for (const style of ['hub-like', 'forge'] as const) {
    const dir = await forgedTiny(style);
    for (const tower of ['vision', 'text'] as const) {
      const model = OnnxFile.parse(await graphBytes(dir, tower, true));
      const report = toSevenBit(model);
      assert.equal(report.skipped.length, 0, JSON.stringify(report.skipped));
      const after = OnnxFile.parse(model.toBytes());
      for (const w of integerWeights(after)) {
        assert.equal(w.type, 'int8');
        assert.ok(after.int8Values(w.name).every((v) => Math.abs(v) <= SEVEN_BIT_MAX), w.name);
        const zp = w.uses[0]!.node.inputs[3]!;
        assert.deepEqual([...after.int8Values(zp)], [0]);
        const scale = w.uses[0]!.scale!.name;
        assert.equal(after.floats(scale).length, w.uses[0]!.op === 'ConvInteger' ? 1 : w.dims[1]);
      }
      const fp32 = await run(await graphBytes(dir, tower, false), tower);
      const c = minCosine(fp32, await run(after.toBytes(), tower));
      t.diagnostic(`${style} ${tower}: 7-bit min cosine to fp32 ${c.toFixed(5)}`);
      assert.ok(c >= 0.99, `${style} ${tower}: ${c}`);
    }
  }
});

test('7-bit weights never saturate: their signed and unsigned forms give identical outputs on any CPU', async () => {
  for (const tower of ['vision', 'text'] as const) {
    const model = OnnxFile.parse(await graphBytes(await forgedTiny('hub-like'), tower, true));
    toSevenBit(model);
    const signed = model.toBytes();
    toUnsigned(model);
    assert.ok(identical(await run(signed, tower), await run(model.toBytes(), tower)), tower);
  }
});

test(`signed and unsigned forms of the same weights on this CPU (${kernel})`, async (t) => {
  // Exact kernels (VNNI, AMX): identical outputs. AVX2 without VNNI: the signed form may
  // saturate; it must still hold cosine >= 0.99 to fp32 here, and the numbers are reported.
  for (const style of ['hub-like', 'forge'] as const) {
    const dir = await forgedTiny(style);
    for (const tower of ['vision', 'text'] as const) {
      const bytes = await graphBytes(dir, tower, true);
      const s = OnnxFile.parse(bytes);
      toSigned(s);
      const u = OnnxFile.parse(bytes);
      toUnsigned(u);
      const fp32 = await run(await graphBytes(dir, tower, false), tower);
      const signed = await run(s.toBytes(), tower);
      const unsigned = await run(u.toBytes(), tower);
      const same = identical(signed, unsigned);
      t.diagnostic(`${style} ${tower}: signed ${minCosine(fp32, signed).toFixed(5)}, unsigned ${minCosine(fp32, unsigned).toFixed(5)} min cosine to fp32; identical: ${same}`);
      if (kernel === 'exact-s8' || kernel === 'arm') assert.ok(same, `${style} ${tower}: the kernels are exact here, the outputs must be identical`);
      assert.ok(minCosine(fp32, unsigned) >= 0.99, `${style} ${tower} unsigned`);
      if (style === 'hub-like') assert.ok(minCosine(fp32, signed) >= 0.99, `${style} ${tower} signed`);
    }
  }
});
