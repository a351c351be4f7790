/**
 * Scaled dot-product attention into com.microsoft MultiHeadAttention.
 *
 * The subgraph it replaces, as the forge and most exporters write it:
 *
 *   QH = Transpose(Reshape(q, [0, 0, H, D]), [0, 2, 1, 3])      and the same for K and V
 *   S  = MatMul(QH', KT) [* c] [+ B1] [+ B2 ...]                KT = Transpose(KH', [0, 1, 3, 2])
 *   O  = Reshape(Transpose(MatMul(Softmax(S, -1), VH), [0, 2, 1, 3]), [0, 0, H * Dv])
 *
 * where QH' and KH' are QH and KH after an optional chain of layout-free ops: rotary position
 * embeddings (EVA-02's 2D RoPE on the patch tokens; jina-embeddings-v3's rotate_half RoPE),
 * scalar scaling. Or KT = Transpose(Reshape(k, [0, 0, H, D]), [0, 2, 3, 1]) directly.
 *
 * MultiHeadAttention takes q, k, v as [B, S, H * D] and splits heads itself, so the chains are
 * rebuilt on [B, S, H, D] (a Reshape, no copy) instead of [B, H, S, D]: Slice/Concat/Split
 * axes are renumbered and the constant operands ([S, D] cos/sin tables) get a head axis. This
 * is exact for the ops the chain may hold (elementwise with operands broadcast over heads,
 * MatMul by a constant on the last axis, Slice/Concat/Split/Neg), and nothing else is
 * accepted. Scalar factors on q before the split, at the end of q's chain, or on the scores are
 * folded into the op's `scale` (only where the chain between them is linear in q).
 *
 * The score biases B1 + B2 ... (ALiBi, padding and causal masks) are summed once per graph
 * and given as `attention_bias` [B or 1, H or 1, S, T]: a lower rank gets leading axes, a bias
 * not provably [.., S, T] is expanded to it (the broadcast the original Add did). With no
 * bias, ONNX Runtime's CPU kernel runs its flash attention, which never materialises the
 * [B, H, S, T] scores.
 */
import { ElemType } from './proto.ts';
import { attr, intAttr, intsAttr, MS_DOMAIN, type Node, type OnnxModel } from './model.ts';
import { int64s, producedBy, selfContained, withScalar, type Pass, type PassContext } from './match.ts';
import { sameShape, type Dim, type ShapeInference } from './shapes.ts';

const CHAIN_OPS = new Set(['Mul', 'Add', 'Sub', 'Div', 'Neg', 'MatMul', 'Slice', 'Concat', 'Split']);
const MAX_CHAIN = 48;

interface HeadSplit {
  /** The [B, S, H * D] tensor the heads are split from. */
  source: string;
  reshape: Node;
  transpose: Node;
  heads: number;
  headDim: number;
}

interface Side {
  split: HeadSplit;
  /** Chain nodes between the split and the attention product, in graph order. */
  chain: Node[];
  /** The chain's last tensor ([B, H, S, D]); the split's own output when the chain is empty. */
  end: string;
  /** Nodes folded into the scale (scalar Muls) and the factor they contributed. */
  folded: Node[];
  scale: number;
  /** K only: the transpose to [B, H, D, T]. */
  keyTranspose?: Node;
}

function perm(node: Node | undefined, expected: readonly number[]): boolean {
  const p = node ? intsAttr(node, 'perm') : undefined;
  return !!p && p.length === expected.length && p.every((v, i) => v === expected[i]);
}

