/**
 * Activation subgraphs into one com.microsoft op each.
 *
 * Exact GELU, x * 0.5 * (1 + erf(x / sqrt 2)), in any of the three ways its two products
 * associate and with x / sqrt 2 written as Mul by 0.70710677 or Div by 1.4142135, becomes
 * Gelu(x); when x is Add(p, bias) with a 1-D float32 bias of the last dim's size and nothing
 * else reads x, BiasGelu(p, bias). The constants must be those (1 and 0.5 exactly; the square
 * roots within 1e-6): the tanh approximation or any other variant is left alone.
 *
 * x * sigmoid(a x) (OpenAI's quick_gelu with a = 1.702, and SiLU / swish with a = 1, as
 * EVA-02's SwiGLU uses it) becomes QuickGelu(x, alpha a).
 */
import { ElemType } from './proto.ts';
import { attr, MS_DOMAIN, type Node, type OnnxModel } from './model.ts';
import { isVector, near, producedBy, scalarFloat, selfContained, withScalar, type Pass, type PassContext } from './match.ts';
import { sameShape } from './shapes.ts';

function soleConsumer(model: OnnxModel, name: string, opType: string): Node | undefined {
  const c = model.consumers(name);
  if (c.length !== 1 || model.isGraphOutput(name)) return undefined;
  return c[0]!.opType === opType && c[0]!.domain === '' ? c[0] : undefined;
}

/** The other input of a two-input node, given one. */
function other(node: Node, one: string): string | undefined {
  if (node.inputs.length !== 2) return undefined;
  if (node.inputs[0] === one && node.inputs[1] !== one) return node.inputs[1];
  if (node.inputs[1] === one && node.inputs[0] !== one) return node.inputs[0];
  return undefined;
}

interface GeluMatch {
  x: string;
  nodes: Node[];
  output: string;
}

function matchGelu(model: OnnxModel, erf: Node): GeluMatch | undefined {
  // d = x * (1/sqrt 2) or x / sqrt 2
  const scaleNode = model.producer(erf.inputs[0]!);
  if (!scaleNode || scaleNode.domain !== '' || !model.onlyFeeds(erf.inputs[0]!, erf)) return undefined;
  const scalar = scaleNode.opType === 'Mul' || scaleNode.opType === 'Div' ? withScalar(model, scaleNode) : undefined;
  if (!scalar) return undefined;
  const [x, c] = scalar;
  if (scaleNode.opType === 'Mul' ? !near(c, Math.SQRT1_2) : !near(c, Math.SQRT2)) return undefined;
  // a1 = erf + 1
  const plus = soleConsumer(model, erf.outputs[0]!, 'Add');
  if (!plus || scalarFloat(model, other(plus, erf.outputs[0]!)) !== 1) return undefined;
  const a1 = plus.outputs[0]!;
  const g = soleConsumer(model, a1, 'Mul');
  if (!g) return undefined;
  const gOther = other(g, a1);
  if (!gOther) return undefined;
  // (i) x * (a1 * 0.5)
  if (scalarFloat(model, gOther) === 0.5) {
    const final = soleConsumer(model, g.outputs[0]!, 'Mul');
    if (!final || other(final, g.outputs[0]!) !== x) return undefined;
    return { x, nodes: [scaleNode, erf, plus, g, final], output: final.outputs[0]! };
  }
  // (ii) (x * a1) * 0.5
  if (gOther === x) {
    const final = soleConsumer(model, g.outputs[0]!, 'Mul');
    if (!final || scalarFloat(model, other(final, g.outputs[0]!)) !== 0.5) return undefined;
    return { x, nodes: [scaleNode, erf, plus, g, final], output: final.outputs[0]! };
  }
  // (iii) (x * 0.5) * a1
  const half = producedBy(model, gOther, 'Mul');
  if (half && model.onlyFeeds(gOther, g) && other(half, x) !== undefined && scalarFloat(model, other(half, x)) === 0.5) {
    return { x, nodes: [scaleNode, erf, plus, half, g], output: g.outputs[0]! };
  }
  return undefined;
}

export const fuseGelu: Pass = {
  name: 'gelu',
  run({ model, shapes }: PassContext): Record<string, number> {
    const fused = { Gelu: 0, BiasGelu: 0 };
    for (const erf of [...model.nodes]) {
      if (erf.opType !== 'Erf' || erf.domain !== '' || !model.nodes.includes(erf)) continue;
      const m = matchGelu(model, erf);
      if (!m) continue;
      const xs = shapes.shape(m.x);
      if (!xs || xs.length === 0 || shapes.elemType(m.x) !== ElemType.FLOAT || !sameShape(shapes.shape(m.output), xs)) continue;
      if (!selfContained(model, m.nodes, [m.output])) continue;
      // BiasGelu when x is a bias Add read by nothing but this GELU.
      const add = producedBy(model, m.x, 'Add');
      const readers = model.consumers(m.x);
      if (add && add.inputs.length === 2 && !model.isGraphOutput(m.x) && readers.every((r) => m.nodes.includes(r))) {
        const k = isVector(model, add.inputs[1], xs[xs.length - 1]) ? 1 : isVector(model, add.inputs[0], xs[xs.length - 1]) ? 0 : -1;
        if (k >= 0 && sameShape(shapes.shape(add.inputs[1 - k]!), xs)) {
          model.replace([add, ...m.nodes], [model.node('BiasGelu', [add.inputs[1 - k]!, add.inputs[k]!], [m.output], [], m.nodes[m.nodes.length - 1]!.order, MS_DOMAIN)]);
          fused.BiasGelu++;
          continue;
        }
      }
      model.replace(m.nodes, [model.node('Gelu', [m.x], [m.output], [], m.nodes[m.nodes.length - 1]!.order, MS_DOMAIN)]);
      fused.Gelu++;
    }
    return fused;
  },
};

export const fuseQuickGelu: Pass = {
  name: 'quick-gelu',
  run({ model, shapes }: PassContext): Record<string, number> {
    let fused = 0;
    for (const sigmoid of [...model.nodes]) {
      if (sigmoid.opType !== 'Sigmoid' || sigmoid.domain !== '' || !model.nodes.includes(sigmoid)) continue;
      const final = soleConsumer(model, sigmoid.outputs[0]!, 'Mul');
      if (!final) continue;
      const x = other(final, sigmoid.outputs[0]!);
      if (!x) continue;
      let alpha: number;
      const nodes = [sigmoid, final];
      if (sigmoid.inputs[0] === x) alpha = 1;
      else {
        const scaled = producedBy(model, sigmoid.inputs[0], 'Mul');
        const scalar = scaled && model.onlyFeeds(sigmoid.inputs[0]!, sigmoid) ? withScalar(model, scaled) : undefined;
        if (!scalar || scalar[0] !== x) continue;
        alpha = scalar[1];
        nodes.unshift(scaled!);
      }
      const xs = shapes.shape(x);
      if (!xs || shapes.elemType(x) !== ElemType.FLOAT || !sameShape(shapes.shape(final.outputs[0]!), xs)) continue;
      if (!selfContained(model, nodes, [final.outputs[0]!])) continue;
      model.replace(nodes, [model.node('QuickGelu', [x], [final.outputs[0]!], [attr.float('alpha', alpha)], final.order, MS_DOMAIN)]);
      fused++;
    }
    return { QuickGelu: fused };
  },
};
