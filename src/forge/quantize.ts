/**
 * The q8 variant: dynamic int8 quantisation of every MatMul whose right-hand side is a
 * constant weight, the way onnxruntime.quantization.quantize_dynamic makes the hub's
 * `_quantized` files. Each such `MatMul(x, W)` becomes
 *
 *   DynamicQuantizeLinear(x) -> (xq uint8, x_scale, x_zero_point)
 *   MatMulInteger(xq, Wq int8, x_zero_point, 0) -> int32
 *   Cast(float) * (x_scale * W_scale)
 *
 * Weights are quantised symmetrically (zero point 0) with one scale per output column
 * (quantize_dynamic's per_channel option), which keeps the error per column bounded by that
 * column's own range. ONNX Runtime fuses the pattern into MatMulIntegerToFloat at the
 * 'extended' optimisation level. Activation-by-activation MatMuls (attention) stay float.
 */
import { attr, elementCount, GraphBuilder, type ParamSpec, type TypedWeightSource, type WeightSource } from './graph.ts';
import { DataType, type Node } from './onnx-proto.ts';

const ZERO_POINT = 'q8.weight_zero_point';

export interface QuantizedGraph {
  graph: GraphBuilder;
  weights: TypedWeightSource;
  /** Names of the weights that were quantised. */
  quantized: string[];
}

/** Symmetric per-column int8 quantisation of a row-major [rows, cols] matrix. */
export function quantizeColumns(w: Float32Array, rows: number, cols: number): { q: Int8Array; scale: Float32Array } {
  const scale = new Float32Array(cols);
  for (let i = 0; i < rows; i++) {
    const row = i * cols;
    for (let j = 0; j < cols; j++) {
      const a = Math.abs(w[row + j]!);
      if (a > scale[j]!) scale[j] = a;
    }
  }
  for (let j = 0; j < cols; j++) scale[j] = scale[j]! > 0 ? scale[j]! / 127 : 1;
  const q = new Int8Array(rows * cols);
  for (let i = 0; i < rows; i++) {
    const row = i * cols;
    for (let j = 0; j < cols; j++) {
      const v = Math.round(w[row + j]! / scale[j]!);
      q[row + j] = v > 127 ? 127 : v < -127 ? -127 : v;
    }
  }
  return { q, scale };
}

/** Rewrites `source` (not modified) into its q8 variant, with the weight source to write it. */
export function quantizeGraph(source: GraphBuilder, weights: WeightSource): QuantizedGraph {
  const params = new Map(source.params.map((p) => [p.name, p]));
  const isQuantizable = (node: { opType: string; input: string[] }): ParamSpec | undefined => {
    if (node.opType !== 'MatMul') return undefined;
    const p = params.get(node.input[1]!);
    return p && p.init === 'weight' && p.dims.length === 2 ? p : undefined;
  };
  const targets = new Set(source.nodes.map(isQuantizable).filter((p): p is ParamSpec => p !== undefined).map((p) => p.name));

  const g = new GraphBuilder(source.name);
  g.inputs.push(...source.inputs);
  g.outputs.push(...source.outputs);
  g.constants.push(...source.constants);
  if (targets.size > 0) g.param(ZERO_POINT, [], 'bias', DataType.INT8);
  for (const p of source.params) {
    if (targets.has(p.name)) {
      g.param(`${p.name}_quantized`, p.dims, 'weight', DataType.INT8);
      g.param(`${p.name}_scale`, [p.dims[1]!], 'scale');
    } else {
      g.params.push(p);
    }
  }
  for (const node of source.nodes) {
    const p = isQuantizable(node);
    if (!p) {
      g.nodes.push(node);
      continue;
    }
    g.scoped(`q8/${p.name}`, () => {
      const [xq, xScale, xZero] = g.nodeN('DynamicQuantizeLinear', [node.input[0]!], 3);
      const product = g.node('MatMulInteger', [xq!, `${p.name}_quantized`, xZero!, ZERO_POINT]);
      const asFloat = g.node('Cast', [product], { to: attr.int(DataType.FLOAT) });
      const scale = g.node('Mul', [xScale!, `${p.name}_scale`]);
      g.node('Mul', [asFloat, scale], {}, node.output[0]);
    });
  }

  // Quantised weight and scale come from one pass over the float weights; the writer asks
  // for `_quantized` first, then `_scale`, so one entry is held at a time.
  const pending = new Map<string, Float32Array>();
  const quantizedOf = (name: string): { q: Int8Array; scale: Float32Array } => {
    const p = params.get(name)!;
    return quantizeColumns(weights(p), p.dims[0]!, p.dims[1]!);
  };
  const typed: TypedWeightSource = (param) => {
    if (param.name === ZERO_POINT) return new Int8Array(1);
    if (param.name.endsWith('_quantized') && targets.has(param.name.slice(0, -'_quantized'.length))) {
      const { q, scale } = quantizedOf(param.name.slice(0, -'_quantized'.length));
      pending.set(param.name.slice(0, -'_quantized'.length), scale);
      return q;
    }
    if (param.name.endsWith('_scale') && targets.has(param.name.slice(0, -'_scale'.length))) {
      const base = param.name.slice(0, -'_scale'.length);
      const scale = pending.get(base) ?? quantizedOf(base).scale;
      pending.delete(base);
      return scale;
    }
    const out = weights(param);
    if (out.length !== elementCount(param.dims)) throw new Error(`weight ${param.name}: wrong size`);
    return out;
  };
  return { graph: g, weights: typed, quantized: [...targets] };
}

