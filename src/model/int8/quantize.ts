/**
 * Quantisation at load: the q8 graph made from an fp32 one, for `--dtype q8` where a model
 * ships only fp32 files. Every MatMul whose B is a float initializer becomes
 *
 *   DynamicQuantizeLinear(x) -> MatMulInteger(x_q, W_q, x_zero, W_zero) -> Cast -> Mul(., Mul(x_scale, W_scale))
 *
 * (one DynamicQuantizeLinear per input, shared), the shape onnxruntime's quantize_dynamic
 * writes and ONNX Runtime's optimisers fuse. Weights are per output column by default (the
 * error of each column bounded by its own range) with onnxruntime's own arithmetic
 * (src/forge/quantize.ts, ortQuantize): int8 symmetric [-127, 127], or [-64, 64] with
 * reduceRange (never saturates AVX2's kernel, see convert.ts), or uint8 asymmetric.
 *
 * Weights named in keepFloat stay float: selectFloatWeights finds them by measurement (the
 * layers whose quantisation costs the most cosine to fp32, left in float until the bound holds).
 * The result is meant to be cached: quantizeCacheKey names it from the source's digest and the
 * options, fileDigest gives the digest.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { ortQuantize, type WeightQuantType } from '../../forge/quantize.ts';
import { TensorType, type OnnxFile, type OnnxNode } from './onnx-file.ts';

/** Bump when quantizeMatMuls changes what it writes: cached graphs of older versions are remade. */
export const QUANTIZE_VERSION = 1;

export interface LoadQuantizeOptions {
  /** int8 (default; symmetric) or uint8 (asymmetric) weights. */
  weightType?: WeightQuantType;
  /** One scale per output column (default true) or one per tensor. */
  perChannel?: boolean;
  /** 7-bit weights (default false). */
  reduceRange?: boolean;
  /** Initializer names of weights to leave in float. */
  keepFloat?: readonly string[];
}

export interface LoadQuantizeReport {
  /** Weights quantised. */
  quantized: string[];
  /** Weights left in float as asked. */
  keptFloat: string[];
}

/** The float weights quantizeMatMuls would quantise, in graph order, with the MatMuls reading them. */
export function floatMatMulWeights(model: OnnxFile): { name: string; dims: number[]; nodes: OnnxNode[] }[] {
  const out = new Map<string, { name: string; dims: number[]; nodes: OnnxNode[] }>();
  for (const node of model.nodes) {
    if (node.opType !== 'MatMul' || (node.domain !== '' && node.domain !== 'ai.onnx')) continue;
    const name = node.inputs[1];
    const t = name ? model.initializer(name) : undefined;
    if (!name || !t || t.dataType !== TensorType.FLOAT || t.dims.length !== 2 || model.initializer(node.inputs[0]!)) continue;
    const entry = out.get(name) ?? { name, dims: [...t.dims], nodes: [] };
    entry.nodes.push(node);
    out.set(name, entry);
  }
  return [...out.values()];
}

/** Quantises `model`'s MatMul weights in place (see above). */
export function quantizeMatMuls(model: OnnxFile, options: LoadQuantizeOptions = {}): LoadQuantizeReport {
  const weightType = options.weightType ?? 'int8';
  const perChannel = options.perChannel ?? true;
  const quantOptions = { symmetric: weightType === 'int8', reduceRange: options.reduceRange === true };
  const keep = new Set(options.keepFloat ?? []);
  const report: LoadQuantizeReport = { quantized: [], keptFloat: [] };
  const targets = new Map(floatMatMulWeights(model).map((w) => [w.name, w]));
  for (const name of [...targets.keys()]) {
    if (keep.has(name)) {
      targets.delete(name);
      report.keptFloat.push(name);
    }
  }
  // A weight also read by something other than MatMul keeps its float copy too.
  const quantizedNames = new Map<string, { q: string; scale: string; zero: string }>();
  for (const [name, w] of targets) {
    const t = model.initializer(name)!;
    const columns = w.dims[1]!;
    const { q, scale, zeroPoint } = ortQuantize(model.floats(name), weightType, quantOptions, perChannel ? columns : 0);
    const dtype = weightType === 'int8' ? TensorType.INT8 : TensorType.UINT8;
    const names = { q: model.freshName(`${name}_quantized`), scale: model.freshName(`${name}_scale`), zero: model.freshName(`${name}_zero_point`) };
    const channelDims = perChannel ? [columns] : [];
    model.setInitializer(names.q, dtype, t.dims, new Uint8Array(q.buffer, q.byteOffset, q.length));
    model.setInitializer(names.scale, TensorType.FLOAT, channelDims, new Uint8Array(scale.buffer, scale.byteOffset, scale.byteLength));
    model.setInitializer(names.zero, dtype, channelDims, Uint8Array.from(zeroPoint, (z) => z & 0xff));
    quantizedNames.set(name, names);
    report.quantized.push(name);
  }
  const dynamic = new Map<string, [string, string, string]>();
  const nodes: OnnxNode[] = [];
  let n = 0;
  for (const node of model.nodes) {
    const w = node.opType === 'MatMul' && (node.domain === '' || node.domain === 'ai.onnx') ? quantizedNames.get(node.inputs[1] ?? '') : undefined;
    if (!w || !targets.get(node.inputs[1]!)!.nodes.includes(node)) {
      nodes.push(node);
      continue;
    }
    const x = node.inputs[0]!;
    const out = node.outputs[0]!;
    const base = node.name || `MatMul_${n}`;
    n++;
    let xq = dynamic.get(x);
    if (!xq) {
      xq = [model.freshName(`${x}_quantized`), model.freshName(`${x}_scale`), model.freshName(`${x}_zero_point`)];
      nodes.push({ name: `${x}_QuantizeLinear`, opType: 'DynamicQuantizeLinear', domain: '', inputs: [x], outputs: [...xq] });
      dynamic.set(x, xq);
    }
    const integer = model.freshName(`${out}_output_quantized`);
    nodes.push(
      { name: `${base}_quant`, opType: 'MatMulInteger', domain: '', inputs: [xq[0], w.q, xq[2], w.zero], outputs: [integer] },
      { name: `${integer}_cast`, opType: 'Cast', domain: '', inputs: [integer], outputs: [`${integer}_cast_output`], attributes: [{ name: 'to', type: 2, i: TensorType.FLOAT }] },
      { name: `${base}_quant_scales_mul`, opType: 'Mul', domain: '', inputs: [xq[1], w.scale], outputs: [`${base}_quant_scales_mul:0`] },
      { name: `${base}_quant_output_scale_mul`, opType: 'Mul', domain: '', inputs: [`${integer}_cast_output`, `${base}_quant_scales_mul:0`], outputs: [out] },
    );
  }
  model.nodes = nodes;
  for (const name of targets.keys()) if (model.consumers(name).length === 0) model.removeInitializer(name);
  return report;
}

