/**
 * Builds the image fixtures in test/fixtures/images/ from the real photographs that ship with
 * scikit-image (Debian's python3-skimage), each turned into one case the preprocessing must
 * get right. Run once; the outputs are committed, so CI needs neither this script's inputs nor
 * Python. Afterwards run scripts/golden-images.py to refresh the golden tensors.
 *
 *   node --import tsx scripts/make-image-fixtures.ts [skimage-data-dir]
 */
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { deflateSync, crc32 } from 'node:zlib';
import sharp, { type OverlayOptions } from 'sharp';

const SOURCE = process.argv[2] ?? process.env.SKIMAGE_DATA ?? '/usr/lib/python3/dist-packages/skimage/data';
const OUT = new URL('../test/fixtures/images/', import.meta.url).pathname;

const src = (name: string) => join(SOURCE, name);
const out = (name: string) => join(OUT, name);

interface Raw {
  data: Buffer;
  width: number;
  height: number;
  channels: number;
}

async function raw(input: string | Buffer, channels?: 1 | 3): Promise<Raw> {
  let pipeline = sharp(input, { ignoreIcc: true });
  if (channels === 1) pipeline = pipeline.toColourspace('b-w');
  if (channels === 3) pipeline = pipeline.removeAlpha().toColourspace('srgb');
  const { data, info } = await pipeline.raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, channels: info.channels };
}

function fromRaw(r: Raw) {
  return sharp(r.data, { raw: { width: r.width, height: r.height, channels: r.channels as 1 | 2 | 3 | 4 } });
}

