import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import sharp from 'sharp';
import { preprocessImage } from '../../src/image/preprocess.ts';
import { FIXTURES, JINA, TOLERANCE, formatResidual, goldenRgb, normalizeReference, normalizeValue, residual } from './helpers.ts';
import { rejectsWith } from '../helpers/errors.ts';


// coffee.tif holds lossless RGB pixels with a golden; re-encode them losslessly in every format.
const SOURCE = `${FIXTURES}coffee.tif`;

test('lossless PNG, TIFF (LZW), WebP and AVIF of the same pixels all match the golden', async (t) => {
  const expected = normalizeReference(await goldenRgb('coffee.tif'), JINA);
  const encodings: Array<[string, Buffer]> = [
    ['PNG', await sharp(SOURCE).png().toBuffer()],
    ['TIFF (LZW)', await sharp(SOURCE).tiff({ compression: 'lzw' }).toBuffer()],
    ['WebP (lossless)', await sharp(SOURCE).webp({ lossless: true }).toBuffer()],
    ['AVIF (lossless)', await sharp(SOURCE).avif({ lossless: true }).toBuffer()],
  ];
  for (const [format, bytes] of encodings) {
    const { pixels, width, height } = await preprocessImage(bytes, JINA);
    assert.deepEqual([width, height], [330, 220], format);
    const r = residual(pixels, expected);
    t.diagnostic(`${format}: ${formatResidual(r)}`);
    assert.ok(r.mean <= TOLERANCE.mean && r.max <= TOLERANCE.max, `${format}: ${formatResidual(r)}`);
  }
});

test('lossy AVIF and JPEG of the same pixels land near the golden', async (t) => {
  const expected = normalizeReference(await goldenRgb('coffee.tif'), JINA);
  for (const [format, bytes] of [
    ['AVIF (quality 80)', await sharp(SOURCE).avif({ quality: 80 }).toBuffer()],
    ['JPEG (quality 90)', await sharp(SOURCE).jpeg({ quality: 90 }).toBuffer()],
  ] as const) {
    const r = residual((await preprocessImage(bytes, JINA)).pixels, expected);
    t.diagnostic(`${format} (compression noise, not preprocessing): ${formatResidual(r)}`);
    assert.ok(r.mean < 0.1, `${format}: ${formatResidual(r)}`);
  }
});

test('GIF: only the first frame counts', async () => {
  const animated = `${FIXTURES}animated.gif`;
  const frames = await sharp(animated, { pages: -1 }).raw().toBuffer({ resolveWithObject: true });
  assert.equal(frames.info.pages, 2);
  const firstOnly = await sharp(animated).gif().toBuffer();
  const secondOnly = await sharp(animated, { page: 1 }).gif().toBuffer();
  const got = await preprocessImage(animated, JINA);
  assert.deepEqual(got.pixels, (await preprocessImage(firstOnly, JINA)).pixels);
  assert.notDeepEqual(got.pixels, (await preprocessImage(secondOnly, JINA)).pixels);
  assert.deepEqual([got.width, got.height], [240, 160]);
});

test('SVG, PDF, BMP and other non-raster or unsupported formats are IMAGE_FORMAT_UNSUPPORTED', async () => {
  const svg = '<svg xmlns="http://www.w3.org/2000/svg" width="300" height="300"><rect width="300" height="300" fill="red"/></svg>';
  const cases: Array<[string, Uint8Array, RegExp]> = [
    ['SVG', Buffer.from(svg), /SVG file; only JPEG, PNG, WebP, GIF, AVIF or TIFF/],
    ['SVG with XML declaration and BOM', Buffer.from(`\uFEFF<?xml version="1.0"?>\n${svg}`), /SVG/],
    ['PDF', Buffer.from('%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n'), /PDF file/],
    ['BMP', Buffer.concat([Buffer.from('BM'), Buffer.alloc(60)]), /BMP file/],
    ['PPM', Buffer.concat([Buffer.from('P6\n2 2\n255\n'), Buffer.alloc(12, 200)]), /PNM \(PBM\/PGM\/PPM\/PAM\) file/],
  ];
  for (const [kind, bytes, pattern] of cases) {
    await assert.rejects(preprocessImage(bytes, JINA), rejectsWith('IMAGE_FORMAT_UNSUPPORTED', pattern), kind);
  }
  // also when it arrives as a data URI, base64 or percent-encoded
  await assert.rejects(preprocessImage(`data:image/svg+xml;base64,${Buffer.from(svg).toString('base64')}`, JINA), rejectsWith('IMAGE_FORMAT_UNSUPPORTED', /SVG/));
  await assert.rejects(preprocessImage(`data:image/svg+xml,${encodeURIComponent(svg)}`, JINA), rejectsWith('IMAGE_FORMAT_UNSUPPORTED', /SVG/));
});

