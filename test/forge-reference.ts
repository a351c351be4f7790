/**
 * A plain-JavaScript forward pass of the forged towers, written from the architecture's
 * description (not from the ONNX graph), so the tests can check that the graphs compute what
 * they claim to. Slow and simple: for tiny models only.
 */
import type { TextDims, VisionDims } from '../src/forge/presets.ts';

export type Weights = Map<string, Float32Array>;

export type Matrix = Float64Array[]; // rows

export function w(weights: Weights, name: string): Float32Array {
  const t = weights.get(name);
  if (!t) throw new Error(`reference: no weight ${name}`);
  return t;
}

/** x [n, in] times W stored [in, out], plus bias. */
export function linear(x: Matrix, weight: Float32Array, bias: Float32Array | undefined, outDim: number): Matrix {
  const inDim = weight.length / outDim;
  return x.map((row) => {
    const out = new Float64Array(outDim);
    for (let i = 0; i < inDim; i++) {
      const xi = row[i]!;
      if (xi === 0) continue;
      for (let o = 0; o < outDim; o++) out[o] += xi * weight[i * outDim + o]!;
    }
    if (bias) for (let o = 0; o < outDim; o++) out[o] += bias[o]!;
    return out;
  });
}

export function layerNorm(x: Matrix, gamma: Float32Array, beta: Float32Array, eps: number): Matrix {
  return x.map((row) => {
    const n = row.length;
    const mean = row.reduce((s, v) => s + v, 0) / n;
    const variance = row.reduce((s, v) => s + (v - mean) ** 2, 0) / n;
    const inv = 1 / Math.sqrt(variance + eps);
    return row.map((v, i) => (v - mean) * inv * gamma[i]! + beta[i]!);
  });
}

export function add(a: Matrix, b: Matrix): Matrix {
  return a.map((row, r) => row.map((v, i) => v + b[r]![i]!));
}

function softmaxInPlace(row: Float64Array): void {
  let max = -Infinity;
  for (const v of row) max = Math.max(max, v);
  let sum = 0;
  for (let i = 0; i < row.length; i++) {
    row[i] = Math.exp(row[i]! - max);
    sum += row[i]!;
  }
  for (let i = 0; i < row.length; i++) row[i]! /= sum;
}

/** Multi-head attention over one sequence; `bias(h, i, j)` is added to the scaled scores. */
export function attention(q: Matrix, k: Matrix, v: Matrix, heads: number, bias: (h: number, i: number, j: number) => number): Matrix {
  const s = q.length;
  const dim = q[0]!.length;
  const headDim = dim / heads;
  const scale = 1 / Math.sqrt(headDim);
  const out: Matrix = Array.from({ length: s }, () => new Float64Array(dim));
  for (let h = 0; h < heads; h++) {
    const off = h * headDim;
    for (let i = 0; i < s; i++) {
      const scores = new Float64Array(s);
      for (let j = 0; j < s; j++) {
        let dot = 0;
        for (let d = 0; d < headDim; d++) dot += q[i]![off + d]! * k[j]![off + d]!;
        scores[j] = dot * scale + bias(h, i, j);
      }
      softmaxInPlace(scores);
      for (let j = 0; j < s; j++) {
        const p = scores[j]!;
        for (let d = 0; d < headDim; d++) out[i]![off + d] += p * v[j]![off + d]!;
      }
    }
  }
  return out;
}

const erf = (x: number): number => {
  // Abramowitz-Stegun 7.1.26 is too coarse for 1e-5 checks; use a series / continued fraction.
  const t = Math.abs(x);
  if (t < 3) {
    let sum = t;
    let term = t;
    for (let n = 1; n < 100; n++) {
      term *= (-t * t) / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17) break;
    }
    return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc continued fraction for large |x|.
  let f = 0;
  for (let n = 60; n >= 1; n--) f = n / 2 / (t + f);
  const erfc = Math.exp(-t * t) / Math.sqrt(Math.PI) / (t + f);
  return Math.sign(x) * (1 - erfc);
};