/** Transpose(Reshape(x [B, S, H*D], [0, 0, H, D]), perm) with nothing else reading the reshape. */
function headSplit(model: OnnxModel, shapes: ShapeInference, tensor: string, expectedPerm: readonly number[]): HeadSplit | undefined {
  const transpose = producedBy(model, tensor, 'Transpose');
  if (!transpose || !perm(transpose, expectedPerm)) return undefined;
  const reshape = producedBy(model, transpose.inputs[0], 'Reshape');
  if (!reshape || !model.onlyFeeds(reshape.outputs[0]!, transpose) || intAttr(reshape, 'allowzero', 0) !== 0) return undefined;
  const source = reshape.inputs[0]!;
  const x = shapes.shape(source);
  const y = shapes.shape(reshape.outputs[0]!);
  if (!x || !y || x.length !== 3 || y.length !== 4 || shapes.elemType(source) !== ElemType.FLOAT) return undefined;
  const [heads, headDim] = [y[2], y[3]];
  if (typeof heads !== 'number' || typeof headDim !== 'number' || x[2] !== heads * headDim || y[0] !== x[0] || y[1] !== x[1]) return undefined;
  return { source, reshape, transpose, heads, headDim };
}

/** BNSH axis -> BSNH axis. */
function relayoutAxis(axis: number, rank: number): number | undefined {
  if (rank !== 4) return undefined;
  const a = axis < 0 ? axis + 4 : axis;
  return [0, 2, 1, 3][a];
}

/**
 * The chain from a head split (Transpose perm [0, 2, 1, 3]) to `end`, or undefined when
 * `end` is not reached from exactly one head split through chain ops alone.
 */
function findChain(model: OnnxModel, shapes: ShapeInference, end: string): { split: HeadSplit; chain: Node[] } | undefined {
  const direct = headSplit(model, shapes, end, [0, 2, 1, 3]);
  if (direct) return { split: direct, chain: [] };
  // The backward cone of `end` through chain ops, stopping at head-split transposes.
  const cone = new Set<Node>();
  const sources = new Set<string>();
  const stack = [end];
  while (stack.length > 0) {
    const t = stack.pop()!;
    const p = model.producer(t);
    if (!p || p.domain !== '' || p.hasSubgraph) continue;
    if (p.opType === 'Transpose' && perm(p, [0, 2, 1, 3])) {
      sources.add(t);
      continue;
    }
    if (!CHAIN_OPS.has(p.opType) || cone.has(p)) continue;
    cone.add(p);
    if (cone.size > MAX_CHAIN) return undefined;
    for (const i of p.inputs) if (i) stack.push(i);
  }
  if (sources.size !== 1) return undefined;
  const source = [...sources][0]!;
  const split = headSplit(model, shapes, source, [0, 2, 1, 3]);
  if (!split) return undefined;
  // The chain: cone nodes that read the split (transitively).
  const dependent = new Set<string>([source]);
  const chain: Node[] = [];
  for (const n of [...cone].sort((a, b) => a.order - b.order)) {
    if (n.inputs.some((i) => dependent.has(i))) {
      chain.push(n);
      for (const o of n.outputs) if (o) dependent.add(o);
    }
  }
  if (!chain.some((n) => n.outputs.includes(end))) return undefined;
  return { split, chain };
}

/**
 * Checks a chain can be rebuilt on [B, S, H, D] and whether it is linear in its source (then a
 * scalar factor before it may be folded into the scale).
 */
