/**
 * Every fixture against its golden from scripts/golden-images.py (Pillow + torchvision's
 * rules, the reference jina-clip-v1 was evaluated with). The residual of each is printed as a
 * diagnostic; docs/image-preprocessing.md tabulates them.
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { test } from 'node:test';
import { preprocessImage } from '../../src/image/preprocess.ts';
import { FIXTURES, GOLDEN, JINA, TOLERANCE, formatResidual, goldenRgb, normalizeReference, residual } from './helpers.ts';

// What each fixture exercises, for the report.
const KIND: Record<string, string> = {
  'rocket.jpg': 'RGB JPEG 4:4:4 (camera original), downscale 1.9x',
  'retina-1411.jpg': 'RGB JPEG 4:2:0, 1411 px, downscale 6.3x (native pre-reduce)',
  'mosaic-2000x1500.jpg': 'RGB JPEG 2000x1500, downscale 6.7x (native pre-reduce)',
  'astronaut.jpg': 'RGB JPEG 4:2:0, downscale 2.3x',
  'coffee-p3.jpg': 'JPEG with Display P3 ICC profile (not applied)',
  'hubble-adobergb.jpg': 'JPEG with Adobe RGB ICC profile (not applied)',
  'camera-gray.png': 'greyscale PNG (L)',
  'camera-gray.jpg': 'greyscale JPEG (L)',
  'chelsea-rgba.png': 'RGBA PNG, varied alpha (premultiplied resize)',
  'chelsea-alpha.webp': 'RGBA lossy WebP',
  'camera-la.png': 'grey + alpha PNG (LA, premultiplied resize)',
  'coffee-palette.png': 'palette PNG (P: NEAREST)',
  'chelsea-palette-alpha.png': 'palette PNG with tRNS (P: NEAREST, alpha dropped)',
  'coffee-rgb-trns.png': 'RGB PNG with tRNS colour key (Pillow: plain RGB)',
  'astronaut.gif': 'GIF (P: NEAREST)',
  'animated.gif': 'animated GIF, first frame (P: NEAREST, upscale)',
  'chelsea-transparent.gif': 'GIF with a transparent index (Pillow shows its palette colour)',
  'camera-grey-ramp.gif': 'GIF with the identity grey palette (Pillow: mode L, BICUBIC)',
  'coffee.webp': 'RGB lossy WebP',
  'coffee.tif': 'RGB TIFF, upscale 1.02x',
  'hubble-wide.jpg': 'very wide 1000x110 -> 2036x224 (upscale)',
  'astronaut-narrow.png': 'very narrow 80x512 -> 224x1433 (upscale)',
  'chelsea-small.png': 'small 120x80 -> 336x224 (upscale 2.8x)',
  'coffee-336x224.jpg': 'shorter side already 224: crop only',
  'rocket-410x400.jpg': 'resizes to 229x224: left = round(2.5) = 2',
  'chelsea-449x300.jpg': 'resizes to 335x224: left = round(55.5) = 56',
  'camera-1bit.png': '1-bit PNG (mode 1: NEAREST)',
  'camera-1bit.tif': '1-bit TIFF, CCITT G4 (mode 1: NEAREST)',
  'chelsea-exif6.jpg': 'EXIF orientation 6, exifOrientation: ignore',
  'chelsea-exif6.jpg.exif-applied': 'EXIF orientation 6, exifOrientation: apply',
  'coffee-cmyk.jpg': 'CMYK JPEG (Adobe, inverted; Pillow CMYK resize + conversion)',
  'astronaut-16bit.png': '16-bit RGB PNG (high byte, as Pillow)',
};

const goldens = readdirSync(GOLDEN)
  .filter((name) => name.endsWith('.png'))
  .map((name) => name.slice(0, -'.png'.length))
  .sort();

test('every fixture has a golden and a description', () => {
  const fixtures = readdirSync(FIXTURES, { withFileTypes: true })
    .filter((e) => e.isFile() && !e.name.endsWith('.md'))
    .map((e) => e.name);
  for (const name of fixtures) assert.ok(goldens.includes(name), `no golden for ${name}: run scripts/golden-images.py`);
  for (const name of goldens) assert.ok(KIND[name], `describe ${name} in KIND`);
});

for (const name of goldens) {
  const applied = name.endsWith('.exif-applied');
  const file = applied ? name.slice(0, -'.exif-applied'.length) : name;
  test(`${name} matches the Python reference`, async (t) => {
    const expected = normalizeReference(await goldenRgb(name), JINA);
    const { pixels } = await preprocessImage(`${FIXTURES}${file}`, JINA, { exifOrientation: applied ? 'apply' : 'ignore' });
    const r = residual(pixels, expected);
    t.diagnostic(`${name} [${KIND[name]}]: ${formatResidual(r)}`);
    assert.ok(r.mean <= TOLERANCE.mean, `mean |diff| ${r.mean} > ${TOLERANCE.mean}`);
    assert.ok(r.max <= TOLERANCE.max, `max |diff| ${r.max} > ${TOLERANCE.max}`);
  });
}
