import assert from 'node:assert/strict';
import { test } from 'node:test';
import sharp from 'sharp';
import { preprocessImage } from '../../src/image/preprocess.ts';
import { FIXTURES, JINA, goldenRgb, normalizeReference, residual } from './helpers.ts';

// chelsea-exif6.jpg stores a 451x300 landscape whose EXIF Orientation (6) says: display it
// rotated 90 degrees clockwise, as a 300x451 portrait.
const FILE = `${FIXTURES}chelsea-exif6.jpg`;

test('the fixture really carries EXIF orientation 6', async () => {
  const meta = await sharp(FILE).metadata();
  assert.equal(meta.orientation, 6);
  assert.deepEqual([meta.width, meta.height], [451, 300]);
});

test("exifOrientation 'apply' (the default) preprocesses the picture as displayed", async () => {
  const expected = normalizeReference(await goldenRgb('chelsea-exif6.jpg.exif-applied'), JINA);
  const byDefault = await preprocessImage(FILE, JINA);
  const applied = await preprocessImage(FILE, JINA, { exifOrientation: 'apply' });
  assert.deepEqual(byDefault, applied);
  assert.deepEqual([applied.width, applied.height], [300, 451], 'width and height as displayed');
  assert.equal(residual(applied.pixels, expected).max, 0);
});

test("exifOrientation 'ignore' reproduces the reference, which leaves the stored pixels as they are", async () => {
  const expected = normalizeReference(await goldenRgb('chelsea-exif6.jpg'), JINA);
  const ignored = await preprocessImage(FILE, JINA, { exifOrientation: 'ignore' });
  assert.deepEqual([ignored.width, ignored.height], [451, 300]);
  assert.equal(residual(ignored.pixels, expected).max, 0);
});

test('apply and ignore differ, and agree on an image without the tag', async () => {
  const a = await preprocessImage(FILE, JINA, { exifOrientation: 'apply' });
  const i = await preprocessImage(FILE, JINA, { exifOrientation: 'ignore' });
  assert.ok(residual(a.pixels, i.pixels).mean > 0.1);
  const plain = `${FIXTURES}rocket.jpg`;
  assert.deepEqual(await preprocessImage(plain, JINA, { exifOrientation: 'apply' }), await preprocessImage(plain, JINA, { exifOrientation: 'ignore' }));
});

test('every orientation (1-8) applied equals rotating/flipping the pixels first', async () => {
  const base = await sharp(`${FIXTURES}chelsea-small.png`).raw().toBuffer({ resolveWithObject: true });
  const raw = { raw: { width: base.info.width, height: base.info.height, channels: base.info.channels } } as const;
  for (let orientation = 1; orientation <= 8; orientation++) {
    const tagged = await sharp(base.data, raw).png().withMetadata({ orientation }).toBuffer();
    const upright = await sharp(tagged).autoOrient().png().toBuffer();
    const got = await preprocessImage(tagged, JINA);
    const want = await preprocessImage(upright, JINA);
    assert.deepEqual(got, want, `orientation ${orientation}`);
  }
});

test('exifOrientation is validated', async () => {
  // @ts-expect-error: JS callers can pass anything
  await assert.rejects(preprocessImage(FILE, JINA, { exifOrientation: 'rotate' }), /expected "apply" or "ignore" for exifOrientation/);
});
