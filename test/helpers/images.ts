import sharp from 'sharp';

/** A seeded noisy gradient image, encoded in `format`: real pixels for real codecs. */
export async function noiseImage(width: number, height: number, seed: number, format: 'png' | 'jpeg' | 'webp' = 'png'): Promise<Buffer> {
  const data = Buffer.alloc(width * height * 3);
  let state = seed >>> 0 || 1;
  for (let i = 0; i < data.length; i++) {
    state ^= state << 13; state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5; state >>>= 0;
    const pixel = Math.floor(i / 3);
    const gradient = ((pixel % width) / width) * 128 + ((i % 3) * 40);
    data[i] = Math.min(255, Math.floor(gradient + (state % 128)));
  }
  return sharp(data, { raw: { width, height, channels: 3 } }).toFormat(format).toBuffer();
}

/** A solid-colour PNG. */
export function solidImage(width: number, height: number, rgb: readonly [number, number, number]): Promise<Buffer> {
  return sharp({ create: { width, height, channels: 3, background: { r: rgb[0], g: rgb[1], b: rgb[2] } } }).png().toBuffer();
}
