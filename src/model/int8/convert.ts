/**
 * Rewrites of a quantised graph's integer weights, for the CPU's int8 kernels.
 *
 * ONNX Runtime multiplies the uint8 activations of DynamicQuantizeLinear by the weights of
 * MatMulInteger, ConvInteger (and their fused forms MatMulIntegerToFloat, DynamicQuantizeMatMul)
 * in MLAS. With int8 weights (u8 x s8) it takes the fast kernels: AVX-VNNI / AVX512-VNNI
 * (vpdpbusd) and AMX accumulate in 32 bits and are exact; AVX2 and AVX512BW without VNNI use
 * vpmaddubsw, which adds pairs of u8 x s8 products in 16 bits and saturates when a pair passes
 * 32767 (255 x 127 x 2 = 64770 can). With uint8 weights (u8 x u8) it widens to 16 bits first
 * (vpmaddwd): exact everywhere, slower.
 *
 *   toSigned     uint8 weights -> int8: w - 128 and zero point - 128, the same products to the
 *                bit (a byte's top bit flipped); what VNNI and AMX run exactly and fastest.
 *   toUnsigned   int8 -> uint8, the reverse: exact on every CPU, the slow kernel.
 *   toSevenBit   int8 weights in [-64, 64] (onnxruntime's reduce_range), requantised from the
 *                file's own integer weights with a new scale per output column (per tensor for
 *                ConvInteger): 255 x 64 x 2 = 32640 never saturates, at the cost of one bit.
 *
 * All three work on a parsed model (onnx-file.ts), in place, and say what they did. A weight is
 * only rewritten when every node reading it is one of the integer ops above (at its weight
 * input); zero points and scales shared with anything else are copied first.
 */
import { roundHalfEven } from '../../forge/quantize.ts';
import { TensorType, type OnnxFile, type OnnxNode } from './onnx-file.ts';

export type IntegerOp = 'MatMulInteger' | 'ConvInteger' | 'MatMulIntegerToFloat' | 'DynamicQuantizeMatMul';

/** Input positions of the weight, its zero point and (fused ops) its scale. */
const OPS: Readonly<Record<IntegerOp, { domain: string; weight: number; zeroPoint: number; scale?: number }>> = {
  MatMulInteger: { domain: '', weight: 1, zeroPoint: 3 },
  ConvInteger: { domain: '', weight: 1, zeroPoint: 3 },
  MatMulIntegerToFloat: { domain: 'com.microsoft', weight: 1, zeroPoint: 5, scale: 3 },
  DynamicQuantizeMatMul: { domain: 'com.microsoft', weight: 1, zeroPoint: 3, scale: 2 },
};

export type WeightType = 'uint8' | 'int8';

export interface WeightUse {
  node: OnnxNode;
  op: IntegerOp;
  /** Where the weight's scale is read: the fused op itself, or the Mul(x_scale, W_scale) after Cast. */
  scale?: { node: OnnxNode; index: number; name: string };
}

export interface IntegerWeight {
  /** The initializer's name. */
  name: string;
  type: WeightType;
  dims: number[];
  uses: WeightUse[];
  /** Why it cannot be rewritten, when it cannot (also read by a node that is not an integer op). */
  blocked?: string;
}

function opOf(node: OnnxNode): IntegerOp | undefined {
  const spec = OPS[node.opType as IntegerOp];
  if (!spec) return undefined;
  const domain = node.domain === 'ai.onnx' ? '' : node.domain;
  return domain === spec.domain ? (node.opType as IntegerOp) : undefined;
}

/** The scale of MatMulInteger / ConvInteger's weight: Integer -> Cast -> Mul(., s), s = Mul(x_scale, W_scale) or W_scale. */
function unfusedScale(model: OnnxFile, node: OnnxNode): WeightUse['scale'] {
  const out = node.outputs[0];
  if (!out) return undefined;
  const cast = model.consumers(out);
  if (cast.length !== 1 || cast[0]!.node.opType !== 'Cast') return undefined;
  const mul = model.consumers(cast[0]!.node.outputs[0]!);
  if (mul.length !== 1 || mul[0]!.node.opType !== 'Mul') return undefined;
  const other = mul[0]!.node.inputs[1 - mul[0]!.index];
  if (!other) return undefined;
  if (model.initializer(other)) return { node: mul[0]!.node, index: 1 - mul[0]!.index, name: other };
  const scales = model.producer(other);
  if (!scales || scales.opType !== 'Mul' || scales.inputs.length !== 2) return undefined;
  const k = scales.inputs.findIndex((s) => model.initializer(s) !== undefined);
  if (k < 0 || model.initializer(scales.inputs[1 - k]!)) return undefined;
  return { node: scales, index: k, name: scales.inputs[k]! };
}