export const gelu = (x: number): number => 0.5 * x * (1 + erf(x / Math.SQRT2));
export const silu = (x: number): number => x / (1 + Math.exp(-x));

function alibiSlopes(n: number): number[] {
  const pow2 = (m: number): number[] => {
    const start = 2 ** (-8 / m);
    return Array.from({ length: m }, (_, i) => start ** (i + 1));
  };
  if ((n & (n - 1)) === 0) return pow2(n);
  const closest = 2 ** Math.floor(Math.log2(n));
  return [...pow2(closest), ...pow2(2 * closest).filter((_, i) => i % 2 === 0).slice(0, n - closest)];
}

/** text_embeds of one sequence; `mask` null means the graph has no mask input (plain mean). */
export function referenceText(d: TextDims, weights: Weights, ids: readonly number[], mask: readonly number[] | null): Float64Array {
  const H = d.hidden;
  const table = w(weights, 'embeddings.word_embeddings.weight');
  const typeRow = w(weights, 'embeddings.token_type_embeddings.weight').subarray(0, H);
  let x: Matrix = ids.map((id) => Float64Array.from({ length: H }, (_, i) => table[id * H + i]! + typeRow[i]!));
  x = layerNorm(x, w(weights, 'embeddings.LayerNorm.weight'), w(weights, 'embeddings.LayerNorm.bias'), d.layerNormEps);
  const slopes = alibiSlopes(d.heads);
  const keep = mask ?? ids.map(() => 1);
  const bias = (h: number, i: number, j: number): number => -slopes[h]! * Math.abs(i - j) + (keep[j] ? 0 : -1e30);
  for (let l = 0; l < d.layers; l++) {
    const p = `encoder.layer.${l}`;
    const lin = (name: string, input: Matrix, out: number, withBias = true): Matrix =>
      linear(input, w(weights, `${p}.${name}.weight`), withBias ? w(weights, `${p}.${name}.bias`) : undefined, out);
    const q = lin('attention.self.query', x, H);
    const k = lin('attention.self.key', x, H);
    const v = lin('attention.self.value', x, H);
    const context = attention(q, k, v, d.heads, bias);
    const attn = lin('attention.output.dense', context, H);
    const h1 = layerNorm(add(x, attn), w(weights, `${p}.attention.output.LayerNorm.weight`), w(weights, `${p}.attention.output.LayerNorm.bias`), d.layerNormEps);
    const gated = lin('mlp.gated_layers', h1, 2 * d.intermediate, false);
    const act = gated.map((row) => Float64Array.from({ length: d.intermediate }, (_, i) => gelu(row[i]!) * row[d.intermediate + i]!));
    const mlp = lin('mlp.wo', act, H);
    x = layerNorm(add(h1, mlp), w(weights, `${p}.mlp.layernorm.weight`), w(weights, `${p}.mlp.layernorm.bias`), d.layerNormEps);
  }
  const pooled = new Float64Array(H);
  let count = 0;
  x.forEach((row, t) => {
    if (!keep[t]) return;
    count++;
    for (let i = 0; i < H; i++) pooled[i] += row[i]!;
  });
  return pooled.map((v) => v / count);
}

export interface ReferenceVisionOptions {
  /** Prefix of every weight name ('vision_model.' in jina-clip-v2's combined graph). */
  prefix?: string;
  /** `mean` over patch tokens (jina-clip-v1) or the CLS token (jina-clip-v2), after the final LayerNorm. */
  pooling?: 'mean' | 'cls';
}

/**
 * image_embeds of one image given as normalised CHW pixels. A patch grid that does not fill
 * the image uses floor(size / patch) patches per side and ignores the pixels left over.
 */
