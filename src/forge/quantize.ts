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
import { DataType } from './onnx-proto.ts';

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
