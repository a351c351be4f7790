/**
 * A plain-JavaScript forward pass of jina-clip-v2's towers, written from the architecture's
 * description (REFERENCE.md section 8, the jina-embeddings-v3 and EVA-02 papers' code), not
 * from the ONNX graph, so the tests can check that the forged graph computes what it claims
 * to. Slow and simple: for tiny models only.
 */
import type { V2Preset, V2TextDims } from '../src/forge/v2-presets.ts';
import { add, attention, gelu, layerNorm, linear, referenceVision, w, type Matrix, type Weights } from './forge-reference.ts';

/**
 * text_embeddings of one sequence (pads included, as the graph receives it): XLM-RoBERTa
 * with rotary position embedding (GPT-NeoX halves, base d.rotaryBase) on q and k of every
 * head, post-LayerNorm layers, pad keys masked, mean over the non-pad tokens.
 */
export function referenceV2Text(d: V2TextDims, weights: Weights, ids: readonly number[]): Float64Array {
  const H = d.hidden;
  const headDim = H / d.heads;
  const half = headDim / 2;
  const p = 'text_model.roberta';
  const table = w(weights, `${p}.embeddings.word_embeddings.weight`);
  const typeRow = w(weights, `${p}.embeddings.token_type_embeddings.weight`).subarray(0, H);
  let x: Matrix = ids.map((id) => Float64Array.from({ length: H }, (_, i) => table[id * H + i]! + typeRow[i]!));
  x = layerNorm(x, w(weights, `${p}.emb_ln.weight`), w(weights, `${p}.emb_ln.bias`), d.layerNormEps);
  const keep = ids.map((id) => id !== d.padId);

  // Position t, pair (j, j + half) of each head, rotated by t * base^(-2j / headDim).
  const rotate = (vec: Float64Array, t: number): Float64Array => {
    const out = Float64Array.from(vec);
    for (let h = 0; h < d.heads; h++) {
      for (let j = 0; j < half; j++) {
        const angle = t / d.rotaryBase ** ((2 * j) / headDim);
        const a = h * headDim + j;
        const b = a + half;
        out[a] = vec[a]! * Math.cos(angle) - vec[b]! * Math.sin(angle);
        out[b] = vec[b]! * Math.cos(angle) + vec[a]! * Math.sin(angle);
      }
    }
    return out;
  };
  const maskBias = (_h: number, _i: number, j: number): number => (keep[j] ? 0 : -1e30);

  for (let l = 0; l < d.layers; l++) {
    const lp = `${p}.encoder.layers.${l}`;
    const lin = (name: string, input: Matrix, out: number): Matrix => linear(input, w(weights, `${lp}.${name}.weight`), w(weights, `${lp}.${name}.bias`), out);
    const ln = (name: string, input: Matrix): Matrix => layerNorm(input, w(weights, `${lp}.${name}.weight`), w(weights, `${lp}.${name}.bias`), d.layerNormEps);
    const qkv = lin('mixer.Wqkv', x, 3 * H);
    const q = qkv.map((row, t) => rotate(row.slice(0, H), t));
    const k = qkv.map((row, t) => rotate(row.slice(H, 2 * H), t));
    const v = qkv.map((row) => row.slice(2 * H));
    const h1 = ln('norm1', add(x, lin('mixer.out_proj', attention(q, k, v, d.heads, maskBias), H)));
    const inner = lin('mlp.fc1', h1, d.intermediate).map((row) => row.map(gelu));
    x = ln('norm2', add(h1, lin('mlp.fc2', inner, H)));
  }
  const pooled = new Float64Array(H);
  const count = keep.filter(Boolean).length;
  x.forEach((row, t) => {
    if (keep[t]) for (let i = 0; i < H; i++) pooled[i] += row[i]! / count;
  });
  return pooled;
}

/** image_embeddings of one image (normalised CHW pixels): EVA02 with CLS pooling, weights under vision_model. */
export function referenceV2Vision(preset: V2Preset, weights: Weights, pixels: Float32Array): Float64Array {
  return referenceVision(preset.vision, preset.projectionDim, weights, pixels, { prefix: 'vision_model.', pooling: 'cls' });
}

export function l2normalise(v: ArrayLike<number>): Float64Array {
  const norm = Math.sqrt(Array.from(v).reduce((s, x) => s + x * x, 0));
  return Float64Array.from(v, (x) => x / Math.max(norm, 1e-12));
}