export function referenceVision(v: VisionDims, projectionDim: number, weightMap: Weights, pixels: Float32Array, options: ReferenceVisionOptions = {}): Float64Array {
  const prefix = options.prefix ?? '';
  const weights: Weights = new Map([...weightMap].filter(([name]) => name.startsWith(prefix)).map(([name, t]) => [name.slice(prefix.length), t]));
  const W = v.width;
  const P = v.patchSize;
  const side = Math.floor(v.imageSize / P);
  const size = v.imageSize;
  const kernel = w(weights, 'patch_embed.proj.weight');
  const kernelBias = w(weights, 'patch_embed.proj.bias');
  const tokens: Matrix = [Float64Array.from(w(weights, 'cls_token'))];
  for (let pr = 0; pr < side; pr++) {
    for (let pc = 0; pc < side; pc++) {
      const out = Float64Array.from(kernelBias);
      for (let o = 0; o < W; o++) {
        let sum = 0;
        for (let c = 0; c < 3; c++) {
          for (let i = 0; i < P; i++) {
            for (let j = 0; j < P; j++) {
              sum += kernel[((o * 3 + c) * P + i) * P + j]! * pixels[c * size * size + (pr * P + i) * size + pc * P + j]!;
            }
          }
        }
        out[o] += sum;
      }
      tokens.push(out);
    }
  }
  const pos = w(weights, 'pos_embed');
  let x: Matrix = tokens.map((row, t) => row.map((val, i) => val + pos[t * W + i]!));

  // EVA-02 2D rope: per head, dims [0, hd/2) rotate with the row, [hd/2, hd) with the column,
  // frequency index f for the interleaved pair (2f, 2f+1) of each half.
  const headDim = v.headWidth;
  const heads = W / headDim;
  const half = headDim / 2;
  const rope = (vec: Float64Array, token: number): Float64Array => {
    if (token === 0) return vec;
    const patch = token - 1;
    const positions = [Math.floor(patch / side), patch % side].map((p) => (p / side) * v.ptHwSeqLen);
    const out = Float64Array.from(vec);
    for (let h = 0; h < heads; h++) {
      for (let axis = 0; axis < 2; axis++) {
        for (let f = 0; f < half / 2; f++) {
          const angle = positions[axis]! / 10000 ** ((2 * f) / half);
          const a = h * headDim + axis * half + 2 * f;
          const [x0, x1] = [vec[a]!, vec[a + 1]!];
          out[a] = x0 * Math.cos(angle) - x1 * Math.sin(angle);
          out[a + 1] = x1 * Math.cos(angle) + x0 * Math.sin(angle);
        }
      }
    }
    return out;
  };

  const eps = v.layerNormEps;
  const hidden = Math.trunc(W * v.mlpRatio); // EVA: int(dim * mlp_ratio)
  for (let b = 0; b < v.layers; b++) {
    const p = `blocks.${b}`;
    const ln = (name: string, input: Matrix): Matrix => layerNorm(input, w(weights, `${p}.${name}.weight`), w(weights, `${p}.${name}.bias`), eps);
    const lin = (name: string, input: Matrix, out: number, withBias = true): Matrix =>
      linear(input, w(weights, `${p}.${name}.weight`), withBias ? w(weights, `${p}.${name}.bias`) : undefined, out);
    const y = ln('norm1', x);
    const q = lin('attn.q_proj', y, W).map(rope);
    const k = lin('attn.k_proj', y, W, false).map(rope);
    const val = lin('attn.v_proj', y, W);
    const context = ln('attn.inner_attn_ln', attention(q, k, val, heads, () => 0));
    x = add(x, lin('attn.proj', context, W));
    const z = ln('norm2', x);
    const a = lin('mlp.w1', z, hidden);
    const g = lin('mlp.w2', z, hidden);
    const inner = ln('mlp.ffn_ln', a.map((row, t) => row.map((val2, i) => silu(val2) * g[t]![i]!)));
    x = add(x, lin('mlp.w3', inner, W));
  }
  const normed = layerNorm(x, w(weights, 'norm.weight'), w(weights, 'norm.bias'), eps);
  const pooled = new Float64Array(W);
  if (options.pooling === 'cls') pooled.set(normed[0]!);
  else for (let t = 1; t < normed.length; t++) for (let i = 0; i < W; i++) pooled[i] += normed[t]![i]! / (normed.length - 1);
  return linear([pooled], w(weights, 'head.weight'), w(weights, 'head.bias'), projectionDim)[0]!;
}
