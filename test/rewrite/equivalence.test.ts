// Every forge preset (jina-clip v1 and v2, OpenAI CLIP; fp32 and q8): the rewritten graph gives
// the original's embeddings (cosine >= 0.99999 on every row, the same nearest neighbours) on the
// same inputs, with every pass on and with the default passes, and the rewrite fuses exactly
// what the preset holds: every attention, every GELU, every residual + LayerNorm it can.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { forgeModel, type PresetName } from '../../src/forge/index.ts';
import { DEFAULT_PASSES, PASSES, passesNamed, rewriteModelFile } from '../../src/model/rewrite/index.ts';
import { tempDir } from '../helpers/models.ts';
import { assertSameOutputs, nearest, opCounts, rows, runGraph, seeded, type Feeds } from './harness.ts';

const V1_TEXT = { MergedMatMul: 2, MultiHeadAttention: 2, SkipLayerNormalization: 4, Gelu: 2 };
const V1_VISION = { MergedMatMul: 4, MultiHeadAttention: 2, SkipLayerNormalization: 4, QuickGelu: 2 };
const CLIP_TEXT = { MergedMatMul: 2, MultiHeadAttention: 2, SkipLayerNormalization: 4, QuickGelu: 2 };
const CLIP_VISION = { MergedMatMul: 2, MultiHeadAttention: 2, SkipLayerNormalization: 3, QuickGelu: 2 };
const V2 = { MergedMatMul: 4, MultiHeadAttention: 4, SkipLayerNormalization: 8, BiasGelu: 2, QuickGelu: 2 };

/** q8 graphs merge their quantised projections instead. */
function q8(counts: Record<string, number>): Record<string, number> {
  const { MergedMatMul, ...rest } = counts as Record<string, number> & { MergedMatMul?: number };
  return MergedMatMul ? { MergedMatMulInteger: MergedMatMul, ...rest } : rest;
}

interface Case {
  preset: PresetName;
  attentionMask?: boolean;
  quantized: boolean;
  /** Files and what every pass should fuse in each. */
  graphs: { file: string; tower: 'text' | 'vision' | 'both'; fused: Record<string, number> }[];
  vocab: number;
  imageSize: number;
  padId: number;
}

const v1 = (preset: PresetName): Case => ({
  preset,
  quantized: true,
  vocab: 1000,
  imageSize: 224,
  padId: 0,
  graphs: [
    { file: 'onnx/text_model.onnx', tower: 'text', fused: V1_TEXT },
    { file: 'onnx/vision_model.onnx', tower: 'vision', fused: V1_VISION },
    { file: 'onnx/text_model_quantized.onnx', tower: 'text', fused: q8(V1_TEXT) },
    { file: 'onnx/vision_model_quantized.onnx', tower: 'vision', fused: q8(V1_VISION) },
  ],
});
const clip = (attentionMask: boolean): Case => ({
  preset: 'clip-tiny',
  attentionMask,
  quantized: false,
  vocab: 1000,
  imageSize: 224,
  padId: 2,
  graphs: [
    { file: 'onnx/text_model.onnx', tower: 'text', fused: CLIP_TEXT },
    { file: 'onnx/vision_model.onnx', tower: 'vision', fused: CLIP_VISION },
  ],
});
const v2 = (preset: PresetName): Case => ({
  preset,
  quantized: true,
  vocab: 6000,
  imageSize: 512,
  padId: 1,
  graphs: [
    { file: 'onnx/model.onnx', tower: 'both', fused: V2 },
    { file: 'onnx/model_quantized.onnx', tower: 'both', fused: q8(V2) },
  ],
});

const CASES: Case[] = [v1('tiny'), v1('colour'), clip(false), clip(true), v2('v2-tiny'), v2('v2-colour')];

const LENGTHS = [16, 12, 9, 5, 3, 1];

function textFeeds(c: Case, withMask: boolean): Feeds {
  const random = seeded(11);
  const s = LENGTHS[0]!;
  const ids = new BigInt64Array(LENGTHS.length * s);
  const mask = new BigInt64Array(LENGTHS.length * s);
  LENGTHS.forEach((len, r) => {
    for (let i = 0; i < s; i++) {
      const real = i < len;
      ids[r * s + i] = real ? BigInt(3 + Math.floor(random() * (c.vocab - 3))) : BigInt(c.padId);
      mask[r * s + i] = real ? 1n : 0n;
    }
  });
  const feeds: Feeds = { input_ids: new ort.Tensor('int64', ids, [LENGTHS.length, s]) };
  if (withMask) feeds.attention_mask = new ort.Tensor('int64', mask, [LENGTHS.length, s]);
  return feeds;
}