/** A stable name for a quantised graph: the source's digest, the options and QUANTIZE_VERSION. */
export function quantizeCacheKey(sourceDigest: string, options: LoadQuantizeOptions = {}): string {
  const normal = {
    version: QUANTIZE_VERSION,
    source: sourceDigest,
    weightType: options.weightType ?? 'int8',
    perChannel: options.perChannel ?? true,
    reduceRange: options.reduceRange === true,
    keepFloat: [...(options.keepFloat ?? [])].sort(),
  };
  return createHash('sha256').update(JSON.stringify(normal)).digest('hex').slice(0, 16);
}

/** sha256 of a file, hex (streamed: the fp32 graphs are hundreds of MB). */
export function fileDigest(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream(path).on('data', (chunk) => hash.update(chunk)).on('error', reject).on('end', () => resolve(hash.digest('hex')));
  });
}

export interface FloatSelection {
  /** Weights to leave in float (empty when quantising everything holds the bound). */
  keepFloat: string[];
  /** The least per-item cosine to fp32 with those left in float. */
  minCosine: number;
  /** Every evaluation made, in order: which weights were float and the min cosine it gave. */
  evaluations: { keepFloat: string[]; minCosine: number }[];
  /** False when even every group left in float did not reach the bound. */
  holds: boolean;
}

/**
 * Chooses which weights stay in float, by measurement. `groups` are the candidates (a layer's
 * weights together, say); `evaluate(keepFloat)` quantises all the other weights and returns the
 * least cosine to fp32 over the measuring items. With everything quantised holding `minCosine`,
 * nothing stays float; otherwise each group's cost is measured alone (only it quantised, so
 * 1 + groups evaluations) and the costliest groups go back to float, one at a time, until the
 * bound holds: at most 1 + 2 x groups evaluations.
 */
export async function selectFloatWeights(groups: readonly (readonly string[])[], evaluate: (keepFloat: string[]) => Promise<number>, minCosine = 0.99): Promise<FloatSelection> {
  const evaluations: FloatSelection['evaluations'] = [];
  const run = async (keepFloat: string[]): Promise<number> => {
    const c = await evaluate(keepFloat);
    evaluations.push({ keepFloat, minCosine: c });
    return c;
  };
  const allWeights = groups.flat();
  let current = await run([]);
  if (current >= minCosine) return { keepFloat: [], minCosine: current, evaluations, holds: true };
  const costs: { group: readonly string[]; cost: number }[] = [];
  for (const group of groups) {
    const alone = await run(allWeights.filter((w) => !group.includes(w)));
    costs.push({ group, cost: 1 - alone });
  }
  costs.sort((a, b) => b.cost - a.cost);
  const keepFloat: string[] = [];
  for (const { group } of costs) {
    keepFloat.push(...group);
    current = await run([...keepFloat]);
    if (current >= minCosine) return { keepFloat, minCosine: current, evaluations, holds: true };
  }
  return { keepFloat, minCosine: current, evaluations, holds: false };
}
