// The v2 colour model (v2-colour, what `--model demo-v2` serves): colour words in eight
// languages and solid colour images find each other through the combined graph, with or
// without the task instruction, through padding; the forge makes it the same every time.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Tokenizer } from '@huggingface/tokenizers';
import * as ort from 'onnxruntime-node';
import { COLOUR_LANGUAGES, COLOURS, colourWordList, forgeModel, normalisePixel, V2_PRESETS, V2_TASK_INSTRUCTIONS } from '../src/forge/index.ts';
import { v2ColourTokenIds } from '../src/forge/v2-colour.ts';
import { buildV2Vocab } from '../src/forge/v2-vocab.ts';

const preset = V2_PRESETS['v2-colour'];
const S = preset.vision.imageSize;
const PLANE = S * S;
const INSTRUCTION = V2_TASK_INSTRUCTIONS['retrieval.query'];
let root: string;
let dir: string;
let tokenizer: Tokenizer;
let session: ort.InferenceSession;

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'tessera-forge-v2-colour-'));
  dir = join(root, 'colour');
  await forgeModel({ preset: 'v2-colour', outDir: dir });
  tokenizer = new Tokenizer(JSON.parse(await readFile(join(dir, 'tokenizer.json'), 'utf8')), JSON.parse(await readFile(join(dir, 'tokenizer_config.json'), 'utf8')));
  session = await ort.InferenceSession.create(join(dir, 'onnx', 'model.onnx'));
});

after(async () => {
  await session.release();
  await rm(root, { recursive: true, force: true });
});

const noImages = (): ort.Tensor => new ort.Tensor('float32', new Float32Array(0), [0, 3, S, S]);

/** l2norm_text_embeddings of `texts`, one padded batch (pad id 1, as the engine pads). */
async function embedTexts(texts: readonly string[]): Promise<Float32Array[]> {
  const ids = texts.map((t) => tokenizer.encode(t).ids);
  const length = Math.max(...ids.map((row) => row.length));
  const flat = BigInt64Array.from(ids.flatMap((row) => [...row, ...Array<number>(length - row.length).fill(preset.text.padId)]), (v) => BigInt(v));
  const out = await session.run({ input_ids: new ort.Tensor('int64', flat, [texts.length, length]), pixel_values: noImages() });
  return split(out.l2norm_text_embeddings!);
}

/** l2norm_image_embeddings of CHW images, with the dummy text transformers.js sends. */
async function embedImages(images: readonly Float32Array[]): Promise<Float32Array[]> {
  const data = new Float32Array(images.length * 3 * PLANE);
  images.forEach((image, i) => data.set(image, i * 3 * PLANE));
  const ones = new ort.Tensor('int64', BigInt64Array.from(images, () => 1n), [images.length, 1]);
  const out = await session.run({ input_ids: ones, pixel_values: new ort.Tensor('float32', data, [images.length, 3, S, S]) });
  return split(out.l2norm_image_embeddings!);
}

function split(t: ort.Tensor): Float32Array[] {
  const [n, dim] = t.dims as [number, number];
  return Array.from({ length: n }, (_, r) => (t.data as Float32Array).slice(r * dim, (r + 1) * dim));
}

function solidImage(channels: readonly number[]): Float32Array {
  const image = new Float32Array(3 * PLANE);
  for (let c = 0; c < 3; c++) image.fill(channels[c]!, c * PLANE, (c + 1) * PLANE);
  return image;
}

const dot = (a: Float32Array, b: Float32Array): number => a.reduce((s, v, i) => s + v * b[i]!, 0);
const nearest = (query: Float32Array, candidates: readonly Float32Array[]): number => {
  const sims = candidates.map((c) => dot(query, c));
  return sims.indexOf(Math.max(...sims));
};

