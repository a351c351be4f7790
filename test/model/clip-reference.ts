/**
 * A plain-JavaScript forward pass of OpenAI CLIP's towers, written from Hugging Face's
 * modeling_clip.py (CLIPTextTransformer, CLIPVisionTransformer, CLIPEncoderLayer), not from
 * the forged ONNX graphs, so a test can check that the graphs compute CLIP. In float64, slow
 * and simple: for tiny models only. Linear weights are stored [in, out] as the forge writes them.
 */
import type { ClipTextDims, ClipVisionDims } from '../../src/forge/clip-presets.ts';
import { linear, w, type Matrix } from '../forge-reference.ts';

export type Weights = Map<string, Float32Array>;

function layerNorm(x: Matrix, weights: Weights, name: string, eps: number): Matrix {
  const gamma = w(weights, `${name}.weight`);
  const beta = w(weights, `${name}.bias`);
  return x.map((row) => {
    const mean = row.reduce((s, v) => s + v, 0) / row.length;
    const variance = row.reduce((s, v) => s + (v - mean) ** 2, 0) / row.length;
    return row.map((v, i) => ((v - mean) / Math.sqrt(variance + eps)) * gamma[i]! + beta[i]!);
  });
}

const dense = (x: Matrix, weights: Weights, name: string, outDim: number): Matrix =>
  linear(x, w(weights, `${name}.weight`), w(weights, `${name}.bias`), outDim);

interface LayerDims {
  hidden: number;
  heads: number;
  intermediate: number;
  layerNormEps: number;
}

/** CLIPEncoderLayer; `visible(i, j)`: may query i attend to key j. */
function encoderLayer(x: Matrix, d: LayerDims, weights: Weights, prefix: string, visible: (i: number, j: number) => boolean): Matrix {
  const headDim = d.hidden / d.heads;
  const y = layerNorm(x, weights, `${prefix}.layer_norm1`, d.layerNormEps);
  const q = dense(y, weights, `${prefix}.self_attn.q_proj`, d.hidden).map((r) => r.map((v) => v * headDim ** -0.5));
  const k = dense(y, weights, `${prefix}.self_attn.k_proj`, d.hidden);
  const v = dense(y, weights, `${prefix}.self_attn.v_proj`, d.hidden);
  const context: Matrix = x.map(() => new Float64Array(d.hidden));
  for (let h = 0; h < d.heads; h++) {
    for (let i = 0; i < x.length; i++) {
      const scores: number[] = [];
      for (let j = 0; j < x.length; j++) {
        let s = 0;
        for (let c = 0; c < headDim; c++) s += q[i]![h * headDim + c]! * k[j]![h * headDim + c]!;
        scores.push(visible(i, j) ? s : -Infinity);
      }
      const max = Math.max(...scores);
      const exps = scores.map((s) => Math.exp(s - max));
      const sum = exps.reduce((a, b) => a + b, 0);
      for (let j = 0; j < x.length; j++) {
        for (let c = 0; c < headDim; c++) context[i]![h * headDim + c] += (exps[j]! / sum) * v[j]![h * headDim + c]!;
      }
    }
  }
  const attended = dense(context, weights, `${prefix}.self_attn.out_proj`, d.hidden);
  const h1 = x.map((row, i) => row.map((value, c) => value + attended[i]![c]!));
  const z = layerNorm(h1, weights, `${prefix}.layer_norm2`, d.layerNormEps);
  const inner = dense(z, weights, `${prefix}.mlp.fc1`, d.intermediate).map((r) => r.map((t) => t / (1 + Math.exp(-1.702 * t))));
  const mlp = dense(inner, weights, `${prefix}.mlp.fc2`, d.hidden);
  return h1.map((row, i) => row.map((value, c) => value + mlp[i]![c]!));
}

/** CLIPTextModelWithProjection's text_embeds for one unpadded sequence of ids. */
export function referenceClipText(d: ClipTextDims, projectionDim: number, weights: Weights, ids: readonly number[]): Float64Array {
  const tokens = w(weights, 'text_model.embeddings.token_embedding.weight');
  const positions = w(weights, 'text_model.embeddings.position_embedding.weight');
  let x: Matrix = ids.map((id, i) => Float64Array.from({ length: d.hidden }, (_, c) => tokens[id * d.hidden + c]! + positions[i * d.hidden + c]!));
  for (let layer = 0; layer < d.layers; layer++) {
    x = encoderLayer(x, d, weights, `text_model.encoder.layers.${layer}`, (i, j) => j <= i);
  }
  x = layerNorm(x, weights, 'text_model.final_layer_norm', d.layerNormEps);
  const eos = ids.indexOf(Math.max(...ids));
  return linear([x[eos]!], w(weights, 'text_projection.weight'), undefined, projectionDim)[0]!;
}

/** CLIPVisionModelWithProjection's image_embeds for one CHW image. */
export function referenceClipVision(v: ClipVisionDims, projectionDim: number, weights: Weights, pixels: Float32Array): Float64Array {
  const side = v.imageSize / v.patchSize;
  const p = v.patchSize;
  const kernel = w(weights, 'vision_model.embeddings.patch_embedding.weight');
  const positions = w(weights, 'vision_model.embeddings.position_embedding.weight');
  const cls = w(weights, 'vision_model.embeddings.class_embedding');
  let x: Matrix = [Float64Array.from(cls)];
  for (let py = 0; py < side; py++) {
    for (let px = 0; px < side; px++) {
      const token = new Float64Array(v.hidden);
      for (let h = 0; h < v.hidden; h++) {
        let s = 0;
        for (let c = 0; c < 3; c++) {
          for (let ky = 0; ky < p; ky++) {
            for (let kx = 0; kx < p; kx++) {
              s += kernel[((h * 3 + c) * p + ky) * p + kx]! * pixels[(c * v.imageSize + py * p + ky) * v.imageSize + px * p + kx]!;
            }
          }
        }
        token[h] = s;
      }
      x.push(token);
    }
  }
  x = x.map((row, i) => row.map((value, c) => value + positions[i * v.hidden + c]!));
  x = layerNorm(x, weights, 'vision_model.pre_layrnorm', v.layerNormEps);
  for (let layer = 0; layer < v.layers; layer++) {
    x = encoderLayer(x, v, weights, `vision_model.encoder.layers.${layer}`, () => true);
  }
  const pooled = layerNorm([x[0]!], weights, 'vision_model.post_layernorm', v.layerNormEps);
  return linear(pooled, w(weights, 'visual_projection.weight'), undefined, projectionDim)[0]!;
}