// ---------------------------------------------------------------------------------------------
// The hub-like q8 variant: what transformers.js's scripts/quantize.py (mode q8) writes.
//
// That script runs onnxruntime.quantization's ONNXQuantizer in IntegerOps mode (what
// quantize_dynamic does), with weight type QUInt8 when the graph holds a Conv (onnxruntime-web
// had no int8 ConvInteger) and QInt8 otherwise, per_channel and reduce_range off by default
// (the older scripts/convert.py turned both on), activations uint8 through
// DynamicQuantizeLinear. Op by op (onnxruntime/python/tools/quantization/operators):
//
//   MatMul(x, W), W an initializer       DynamicQuantizeLinear(x) -> (x_quantized, x_scale, x_zero_point),
//                                        shared by every MatMul/Conv reading x;
//                                        MatMulInteger(x_quantized, W_quantized, x_zero_point, W_zero_point)
//                                        -> Cast(float) -> Mul(., Mul(x_scale, W_scale))
//   Conv(x, W, b)                        the same with ConvInteger (W always per tensor), then
//                                        Add(., Reshape(b, [1, -1, 1, 1]))
//   Gather(T, i), T an initializer       T quantised as an activation (uint8, asymmetric, per tensor):
//                                        Gather(T_quantized, i) -> DequantizeLinear(., T_scale, T_zero_point)
//
// Weights: uint8 asymmetric over [min(w, 0), max(w, 0)] into [0, 255] ([0, 127] with
// reduce_range); int8 symmetric over [-max|w|, max|w|] into [-127, 127] ([-64, 64]). The
// arithmetic follows quant_utils.compute_scale_zp / quantize_nparray: scale in float64 then
// float32, zero point round-half-even, values round-half-even of w / scale in float32.
// Names follow the quantizer's (`W_quantized`, `x_QuantizeLinear`, `..._output_quantized`).
//
// What the forge writes differently from a real export, and why: the vision tower's rotary
// rotate_half is a MatMul by a constant ±1 matrix here, a Slice/Neg/Concat in the real graph,
// so that MatMul (B a constant, not a trained weight) is left in float as the real file has
// no such MatMul to quantise. CLIP's text tower takes its position rows with a Slice of the
// table here, a Gather by position_ids in the real export, so that table stays float here
// where the real file has it uint8 (a table read once per token: no bearing on speed).
//
// jina-clip-v2's combined graph holds both towers and one Conv, so every weight is uint8,
// the text tower's included, as in the hub's model_quantized.onnx. Xenova's CLIP exports came
// from scripts/convert.py, which turns per_channel and reduce_range on for model types outside
// its NO_PER_CHANNEL_REDUCE_RANGE_MODELS list (clip included); the weight-type rule is the same.
// The forge's default is quantize.py's own (per tensor, 8-bit); HubLikeOptions sets the others.
// ---------------------------------------------------------------------------------------------

export type WeightQuantType = 'uint8' | 'int8';

export interface OrtQuantOptions {
  /** Symmetric range (zero point 0 for int8, the quantizer's default for int8 weights). */
  symmetric: boolean;
  /** 7-bit range: [0, 127] for uint8, [-64, 64] for int8 (quantize_dynamic's reduce_range). */
  reduceRange: boolean;
}