/** Minimal PNG writer, for the PNG flavours sharp cannot write (1-bit grey, RGB + tRNS). */
function encodePng(width: number, height: number, colourType: 0 | 2, bitDepth: 1 | 8, rows: Buffer[], extra: Array<[string, Buffer]> = []): Buffer {
  const chunk = (type: string, body: Buffer) => {
    const head = Buffer.alloc(8);
    head.writeUInt32BE(body.length, 0);
    head.write(type, 4, 'latin1');
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), body])) >>> 0, 0);
    return Buffer.concat([head, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = bitDepth;
  ihdr[9] = colourType;
  const scanlines = Buffer.concat(rows.map((row) => Buffer.concat([Buffer.from([0]), row])));
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    ...extra.map(([type, body]) => chunk(type, body)),
    chunk('IDAT', deflateSync(scanlines, { level: 9 })),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/**
 * Minimal GIF writer for a greyscale frame whose colour table is the identity ramp (entry i =
 * (i, i, i)), as Pillow writes "L" images: sharp cannot choose a palette. LZW-coded as
 * literals only, with a clear code often enough that codes stay 9 bits wide.
 */
function encodeGreyRampGif(width: number, height: number, grey: Uint8Array): Buffer {
  const header = Buffer.alloc(13);
  header.write('GIF89a', 0, 'latin1');
  header.writeUInt16LE(width, 6);
  header.writeUInt16LE(height, 8);
  header[10] = 0x80 | 7; // global colour table of 256 entries
  const table = Buffer.alloc(768);
  for (let i = 0; i < 256; i++) table.fill(i, i * 3, i * 3 + 3);
  const descriptor = Buffer.alloc(10);
  descriptor[0] = 0x2c;
  descriptor.writeUInt16LE(width, 5);
  descriptor.writeUInt16LE(height, 7);
  const codes: number[] = [256];
  for (let i = 0; i < grey.length; i++) {
    if (i > 0 && i % 250 === 0) codes.push(256);
    codes.push(grey[i]!);
  }
  codes.push(257);
  const packed: number[] = [];
  let acc = 0;
  let bits = 0;
  for (const code of codes) {
    acc |= code << bits;
    bits += 9;
    while (bits >= 8) {
      packed.push(acc & 0xff);
      acc >>>= 8;
      bits -= 8;
    }
  }
  if (bits > 0) packed.push(acc & 0xff);
  const blocks: Buffer[] = [Buffer.from([8])];
  for (let i = 0; i < packed.length; i += 255) {
    const chunk = packed.slice(i, i + 255);
    blocks.push(Buffer.from([chunk.length, ...chunk]));
  }
  blocks.push(Buffer.from([0, 0x3b]));
  return Buffer.concat([header, table, descriptor, ...blocks]);
}

async function main(): Promise<void> {
  await mkdir(OUT, { recursive: true });
  const written: string[] = [];
  const save = async (name: string, data: Buffer | Promise<Buffer>) => {
    await writeFile(out(name), await data);
    written.push(name);
  };

  // Real camera JPEGs, unchanged: rocket (4:4:4, sRGB profile), retina (1411 px, 4:2:0, heavy
  // downscale). Then a crop of the Hubble picture that keeps its embedded Adobe RGB (1998)
  // profile: a real non-sRGB ICC case (pixel values untouched by the profile).
  await copyFile(src('rocket.jpg'), out('rocket.jpg'));
  await copyFile(src('retina.jpg'), out('retina-1411.jpg'));
  written.push('rocket.jpg', 'retina-1411.jpg');
  await save(
    'hubble-adobergb.jpg',
    sharp(src('hubble_deep_field.jpg')).extract({ left: 200, top: 150, width: 600, height: 520 }).keepIccProfile().jpeg({ quality: 90 }).toBuffer(),
  );

  // Plain RGB JPEG, 4:2:0.
  await save('astronaut.jpg', sharp(src('astronaut.png'), { ignoreIcc: true }).jpeg({ quality: 90 }).toBuffer());

  // Pixels converted into Display P3 and that profile embedded: the reference ignores it.
  await save('coffee-p3.jpg', sharp(src('coffee.png')).withIccProfile('p3').jpeg({ quality: 90 }).toBuffer());

  // Greyscale PNG (copied) and greyscale JPEG.
  await copyFile(src('camera.png'), out('camera-gray.png'));
  written.push('camera-gray.png');
  await save('camera-gray.jpg', sharp(src('camera.png')).toColourspace('b-w').jpeg({ quality: 90 }).toBuffer());

  // RGBA with varied alpha: a radial falloff to fully transparent corners, a band of
  // alpha 0 whose colour is kept (so a wrong un-premultiply shows), and a half-alpha band.
  {
    const c = await raw(await sharp(src('chelsea.png')).resize(360, 240).toBuffer(), 3);
    const rgba = Buffer.alloc(c.width * c.height * 4);
    for (let y = 0; y < c.height; y++) {
      for (let x = 0; x < c.width; x++) {
        const i = y * c.width + x;
        const dx = (x - c.width / 2) / (c.width / 2);
        const dy = (y - c.height / 2) / (c.height / 2);
        let a = Math.max(0, Math.min(255, Math.round(255 * (1.25 - Math.hypot(dx, dy)))));
        if (y >= 30 && y < 55) a = 0;
        if (x >= 50 && x < 80) a = 128;
        rgba[i * 4] = c.data[i * 3]!;
        rgba[i * 4 + 1] = c.data[i * 3 + 1]!;
        rgba[i * 4 + 2] = c.data[i * 3 + 2]!;
        rgba[i * 4 + 3] = a;
      }
    }
    const img = { data: rgba, width: c.width, height: c.height, channels: 4 };
    await save('chelsea-rgba.png', fromRaw(img).png({ compressionLevel: 9 }).toBuffer());
    // Same picture as a palette PNG with a tRNS chunk (quantised by libimagequant).
    await save('chelsea-palette-alpha.png', fromRaw(img).png({ palette: true, colours: 256, compressionLevel: 9 }).toBuffer());
    // Lossy WebP with alpha.
    await save('chelsea-alpha.webp', fromRaw(img).webp({ quality: 85, alphaQuality: 100 }).toBuffer());
  }

  // Grey + alpha (Pillow mode LA), non-square.
  {
    const g = await raw(await sharp(src('camera.png')).resize(320, 320).toBuffer(), 1);
    const h = 250;
    const la = Buffer.alloc(g.width * h * 2);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < g.width; x++) {
        const i = y * g.width + x;
        la[i * 2] = g.data[i]!;
        la[i * 2 + 1] = (x >> 5) % 2 === 0 ? Math.round((255 * y) / (h - 1)) : 255 - ((x * 3) % 256);
      }
    }
    await save('camera-la.png', fromRaw({ data: la, width: g.width, height: h, channels: 2 }).toColourspace('b-w').png({ compressionLevel: 9 }).toBuffer());
  }

  // Palette PNG (256 colours, dithered).
  await save('coffee-palette.png', sharp(src('coffee.png')).png({ palette: true, colours: 256, dither: 1, compressionLevel: 9 }).toBuffer());

  // RGB PNG with a tRNS colour key: Pillow keeps it RGB (no alpha), libvips adds an alpha band.
  {
    const c = await raw(await sharp(src('coffee.png')).resize(330, 220).toBuffer(), 3);
    const key = [10, 20, 30];
    for (let y = 80; y < 140; y++) {
      for (let x = 110; x < 210; x++) c.data.set(key, (y * c.width + x) * 3);
    }
    const rows = Array.from({ length: c.height }, (_, y) => c.data.subarray(y * c.width * 3, (y + 1) * c.width * 3));
    const trns = Buffer.from([0, key[0]!, 0, key[1]!, 0, key[2]!]);
    await save('coffee-rgb-trns.png', encodePng(c.width, c.height, 2, 8, rows, [['tRNS', trns]]));
  }

  // GIF (quantised by cgif) and an animated GIF whose first frame differs from the second.
  await save('astronaut.gif', sharp(src('astronaut.png'), { ignoreIcc: true }).resize(300, 300).gif({ colours: 256 }).toBuffer());
  {
    const a = await raw(await sharp(src('chelsea.png')).resize(240, 160).toBuffer(), 3);
    const b = await raw(await sharp(src('coffee.png')).resize(240, 160).toBuffer(), 3);
    await save(
      'animated.gif',
      sharp(Buffer.concat([a.data, b.data]), { raw: { width: 240, height: 320, channels: 3, pageHeight: 160 } })
        .gif({ delay: [500, 500], loop: 0 })
        .toBuffer(),
    );
  }

  // GIF with a transparent colour (cgif from the RGBA picture): Pillow shows the transparent
  // index's palette colour where libvips says (0, 0, 0, 0).
  await save('chelsea-transparent.gif', sharp(out('chelsea-rgba.png')).gif().toBuffer());

  // Greyscale GIF with the identity palette, as Pillow writes mode "L": Pillow reopens it as
  // "L" and resizes it BICUBIC, not NEAREST.
  {
    const g = await raw(await sharp(src('camera.png')).resize(200, 160).toBuffer(), 1);
    await save('camera-grey-ramp.gif', encodeGreyRampGif(g.width, g.height, g.data));
  }

  // Lossy WebP, RGB.
  await save('coffee.webp', sharp(src('coffee.png')).webp({ quality: 85 }).toBuffer());

  // TIFF (deflate), RGB.
  await save('coffee.tif', sharp(src('coffee.png')).resize(330, 220).tiff({ compression: 'deflate', predictor: 'horizontal' }).toBuffer());

  // Very wide (1000 x 110, upscaled to 2036 x 224) and very narrow (80 x 512) crops.
  await save('hubble-wide.jpg', sharp(src('hubble_deep_field.jpg'), { ignoreIcc: true }).extract({ left: 0, top: 380, width: 1000, height: 110 }).jpeg({ quality: 92 }).toBuffer());
  await save('astronaut-narrow.png', sharp(src('astronaut.png'), { ignoreIcc: true }).extract({ left: 200, top: 0, width: 80, height: 512 }).png().toBuffer());

  // Small image that must be upscaled (120 x 80 -> 336 x 224).
  await save('chelsea-small.png', sharp(src('chelsea.png')).resize(120, 80, { kernel: 'lanczos3' }).png().toBuffer());

  // Short side exactly 224: no resize at all, only the crop.
  await save('coffee-336x224.jpg', sharp(src('coffee.png')).resize(336, 224).jpeg({ quality: 92 }).toBuffer());

  // Odd crop offsets: 410 x 400 resizes to 229 x 224, left = round(2.5) = 2 (half to even);
  // 449 x 300 resizes to 335 x 224, left = round(55.5) = 56.
  await save('rocket-410x400.jpg', sharp(src('rocket.jpg'), { ignoreIcc: true }).extract({ left: 100, top: 10, width: 410, height: 400 }).jpeg({ quality: 92 }).toBuffer());
  await save('chelsea-449x300.jpg', sharp(src('chelsea.png')).extract({ left: 0, top: 0, width: 449, height: 300 }).jpeg({ quality: 92 }).toBuffer());

  // A larger picture (2000 x 1500), heavily downscaled: a mosaic of five photographs at
  // their native resolution (sharp seams and fine texture survive; nothing is upscaled).
  {
    const tiles: OverlayOptions[] = [
      { input: src('retina.jpg'), left: 0, top: 0 },
      { input: src('hubble_deep_field.jpg'), left: 1000, top: 0 },
      { input: src('coffee.png'), left: 1400, top: 872 },
      { input: src('rocket.jpg'), left: 0, top: 1073 },
      { input: src('astronaut.png'), left: 640, top: 988 },
      { input: src('chelsea.png'), left: 1152, top: 1200 },
    ];
    await save(
      'mosaic-2000x1500.jpg',
      sharp({ create: { width: 2000, height: 1500, channels: 3, background: '#808080' } })
        .composite(tiles)
        .jpeg({ quality: 85 })
        .toBuffer(),
    );
  }

  // 1-bit images (Pillow mode "1"): an ordered-dither PNG and a thresholded TIFF.
  {
    const g = await raw(src('camera.png'), 1);
    const bayer = [0, 8, 2, 10, 12, 4, 14, 6, 3, 11, 1, 9, 15, 7, 13, 5];
    const stride = Math.ceil(g.width / 8);
    const rows: Buffer[] = [];
    for (let y = 0; y < g.height; y++) {
      const row = Buffer.alloc(stride);
      for (let x = 0; x < g.width; x++) {
        const threshold = ((bayer[(y % 4) * 4 + (x % 4)]! + 0.5) / 16) * 255;
        if (g.data[y * g.width + x]! > threshold) row[x >> 3]! |= 0x80 >> (x & 7);
      }
      rows.push(row);
    }
    await save('camera-1bit.png', encodePng(g.width, g.height, 0, 1, rows));
    await save('camera-1bit.tif', sharp(src('camera.png')).resize(400, 300, { fit: 'cover' }).toColourspace('b-w').tiff({ bitdepth: 1, compression: 'ccittfax4' }).toBuffer());
  }

  // EXIF orientation 6 (displayed rotated 90 degrees clockwise).
  await save('chelsea-exif6.jpg', sharp(src('chelsea.png')).jpeg({ quality: 90 }).withMetadata({ orientation: 6 }).toBuffer());

  // CMYK JPEG (Adobe, inverted): Pillow resizes in CMYK and converts with its naive formula.
  await save('coffee-cmyk.jpg', sharp(src('coffee.png')).resize(300, 200).toColourspace('cmyk').jpeg({ quality: 92 }).toBuffer());

  // 16-bit RGB PNG.
  await save('astronaut-16bit.png', sharp(src('astronaut.png'), { ignoreIcc: true }).resize(200, 200).toColourspace('rgb16').png().toBuffer());


  console.log(`wrote ${written.length} fixtures to ${OUT}:\n  ${written.join('\n  ')}`);
}

await main();
