/**
 * The CLIPImageProcessor pipeline (OpenAI CLIP models) against goldens from
 * scripts/golden-images.py, which reimplements transformers' CLIPImageProcessor on Pillow:
 * convert('RGB') first, shortest edge to 224 with BICUBIC, crop at (h - 224) // 2. Same
 * fixtures and tolerances as golden.test.ts; EXIF orientation ignored, as PIL.Image.open does.
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { test } from 'node:test';
import sharp from 'sharp';
import { clipCenterCropOffsets } from '../../src/image/clip-processor.ts';
import { preprocessImage } from '../../src/image/preprocess.ts';
import { FIXTURES, OPENAI_CLIP, TOLERANCE, formatResidual, normalizeReference, residual } from './helpers.ts';

const GOLDEN_CLIP = `${FIXTURES}golden-clip/`;

async function goldenClipRgb(name: string): Promise<Uint8Array> {
  const { data, info } = await sharp(`${GOLDEN_CLIP}${name}.png`).raw().toBuffer({ resolveWithObject: true });
  if (info.channels !== 3 || info.width !== 224 || info.height !== 224) throw new Error(`golden-clip ${name} is not 224x224 RGB`);
  return data;
}

const goldens = readdirSync(GOLDEN_CLIP)
  .filter((name) => name.endsWith('.png'))
  .map((name) => name.slice(0, -'.png'.length))
  .sort();

test('every fixture has a CLIP golden', () => {
  const fixtures = readdirSync(FIXTURES, { withFileTypes: true })
    .filter((e) => e.isFile() && !e.name.endsWith('.md'))
    .map((e) => e.name);
  for (const name of fixtures) assert.ok(goldens.includes(name), `no CLIP golden for ${name}: run scripts/golden-images.py`);
});

test("centre crop uses transformers' floor division, not open_clip's round()", () => {
  assert.deepEqual(clipCenterCropOffsets(335, 224, 224), { left: 55, top: 0 }); // open_clip: round(55.5) = 56
  assert.deepEqual(clipCenterCropOffsets(229, 224, 224), { left: 2, top: 0 });
  assert.deepEqual(clipCenterCropOffsets(224, 1433, 224), { left: 0, top: 604 });
});

for (const name of goldens) {
  test(`${name} matches CLIPImageProcessor`, async (t) => {
    const expected = normalizeReference(await goldenClipRgb(name), OPENAI_CLIP);
    const { pixels } = await preprocessImage(`${FIXTURES}${name}`, OPENAI_CLIP, { exifOrientation: 'ignore' });
    const r = residual(pixels, expected);
    t.diagnostic(`${name}: ${formatResidual(r)}`);
    assert.ok(r.mean <= TOLERANCE.mean, `mean |diff| ${r.mean} > ${TOLERANCE.mean}`);
    assert.ok(r.max <= TOLERANCE.max, `max |diff| ${r.max} > ${TOLERANCE.max}`);
  });
}

test('with exactResize, the images libvips pre-reduces by default are bit-identical too', async () => {
  for (const name of ['mosaic-2000x1500.jpg', 'retina-1411.jpg']) {
    const expected = normalizeReference(await goldenClipRgb(name), OPENAI_CLIP);
    const { pixels } = await preprocessImage(`${FIXTURES}${name}`, OPENAI_CLIP, { exifOrientation: 'ignore', exactResize: true });
    assert.equal(residual(pixels, expected).differing, 0, name);
  }
});
