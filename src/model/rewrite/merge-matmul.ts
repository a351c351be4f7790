/**
 * Sibling projections into one MatMul: the query, key and value projections of an attention
 * layer, and the two branches of a gated MLP (EVA-02's SwiGLU w1 and w2), all read the same
 * activations with their own weight. One MatMul against the weights side by side
 * ([K, N1 + N2 + ...]), one bias Add, and a Split give the same tensors under the same names,
 * with the activations read and packed once instead of once per projection.
 *
 *   MatMul(X, W1) [-> Add(., b1)]          MatMul(X, [W1 W2 W3]) -> Add(., [b1 b2 b3])
 *   MatMul(X, W2) [-> Add(., b2)]    =>    -> Split(axis -1, [N1, N2, N3])
 *   MatMul(X, W3) [-> Add(., b3)]
 *
 * Matched exactly: default-domain MatMuls whose second input is a 2-D float32 initializer and
 * whose first is the same float32 tensor of rank >= 2 with its last dim equal to the weights'
 * rows. A projection's bias is folded only when its Add (with a 1-D float32 initializer of N
 * values) is the only reader of the product; a projection without one gets zeros in the merged
 * bias (x + 0 is x), one whose product is read elsewhere keeps its product unbiased.
 *
 * The q8 form (DynamicQuantizeLinear -> MatMulInteger -> Cast -> Mul by scales, one chain per
 * projection, see src/forge/quantize.ts) is merged the same way by mergeQuantizedSiblings:
 * one quantisation of X, one MatMulInteger against the int8 weights side by side, one
 * rescale, one Split. Both forms give bit-identical products, column for column.
 */
import { ElemType } from './proto.ts';
import { attr, intAttr, type Node, type OnnxModel } from './model.ts';
import { isVector, producedBy, selfContained, type Pass, type PassContext } from './match.ts';

/** Names of the merged MatMul / MatMulInteger nodes start with this (counted in reports by it). */
export const MERGED_NAME = 'rewrite/merged_projection';

interface Member {
  matmul: Node;
  weight: string;
  columns: number;
  /** The bias Add folded into the merge, when there is one. */
  add?: Node;
  bias?: string;
  /** The name the member's result goes by (the Add's output, else the MatMul's). */
  output: string;
}

/** Row-wise concatenation of [K, Ni] matrices of `bytesPer`-byte elements: [K, sum Ni]. */
function sideBySide(model: OnnxModel, members: readonly { weight: string; columns: number }[], rows: number, bytesPer: number): Uint8Array {
  const total = members.reduce((s, m) => s + m.columns, 0);
  const out = new Uint8Array(rows * total * bytesPer);
  let column = 0;
  for (const m of members) {
    const src = model.bytes(model.initializers.get(m.weight)!);
    const width = m.columns * bytesPer;
    for (let r = 0; r < rows; r++) out.set(src.subarray(r * width, (r + 1) * width), (r * total + column) * bytesPer);
    column += m.columns;
  }
  return out;
}

function concatVectors(model: OnnxModel, parts: readonly { name?: string; length: number }[]): Uint8Array {
  const out = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
  let at = 0;
  for (const p of parts) {
    if (p.name) out.set(new Float32Array(new Uint8Array(model.bytes(model.initializers.get(p.name)!)).buffer), at);
    at += p.length;
  }
  return new Uint8Array(out.buffer);
}

