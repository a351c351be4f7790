/**
 * Symbolic shape inference over the rewriter's graph: for every tensor, its element type and
 * its dims, each a number, a name (the graph inputs' dim_params, or a fresh `?N` for a size
 * known only at run time), or missing when the rank itself is unknown. Small int64 tensors
 * that hold shapes (Shape -> Gather -> Concat -> Reshape, Range lengths) carry their values
 * symbolically too, so `Range(0, Shape(ids)[1], 1)` has length `sequence_length`.
 *
 * Two dims are equal only when they are the same number or the same name: a pass that needs
 * two shapes equal refuses when they cannot be proven so. Ops without a rule here give
 * unknown shapes, which makes every pass that looks at them leave them alone.
 */
import { ElemType } from './proto.ts';
import { getAttr, intAttr, intsAttr, MS_DOMAIN, type Node, type OnnxModel } from './model.ts';

export type Dim = number | string;
export type Shape = Dim[];

export interface TensorFacts {
  elemType?: number;
  shape?: Shape;
  /** Values of a small int tensor, when known (rank 0 or 1). */
  value?: Dim[];
}

const UNARY_SAME = new Set([
  'Abs', 'Neg', 'Erf', 'Sigmoid', 'Tanh', 'Relu', 'Exp', 'Log', 'Sqrt', 'Reciprocal', 'Cos', 'Sin', 'Not', 'Identity',
  'Softmax', 'LogSoftmax', 'Floor', 'Ceil', 'Round', 'Sign', 'HardSigmoid', 'LeakyRelu', 'Elu', 'Selu', 'Softplus', 'Gelu', 'Clip',
]);
const BROADCAST = new Set(['Add', 'Sub', 'Mul', 'Div', 'Pow', 'Max', 'Min', 'Sum', 'Mean', 'Equal', 'Greater', 'Less', 'GreaterOrEqual', 'LessOrEqual', 'And', 'Or', 'Xor', 'Where', 'Mod']);
const BOOL_OUT = new Set(['Equal', 'Greater', 'Less', 'GreaterOrEqual', 'LessOrEqual', 'And', 'Or', 'Xor', 'Not']);

export class ShapeInference {
  readonly facts = new Map<string, TensorFacts>();
  private fresh = 0;

  constructor(private readonly model: OnnxModel) {
    for (const v of model.inputs) {
      this.facts.set(v.name, { elemType: v.elemType, shape: v.dims?.map((d) => d ?? this.unknown()) });
    }
    for (const t of model.initializers.values()) {
      const facts: TensorFacts = { elemType: t.dataType, shape: [...t.dims] };
      const count = t.dims.reduce((a, b) => a * b, 1);
      if ((t.dataType === ElemType.INT64 || t.dataType === ElemType.INT32) && t.dims.length <= 1 && count <= 16) {
        facts.value = model.constant(t.name)?.values;
      }
      this.facts.set(t.name, facts);
    }
    // Nodes in the file are in topological order (ONNX requires it); new nodes are placed by
    // order keys that respect it.
    for (const n of [...model.nodes].sort((a, b) => a.order - b.order)) this.infer(n);
  }

  shape(name: string): Shape | undefined {
    return this.facts.get(name)?.shape;
  }

  elemType(name: string): number | undefined {
    return this.facts.get(name)?.elemType;
  }

  value(name: string): Dim[] | undefined {
    return this.facts.get(name)?.value;
  }

  private unknown(): string {
    return `?${++this.fresh}`;
  }

  private set(name: string | undefined, facts: TensorFacts): void {
    if (name) this.facts.set(name, facts);
  }

  private infer(n: Node): void {
    try {
      this.inferNode(n);
    } catch {
      // A malformed attribute or an input we cannot read: the outputs stay unknown.
    }
    for (const o of n.outputs) if (o && !this.facts.has(o)) this.facts.set(o, {});
  }