function checkChain(model: OnnxModel, shapes: ShapeInference, split: HeadSplit, chain: readonly Node[]): { ok: boolean; linear: boolean } {
  const inChain = new Set<string>([split.transpose.outputs[0]!, ...chain.flatMap((n) => n.outputs)]);
  let linear = true;
  for (const n of chain) {
    const chainInputs = n.inputs.map((i) => inChain.has(i));
    const rank4 = n.outputs.every((o) => !o || shapes.shape(o)?.length === 4);
    if (!rank4) return { ok: false, linear };
    for (const [k, i] of n.inputs.entries()) {
      if (chainInputs[k] || !i) continue;
      const s = shapes.shape(i);
      if (!s || s.length > 4) return { ok: false, linear };
    }
    switch (n.opType) {
      case 'Mul':
      case 'Div':
        if (n.inputs.length !== 2) return { ok: false, linear };
        if (chainInputs[0] === chainInputs[1] || (n.opType === 'Div' && !chainInputs[0])) linear = false;
        break;
      case 'Add':
      case 'Sub':
        if (n.inputs.length !== 2) return { ok: false, linear };
        if (!chainInputs[0] || !chainInputs[1]) linear = false;
        break;
      case 'Neg':
        break;
      case 'MatMul': {
        const w = shapes.shape(n.inputs[1]!);
        if (!chainInputs[0] || chainInputs[1] || !w || w.length !== 2) return { ok: false, linear };
        break;
      }
      case 'Slice': {
        if (!chainInputs[0] || chainInputs.slice(1).some(Boolean)) return { ok: false, linear };
        const starts = int64s(model, n.inputs[1]);
        const axes = n.inputs[3] ? int64s(model, n.inputs[3]) : starts?.map((_, i) => i);
        if (!starts || !axes || !int64s(model, n.inputs[2]) || (n.inputs[4] && !int64s(model, n.inputs[4]))) return { ok: false, linear };
        break;
      }
      case 'Concat':
        if (!chainInputs.every(Boolean) || intAttr(n, 'axis') === undefined) return { ok: false, linear };
        break;
      case 'Split':
        if (!chainInputs[0] || (n.inputs[1] && !int64s(model, n.inputs[1]))) return { ok: false, linear };
        break;
      default:
        return { ok: false, linear };
    }
  }
  return { ok: true, linear };
}

/** Scores = MatMul(QH', KT) [* c] [+ biases]: the product, its scale, the biases, the nodes. */
function scoresOf(model: OnnxModel, tensor: string, consumer: Node): { qk: Node; scale: number; biases: string[]; nodes: Node[] } | undefined {
  if (!model.onlyFeeds(tensor, consumer)) return undefined;
  const p = model.producer(tensor);
  if (!p || p.domain !== '' || p.hasSubgraph) return undefined;
  if (p.opType === 'MatMul') return { qk: p, scale: 1, biases: [], nodes: [p] };
  if (p.opType === 'Add' && p.inputs.length === 2) {
    for (const k of [0, 1]) {
      const inner = scoresOf(model, p.inputs[k]!, p);
      if (inner) return { ...inner, biases: [...inner.biases, p.inputs[1 - k]!], nodes: [...inner.nodes, p] };
    }
    return undefined;
  }
  if (p.opType === 'Mul' || p.opType === 'Div') {
    const scalar = withScalar(model, p);
    if (!scalar) return undefined;
    const inner = scoresOf(model, scalar[0], p);
    if (!inner || inner.biases.length > 0) return undefined;
    return { ...inner, scale: inner.scale * (p.opType === 'Div' ? 1 / scalar[1] : scalar[1]), nodes: [...inner.nodes, p] };
  }
  return undefined;
}

/** Q or K: a head split and its chain, with scalar factors folded out. */
function sideOf(model: OnnxModel, shapes: ShapeInference, end: string, consumer: Node): Side | undefined {
  if (!model.onlyFeeds(end, consumer)) return undefined;
  let scale = 1;
  const folded: Node[] = [];
  let last = end;
  // A scalar factor at the end of the chain.
  const tail = model.producer(end);
  if (tail && tail.domain === '' && (tail.opType === 'Mul' || tail.opType === 'Div')) {
    const scalar = withScalar(model, tail);
    if (scalar && shapes.shape(scalar[0])?.length === 4 && model.onlyFeeds(scalar[0], tail)) {
      scale *= tail.opType === 'Div' ? 1 / scalar[1] : scalar[1];
      folded.push(tail);
      last = scalar[0];
    }
  }
  const found = findChain(model, shapes, last);
  if (!found) return undefined;
  const { split, chain } = found;
  if (!selfContained(model, [split.reshape, split.transpose, ...chain], [last])) return undefined;
  const { ok, linear } = checkChain(model, shapes, split, chain);
  if (!ok) return undefined;
  // A scalar factor before the split.
  const before = model.producer(split.source);
  if (linear && before && before.domain === '' && (before.opType === 'Mul' || before.opType === 'Div') && model.onlyFeeds(split.source, split.reshape)) {
    const scalar = withScalar(model, before);
    if (scalar && sameShape(shapes.shape(scalar[0]), shapes.shape(split.source))) {
      scale *= before.opType === 'Div' ? 1 / scalar[1] : scalar[1];
      folded.push(before);
      split.source = scalar[0];
    }
  }
  return { split, chain, end: last, folded, scale };
}

