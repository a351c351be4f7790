/**
 * Residual Add + LayerNormalization into com.microsoft SkipLayerNormalization.
 *
 *   [t = Add(p, bias)]  s = Add(x, t)  y = LayerNormalization(s, gamma, beta, axis -1, eps)
 *     => y, _, _, s = SkipLayerNormalization(x, p, gamma, beta, [bias], epsilon eps)
 *
 * Post-LN blocks (BERT, jina's text towers) read only y; pre-LN blocks (EVA-02, CLIP) read the
 * sum s again for the next residual: the op's fourth output (input + skip + bias) gives it
 * under its own name. A projection's bias Add in front of the residual is folded into the
 * op's bias input when nothing else reads the biased tensor.
 *
 * Matched exactly: x and the skip both float32, rank 3, the same shape (no broadcasting: the
 * embedding sums of a token table and a position table are left alone); LayerNormalization on
 * the last axis, stash_type 1, only its first output read; gamma, beta and bias 1-D float32
 * initializers of the hidden size.
 */
import { ElemType } from './proto.ts';
import { attr, floatAttr, intAttr, MS_DOMAIN, type Node } from './model.ts';
import { isVector, producedBy, selfContained, type Pass, type PassContext } from './match.ts';
import { sameShape } from './shapes.ts';

export const fuseSkipLayerNorm: Pass = {
  name: 'skip-layernorm',
  run({ model, shapes }: PassContext): Record<string, number> {
    let fused = 0;
    for (const ln of [...model.nodes]) {
      if (ln.opType !== 'LayerNormalization' || ln.domain !== '' || ln.inputs.length < 2) continue;
      const [sum, gamma, beta] = ln.inputs as [string, string, string | undefined];
      const shape = shapes.shape(sum);
      if (!shape || shape.length !== 3 || shapes.elemType(sum) !== ElemType.FLOAT) continue;
      const hidden = shape[2];
      const axis = intAttr(ln, 'axis', -1);
      if ((axis !== -1 && axis !== 2) || intAttr(ln, 'stash_type', 1) !== 1) continue;
      if (ln.outputs.slice(1).some((o) => o && (model.consumers(o).length > 0 || model.isGraphOutput(o)))) continue;
      if (!isVector(model, gamma, hidden) || (beta && !isVector(model, beta, hidden))) continue;
      const add = producedBy(model, sum, 'Add');
      if (!add || add.inputs.length !== 2) continue;
      const [a, b] = add.inputs as [string, string];
      if (!sameShape(shapes.shape(a), shape) || !sameShape(shapes.shape(b), shape)) continue;
      if (shapes.elemType(a) !== ElemType.FLOAT || shapes.elemType(b) !== ElemType.FLOAT) continue;

      // The residual stream is `input`; the block's output is `skip`, with its bias folded in.
      let input = a;
      let skip = b;
      let bias: string | undefined;
      let biasAdd: Node | undefined;
      for (const [x, t] of [[a, b], [b, a]] as const) {
        const candidate = producedBy(model, t, 'Add');
        if (!candidate || candidate.inputs.length !== 2 || !model.onlyFeeds(t, add)) continue;
        const k = isVector(model, candidate.inputs[1], hidden) ? 1 : isVector(model, candidate.inputs[0], hidden) ? 0 : -1;
        if (k < 0 || !sameShape(shapes.shape(candidate.inputs[1 - k]!), shape)) continue;
        input = x;
        skip = candidate.inputs[1 - k]!;
        bias = candidate.inputs[k]!;
        biasAdd = candidate;
        break;
      }
      const others = model.consumers(sum).filter((c) => c !== ln);
      const keepSum = others.length > 0 || model.isGraphOutput(sum);
      const removed = biasAdd ? [ln, add, biasAdd] : [ln, add];
      if (!selfContained(model, removed, [ln.outputs[0]!, ...(keepSum ? [sum] : [])])) continue;

      const inputs = [input, skip, gamma, beta ?? '', ...(bias ? [bias] : [])];
      while (inputs[inputs.length - 1] === '') inputs.pop();
      const outputs = [ln.outputs[0]!, ...(keepSum ? ['', '', sum] : [])];
      model.replace(removed, [model.node('SkipLayerNormalization', inputs, outputs, [attr.float('epsilon', floatAttr(ln, 'epsilon', 1e-5))], ln.order, MS_DOMAIN)]);
      fused++;
    }
    return { SkipLayerNormalization: fused };
  },
};