export const mergeSiblingMatMuls: Pass = {
  name: 'merge-projections',
  run({ model, shapes }: PassContext): Record<string, number> {
    const groups = new Map<string, Node[]>();
    for (const n of model.nodes) {
      if (n.opType !== 'MatMul' || n.domain !== '' || n.inputs.length !== 2) continue;
      const [x, w] = n.inputs as [string, string];
      const weight = model.initializers.get(w);
      if (!weight || weight.dataType !== ElemType.FLOAT || weight.dims.length !== 2) continue;
      const xs = shapes.shape(x);
      if (!xs || xs.length < 2 || shapes.elemType(x) !== ElemType.FLOAT || xs[xs.length - 1] !== weight.dims[0]) continue;
      const list = groups.get(x);
      if (list) list.push(n);
      else groups.set(x, [n]);
    }
    let merged = 0;
    for (const [x, nodes] of groups) {
      if (nodes.length < 2) continue;
      const members: Member[] = nodes.map((matmul) => {
        const weight = matmul.inputs[1]!;
        const columns = model.initializers.get(weight)!.dims[1]!;
        const product = matmul.outputs[0]!;
        const readers = model.consumers(product);
        const add = readers.length === 1 && !model.isGraphOutput(product) ? producedBy(model, readers[0]!.outputs[0], 'Add') : undefined;
        if (add && add.inputs.length === 2) {
          const bias = add.inputs[0] === product ? add.inputs[1]! : add.inputs[0]!;
          if (bias !== product && isVector(model, bias, columns) && shapes.shape(add.outputs[0]!)?.length === shapes.shape(product)?.length) {
            return { matmul, weight, columns, add, bias, output: add.outputs[0]! };
          }
        }
        return { matmul, weight, columns, output: product };
      });
      const removed = members.flatMap((m) => (m.add ? [m.matmul, m.add] : [m.matmul]));
      if (!selfContained(model, removed, members.map((m) => m.output))) continue;
      const rows = model.initializers.get(members[0]!.weight)!.dims[0]!;
      const order = Math.min(...members.map((m) => m.matmul.order));
      const base = members[0]!.weight.replace(/\.weight$/, '');
      const weight = model.addInitializer(`${base}.merged_weight`, ElemType.FLOAT, [rows, members.reduce((s, m) => s + m.columns, 0)], sideBySide(model, members, rows, 4));
      const product = model.fresh(`${base}.merged_product`);
      const added: Node[] = [{ ...model.node('MatMul', [x, weight], [product], [], order), name: model.fresh(MERGED_NAME) }];
      let split = product;
      if (members.some((m) => m.add)) {
        const bias = model.addInitializer(`${base}.merged_bias`, ElemType.FLOAT, [members.reduce((s, m) => s + m.columns, 0)], concatVectors(model, members.map((m) => ({ name: m.bias, length: m.columns }))));
        split = model.fresh(`${base}.merged_biased`);
        added.push(model.node('Add', [product, bias], [split], [], order));
      }
      const sizes = model.addInt64(`${base}.merged_split`, members.map((m) => m.columns));
      added.push(model.node('Split', [split, sizes], members.map((m) => m.output), [attr.int('axis', -1)], order));
      model.replace(removed, added);
      merged++;
    }
    return { MergedMatMul: merged };
  },
};

interface QuantizedMember {
  quantize: Node;
  matmul: Node;
  cast: Node;
  rescale: Node;
  scaleMul: Node;
  weight: string;
  weightScale: string;
  zeroPoint: string;
  columns: number;
  output: string;
}

/** DynamicQuantizeLinear(x) -> MatMulInteger(xq, Wq, xz, wz) -> Cast(float) -> Mul(., Mul(xs, ws)). */
function quantizedChain(model: OnnxModel, quantize: Node): QuantizedMember | undefined {
  const [xq, xs, xz] = quantize.outputs;
  if (!xq || !xs || !xz) return undefined;
  const mm = model.consumers(xq);
  if (mm.length !== 1) return undefined;
  const matmul = mm[0]!;
  if (matmul.opType !== 'MatMulInteger' || matmul.domain !== '' || matmul.inputs[0] !== xq || matmul.inputs[2] !== xz || matmul.inputs.length !== 4) return undefined;
  const weight = model.initializers.get(matmul.inputs[1]!);
  const zero = model.constant(matmul.inputs[3]!, 1);
  if (!weight || weight.dataType !== ElemType.INT8 || weight.dims.length !== 2 || !zero || zero.dataType !== ElemType.INT8 || zero.dims.length !== 0) return undefined;
  if (model.consumers(xz).length !== 1 || model.consumers(matmul.outputs[0]!).length !== 1) return undefined;
  const cast = model.consumers(matmul.outputs[0]!)[0]!;
  if (cast.opType !== 'Cast' || cast.domain !== '' || intAttr(cast, 'to') !== ElemType.FLOAT || model.consumers(cast.outputs[0]!).length !== 1) return undefined;
  const scales = model.consumers(xs);
  if (scales.length !== 1) return undefined;
  const scaleMul = scales[0]!;
  if (scaleMul.opType !== 'Mul' || scaleMul.domain !== '' || scaleMul.inputs[0] !== xs || !isVector(model, scaleMul.inputs[1], weight.dims[1])) return undefined;
  const rescale = model.consumers(cast.outputs[0]!)[0]!;
  if (rescale.opType !== 'Mul' || rescale.domain !== '' || rescale.inputs[0] !== cast.outputs[0] || rescale.inputs[1] !== scaleMul.outputs[0]) return undefined;
  if (model.consumers(scaleMul.outputs[0]!).length !== 1) return undefined;
  return {
    quantize, matmul, cast, rescale, scaleMul,
    weight: weight.name, weightScale: scaleMul.inputs[1]!, zeroPoint: matmul.inputs[3]!, columns: weight.dims[1]!, output: rescale.outputs[0]!,
  };
}