/** Rebuilds a side's chain on [B, S, H, D] and returns the [B, S, H * D] tensor for the op. */
function rebuild(model: OnnxModel, shapes: ShapeInference, side: Side, added: Node[], shared: Map<string, string>, order: number): string {
  const { split, chain } = side;
  if (chain.length === 0) return split.source;
  const hidden = split.heads * split.headDim;
  const renamed = new Map<string, string>();
  const heads4 = model.fresh(`${split.source}/bsnh`);
  added.push(model.node('Reshape', [split.source, constant(model, shared, [0, 0, split.heads, split.headDim])], [heads4], [], order));
  renamed.set(split.transpose.outputs[0]!, heads4);
  const operand = (name: string): string => {
    if (!name) return name;
    const mapped = renamed.get(name);
    if (mapped) return mapped;
    // A tensor from outside the chain, broadcast against [B, H, S, D]: give it the head axis
    // where its rank reaches it (rank <= 1 broadcasts on D alone either way).
    const s = shapes.shape(name)!;
    if (s.length <= 1) return name;
    const key = `operand:${name}`;
    const cached = shared.get(key);
    if (cached) return cached;
    let out: string;
    if (s.length === 2) {
      out = model.fresh(`${name}/bsnh`);
      added.push(model.node('Unsqueeze', [name, constant(model, shared, [1])], [out], [], order));
    } else {
      let four = name;
      if (s.length === 3) {
        four = model.fresh(`${name}/rank4`);
        added.push(model.node('Unsqueeze', [name, constant(model, shared, [0])], [four], [], order));
      }
      out = model.fresh(`${name}/bsnh`);
      added.push(model.node('Transpose', [four], [out], [attr.ints('perm', [0, 2, 1, 3])], order));
    }
    shared.set(key, out);
    return out;
  };
  for (const n of chain) {
    const outputs = n.outputs.map((o) => {
      if (!o) return o;
      const name = model.fresh(`${o}/bsnh`);
      renamed.set(o, name);
      return name;
    });
    // MatMul's constant right operand multiplies the last axis, which keeps its place.
    let inputs = n.opType === 'MatMul' ? [operand(n.inputs[0]!), n.inputs[1]!] : n.inputs.map(operand);
    let attrs = n.attrs;
    if (n.opType === 'Slice') {
      const starts = int64s(model, n.inputs[1])!;
      const axes = n.inputs[3] ? int64s(model, n.inputs[3])! : starts.map((_, i) => i);
      inputs = [inputs[0]!, n.inputs[1]!, n.inputs[2]!, constant(model, shared, axes.map((a) => relayoutAxis(a, 4)!)), ...(n.inputs[4] ? [n.inputs[4]] : [])];
    } else if (n.opType === 'Concat' || n.opType === 'Split') {
      const axis = intAttr(n, 'axis', 0);
      attrs = [...n.attrs.filter((a) => a.name !== 'axis'), attr.int('axis', relayoutAxis(axis, 4)!)];
      if (n.opType === 'Split') inputs = [inputs[0]!, ...n.inputs.slice(1)];
    }
    added.push(model.node(n.opType, inputs, outputs, attrs, order));
  }
  const merged = model.fresh(`${split.source}/rope_merged`);
  added.push(model.node('Reshape', [renamed.get(side.end)!, constant(model, shared, [0, 0, hidden])], [merged], [], order));
  return merged;
}

