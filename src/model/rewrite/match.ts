/** Small matching helpers the passes share. */
import { ElemType } from './proto.ts';
import type { Node, OnnxModel } from './model.ts';
import type { ShapeInference } from './shapes.ts';

/** What a pass needs: the model and the shapes inferred before it started. */
export interface PassContext {
  model: OnnxModel;
  shapes: ShapeInference;
}

/** A pass: finds its pattern, rewrites every exact match, returns how many of each op it made. */
export interface Pass {
  readonly name: string;
  /** Counts by the op the rewrite produced, as the report gives them (`rewrite.fused`). */
  run(ctx: PassContext): Record<string, number>;
}

/** The producer of `name` when it is a default-domain `opType` node. */
export function producedBy(model: OnnxModel, name: string | undefined, opType: string): Node | undefined {
  if (!name) return undefined;
  const p = model.producer(name);
  return p && p.opType === opType && p.domain === '' && !p.hasSubgraph ? p : undefined;
}

/** The value of a float scalar constant (one element: dims [] or [1]). */
export function scalarFloat(model: OnnxModel, name: string | undefined): number | undefined {
  if (!name) return undefined;
  const c = model.constant(name, 1);
  if (!c || c.dataType !== ElemType.FLOAT || c.values.length !== 1 || c.dims.length > 1) return undefined;
  return c.values[0];
}

/** The values of an int64 constant (an initializer or Constant node). */
export function int64s(model: OnnxModel, name: string | undefined): number[] | undefined {
  if (!name) return undefined;
  const c = model.constant(name, 64);
  return c && c.dataType === ElemType.INT64 ? c.values : undefined;
}

/** For a two-input node with one scalar float constant operand: [the other input, the scalar]. */
export function withScalar(model: OnnxModel, node: Node): [string, number] | undefined {
  if (node.inputs.length !== 2) return undefined;
  const [a, b] = node.inputs as [string, string];
  const sb = scalarFloat(model, b);
  if (sb !== undefined && scalarFloat(model, a) === undefined) return [a, sb];
  const sa = scalarFloat(model, a);
  if (sa !== undefined && node.opType !== 'Div' && node.opType !== 'Sub' && scalarFloat(model, b) === undefined) return [b, sa];
  return undefined;
}

/** A 1-D float32 initializer of `length` elements (a bias or a LayerNorm parameter). */
export function isVector(model: OnnxModel, name: string | undefined, length: number | string | undefined): boolean {
  if (!name || typeof length !== 'number') return false;
  const t = model.initializers.get(name);
  return !!t && t.dataType === ElemType.FLOAT && t.dims.length === 1 && t.dims[0] === length;
}

/** Nearly equal float32 constants (a written 1/sqrt(2) is 0.70710677 or 0.7071067811865476). */
export function near(value: number | undefined, expected: number, tolerance = 1e-6): boolean {
  return value !== undefined && Math.abs(value - expected) <= tolerance * Math.max(1, Math.abs(expected));
}

/**
 * True when every output of `nodes` is read only by `nodes` (or is one of `kept`, names the
 * rewrite produces again) and none is a graph output other than those.
 */
export function selfContained(model: OnnxModel, nodes: readonly Node[], kept: readonly string[] = []): boolean {
  const set = new Set(nodes);
  const keep = new Set(kept);
  for (const n of nodes) {
    if (n.hasSubgraph) return false;
    for (const o of n.outputs) {
      if (!o || keep.has(o)) continue;
      if (model.isGraphOutput(o)) return false;
      if (model.consumers(o).some((c) => !set.has(c))) return false;
    }
  }
  return true;
}