/** numpy.round: to the nearest integer, ties to even. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** The integer range a quantised value may take (quant_utils.get_qmin_qmax_for_qType). */
export function quantRange(type: WeightQuantType, options: OrtQuantOptions): [number, number] {
  if (type === 'uint8') return options.reduceRange ? [0, 127] : [0, 255];
  if (options.reduceRange) return [-64, 64];
  return options.symmetric ? [-127, 127] : [-128, 127];
}

/** quant_utils.compute_scale_zp for a tensor whose float32 values span [min, max]. */
export function ortScaleZeroPoint(min: number, max: number, type: WeightQuantType, options: OrtQuantOptions): { scale: number; zeroPoint: number } {
  const [qmin, qmax] = quantRange(type, options);
  let rmin = Math.min(Math.fround(min), 0);
  let rmax = Math.max(Math.fround(max), 0);
  if (options.symmetric) {
    const absmax = Math.max(Math.abs(rmin), Math.abs(rmax));
    rmin = -absmax;
    rmax = absmax;
  }
  // float32 subtraction, then the division in float64 (numpy: dr float64 / dq float64).
  const scale64 = Math.fround(rmax - rmin) / (qmax - qmin);
  if (scale64 < 1.1754943508222875e-38) return { scale: 1, zeroPoint: 0 };
  const zeroPoint = options.symmetric ? roundHalfEven((qmin + qmax) / 2) : roundHalfEven(qmin - rmin / scale64);
  return { scale: Math.fround(scale64), zeroPoint };
}

/** quant_utils.quantize_nparray: clip(round(x / scale) + zero_point), x / scale in float32. */
export function ortQuantizeValue(x: number, scale: number, zeroPoint: number, qmin: number, qmax: number): number {
  const v = roundHalfEven(Math.fround(x / scale)) + zeroPoint;
  return v < qmin ? qmin : v > qmax ? qmax : v;
}

export interface OrtQuantized {
  /** The quantised values, uint8 or int8 as `type` says. */
  q: Uint8Array | Int8Array;
  /** One scale (per tensor) or one per column (per channel). */
  scale: Float32Array;
  zeroPoint: Int32Array;
}

/**
 * Quantises a float32 tensor as the quantizer does a weight: per tensor, or per channel along
 * the last axis (`columns` > 0: the tensor is [rows, columns] row-major, MatMul's B).
 */
export function ortQuantize(data: Float32Array, type: WeightQuantType, options: OrtQuantOptions, columns = 0): OrtQuantized {
  // quantize_nparray clips to the type's full range, whatever range the scale was made for.
  const [qmin, qmax] = type === 'uint8' ? [0, 255] : [-128, 127];
  const q = type === 'uint8' ? new Uint8Array(data.length) : new Int8Array(data.length);
  if (columns <= 0) {
    let min = Infinity;
    let max = -Infinity;
    for (let i = 0; i < data.length; i++) {
      const v = data[i]!;
      if (v < min) min = v;
      if (v > max) max = v;
    }
    if (data.length === 0) min = max = 0;
    const { scale, zeroPoint } = ortScaleZeroPoint(min, max, type, options);
    for (let i = 0; i < data.length; i++) q[i] = ortQuantizeValue(data[i]!, scale, zeroPoint, qmin, qmax);
    return { q, scale: Float32Array.of(scale), zeroPoint: Int32Array.of(zeroPoint) };
  }
  const rows = data.length / columns;
  const mins = new Float32Array(columns).fill(Infinity);
  const maxs = new Float32Array(columns).fill(-Infinity);
  for (let i = 0; i < rows; i++) {
    const row = i * columns;
    for (let j = 0; j < columns; j++) {
      const v = data[row + j]!;
      if (v < mins[j]!) mins[j] = v;
      if (v > maxs[j]!) maxs[j] = v;
    }
  }
  const scale = new Float32Array(columns);
  const zeroPoint = new Int32Array(columns);
  for (let j = 0; j < columns; j++) {
    const p = ortScaleZeroPoint(rows > 0 ? mins[j]! : 0, rows > 0 ? maxs[j]! : 0, type, options);
    scale[j] = p.scale;
    zeroPoint[j] = p.zeroPoint;
  }
  for (let i = 0; i < rows; i++) {
    const row = i * columns;
    for (let j = 0; j < columns; j++) q[row + j] = ortQuantizeValue(data[row + j]!, scale[j]!, zeroPoint[j]!, qmin, qmax);
  }
  return { q, scale, zeroPoint };
}

