import assert from 'node:assert/strict';
import { Tensor } from '@huggingface/transformers';
import type { Embedder } from '../../src/engine/embedder.ts';
import { maxAbsDiff } from './models.ts';

/**
 * Feeds the same seeded pixel tensors to tessera and to a transformers.js vision model and
 * checks every image embedding agrees within 1e-5 (image preprocessing is compared
 * separately, against Pillow).
 */
export async function assertPixelParity(
  embedder: Embedder,
  model: (inputs: { pixel_values: Tensor }) => Promise<Record<string, unknown>>,
  output = 'image_embeds',
): Promise<void> {
  const count = 3;
  const size = embedder.info.imageSize;
  const pixels = new Float32Array(count * 3 * size * size);
  let state = 12345;
  for (let i = 0; i < pixels.length; i++) {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    pixels[i] = (state / 2 ** 31) * 4 - 2;
  }
  const ours = await embedder.embedPixels(pixels, count, { normalize: false });
  const outputs = await model({ pixel_values: new Tensor('float32', pixels, [count, 3, size, size]) });
  const theirs = (outputs[output] as Tensor).data as Float32Array;
  const dim = ours[0]!.length;
  ours.forEach((v, i) => {
    const diff = maxAbsDiff(v, theirs.subarray(i * dim, (i + 1) * dim));
    assert.ok(diff <= 1e-5, `image ${i} differs by ${diff}`);
  });
}