function constant(model: OnnxModel, shared: Map<string, string>, values: readonly number[]): string {
  const key = `i64:${values.join(',')}`;
  let name = shared.get(key);
  if (!name) {
    name = model.addInt64('rewrite/const', values);
    shared.set(key, name);
  }
  return name;
}

export const fuseAttention: Pass = {
  name: 'attention',
  run({ model, shapes }: PassContext): Record<string, number> {
    if (model.opset < 13) return {};
    const shared = new Map<string, string>();
    let fused = 0;
    for (const softmax of [...model.nodes].sort((a, b) => a.order - b.order)) {
      if (softmax.opType !== 'Softmax' || softmax.domain !== '' || !model.nodes.includes(softmax)) continue;
      const rank = shapes.shape(softmax.inputs[0]!)?.length;
      const axis = intAttr(softmax, 'axis', -1);
      if (rank !== 4 || (axis !== -1 && axis !== 3)) continue;
      // Softmax -> MatMul(P, VH) -> Transpose [0, 2, 1, 3] -> Reshape [B, S, H * Dv]
      const probs = softmax.outputs[0]!;
      const pv = model.consumers(probs)[0];
      if (!pv || !model.onlyFeeds(probs, pv) || pv.opType !== 'MatMul' || pv.domain !== '' || pv.inputs[0] !== probs) continue;
      const back = model.consumers(pv.outputs[0]!)[0];
      if (!back || !model.onlyFeeds(pv.outputs[0]!, back) || back.opType !== 'Transpose' || !perm(back, [0, 2, 1, 3])) continue;
      const merge = model.consumers(back.outputs[0]!)[0];
      if (!merge || !model.onlyFeeds(back.outputs[0]!, merge) || merge.opType !== 'Reshape' || merge.domain !== '' || intAttr(merge, 'allowzero', 0) !== 0) continue;
      const o4 = shapes.shape(pv.outputs[0]!);
      const o3 = shapes.shape(merge.outputs[0]!);
      if (!o4 || !o3 || o4.length !== 4 || o3.length !== 3 || o3[0] !== o4[0] || o3[1] !== o4[2] || typeof o4[1] !== 'number' || typeof o4[3] !== 'number' || o3[2] !== o4[1] * o4[3]) continue;

      const scores = scoresOf(model, softmax.inputs[0]!, softmax);
      if (!scores) continue;
      const { qk } = scores;
      const s4 = shapes.shape(qk.outputs[0]!);
      if (!s4 || s4.length !== 4) continue;

      const q = sideOf(model, shapes, qk.inputs[0]!, qk);
      if (!q) continue;
      let k: Side | undefined;
      const kt = qk.inputs[1]!;
      const direct = model.onlyFeeds(kt, qk) ? headSplit(model, shapes, kt, [0, 2, 3, 1]) : undefined;
      if (direct) k = { split: direct, chain: [], end: kt, folded: [], scale: 1 };
      else {
        const keyTranspose = producedBy(model, kt, 'Transpose');
        if (keyTranspose && perm(keyTranspose, [0, 1, 3, 2]) && model.onlyFeeds(kt, qk)) {
          const inner = sideOf(model, shapes, keyTranspose.inputs[0]!, keyTranspose);
          if (inner) k = { ...inner, keyTranspose };
        }
      }
      if (!k) continue;
      const v = model.onlyFeeds(pv.inputs[1]!, pv) ? headSplit(model, shapes, pv.inputs[1]!, [0, 2, 1, 3]) : undefined;
      if (!v) continue;
      const heads = q.split.heads;
      if (k.split.heads !== heads || v.heads !== heads || q.split.headDim !== k.split.headDim || o4[1] !== heads || o4[3] !== v.headDim) continue;
      const [bq, sq] = [shapes.shape(q.split.source)![0], shapes.shape(q.split.source)![1]];
      const [bk, sk] = [shapes.shape(k.split.source)![0], shapes.shape(k.split.source)![1]];
      const sv = shapes.shape(v.source)!;
      if (bq !== bk || bq !== sv[0] || sk !== sv[1] || s4[0] !== bq || s4[1] !== heads || s4[2] !== sq || s4[3] !== sk) continue;
      const scale = Math.fround(q.scale * k.scale * scores.scale);
      if (!Number.isFinite(scale) || scale === 0) continue;
      const biasShapes = scores.biases.map((b) => shapes.shape(b));
      if (biasShapes.some((s) => !s || s.length > 4) || scores.biases.some((b) => shapes.elemType(b) !== ElemType.FLOAT)) continue;

      const removed = [
        ...scores.nodes, softmax, pv, back, merge,
        q.split.reshape, q.split.transpose, ...q.chain, ...q.folded,
        k.split.reshape, k.split.transpose, ...k.chain, ...k.folded, ...(k.keyTranspose ? [k.keyTranspose] : []),
        v.reshape, v.transpose,
      ];
      if (!selfContained(model, removed, [merge.outputs[0]!])) continue;

      const order = merge.order;
      const added: Node[] = [];
      const query = rebuild(model, shapes, q, added, shared, order);
      const key = rebuild(model, shapes, k, added, shared, order);
      const inputs = [query, key, v.source];
      if (scores.biases.length > 0) inputs.push('', '', attentionBias(model, shapes, scores.biases, biasShapes as Dim[][], [sq, sk], q.split.source, k.split.source, added, shared, qk.order));
      added.push(model.node('MultiHeadAttention', inputs, [merge.outputs[0]!], [attr.int('num_heads', heads), attr.float('scale', scale)], order, MS_DOMAIN));
      model.replace(removed, added);
      fused++;
    }
    return { MultiHeadAttention: fused };
  },
};