function imageFeeds(c: Case, batch = 4): Feeds {
  const random = seeded(5);
  const n = batch * 3 * c.imageSize * c.imageSize;
  return { pixel_values: new ort.Tensor('float32', Float32Array.from({ length: n }, () => random() * 4 - 2), [batch, 3, c.imageSize, c.imageSize]) };
}

/** What each graph embeds: [texts, images] outputs by name, over its own inputs. */
async function embed(path: string, c: Case, tower: Case['graphs'][number]['tower']): Promise<{ texts?: Record<string, ort.Tensor>; images?: Record<string, ort.Tensor> }> {
  const withMask = c.preset.startsWith('v2') ? false : c.preset === 'clip-tiny' ? c.attentionMask === true : true;
  if (tower === 'text') return { texts: await runGraph(path, textFeeds(c, withMask)) };
  if (tower === 'vision') return { images: await runGraph(path, imageFeeds(c)) };
  // v2's combined graph, fed the way tessera and transformers.js feed it for one modality.
  const emptyImages = { pixel_values: new ort.Tensor('float32', new Float32Array(0), [0, 3, c.imageSize, c.imageSize]) };
  const onePad = { input_ids: new ort.Tensor('int64', new BigInt64Array(4).fill(1n), [4, 1]) };
  return {
    texts: await runGraph(path, { ...textFeeds(c, false), ...emptyImages }),
    images: await runGraph(path, { ...imageFeeds(c), ...onePad }),
  };
}

const embeddingOf = (outputs: Record<string, ort.Tensor> | undefined, kind: 'text' | 'image'): Float32Array[] => {
  if (!outputs) return [];
  const name = Object.keys(outputs).find((n) => n === `${kind}_embeds` || n === `${kind}_embeddings`)!;
  return rows(outputs[name]!);
};

for (const c of CASES) {
  const label = `${c.preset}${c.attentionMask === undefined ? '' : c.attentionMask ? ' (attention_mask)' : ' (input_ids only)'}`;
  test(`rewrite of ${label}: same embeddings and neighbours, every pass and the default ones`, async () => {
    const dir = await tempDir('tessera-rewrite-');
    await forgeModel({ preset: c.preset, outDir: dir, quantized: c.quantized, ...(c.attentionMask === undefined ? {} : { attentionMask: c.attentionMask }) });
    const vectors: Record<string, { texts: Float32Array[]; images: Float32Array[] }> = {};
    for (const g of c.graphs) {
      const source = join(dir, g.file);
      const original = await embed(source, c, g.tower);
      const collect = (which: string, outputs: Awaited<ReturnType<typeof embed>>): void => {
        if (g.file.includes('quantized')) return;
        const v = (vectors[which] ??= { texts: [], images: [] });
        v.texts.push(...embeddingOf(outputs.texts, 'text'));
        v.images.push(...embeddingOf(outputs.images, 'image'));
      };
      collect('original', original);
      for (const [variant, passes] of [['all', PASSES], ['default', passesNamed(DEFAULT_PASSES)]] as const) {
        const out = source.replace(/\.onnx$/, `.${variant}.onnx`);
        const result = rewriteModelFile(source, out, passes);
        const expected = variant === 'all' ? g.fused : Object.fromEntries(Object.entries(g.fused).filter(([op]) => !/Merged|SkipLayer/.test(op)));
        assert.deepEqual(result.fused, expected, `${g.file} (${variant}): fused ops`);
        // Nothing of the patterns is left behind.
        const ops = opCounts(out);
        for (const gone of ['Softmax', 'Erf', 'Sigmoid']) assert.equal(ops[gone], undefined, `${g.file} (${variant}): a ${gone} was not fused`);
        const rewritten = await embed(out, c, g.tower);
        for (const kind of ['texts', 'images'] as const) {
          if (original[kind]) assertSameOutputs(original[kind]!, rewritten[kind]!, `${label} ${g.file} (${variant}) ${kind}`);
        }
        collect(variant, rewritten);
      }
    }
    // Nearest neighbours: each text's nearest image, text and each image's nearest image.
    const ref = vectors.original!;
    for (const variant of ['all', 'default']) {
      const v = vectors[variant]!;
      assert.deepEqual(nearest(v.texts, v.images, false), nearest(ref.texts, ref.images, false), `${label} (${variant}): nearest image of each text`);
      assert.deepEqual(nearest(v.texts, v.texts, true), nearest(ref.texts, ref.texts, true), `${label} (${variant}): nearest text of each text`);
      assert.deepEqual(nearest(v.images, v.images, true), nearest(ref.images, ref.images, true), `${label} (${variant}): nearest image of each image`);
    }
  });
}
