// The demo (colour) model end to end, through real codecs and the real preprocessing:
// every colour word finds its image and every image finds its colour word.
import assert from 'node:assert/strict';
import { before, after, describe, test } from 'node:test';
import sharp from 'sharp';
import { Embedder } from '../../src/engine/embedder.ts';
import { preprocessImage } from '../../src/image/preprocess.ts';
import { cosine } from '../helpers/models.ts';
import { noiseImage, solidImage } from '../helpers/images.ts';

const COLOURS: Record<string, [number, number, number]> = {
  red: [220, 20, 20],
  green: [30, 160, 40],
  blue: [20, 40, 220],
  yellow: [240, 220, 30],
  orange: [250, 140, 0],
  purple: [130, 30, 160],
  white: [250, 250, 250],
  black: [10, 10, 10],
};
const NAMES = Object.keys(COLOURS);

/** A photo-like image dominated by one colour: a noisy patch over a quarter of it. */
async function dominatedImage(rgb: [number, number, number], seed: number): Promise<Buffer> {
  const patch = await noiseImage(160, 120, seed);
  const base = await solidImage(320, 240, rgb);
  return sharp(base).composite([{ input: patch, left: 20, top: 10 }]).jpeg({ quality: 90 }).toBuffer();
}

function argmax(values: number[]): number {
  return values.reduce((best, v, i) => (v > values[best]! ? i : best), 0);
}

/** For each query, the index of its nearest target by cosine. */
function nearest(queries: Float32Array[], targets: Float32Array[]): number[] {
  return queries.map((q) => argmax(targets.map((t) => cosine(q, t))));
}

const identity = NAMES.map((_, i) => i);

describe('the colour model (--model demo)', () => {
  let embedder: Embedder;
  let textVectors: Float32Array[];
  let solid: Buffer[];
  before(async () => {
    embedder = await Embedder.load('demo');
    textVectors = (await embedder.embedTexts(NAMES.map((c) => `a photo of a ${c} car`))).map((r) => r.embedding);
    solid = await Promise.all(NAMES.map((c) => solidImage(300, 200, COLOURS[c]!)));
  });
  after(() => embedder.close());

  test('text-to-image and image-to-text top-1 are right for solid colours', async () => {
    const images = (await embedder.embedImages(solid)).map((r) => r.embedding);
    assert.deepEqual(nearest(textVectors, images), identity, 'text -> image');
    assert.deepEqual(nearest(images, textVectors), identity, 'image -> text');
  });

  test('photos dominated by one colour find their colour word, and back', async () => {
    const photos = await Promise.all(NAMES.map((c, i) => dominatedImage(COLOURS[c]!, i + 1)));
    const images = (await embedder.embedImages(photos)).map((r) => r.embedding);
    assert.deepEqual(nearest(images, textVectors), identity, 'image -> text');
    assert.deepEqual(nearest(textVectors, images), identity, 'text -> image');
  });

  test('words that name no colour carry no signal', async () => {
    const [plain] = await embedder.embedTexts(['a photo of a car'], { normalize: false });
    const [coloured] = await embedder.embedTexts(['a red car'], { normalize: false });
    const norm = (v: Float32Array) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
    assert.ok(norm(plain!.embedding) < 1e-3 * norm(coloured!.embedding), `plain text norm ${norm(plain!.embedding)}`);
    const [red, redCar] = await embedder.embedTexts(['red', 'a photo of a red sports car on a road']);
    assert.ok(cosine(red!.embedding, redCar!.embedding) > 0.999);
  });

  // The test above must be able to fail: the same pixels with a preprocessing mistake
  // (channels swapped, or normalisation skipped) give wrong answers for some colours.
  test('swapped channels or skipped normalisation would break it', async () => {
    const { size, mean, std } = embedder.model.image;
    const plane = size * size;
    const tensors = await Promise.all(solid.map((b) => preprocessImage(b, embedder.model.image)));
    const swapped = new Float32Array(NAMES.length * 3 * plane);
    const unnormalised = new Float32Array(NAMES.length * 3 * plane);
    tensors.forEach(({ pixels }, k) => {
      const base = k * 3 * plane;
      swapped.set(pixels.subarray(2 * plane, 3 * plane), base); // B into R
      swapped.set(pixels.subarray(plane, 2 * plane), base + plane);
      swapped.set(pixels.subarray(0, plane), base + 2 * plane); // R into B
      for (let c = 0; c < 3; c++) {
        for (let i = 0; i < plane; i++) unnormalised[base + c * plane + i] = pixels[c * plane + i]! * std[c]! + mean[c]!;
      }
    });
    for (const [what, pixels] of [['swapped channels', swapped], ['unnormalised pixels', unnormalised]] as const) {
      const vectors = await embedder.embedPixels(pixels, NAMES.length);
      const wrong = nearest(vectors, textVectors).filter((guess, i) => guess !== i).length;
      assert.ok(wrong > 0, `${what}: every colour was still right, so the test could not catch this mistake`);
    }
  });
});
