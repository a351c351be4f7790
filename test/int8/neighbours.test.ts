// Every q8 variant keeps the demo model's answers: on the colour preset (the hand-set model
// behind --model demo), each colour word's nearest image and each image's nearest word are
// those fp32 gives, for the hub-like file and each of its rewrites.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { COLOURS, forgeModel, normalisePixel } from '../../src/forge/index.ts';
import { cosine } from '../../src/engine/vectors.ts';
import { applyVariant, detectCpuInt8Features, INT8_VARIANTS, OnnxFile, planInt8, summarizeInt8 } from '../../src/model/int8/index.ts';
import { TextTokenizer } from '../../src/text/tokenizer.ts';
import { tempDir } from '../helpers/models.ts';
import { graphBytes } from './helpers.ts';

async function embed(bytes: Uint8Array, feeds: Record<string, ort.Tensor>, items: number): Promise<Float32Array[]> {
  const session = await ort.InferenceSession.create(bytes, { graphOptimizationLevel: 'basic', intraOpNumThreads: 1 });
  try {
    const out = (await session.run(feeds))[session.outputNames[0]!]!.data as Float32Array;
    const dim = out.length / items;
    return Array.from({ length: items }, (_, k) => out.slice(k * dim, (k + 1) * dim));
  } finally {
    await session.release();
  }
}

const nearest = (query: Float32Array, pool: Float32Array[]): number => pool.reduce((best, v, k) => (cosine(query, v) > cosine(query, pool[best]!) ? k : best), 0);

test('the hub-like q8 of the colour model, and each form of it the plan may run on this CPU, keep the nearest neighbours', async (t) => {
  const dir = await tempDir('tessera-int8-colour-');
  await forgeModel({ preset: 'colour', outDir: dir, quantized: true, q8Style: 'hub-like' });
  // Solid images of each colour and of colours between two of them (the harder cases).
  const rgbs = [...COLOURS.map((c) => c.rgb), [200, 30, 30], [30, 90, 200], [240, 200, 40], [90, 90, 90], [250, 140, 20]] as const;
  const size = 3 * 224 * 224;
  const pixels = new Float32Array(rgbs.length * size);
  rgbs.forEach((rgb, k) => {
    const n = normalisePixel(rgb);
    for (let c = 0; c < 3; c++) pixels.fill(n[c]!, k * size + c * 224 * 224, k * size + (c + 1) * 224 * 224);
  });
  const imageFeeds = { pixel_values: new ort.Tensor('float32', pixels, [rgbs.length, 3, 224, 224]) };
  const tokenizer = await TextTokenizer.load(dir);
  const texts = COLOURS.map((c) => `a photo of something ${c.words[0]}`);
  const ids = texts.map((s) => tokenizer.encode(s, true).ids);
  const length = Math.max(...ids.map((r) => r.length));
  const flat = new BigInt64Array(ids.length * length).fill(BigInt(tokenizer.padId));
  const mask = new BigInt64Array(ids.length * length);
  ids.forEach((r, k) => r.forEach((id, j) => { flat[k * length + j] = BigInt(id); mask[k * length + j] = 1n; }));
  const textFeeds = { input_ids: new ort.Tensor('int64', flat, [ids.length, length]), attention_mask: new ort.Tensor('int64', mask, [ids.length, length]) };

  const answers = async (vision: Uint8Array, text: Uint8Array) => {
    const images = await embed(vision, imageFeeds, rgbs.length);
    const words = await embed(text, textFeeds, texts.length);
    return { wordToImage: words.map((w) => nearest(w, images)), imageToWord: images.map((i) => nearest(i, words)) };
  };
  const reference = await answers(await graphBytes(dir, 'vision', false), await graphBytes(dir, 'text', false));
  const visionQ8 = await graphBytes(dir, 'vision', true);
  const textQ8 = await graphBytes(dir, 'text', true);
  // What the plan may run here, for either tower. The 8-bit signed form on a CPU whose int8
  // kernel saturates (AVX2 without VNNI) is not among them: it is measured and reported only.
  const features = detectCpuInt8Features();
  const eligible = new Set([visionQ8, textQ8].flatMap((b) => planInt8(features, summarizeInt8(OnnxFile.parse(b))).candidates));
  for (const variant of INT8_VARIANTS) {
    const v = OnnxFile.parse(visionQ8);
    applyVariant(v, variant);
    const w = OnnxFile.parse(textQ8);
    applyVariant(w, variant);
    const got = await answers(v.toBytes(), w.toBytes());
    const same = JSON.stringify(got) === JSON.stringify(reference);
    t.diagnostic(`${variant}${eligible.has(variant) ? '' : ' (not run on this CPU)'}: image -> word ${got.imageToWord.join(',')}, word -> image ${got.wordToImage.join(',')}; fp32 ${reference.imageToWord.join(',')} / ${reference.wordToImage.join(',')}${same ? '' : ' DIFFERENT'}`);
    if (eligible.has(variant)) assert.deepEqual(got, reference, variant);
  }
});