test('garbage and truncated bytes are IMAGE_UNDECODABLE', async () => {
  const garbage = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919 + 13) % 251));
  await assert.rejects(preprocessImage(garbage, JINA), rejectsWith('IMAGE_UNDECODABLE', /image bytes \(4096 bytes\) could not be decoded/));
  const jpeg = readFileSync(`${FIXTURES}rocket.jpg`);
  await assert.rejects(preprocessImage(jpeg.subarray(0, jpeg.length >> 1), JINA), rejectsWith('IMAGE_UNDECODABLE'));
  await assert.rejects(preprocessImage(jpeg.subarray(0, 40), JINA), rejectsWith('IMAGE_UNDECODABLE'));
  const png = readFileSync(`${FIXTURES}camera-gray.png`);
  await assert.rejects(preprocessImage(png.subarray(0, png.length - 5000), JINA), rejectsWith('IMAGE_UNDECODABLE'));
});

test('an image over maxPixels is IMAGE_TOO_LARGE naming its size, before decoding', async () => {
  await assert.rejects(
    preprocessImage(`${FIXTURES}rocket.jpg`, JINA, { maxPixels: 640 * 427 - 1 }),
    rejectsWith('IMAGE_TOO_LARGE', /is 640x427 \(273280 pixels\), more than the limit of 273279 pixels/),
  );
  const ok = await preprocessImage(`${FIXTURES}rocket.jpg`, JINA, { maxPixels: 640 * 427 });
  assert.deepEqual([ok.width, ok.height], [640, 427]);
  await assert.rejects(preprocessImage(`${FIXTURES}rocket.jpg`, JINA, { maxPixels: 0 }), rejectsWith('INVALID_ARGUMENT', /maxPixels/));
});

test('the original width and height are reported, whatever the resize', async () => {
  const cases: Array<[string, number, number]> = [
    ['mosaic-2000x1500.jpg', 2000, 1500],
    ['hubble-wide.jpg', 1000, 110],
    ['astronaut-narrow.png', 80, 512],
    ['chelsea-small.png', 120, 80],
    ['camera-1bit.tif', 400, 300],
  ];
  for (const [name, width, height] of cases) {
    const got = await preprocessImage(`${FIXTURES}${name}`, JINA);
    assert.deepEqual([got.width, got.height], [width, height], name);
    assert.equal(got.pixels.length, 3 * 224 * 224);
  }
});

test('a 1x1 image and a 1-pixel-wide strip preprocess (upscaled to a flat 224x224)', async () => {
  const dot = await sharp({ create: { width: 1, height: 1, channels: 3, background: { r: 200, g: 30, b: 90 } } }).png().toBuffer();
  const got = await preprocessImage(dot, JINA);
  assert.deepEqual([got.width, got.height], [1, 1]);
  const plane = 224 * 224;
  for (let c = 0; c < 3; c++) {
    const value = normalizeValue([200, 30, 90][c]!, c, JINA);
    assert.ok(got.pixels.subarray(c * plane, (c + 1) * plane).every((v) => v === value), `channel ${c}`);
  }
  const strip = await sharp({ create: { width: 1, height: 3000, channels: 3, background: '#336699' } }).png().toBuffer();
  const tall = await preprocessImage(strip, JINA);
  assert.deepEqual([tall.width, tall.height], [1, 3000]);
});

test('16-bit greyscale keeps its high byte (deliberately not the reference, which clips it to white)', async () => {
  // Pillow opens 16-bit grey PNGs as mode I / I;16 and convert('RGB') clips every value over
  // 255 to 255, so the reference sees an almost white picture. We take the high byte, as for
  // 16-bit RGB (where Pillow does the same): docs/image-preprocessing.md.
  const grey8 = await sharp(`${FIXTURES}camera-gray.png`).png().toBuffer();
  const grey16 = await sharp(`${FIXTURES}camera-gray.png`).toColourspace('grey16').png().toBuffer();
  assert.equal((await sharp(grey16).metadata()).depth, 'ushort');
  assert.deepEqual(await preprocessImage(grey16, JINA), await preprocessImage(grey8, JINA));
});
