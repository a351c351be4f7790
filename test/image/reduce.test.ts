/**
 * The paths that goldens at 224 do not reach: images whose shorter side is over 4 x size are
 * first reduced natively by libvips (in one step, or several for very large ones), then
 * resampled exactly. A small `size` reaches them with small fixtures; the reference is the same
 * pipeline with exactResize (Pillow's resample throughout, shown exact by the goldens).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import sharp from 'sharp';
import type { ImagePreprocessConfig } from '../../src/image/config.ts';
import { preprocessImage, preprocessImageInto } from '../../src/image/preprocess.ts';
import { FIXTURES, JINA, TOLERANCE, formatResidual, normalizeValue, residual } from './helpers.ts';

const at = (size: number): ImagePreprocessConfig => ({ ...JINA, size });

async function compare(t: { diagnostic(message: string): void }, source: string | Buffer, config: ImagePreprocessConfig, label: string) {
  const fast = await preprocessImage(source, config);
  const exact = await preprocessImage(source, config, { exactResize: true });
  assert.deepEqual([fast.width, fast.height], [exact.width, exact.height]);
  const r = residual(fast.pixels, exact.pixels);
  t.diagnostic(`${label} at size ${config.size}: ${formatResidual(r)}`);
  assert.ok(r.mean <= TOLERANCE.mean && r.max <= TOLERANCE.max, `${label}: ${formatResidual(r)}`);
  return r;
}

test('one native step (shorter side 4x to 14x the output) stays within tolerance of exact', async (t) => {
  await compare(t, `${FIXTURES}mosaic-2000x1500.jpg`, at(224), 'mosaic 2000x1500, 1.7x native');
  await compare(t, `${FIXTURES}retina-1411.jpg`, at(112), 'retina 1411, 3.1x native');
  await compare(t, `${FIXTURES}astronaut.jpg`, at(48), 'astronaut 512, 2.7x native');
});

test('several native steps (over 14x) stay within tolerance of exact', async (t) => {
  await compare(t, `${FIXTURES}mosaic-2000x1500.jpg`, at(32), 'mosaic 2000x1500, 11.7x native in 2 steps');
  await compare(t, `${FIXTURES}retina-1411.jpg`, at(24), 'retina 1411, 14.7x native in 3 steps');
});

test('grey, CMYK, 16-bit, EXIF-rotated and tRNS images take the native step too', async (t) => {
  await compare(t, `${FIXTURES}camera-gray.png`, at(32), 'grey PNG');
  await compare(t, `${FIXTURES}coffee-cmyk.jpg`, at(32), 'CMYK JPEG');
  await compare(t, `${FIXTURES}astronaut-16bit.png`, at(32), '16-bit PNG');
  await compare(t, `${FIXTURES}chelsea-exif6.jpg`, at(32), 'EXIF orientation 6');
  await compare(t, `${FIXTURES}chelsea-exif6.jpg`, at(16), 'EXIF orientation 6, 2 steps');
  await compare(t, `${FIXTURES}coffee-rgb-trns.png`, at(32), 'RGB + tRNS PNG');
});

test('palette, 1-bit and translucent images are always resampled exactly', async () => {
  for (const name of ['coffee-palette.png', 'camera-1bit.png', 'chelsea-rgba.png', 'camera-la.png', 'chelsea-alpha.webp']) {
    const fast = await preprocessImage(`${FIXTURES}${name}`, at(32));
    const exact = await preprocessImage(`${FIXTURES}${name}`, at(32), { exactResize: true });
    assert.deepEqual(fast, exact, name);
  }
});

test('an opaque RGBA image gives exactly what its RGB version gives', async () => {
  const rgb = await sharp(`${FIXTURES}coffee.tif`).png().toBuffer();
  const rgba = await sharp(`${FIXTURES}coffee.tif`).ensureAlpha(1).png().toBuffer();
  assert.equal((await sharp(rgba).metadata()).channels, 4);
  for (const size of [224, 32]) {
    assert.deepEqual(await preprocessImage(rgba, at(size)), await preprocessImage(rgb, at(size)), `size ${size}`);
  }
});

test('RGBA whose shorter side is already the size is only cropped: transparent pixels keep their colour', async () => {
  // Pillow's resize returns a copy when the size does not change, so nothing is premultiplied.
  const width = 300;
  const height = 224;
  const data = Buffer.alloc(width * height * 4);
  for (let i = 0; i < width * height; i++) data.set([(i * 7) & 255, (i * 13) & 255, (i * 29) & 255, i % 3 === 0 ? 0 : (i * 5) & 255], i * 4);
  const png = await sharp(data, { raw: { width, height, channels: 4 } }).png().toBuffer();
  const { pixels } = await preprocessImage(png, JINA);
  const left = 38; // round((300 - 224) / 2)
  const plane = 224 * 224;
  for (let y = 0; y < 224; y += 37) {
    for (let x = 0; x < 224; x += 17) {
      const i = y * width + x + left;
      for (let c = 0; c < 3; c++) {
        assert.equal(pixels[c * plane + y * 224 + x], normalizeValue(data[i * 4 + c]!, c, JINA), `pixel ${x},${y} channel ${c}`);
      }
    }
  }
});

test('preprocessImageInto fills a batch tensor in place and checks the offset', async () => {
  const item = 3 * 224 * 224;
  const batch = new Float32Array(3 * item).fill(7);
  const names = ['rocket.jpg', 'camera-gray.png'];
  const sizes = await Promise.all(names.map((name, i) => preprocessImageInto(`${FIXTURES}${name}`, JINA, batch, (i + 1) * item)));
  assert.deepEqual(sizes, [{ width: 640, height: 427 }, { width: 512, height: 512 }]);
  assert.ok(batch.subarray(0, item).every((v) => v === 7), 'slot 0 untouched');
  for (let i = 0; i < names.length; i++) {
    const alone = await preprocessImage(`${FIXTURES}${names[i]}`, JINA);
    assert.deepEqual(batch.subarray((i + 1) * item, (i + 2) * item), alone.pixels);
  }
  for (const offset of [-1, 1.5, 2 * item + 1]) {
    await assert.rejects(preprocessImageInto(`${FIXTURES}rocket.jpg`, JINA, batch, offset), /expected an integer from 0 to .* for offset/);
  }
});

test('many images at once give the same results as one at a time', async () => {
  const names = ['rocket.jpg', 'coffee-palette.png', 'chelsea-rgba.png', 'mosaic-2000x1500.jpg', 'camera-1bit.tif', 'hubble-wide.jpg'];
  const together = await Promise.all(names.map((name) => preprocessImage(`${FIXTURES}${name}`, JINA)));
  for (let i = 0; i < names.length; i++) assert.deepEqual(together[i], await preprocessImage(`${FIXTURES}${names[i]}`, JINA), names[i]);
});

test('bilinear configs resample with the bilinear filter', async () => {
  const bicubic = await preprocessImage(`${FIXTURES}rocket.jpg`, JINA);
  const bilinear = await preprocessImage(`${FIXTURES}rocket.jpg`, { ...JINA, interpolation: 'bilinear' });
  const r = residual(bicubic.pixels, bilinear.pixels);
  assert.ok(r.mean > 0.001 && r.mean < 0.1, formatResidual(r));
});