  private inferNode(n: Node): void {
    const f = (i: number): TensorFacts => this.facts.get(n.inputs[i] ?? '') ?? {};
    const x = f(0);
    const out = (shape: Shape | undefined, elemType = x.elemType, value?: Dim[]): void => this.set(n.outputs[0], { elemType, shape, ...(value ? { value } : {}) });
    const constInts = (i: number): number[] | undefined => {
      const name = n.inputs[i];
      if (!name) return undefined;
      const v = this.facts.get(name)?.value;
      return v && v.every((d) => typeof d === 'number') ? (v as number[]) : undefined;
    };

    if (n.domain === MS_DOMAIN) {
      if (['Gelu', 'BiasGelu', 'QuickGelu', 'FastGelu'].includes(n.opType)) return out(x.shape);
      if (n.opType === 'SkipLayerNormalization') {
        this.set(n.outputs[0], { elemType: x.elemType, shape: x.shape });
        this.set(n.outputs[3], { elemType: x.elemType, shape: x.shape });
        return;
      }
      if (n.opType === 'MultiHeadAttention') {
        const v = f(2).shape;
        const heads = intAttr(n, 'num_heads');
        const vHidden = v?.length === 3 ? v[2] : v?.length === 4 && typeof v[3] === 'number' && heads ? heads * v[3] : undefined;
        return out(x.shape && vHidden !== undefined ? [x.shape[0]!, x.shape[1]!, vHidden] : undefined);
      }
      return;
    }
    if (n.domain !== '') return;

    if (UNARY_SAME.has(n.opType)) return out(x.shape, BOOL_OUT.has(n.opType) ? ElemType.BOOL : x.elemType);
    if (n.opType === 'Cast') return out(x.shape, intAttr(n, 'to'), x.value);
    if (BROADCAST.has(n.opType)) {
      let shape: Shape | undefined = x.shape;
      for (let i = 1; i < n.inputs.length && shape; i++) shape = this.broadcast(shape, f(i).shape);
      const elemType = BOOL_OUT.has(n.opType) ? ElemType.BOOL : n.opType === 'Where' ? f(1).elemType : x.elemType;
      return out(shape, elemType);
    }
    switch (n.opType) {
      case 'LayerNormalization':
        return out(x.shape);
      case 'Dropout':
        return out(x.shape);
      case 'Shape': {
        if (!x.shape) return out([this.unknown()], ElemType.INT64);
        const rank = x.shape.length;
        const clamp = (v: number): number => Math.min(Math.max(v < 0 ? v + rank : v, 0), rank);
        const start = clamp(intAttr(n, 'start', 0));
        const end = clamp(intAttr(n, 'end', rank));
        const value = x.shape.slice(start, Math.max(start, end));
        return out([value.length], ElemType.INT64, value);
      }
      case 'Size':
        return out([], ElemType.INT64);
      case 'Constant': {
        const c = this.model.constant(n.outputs[0]!, 16);
        const value = getAttr(n, 'value')?.t;
        const dims = value ? value.dims ?? [] : getAttr(n, 'value_ints') ? [getAttr(n, 'value_ints')!.ints?.length ?? 0] : [];
        const type = value ? value.dataType : getAttr(n, 'value_float') ? ElemType.FLOAT : ElemType.INT64;
        return out(dims, type, c && (c.dataType === ElemType.INT64 || c.dataType === ElemType.INT32) ? c.values : undefined);
      }
      case 'MatMul':
      case 'MatMulInteger':
        return out(this.matmul(x.shape, f(1).shape), n.opType === 'MatMulInteger' ? ElemType.INT32 : x.elemType);
      case 'DynamicQuantizeLinear':
        this.set(n.outputs[0], { elemType: ElemType.UINT8, shape: x.shape });
        this.set(n.outputs[1], { elemType: ElemType.FLOAT, shape: [] });
        this.set(n.outputs[2], { elemType: ElemType.UINT8, shape: [] });
        return;
      case 'Gemm': {
        const a = x.shape;
        const b = f(1).shape;
        if (a?.length !== 2 || b?.length !== 2) return out(undefined);
        return out([intAttr(n, 'transA', 0) ? a[1]! : a[0]!, intAttr(n, 'transB', 0) ? b[0]! : b[1]!]);
      }
      case 'Gather': {
        const idx = f(1);
        if (!x.shape || !idx.shape) return out(undefined);
        const rank = x.shape.length;
        let axis = intAttr(n, 'axis', 0);
        if (axis < 0) axis += rank;
        const shape = [...x.shape.slice(0, axis), ...idx.shape, ...x.shape.slice(axis + 1)];
        let value: Dim[] | undefined;
        const indices = constInts(1);
        if (x.value && axis === 0 && indices) {
          const picked = indices.map((i) => x.value![i < 0 ? i + x.value!.length : i]);
          if (picked.every((d) => d !== undefined)) value = picked as Dim[];
        }
        return out(shape, x.elemType, value);
      }
      case 'GatherElements':
        return out(f(1).shape);
      case 'Reshape': {
        const target = this.facts.get(n.inputs[1] ?? '')?.value;
        if (!target) {
          const len = f(1).shape;
          return out(len?.length === 1 && typeof len[0] === 'number' ? Array.from({ length: len[0] }, () => this.unknown()) : undefined);
        }
        if (intAttr(n, 'allowzero', 0) !== 0) return out(undefined);
        const dims: Dim[] = target.map((d, i) => (d === 0 ? x.shape?.[i] ?? this.unknown() : d));
        const minus = dims.findIndex((d) => d === -1);
        if (minus >= 0) {
          const total = x.shape && x.shape.every((d) => typeof d === 'number') ? (x.shape as number[]).reduce((a, b) => a * b, 1) : undefined;
          const rest = dims.filter((_, i) => i !== minus);
          const known = rest.every((d) => typeof d === 'number') ? (rest as number[]).reduce((a, b) => a * b, 1) : undefined;
          dims[minus] = total !== undefined && known ? total / known : this.unknown();
        }
        return out(dims, x.elemType, x.value && dims.length <= 1 ? x.value : undefined);
      }
      case 'Transpose': {
        if (!x.shape) return out(undefined);
        const perm = intsAttr(n, 'perm') ?? x.shape.map((_, i) => x.shape!.length - 1 - i);
        return out(perm.map((p) => x.shape![p]!));
      }
      case 'Split': {
        if (!x.shape) {
          for (const o of n.outputs) this.set(o, { elemType: x.elemType });
          return;
        }
        const rank = x.shape.length;
        let axis = intAttr(n, 'axis', 0);
        if (axis < 0) axis += rank;
        const sizes = (n.inputs[1] ? constInts(1) : undefined) ?? intsAttr(n, 'split');
        n.outputs.forEach((o, k) => {
          let d: Dim;
          if (sizes) d = sizes[k]!;
          else {
            const total = x.shape![axis];
            d = typeof total === 'number' && total % n.outputs.length === 0 ? total / n.outputs.length : this.unknown();
          }
          this.set(o, { elemType: x.elemType, shape: x.shape!.map((s, i) => (i === axis ? d : s)) });
        });
        return;
      }
      case 'Concat': {
        const shapes = n.inputs.map((_, i) => f(i).shape);
        if (shapes.some((s) => !s)) return out(undefined);
        const rank = shapes[0]!.length;
        let axis = intAttr(n, 'axis', 0);
        if (axis < 0) axis += rank;
        const along = shapes.map((s) => s![axis]);
        const sum = along.every((d) => typeof d === 'number') ? (along as number[]).reduce((a, b) => a + b, 0) : this.unknown();
        const shape = shapes[0]!.map((d, i) => (i === axis ? sum : d));
        const values = n.inputs.map((_, i) => f(i).value);
        const value = rank === 1 && values.every((v) => v) ? values.flatMap((v) => v!) : undefined;
        return out(shape, x.elemType, value);
      }
      case 'Slice': {
        if (!x.shape) return out(undefined);
        const starts = constInts(1);
        const ends = constInts(2);
        const axes = n.inputs[3] ? constInts(3) : x.shape.map((_, i) => i).slice(0, starts?.length ?? 0);
        const steps = n.inputs[4] ? constInts(4) : starts?.map(() => 1);
        if (!starts || !ends || !axes || !steps) return out(x.shape.map(() => this.unknown()));
        const shape = [...x.shape];
        let value = x.value ? [...x.value] : undefined;
        axes.forEach((a, k) => {
          const axis = a < 0 ? a + shape.length : a;
          const dim = shape[axis]!;
          const step = steps[k]!;
          if (typeof dim !== 'number') {
            shape[axis] = starts[k] === 0 && ends[k]! >= 2 ** 31 - 1 && step === 1 ? dim : this.unknown();
            value = undefined;
            return;
          }
          const clamp = (v: number, lo: number, hi: number): number => Math.min(Math.max(v < 0 ? v + dim : v, lo), hi);
          const s = step > 0 ? clamp(starts[k]!, 0, dim) : clamp(starts[k]!, -1, dim - 1);
          const e = step > 0 ? clamp(ends[k]!, 0, dim) : clamp(ends[k]!, -1, dim - 1);
          shape[axis] = Math.max(0, Math.ceil((e - s) / step));
          if (value && shape.length === 1 && step === 1) value = value.slice(s, e);
          else value = undefined;
        });
        return out(shape, x.elemType, value);
      }
      case 'Unsqueeze': {
        const axes = n.inputs[1] ? constInts(1) : intsAttr(n, 'axes');
        if (!x.shape || !axes) return out(undefined);
        const rank = x.shape.length + axes.length;
        const set = new Set(axes.map((a) => (a < 0 ? a + rank : a)));
        const shape: Dim[] = [];
        let k = 0;
        for (let i = 0; i < rank; i++) shape.push(set.has(i) ? 1 : x.shape[k++]!);
        return out(shape, x.elemType, x.value && rank <= 1 ? x.value : undefined);
      }
      case 'Squeeze': {
        const axes = n.inputs[1] ? constInts(1) : intsAttr(n, 'axes');
        if (!x.shape) return out(undefined);
        const rank = x.shape.length;
        const set = new Set((axes ?? x.shape.flatMap((d, i) => (d === 1 ? [i] : []))).map((a) => (a < 0 ? a + rank : a)));
        return out(x.shape.filter((_, i) => !set.has(i)), x.elemType, x.value && rank - set.size <= 1 ? x.value : undefined);
      }
      case 'ReduceMean':
      case 'ReduceSum':
      case 'ReduceL2':
      case 'ReduceMax':
      case 'ReduceMin':
      case 'ReduceProd': {
        if (!x.shape) return out(undefined);
        const axes = n.inputs[1] ? constInts(1) : intsAttr(n, 'axes');
        if (n.inputs[1] && !axes) return out(undefined);
        const rank = x.shape.length;
        const set = new Set((axes && axes.length > 0 ? axes : x.shape.map((_, i) => i)).map((a) => (a < 0 ? a + rank : a)));
        const keep = intAttr(n, 'keepdims', 1) !== 0;
        return out(x.shape.flatMap((d, i) => (set.has(i) ? (keep ? [1] : []) : [d])));
      }
      case 'ArgMax':
      case 'ArgMin': {
        if (!x.shape) return out(undefined, ElemType.INT64);
        let axis = intAttr(n, 'axis', 0);
        if (axis < 0) axis += x.shape.length;
        const keep = intAttr(n, 'keepdims', 1) !== 0;
        return out(x.shape.flatMap((d, i) => (i === axis ? (keep ? [1] : []) : [d])), ElemType.INT64);
      }
      case 'Range': {
        const start = f(0).value?.[0];
        const limit = f(1).value?.[0];
        const delta = f(2).value?.[0];
        const len = start === 0 && delta === 1 && limit !== undefined ? limit : typeof start === 'number' && typeof limit === 'number' && typeof delta === 'number' ? Math.max(0, Math.ceil((limit - start) / delta)) : this.unknown();
        return out([len], x.elemType);
      }
      case 'Expand': {
        const target = this.facts.get(n.inputs[1] ?? '')?.value;
        if (!x.shape || !target) return out(undefined);
        return out(this.broadcast(x.shape, target.map((d) => (typeof d === 'number' && d < 0 ? this.unknown() : d))));
      }
      case 'ConstantOfShape': {
        const target = x.value;
        const t = getAttr(n, 'value')?.t;
        return out(target ?? undefined, t?.dataType ?? ElemType.FLOAT);
      }
      case 'Conv': {
        const w = f(1).shape;
        if (!x.shape || !w || x.shape.length !== w.length) return out(undefined);
        const spatial = x.shape.length - 2;
        const kernel = intsAttr(n, 'kernel_shape') ?? w.slice(2);
        const strides = intsAttr(n, 'strides') ?? Array(spatial).fill(1);
        const dilations = intsAttr(n, 'dilations') ?? Array(spatial).fill(1);
        const pads = intsAttr(n, 'pads') ?? Array(2 * spatial).fill(0);
        const autoPad = getAttr(n, 'auto_pad');
        if (autoPad?.s && Buffer.from(autoPad.s).toString() !== 'NOTSET') return out(undefined);
        const dims: Dim[] = [x.shape[0]!, w[0]!];
        for (let i = 0; i < spatial; i++) {
          const d = x.shape[2 + i];
          const k = kernel[i];
          dims.push(typeof d === 'number' && typeof k === 'number'
            ? Math.floor((d + pads[i]! + pads[i + spatial]! - dilations[i]! * (k - 1) - 1) / strides[i]!) + 1
            : this.unknown());
        }
        return out(dims);
      }
      case 'Flatten': {
        if (!x.shape) return out(undefined);
        let axis = intAttr(n, 'axis', 1);
        if (axis < 0) axis += x.shape.length;
        const product = (ds: Dim[]): Dim => (ds.every((d) => typeof d === 'number') ? (ds as number[]).reduce((a, b) => a * b, 1) : this.unknown());
        return out([product(x.shape.slice(0, axis)), product(x.shape.slice(axis))]);
      }
      default:
        return;
    }
  }