describe('the v2 colour model', () => {
  test('every colour word in every language is one or more pieces of its own colour only', () => {
    const vocab = buildV2Vocab(preset.text.vocabSize, preset.text.scripts);
    const owner = new Map<number, number>();
    v2ColourTokenIds(vocab).forEach((ids, c) => ids.forEach((id) => owner.set(id, c)));
    for (const { word, colourIndex } of colourWordList()) {
      for (const text of [word, `${INSTRUCTION}${word}`]) {
        const ids: number[] = tokenizer.encode(text).ids;
        const colours = ids.filter((id) => owner.has(id)).map((id) => owner.get(id));
        assert.ok(colours.length > 0 && colours.every((c) => c === colourIndex), `${JSON.stringify(text)}: ${tokenizer.encode(text).tokens.join(' ')}`);
      }
    }
  });

  test('each colour word, in each language, alone or after the task instruction, is nearest its solid colour', async () => {
    assert.deepEqual(COLOUR_LANGUAGES, ['en', 'fr', 'de', 'es', 'ru', 'ja', 'zh', 'ar']);
    const images = await embedImages(COLOURS.map((c) => solidImage(normalisePixel(c.rgb))));
    const words = colourWordList();
    // One padded batch: short words share it with long instructed ones.
    const texts = [...words.map((w) => w.word), ...words.map((w) => `${INSTRUCTION}${w.word}`)];
    const vectors = await embedTexts(texts);
    const wrong = texts.filter((text, i) => nearest(vectors[i]!, images) !== words[i % words.length]!.colourIndex);
    assert.deepEqual(wrong, []);
    // And each solid image is nearest the English word of its colour.
    const english = await embedTexts(COLOURS.map((c) => c.name));
    images.forEach((image, c) => assert.equal(COLOURS[nearest(image, english)]!.name, COLOURS[c]!.name));
  });

  test('words of different languages for one colour embed alike; a text without colour embeds to zero', async () => {
    const [red, rouge, rot, rojo, krasnyi, aka, hongse, ahmar] = await embedTexts(['a red car', 'une voiture rouge', 'Das Auto ist rot', 'un coche rojo', 'красная машина', '赤い車', '红色的汽车', 'سيارة حمراء']);
    for (const other of [rouge, rot, rojo, krasnyi, aka, hongse, ahmar]) assert.ok(dot(red!, other!) > 0.999);
    const [none] = await embedTexts([`${INSTRUCTION}a photo of a car parked near the house`]);
    assert.ok(none!.every((v) => v === 0));
  });

  test('an image mostly of one colour is nearest that colour; unnormalised pixels get colours wrong', async () => {
    const texts = await embedTexts(COLOURS.map((c) => c.name));
    const red = normalisePixel([255, 0, 0]);
    const blue = normalisePixel([0, 0, 255]);
    const image = new Float32Array(3 * PLANE);
    for (let y = 0; y < S; y++) {
      for (let x = 0; x < S; x++) {
        const rgb = x < S * 0.7 ? red : blue;
        for (let c = 0; c < 3; c++) image[c * PLANE + y * S + x] = rgb[c]!;
      }
    }
    const [mixed] = await embedImages([image]);
    assert.equal(COLOURS[nearest(mixed!, texts)]!.name, 'red');
    assert.ok(dot(mixed!, texts[COLOURS.findIndex((c) => c.name === 'blue')]!) > 0.1, 'the minority colour shows too');

    const raw = await embedImages(COLOURS.map((c) => solidImage(c.rgb.map((v) => v / 255))));
    assert.ok(raw.some((vec, c) => nearest(vec, texts) !== c), 'unnormalised pixels still found every colour');
  });

  test('is the same bytes every time it is forged', async () => {
    const again = join(root, 'again');
    await forgeModel({ preset: 'v2-colour', outDir: again });
    for (const file of ['config.json', 'tokenizer.json', 'onnx/model.onnx', 'onnx/model.onnx_data']) {
      assert.ok((await readFile(join(dir, file))).equals(await readFile(join(again, file))), file);
    }
  });
});