export const mergeQuantizedSiblings: Pass = {
  name: 'merge-quantized-projections',
  run({ model, shapes }: PassContext): Record<string, number> {
    const groups = new Map<string, QuantizedMember[]>();
    for (const n of model.nodes) {
      if (n.opType !== 'DynamicQuantizeLinear' || n.domain !== '') continue;
      const x = n.inputs[0]!;
      const xs = shapes.shape(x);
      if (!xs || xs.length < 2 || shapes.elemType(x) !== ElemType.FLOAT) continue;
      const member = quantizedChain(model, n);
      if (!member || model.initializers.get(member.weight)!.dims[0] !== xs[xs.length - 1]) continue;
      const list = groups.get(x);
      if (list) list.push(member);
      else groups.set(x, [member]);
    }
    let merged = 0;
    for (const [x, members] of groups) {
      if (members.length < 2) continue;
      const zero = model.constant(members[0]!.zeroPoint, 1)!.values[0];
      if (members.some((m) => model.constant(m.zeroPoint, 1)!.values[0] !== zero)) continue;
      const removed = members.flatMap((m) => [m.quantize, m.matmul, m.cast, m.scaleMul, m.rescale]);
      if (!selfContained(model, removed, members.map((m) => m.output))) continue;
      const rows = model.initializers.get(members[0]!.weight)!.dims[0]!;
      const total = members.reduce((s, m) => s + m.columns, 0);
      const order = Math.min(...members.map((m) => m.quantize.order));
      const base = members[0]!.weight.replace(/(\.weight)?_quantized$/, '');
      const weight = model.addInitializer(`${base}.merged_quantized`, ElemType.INT8, [rows, total], sideBySide(model, members, rows, 1));
      const scale = model.addInitializer(`${base}.merged_scale`, ElemType.FLOAT, [total], concatVectors(model, members.map((m) => ({ name: m.weightScale, length: m.columns }))));
      const [xq, xs, xz, product, asFloat, scales, rescaled] = ['xq', 'x_scale', 'x_zero_point', 'product', 'float', 'scales', 'rescaled'].map((s) => model.fresh(`${base}.merged_${s}`)) as [string, string, string, string, string, string, string];
      const added = [
        model.node('DynamicQuantizeLinear', [x], [xq, xs, xz], [], order),
        { ...model.node('MatMulInteger', [xq, weight, xz, members[0]!.zeroPoint], [product], [], order), name: model.fresh(MERGED_NAME) },
        model.node('Cast', [product], [asFloat], [attr.int('to', ElemType.FLOAT)], order),
        model.node('Mul', [xs, scale], [scales], [], order),
        model.node('Mul', [asFloat, scales], [rescaled], [], order),
        model.node('Split', [rescaled, model.addInt64(`${base}.merged_split`, members.map((m) => m.columns))], members.map((m) => m.output), [attr.int('axis', -1)], order),
      ];
      model.replace(removed, added);
      merged++;
    }
    return { MergedMatMulInteger: merged };
  },
};