/** Sum of the biases as [B|1, H|1, S, T], computed once per distinct set of biases. */
function attentionBias(
  model: OnnxModel,
  shapes: ShapeInference,
  biases: readonly string[],
  biasShapes: readonly Dim[][],
  [s, t]: [Dim | undefined, Dim | undefined],
  query: string,
  key: string,
  added: Node[],
  shared: Map<string, string>,
  order: number,
): string {
  const cacheKey = `bias:${biases.join('+')}`;
  const cached = shared.get(cacheKey);
  if (cached) return cached;
  const early = order - 0.5;
  let sum = biases[0]!;
  let shape: Dim[] | undefined = biasShapes[0];
  for (let i = 1; i < biases.length; i++) {
    const next = model.fresh('attention_bias/sum');
    added.push(model.node('Add', [sum, biases[i]!], [next], [], early));
    sum = next;
    shape = shapes.broadcast(shape, biasShapes[i]);
  }
  const rank = shape?.length ?? 0;
  if (rank < 4) {
    const four = model.fresh('attention_bias/rank4');
    added.push(model.node('Unsqueeze', [sum, constant(model, shared, Array.from({ length: 4 - rank }, (_, i) => i))], [four], [], early));
    sum = four;
    shape = [...Array(4 - rank).fill(1), ...(shape ?? [])];
  }
  if (!shape || shape[2] !== s || shape[3] !== t) {
    // Broadcast to [.., S, T] as the original Add onto the scores did.
    const dimOf = (x: string, label: string): string => {
      const out = model.fresh(`attention_bias/${label}`);
      const full = model.fresh(`attention_bias/${label}_shape`);
      added.push(model.node('Shape', [x], [full], [], early));
      added.push(model.node('Gather', [full, constant(model, shared, [1])], [out], [attr.int('axis', 0)], early));
      return out;
    };
    const target = model.fresh('attention_bias/target');
    added.push(model.node('Concat', [constant(model, shared, [1, 1]), dimOf(query, 'query_length'), dimOf(key, 'key_length')], [target], [attr.int('axis', 0)], early));
    const expanded = model.fresh('attention_bias/expanded');
    added.push(model.node('Expand', [sum, target], [expanded], [], early));
    sum = expanded;
  }
  shared.set(cacheKey, sum);
  return sum;
}