  /** Multidirectional broadcasting; equal names stay, a 1 gives way, anything else is a fresh unknown. */
  broadcast(a: Shape | undefined, b: Shape | undefined): Shape | undefined {
    if (!a || !b) return undefined;
    const rank = Math.max(a.length, b.length);
    const out: Dim[] = [];
    for (let i = 0; i < rank; i++) {
      const da = i - (rank - a.length) >= 0 ? a[i - (rank - a.length)]! : 1;
      const db = i - (rank - b.length) >= 0 ? b[i - (rank - b.length)]! : 1;
      if (da === db) out.push(da);
      else if (da === 1) out.push(db);
      else if (db === 1) out.push(da);
      else if (typeof da === 'number' && typeof db !== 'number') out.push(da);
      else if (typeof db === 'number' && typeof da !== 'number') out.push(db);
      else out.push(this.unknown());
    }
    return out;
  }

  private matmul(a: Shape | undefined, b: Shape | undefined): Shape | undefined {
    if (!a || !b || a.length === 0 || b.length === 0) return undefined;
    const a2 = a.length === 1 ? [1, a[0]!] : a;
    const b2 = b.length === 1 ? [b[0]!, 1] : b;
    const batch = this.broadcast(a2.slice(0, -2), b2.slice(0, -2));
    if (!batch) return undefined;
    const shape = [...batch, a2[a2.length - 2]!, b2[b2.length - 1]!];
    if (a.length === 1) shape.splice(shape.length - 2, 1);
    if (b.length === 1) shape.splice(shape.length - 1, 1);
    return shape;
  }
}

export function sameShape(a: Shape | undefined, b: Shape | undefined): boolean {
  return !!a && !!b && a.length === b.length && a.every((d, i) => d === b[i]);
}
