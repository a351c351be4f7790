// CPU features and the int8 plan: pure logic on given feature sets, and the measuring part
// with real sessions on forged models.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  applyVariant,
  detectCpuInt8Features,
  int8KernelClass,
  measureVariants,
  OnnxFile,
  parseCpuInfo,
  pickVariant,
  planInt8,
  summarizeInt8,
  type Int8Summary,
  type Int8Variant,
  type MeasuredVariant,
} from '../../src/model/int8/index.ts';
import { forgedTiny, graphBytes, run } from './helpers.ts';

const x86 = (flags: string, model = 'x86 cpu'): string => `processor\t: 0\nmodel name\t: ${model}\nflags\t\t: fpu sse4_2 ${flags}\n\nprocessor\t: 1\nflags\t\t: fpu\n`;

test('parseCpuInfo reads the int8 flags and classifies the kernels', () => {
  const epyc = parseCpuInfo(x86('avx avx2 fma f16c', 'AMD EPYC'), 'x64');
  assert.equal(epyc.model, 'AMD EPYC');
  assert.deepEqual(epyc.flags, ['avx2']);
  assert.equal(int8KernelClass(epyc), 'saturating-s8');
  assert.equal(int8KernelClass(parseCpuInfo(x86('avx2 avx512f avx512bw'), 'x64')), 'saturating-s8', 'Skylake-X: AVX512BW, no VNNI');
  assert.equal(int8KernelClass(parseCpuInfo(x86('avx2 avx512f avx512bw avx512_vnni'), 'x64')), 'exact-s8', 'Cascade Lake / Ice Lake');
  assert.equal(int8KernelClass(parseCpuInfo(x86('avx2 avx_vnni'), 'x64')), 'exact-s8', 'Alder Lake: AVX-VNNI');
  assert.equal(int8KernelClass(parseCpuInfo(x86('avx2 avx512_vnni amx_tile amx_int8'), 'x64')), 'exact-s8', 'Sapphire Rapids');
  assert.equal(int8KernelClass(parseCpuInfo(x86('sse4_1 avx'), 'x64')), 'other');
  const graviton = parseCpuInfo('processor\t: 0\nFeatures\t: fp asimd asimddp i8mm\nCPU part\t: 0xd40\n', 'arm64');
  assert.ok(graviton.armDot && graviton.armI8mm);
  assert.equal(int8KernelClass(graviton), 'arm');
  // Only the first processor's flags are read (they are the same on every core).
  assert.equal(parseCpuInfo(x86('avx2'), 'x64').avx2, true);
});

test('detectCpuInt8Features reads this machine', () => {
  const f = detectCpuInt8Features();
  assert.equal(f.arch, process.arch);
  assert.ok(Array.isArray(f.flags));
});

const uint8File: Int8Summary = { weights: { MatMulInteger: { uint8: 72, int8: 0 }, ConvInteger: { uint8: 1, int8: 0 } }, uint8: 73, int8: 0 };
const int8File: Int8Summary = { weights: { MatMulInteger: { uint8: 0, int8: 72 } }, uint8: 0, int8: 72 };
const noWeights: Int8Summary = { weights: {}, uint8: 0, int8: 0 };

test('planInt8: signed where VNNI/AMX make it exact; measured on AVX2; as it is elsewhere', () => {
  const vnni = parseCpuInfo(x86('avx2 avx512bw avx512_vnni'), 'x64');
  const avx2 = parseCpuInfo(x86('avx2'), 'x64');
  const arm = parseCpuInfo('Features\t: asimd asimddp\n', 'arm64');

  assert.deepEqual(planInt8(vnni, uint8File).variant, 'signed');
  assert.equal(planInt8(vnni, uint8File).decision, 'fixed');
  assert.deepEqual(planInt8(vnni, int8File).variant, 'as-is');

  const hub = planInt8(avx2, uint8File);
  assert.equal(hub.decision, 'measure');
  assert.deepEqual(hub.candidates, ['as-is', 'signed-7bit']);
  assert.deepEqual(planInt8(avx2, int8File).candidates, ['as-is', 'unsigned', 'signed-7bit']);
  assert.deepEqual(planInt8(avx2, uint8File, { allowSaturating: true }).candidates, ['as-is', 'signed', 'signed-7bit']);

  assert.deepEqual(planInt8(arm, uint8File).variant, 'as-is');
  assert.deepEqual(planInt8(parseCpuInfo(x86('avx'), 'x64'), uint8File).variant, 'as-is');
  assert.deepEqual(planInt8(avx2, noWeights).variant, 'as-is');
});

const measured = (variant: Int8Variant | 'fp32', bestMs: number, minCosine: number): MeasuredVariant => ({
  variant, bestMs, medianMs: bestMs, runsMs: [bestMs], cosines: [minCosine], minCosine, passes: minCosine >= 0.99,
});