export interface HubLikeOptions {
  /**
   * `auto` (default): uint8 when the graph holds a Conv, int8 otherwise, as quantize.py's q8
   * mode picks; or force one.
   */
  weightType?: 'auto' | WeightQuantType;
  /** Per-column MatMul weights (default false: quantize.py's default; convert.py used true). */
  perChannel?: boolean;
  /** 7-bit weights (default false: quantize.py's default; convert.py used true). */
  reduceRange?: boolean;
}

export interface HubLikeGraph extends QuantizedGraph {
  weightType: WeightQuantType;
}

const dataTypeOf = (type: WeightQuantType): typeof DataType.UINT8 | typeof DataType.INT8 => (type === 'uint8' ? DataType.UINT8 : DataType.INT8);

/** Bytes of `q` as an Int8Array (the forge's typed weight source carries uint8 data that way). */
function asInt8(q: Uint8Array | Int8Array): Int8Array {
  return q instanceof Int8Array ? q : new Int8Array(q.buffer, q.byteOffset, q.length);
}

/**
 * Rewrites `source` (not modified) into the hub-like q8 variant (see above), with the weight
 * source to write it.
 */
export function quantizeGraphHubLike(source: GraphBuilder, weights: WeightSource, options: HubLikeOptions = {}): HubLikeGraph {
  const hasConv = source.nodes.some((n) => n.opType === 'Conv');
  const weightType: WeightQuantType = options.weightType === undefined || options.weightType === 'auto' ? (hasConv ? 'uint8' : 'int8') : options.weightType;
  const weightOptions: OrtQuantOptions = { symmetric: weightType === 'int8', reduceRange: options.reduceRange === true };
  const perChannel = options.perChannel === true;
  const params = new Map(source.params.map((p) => [p.name, p]));
  const floatParam = (name: string | undefined): ParamSpec | undefined => {
    const p = name === undefined ? undefined : params.get(name);
    return p && (p.dataType === undefined || p.dataType === DataType.FLOAT) ? p : undefined;
  };

  // How each quantised param is stored: as a weight (MatMul/Conv) or as an activation (Gather tables).
  interface Plan {
    param: ParamSpec;
    type: WeightQuantType;
    options: OrtQuantOptions;
    /** > 0: per column along the last axis. */
    columns: number;
  }
  const plans = new Map<string, Plan>();
  for (const node of source.nodes) {
    if (node.opType === 'MatMul') {
      const p = floatParam(node.input[1]);
      if (p && p.dims.length >= 2 && !plans.has(p.name)) {
        plans.set(p.name, { param: p, type: weightType, options: weightOptions, columns: perChannel ? p.dims[p.dims.length - 1]! : 0 });
      }
    } else if (node.opType === 'Conv') {
      const p = floatParam(node.input[1]);
      if (p && !plans.has(p.name)) plans.set(p.name, { param: p, type: weightType, options: weightOptions, columns: 0 });
    } else if (node.opType === 'Gather') {
      const p = floatParam(node.input[0]);
      if (p && !plans.has(p.name)) plans.set(p.name, { param: p, type: 'uint8', options: { symmetric: false, reduceRange: false }, columns: 0 });
    }
  }

  const g = new GraphBuilder(source.name);
  g.inputs.push(...source.inputs);
  g.outputs.push(...source.outputs);
  g.constants.push(...source.constants);
  for (const p of source.params) {
    const plan = plans.get(p.name);
    if (!plan) {
      g.params.push(p);
      continue;
    }
    const channelDims = plan.columns > 0 ? [plan.columns] : [];
    g.param(`${p.name}_quantized`, p.dims, 'weight', dataTypeOf(plan.type));
    g.param(`${p.name}_scale`, channelDims, 'scale');
    g.param(`${p.name}_zero_point`, channelDims, 'bias', dataTypeOf(plan.type));
  }

  const push = (name: string, opType: string, input: string[], output: string[], attribute: Node['attribute'] = []): void => {
    g.nodes.push({ name, opType, input, output, attribute });
  };
  const castToFloat: Node['attribute'] = [{ name: 'to', ...attr.int(DataType.FLOAT) }];
  const dynamic = new Map<string, [string, string, string]>();
  const quantizeInput = (x: string): [string, string, string] => {
    let q = dynamic.get(x);
    if (!q) {
      q = [`${x}_quantized`, `${x}_scale`, `${x}_zero_point`];
      push(`${x}_QuantizeLinear`, 'DynamicQuantizeLinear', [x], [...q]);
      dynamic.set(x, q);
    }
    return q;
  };
  /** Integer op -> Cast -> Mul by (x_scale * W_scale), into `output`. */
  const rescale = (name: string, integerOutput: string, xScale: string, weight: string, output: string): void => {
    push(`${integerOutput}_cast`, 'Cast', [integerOutput], [`${integerOutput}_cast_output`], castToFloat);
    push(`${name}_scales_mul`, 'Mul', [xScale, `${weight}_scale`], [`${name}_scales_mul:0`]);
    push(`${name}_output_scale_mul`, 'Mul', [`${integerOutput}_cast_output`, `${name}_scales_mul:0`], [output]);
  };

  for (const node of source.nodes) {
    const weight = node.opType === 'Gather' ? node.input[0] : node.input[1];
    const plan = weight === undefined ? undefined : plans.get(weight);
    if (!plan || !['MatMul', 'Conv', 'Gather'].includes(node.opType)) {
      g.nodes.push(node);
      continue;
    }
    const w = plan.param.name;
    const out = node.output[0]!;
    if (node.opType === 'Gather') {
      push(node.name, 'Gather', [`${w}_quantized`, ...node.input.slice(1)], [`${out}_quantized`], node.attribute);
      push(`${out}_DequantizeLinear`, 'DequantizeLinear', [`${out}_quantized`, `${w}_scale`, `${w}_zero_point`], [out]);
      continue;
    }
    const [xq, xScale, xZero] = quantizeInput(node.input[0]!);
    const name = `${node.name}_quant`;
    const integerOutput = `${out}_output_quantized`;
    if (node.opType === 'MatMul') {
      push(name, 'MatMulInteger', [xq, `${w}_quantized`, xZero, `${w}_zero_point`], [integerOutput]);
      rescale(name, integerOutput, xScale, w, out);
      continue;
    }
    push(name, 'ConvInteger', [xq, `${w}_quantized`, xZero, `${w}_zero_point`], [integerOutput], node.attribute);
    const bias = node.input[2];
    if (!bias) {
      rescale(name, integerOutput, xScale, w, out);
      continue;
    }
    const scaled = `${out}quant_scaled_output`;
    rescale(name, integerOutput, xScale, w, scaled);
    const shapeName = `${out}_bias_reshape_shape`;
    const shape = new BigInt64Array(plan.param.dims.length).fill(1n);
    shape[1] = -1n;
    g.constants.push({ name: shapeName, dims: [shape.length], dataType: DataType.INT64, data: shape });
    push(`${out}_bias_reshape`, 'Reshape', [bias, shapeName], [`${out}_bias_reshape_output`]);
    push(`${out}_bias_add`, 'Add', [scaled, `${out}_bias_reshape_output`], [out]);
  }

  // Quantised values, scale and zero point come from one pass over the float weights; the
  // writer asks for them in that order, so one weight is held at a time.
  const pending = new Map<string, OrtQuantized>();
  const suffixes = ['_quantized', '_scale', '_zero_point'] as const;
  const typed: TypedWeightSource = (param) => {
    for (const suffix of suffixes) {
      if (!param.name.endsWith(suffix)) continue;
      const base = param.name.slice(0, -suffix.length);
      const plan = plans.get(base);
      if (!plan) continue;
      let quantized = pending.get(base);
      if (!quantized) {
        quantized = ortQuantize(weights(plan.param), plan.type, plan.options, plan.columns);
        pending.set(base, quantized);
      }
      if (suffix === '_scale') return quantized.scale;
      if (suffix === '_quantized') return asInt8(quantized.q);
      pending.delete(base);
      return plan.type === 'uint8' ? asInt8(Uint8Array.from(quantized.zeroPoint)) : Int8Array.from(quantized.zeroPoint);
    }
    const out = weights(param);
    if (out.length !== elementCount(param.dims)) throw new Error(`weight ${param.name}: wrong size`);
    return out;
  };
  return { graph: g, weights: typed, quantized: [...plans.keys()], weightType };
}

/** How a q8 variant is made: `forge` (quantizeGraph) or `hub-like` (quantizeGraphHubLike). */
export type Q8Style = 'forge' | 'hub-like';

/** The q8 variant of `source` in `style` (hub-like options apply to `hub-like` only). */
export function quantizeStyled(style: Q8Style, source: GraphBuilder, weights: WeightSource, hubLike?: HubLikeOptions): QuantizedGraph {
  return style === 'hub-like' ? quantizeGraphHubLike(source, weights, hubLike) : quantizeGraph(source, weights);
}

/** What the forge writes into a q8 graph's metadata (ModelProto.metadata_props) to say how it was made. */
export const Q8_STYLE_METADATA_KEY = 'tessera_forge_q8';