/** Every 8-bit weight initializer the integer ops read, with where it is read. */
export function integerWeights(model: OnnxFile): IntegerWeight[] {
  const byName = new Map<string, IntegerWeight>();
  for (const node of model.nodes) {
    const op = opOf(node);
    if (!op) continue;
    const name = node.inputs[OPS[op].weight];
    const t = name ? model.initializer(name) : undefined;
    if (!name || !t || (t.dataType !== TensorType.UINT8 && t.dataType !== TensorType.INT8)) continue;
    let w = byName.get(name);
    if (!w) {
      w = { name, type: t.dataType === TensorType.UINT8 ? 'uint8' : 'int8', dims: [...t.dims], uses: [] };
      byName.set(name, w);
    }
    const scaleIndex = OPS[op].scale;
    const scale = scaleIndex !== undefined
      ? (node.inputs[scaleIndex] && model.initializer(node.inputs[scaleIndex]!) ? { node, index: scaleIndex, name: node.inputs[scaleIndex]! } : undefined)
      : unfusedScale(model, node);
    w.uses.push(scale ? { node, op, scale } : { node, op });
  }
  for (const w of byName.values()) {
    const readers = model.consumers(w.name);
    const foreign = readers.find((r) => !w.uses.some((u) => u.node === r.node && OPS[u.op].weight === r.index));
    if (foreign) w.blocked = `also read by ${foreign.node.opType} ${foreign.node.name}`;
  }
  return [...byName.values()];
}

export interface Int8Summary {
  /** Weights by op and type, e.g. { MatMulInteger: { uint8: 72, int8: 0 } }. */
  weights: Partial<Record<IntegerOp, Record<WeightType, number>>>;
  uint8: number;
  int8: number;
}

/** What a quantised graph holds: how many 8-bit weights of each type each integer op reads. */
export function summarizeInt8(model: OnnxFile): Int8Summary {
  const summary: Int8Summary = { weights: {}, uint8: 0, int8: 0 };
  for (const w of integerWeights(model)) {
    const op = w.uses[0]!.op;
    const counts = (summary.weights[op] ??= { uint8: 0, int8: 0 });
    counts[w.type]++;
    summary[w.type]++;
  }
  return summary;
}

export interface ConversionReport {
  /** Weights rewritten. */
  converted: string[];
  /** Weights left as they were, and why. */
  skipped: { name: string; reason: string }[];
}

/** `name` for `use` alone: copied under a fresh name (and rewired) when anything else reads it. */
function exclusive(model: OnnxFile, name: string, readers: { node: OnnxNode; index: number }[]): string {
  const all = model.consumers(name);
  if (all.every((c) => readers.some((r) => r.node === c.node && r.index === c.index))) return name;
  const t = model.initializer(name)!;
  const copy = model.freshName(name);
  model.setInitializer(copy, t.dataType, t.dims, new Uint8Array(model.tensorBytes(name)));
  for (const r of readers) r.node.inputs[r.index] = copy;
  return copy;
}

function setInput(node: OnnxNode, index: number, name: string): void {
  while (node.inputs.length < index) node.inputs.push('');
  node.inputs[index] = name;
}

function flipTopBit(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) out[i] = bytes[i]! ^ 0x80;
  return out;
}

function removeIfUnused(model: OnnxFile, names: Iterable<string>): void {
  for (const name of names) if (model.initializer(name) && model.consumers(name).length === 0) model.removeInitializer(name);
}

/**
 * Gives every 8-bit weight of the integer ops the type `target`, exactly: w ^ 0x80 (w - 128
 * as int8, w + 128 as uint8) with the zero point moved the same way, so every product
 * (x - x_zero) * (w - w_zero) is unchanged. `ops` limits it to some ops.
 */