test('pickVariant: the fastest that holds min cosine >= 0.99, the file as it is when within the noise, fp32 when none holds', () => {
  assert.equal(pickVariant([measured('fp32', 900, 1), measured('as-is', 700, 0.998), measured('signed-7bit', 600, 0.997)]).chosen, 'signed-7bit');
  assert.equal(pickVariant([measured('fp32', 900, 1), measured('as-is', 700, 0.998), measured('signed-7bit', 500, 0.985)]).chosen, 'as-is');
  // 690 vs 700: within 10%, no rewrite for that.
  assert.equal(pickVariant([measured('as-is', 700, 0.998), measured('signed-7bit', 690, 0.997)]).chosen, 'as-is');
  assert.equal(pickVariant([measured('as-is', 700, 0.998), measured('signed-7bit', 690, 0.997)], { minGain: 0 }).chosen, 'signed-7bit');
  const none = pickVariant([measured('fp32', 900, 1), measured('as-is', 700, 0.95), measured('unsigned', 800, 0.98)]);
  assert.equal(none.chosen, 'fp32');
  assert.match(none.reason, /no q8 variant/);
  assert.match(pickVariant([measured('as-is', 700, 0.95), measured('unsigned', 800, 0.995)]).reason, /rejected: as-is/);
});

test('measureVariants interleaves the variants, rotating the order, and scores each item against fp32', async () => {
  const order: string[] = [];
  const outputs: Record<string, Float32Array[]> = {
    fp32: [Float32Array.of(1, 0), Float32Array.of(0, 1)],
    'as-is': [Float32Array.of(1, 0.1), Float32Array.of(0, 1)],
    'signed-7bit': [Float32Array.of(1, 0), Float32Array.of(0.5, 1)],
  };
  const ms: Record<string, number[]> = { fp32: [10, 9, 11], 'as-is': [5, 7, 4], 'signed-7bit': [6, 3, 8] };
  const results = await measureVariants(['as-is', 'signed-7bit'], async (v, round) => {
    if (round >= 0) order.push(v);
    return { ms: round >= 0 ? ms[v]![round]! : 999, outputs: outputs[v]! };
  }, { rounds: 3, warmup: 1 });
  assert.deepEqual(order, ['fp32', 'as-is', 'signed-7bit', 'as-is', 'signed-7bit', 'fp32', 'signed-7bit', 'fp32', 'as-is']);
  const by = Object.fromEntries(results.map((r) => [r.variant, r]));
  assert.deepEqual([by.fp32!.bestMs, by['as-is']!.bestMs, by['signed-7bit']!.bestMs], [9, 4, 3]);
  assert.equal(by['as-is']!.medianMs, 5);
  assert.equal(by.fp32!.minCosine, 1);
  assert.ok(Math.abs(by['as-is']!.minCosine - 1 / Math.sqrt(1.01)) < 1e-6);
  assert.ok(Math.abs(by['signed-7bit']!.minCosine - 1 / Math.sqrt(1.25)) < 1e-6);
  assert.equal(by['signed-7bit']!.passes, false);
  assert.equal(pickVariant(results).chosen, 'as-is');
});

test('the plan measured with real sessions on the forged hub-like model', async (t) => {
  const dir = await forgedTiny('hub-like');
  const bytes = await graphBytes(dir, 'vision', true);
  const avx2 = parseCpuInfo(x86('avx2'), 'x64');
  const plan = planInt8(avx2, summarizeInt8(OnnxFile.parse(bytes)), { allowSaturating: true });
  const files = new Map<Int8Variant | 'fp32', Uint8Array>([['fp32', await graphBytes(dir, 'vision', false)]]);
  for (const v of plan.candidates) {
    const m = OnnxFile.parse(bytes);
    applyVariant(m, v);
    files.set(v, m.toBytes());
  }
  const results = await measureVariants(plan.candidates, async (v) => {
    const started = performance.now();
    const outputs = await run(files.get(v)!, 'vision');
    return { ms: performance.now() - started, outputs };
  }, { rounds: 2 });
  assert.deepEqual(results.map((r) => r.variant), ['fp32', ...plan.candidates]);
  for (const r of results) {
    t.diagnostic(`${r.variant}: best ${r.bestMs.toFixed(1)} ms, min cosine ${r.minCosine.toFixed(5)}`);
    assert.equal(r.cosines.length, 3);
    assert.ok(r.minCosine >= 0.99, `${r.variant}: ${r.minCosine}`);
  }
  const choice = pickVariant(results);
  assert.ok(plan.candidates.includes(choice.chosen as Int8Variant), choice.reason);
});