export function convertWeightSign(model: OnnxFile, target: WeightType, ops?: readonly IntegerOp[]): ConversionReport {
  const report: ConversionReport = { converted: [], skipped: [] };
  const targetType = target === 'int8' ? TensorType.INT8 : TensorType.UINT8;
  const zeroPointOf = (u: WeightUse): string => u.node.inputs[OPS[u.op].zeroPoint] ?? '';
  // First which weights change: those of the other type, read only by integer ops (of `ops`),
  // whose zero points are initializers or absent (0 of the old type).
  const eligible: IntegerWeight[] = [];
  for (const w of integerWeights(model)) {
    if (w.type === target) continue;
    const notConstant = w.uses.map(zeroPointOf).find((z) => z !== '' && !model.initializer(z));
    const reason = ops && !w.uses.every((u) => ops.includes(u.op)) ? `read by ${w.uses[0]!.op}, not converted`
      : w.blocked ?? (notConstant !== undefined ? `zero point ${notConstant} is not an initializer` : undefined);
    if (reason) report.skipped.push({ name: w.name, reason });
    else eligible.push(w);
  }
  const changing = new Set(eligible.map((w) => w.name));
  const converted = new Set<string>();
  for (const w of eligible) {
    model.setInitializer(w.name, targetType, w.dims, flipTopBit(model.tensorBytes(w.name)));
    // Group the uses by zero point; each group's zero point is converted in place when only
    // changing weights' ops read it, copied first otherwise; a new one where there was none.
    const groups = new Map<string, WeightUse[]>();
    for (const u of w.uses) groups.set(zeroPointOf(u), [...(groups.get(zeroPointOf(u)) ?? []), u]);
    for (const [zp, uses] of groups) {
      if (zp === '') {
        const name = model.freshName(`${w.name}_zero_point`);
        model.setInitializer(name, targetType, [], Uint8Array.of(0x80));
        for (const u of uses) setInput(u.node, OPS[u.op].zeroPoint, name);
        continue;
      }
      if (converted.has(zp)) continue; // shared with a weight converted before
      const inPlace = model.consumers(zp).every((r) => {
        const op = opOf(r.node);
        return op !== undefined && OPS[op].zeroPoint === r.index && changing.has(r.node.inputs[OPS[op].weight] ?? '');
      });
      const name = inPlace ? zp : exclusive(model, zp, uses.map((u) => ({ node: u.node, index: OPS[u.op].zeroPoint })));
      const t = model.initializer(name)!;
      model.setInitializer(name, targetType, t.dims, flipTopBit(model.tensorBytes(name)));
      converted.add(name);
    }
    report.converted.push(w.name);
  }
  return report;
}

/** uint8 weights -> int8, exactly (see convertWeightSign). */
export function toSigned(model: OnnxFile, ops?: readonly IntegerOp[]): ConversionReport {
  return convertWeightSign(model, 'int8', ops);
}

/** int8 weights -> uint8, exactly (see convertWeightSign). */
export function toUnsigned(model: OnnxFile, ops?: readonly IntegerOp[]): ConversionReport {
  return convertWeightSign(model, 'uint8', ops);
}

/** The 7-bit range onnxruntime's reduce_range gives int8 weights. */
export const SEVEN_BIT_MAX = 64;

/**
 * The 7-bit weights of toSevenBit for one tensor: from the values the weights stand for,
 * scale x (w - zero point), a new scale per column (max |value| / 64) and the weights rounded
 * half to even. A weight has at most 256 values, so each column's are worked out once, in a
 * table, and the weights looked up: the same arithmetic as per weight, ten times faster (per
 * weight it took ~3 s for jina-clip-v1's vision tower on a loaded 2-core machine, at load).
 */
function requantizeSevenBit(values: Int16Array, colScale: Float64Array, colZero: Float64Array, rows: number, columns: number): { q: Uint8Array; newScale: Float32Array } {
  // |scale x (w - zero point)| is largest at the column's least or greatest w.
  const lo = new Int16Array(columns).fill(32767);
  const hi = new Int16Array(columns).fill(-32768);
  for (let i = 0, k = 0; i < rows; i++) {
    for (let j = 0; j < columns; j++, k++) {
      const w = values[k]!;
      if (w < lo[j]!) lo[j] = w;
      if (w > hi[j]!) hi[j] = w;
    }
  }
  const newScale = new Float32Array(columns);
  // table[j * 384 + w + 128]: w from -128 (int8) to 255 (uint8).
  const table = new Uint8Array(columns * 384);
  for (let j = 0; j < columns; j++) {
    const max = rows === 0 ? 0 : Math.max(Math.abs(colScale[j]! * (lo[j]! - colZero[j]!)), Math.abs(colScale[j]! * (hi[j]! - colZero[j]!)));
    newScale[j] = max > 0 ? Math.fround(max / SEVEN_BIT_MAX) : 1;
    for (let w = lo[j]!; w <= hi[j]!; w++) {
      const x = Math.fround((colScale[j]! * (w - colZero[j]!)) / newScale[j]!);
      const v = roundHalfEven(x);
      table[j * 384 + w + 128] = (v > SEVEN_BIT_MAX ? SEVEN_BIT_MAX : v < -SEVEN_BIT_MAX ? -SEVEN_BIT_MAX : v) & 0xff;
    }
  }
  const q = new Uint8Array(values.length);
  for (let i = 0, k = 0; i < rows; i++) {
    for (let j = 0, base = 128; j < columns; j++, k++, base += 384) q[k] = table[base + values[k]!]!;
  }
  return { q, newScale };
}

/**
 * Requantises every 8-bit weight of the integer ops to int8 in [-64, 64] (zero point 0), with
 * a new scale per output column for the MatMul ops (the last axis of B) and per tensor for
 * ConvInteger: from the values the file's own weights stand for, scale x (w - zero point).
 * Weights whose scale cannot be found (an unfamiliar pattern) are left as they are.
 */
export function toSevenBit(model: OnnxFile): ConversionReport {
  const report: ConversionReport = { converted: [], skipped: [] };
  const orphans = new Set<string>();
  for (const w of integerWeights(model)) {
    if (w.blocked) {
      report.skipped.push({ name: w.name, reason: w.blocked });
      continue;
    }
    const missing = w.uses.find((u) => !u.scale);
    if (missing) {
      report.skipped.push({ name: w.name, reason: `no weight scale found after ${missing.node.opType} ${missing.node.name}` });
      continue;
    }
    const zpNames = new Set(w.uses.map((u) => u.node.inputs[OPS[u.op].zeroPoint] ?? ''));
    const scaleNames = new Set(w.uses.map((u) => u.scale!.name));
    if (zpNames.size !== 1 || scaleNames.size !== 1) {
      report.skipped.push({ name: w.name, reason: 'its uses read different zero points or scales' });
      continue;
    }
    const zpName = [...zpNames][0]!;
    const scaleName = [...scaleNames][0]!;
    if (zpName !== '' && !model.initializer(zpName)) {
      report.skipped.push({ name: w.name, reason: `zero point ${zpName} is not an initializer` });
      continue;
    }
    const conv = w.uses[0]!.op === 'ConvInteger';
    if (conv && !w.uses.every((u) => u.op === 'ConvInteger')) {
      report.skipped.push({ name: w.name, reason: 'read by both ConvInteger and MatMul ops' });
      continue;
    }
    const columns = conv ? 1 : w.dims[w.dims.length - 1]!;
    const values = model.int8Values(w.name);
    const zp = zpName === '' ? [0] : [...model.int8Values(zpName)];
    const scale = model.floats(scaleName);
    if (![1, columns].includes(zp.length) || ![1, columns].includes(scale.length)) {
      report.skipped.push({ name: w.name, reason: `zero point (${zp.length}) or scale (${scale.length}) is neither per tensor nor per column` });
      continue;
    }
    const rows = values.length / columns;
    const colScale = Float64Array.from({ length: columns }, (_, j) => scale[scale.length === 1 ? 0 : j]!);
    const colZero = Float64Array.from({ length: columns }, (_, j) => zp[zp.length === 1 ? 0 : j]!);
    const { q, newScale } = requantizeSevenBit(values, colScale, colZero, rows, columns);
    model.setInitializer(w.name, TensorType.INT8, w.dims, q);
    const zeroName = model.freshName(`${w.name}_zero_point_7bit`);
    model.setInitializer(zeroName, TensorType.INT8, [], new Uint8Array(1));
    for (const u of w.uses) setInput(u.node, OPS[u.op].zeroPoint, zeroName);
    if (zpName !== '') orphans.add(zpName);
    const scaleReaders = w.uses.map((u) => ({ node: u.scale!.node, index: u.scale!.index }));
    const ownScale = exclusive(model, scaleName, scaleReaders);
    model.setInitializer(ownScale, TensorType.FLOAT, conv ? [] : [columns], new Uint8Array(newScale.buffer));
    report.converted.push(w.name);
  }
  removeIfUnused(model, orphans);
  return report;
}

/** The variants of a quantised graph the int8 plan chooses between. */
export type Int8Variant = 'as-is' | 'signed' | 'unsigned' | 'signed-7bit';
export const INT8_VARIANTS: readonly Int8Variant[] = ['as-is', 'signed', 'unsigned', 'signed-7bit'];

/** Applies `variant` to `model` in place. */
export function applyVariant(model: OnnxFile, variant: Int8Variant): ConversionReport {
  switch (variant) {
    case 'as-is': return { converted: [], skipped: [] };
    case 'signed': return toSigned(model);
    case 'unsigned': return toUnsigned(model);
    case 'signed-7bit': return toSevenBit(model);
  }
}
