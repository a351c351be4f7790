/**
 * The benchmark's inputs, generated deterministically: photo-like images (smooth gradients,
 * shapes, fine noise and a blur, so codecs see realistic entropy) of realistic sizes and
 * formats, written once into the cache; and a text corpus of mixed lengths.
 */
import { mkdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';

export interface BenchImage {
  path: string;
  width: number;
  height: number;
  format: 'jpeg' | 'png' | 'webp';
}

const FULL_IMAGES: readonly [number, number, BenchImage['format']][] = [
  [640, 480, 'jpeg'], [800, 600, 'jpeg'], [1024, 768, 'jpeg'], [1280, 960, 'jpeg'],
  [1600, 1200, 'jpeg'], [2048, 1536, 'jpeg'], [3000, 2000, 'jpeg'], [4000, 3000, 'jpeg'],
  [640, 480, 'png'], [1200, 900, 'png'], [1024, 768, 'webp'], [1920, 1080, 'webp'],
  [480, 640, 'jpeg'], [1080, 1350, 'jpeg'], [2448, 3264, 'jpeg'], [4032, 3024, 'jpeg'],
];
/** Quick mode: the same range of sizes and formats, fewer of them. */
const QUICK_IMAGES = FULL_IMAGES.filter((_, i) => [0, 3, 5, 7, 9, 11, 13, 15].includes(i));
/** Plumbing tests: two small ones. */
const TINY_IMAGES = FULL_IMAGES.filter((_, i) => [0, 8].includes(i));

export type SetSize = 'tiny' | 'quick' | 'full';

function xorshift(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    return s / 2 ** 32;
  };
}

/** A photo-like picture: sky-to-ground gradient, a few soft discs and bars, sensor noise. */
async function photo(width: number, height: number, seed: number, format: BenchImage['format']): Promise<Buffer> {
  const rand = xorshift(seed * 7919 + 17);
  // Draw at a quarter of the size (cheap in JS), then let libvips upscale, blur and add noise.
  const w = Math.ceil(width / 4), h = Math.ceil(height / 4);
  const data = Buffer.alloc(w * h * 3);
  const top = [rand() * 255, rand() * 255, rand() * 255], bottom = [rand() * 255, rand() * 255, rand() * 255];
  const discs = Array.from({ length: 6 }, () => ({ x: rand() * w, y: rand() * h, r: (0.05 + rand() * 0.25) * Math.min(w, h), c: [rand() * 255, rand() * 255, rand() * 255] }));
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const t = y / h;
      let c = [0, 1, 2].map((k) => top[k]! * (1 - t) + bottom[k]! * t + 20 * Math.sin((x + y * 0.3) / (9 + seed)));
      for (const d of discs) {
        const dist = Math.hypot(x - d.x, y - d.y);
        if (dist < d.r) {
          const a = Math.min(1, (d.r - dist) / 4);
          c = c.map((v, k) => v * (1 - a) + d.c[k]! * a);
        }
      }
      const o = (y * w + x) * 3;
      for (let k = 0; k < 3; k++) data[o + k] = Math.max(0, Math.min(255, Math.round(c[k]! + (rand() - 0.5) * 30)));
    }
  }
  const upscaled = await sharp(data, { raw: { width: w, height: h, channels: 3 } }).resize(width, height, { kernel: 'cubic' }).raw().toBuffer();
  // Fine grain at full resolution, as a camera sensor gives.
  const grain = xorshift(seed + 99);
  for (let i = 0; i < upscaled.length; i++) upscaled[i] = Math.max(0, Math.min(255, upscaled[i]! + Math.round((grain() - 0.5) * 12)));
  const image = sharp(upscaled, { raw: { width, height, channels: 3 } });
  if (format === 'jpeg') return image.jpeg({ quality: 88 }).toBuffer();
  if (format === 'png') return image.png().toBuffer();
  return image.webp({ quality: 85 }).toBuffer();
}

/** `count` of `items`, evenly spaced from the first, so a shorter set keeps the range of sizes and formats. */
export function spread<T>(items: readonly T[], count: number): T[] {
  if (count >= items.length) return [...items];
  return Array.from({ length: count }, (_, k) => items[Math.floor((k * items.length) / count)]!);
}

/** The image set, written into `dir` once (later calls reuse the files); `count` takes fewer of them (spread). */
export async function benchImages(dir: string, size: SetSize, count?: number): Promise<BenchImage[]> {
  await mkdir(dir, { recursive: true });
  const all = size === 'tiny' ? TINY_IMAGES : size === 'quick' ? QUICK_IMAGES : FULL_IMAGES;
  const specs = count === undefined ? all : spread(all, count);
  const out: BenchImage[] = [];
  for (const [width, height, format] of specs) {
    const seed = FULL_IMAGES.findIndex((s) => s[0] === width && s[1] === height && s[2] === format) + 1;
    const path = join(dir, `photo-${seed}-${width}x${height}.${format === 'jpeg' ? 'jpg' : format}`);
    const present = await stat(path).then((s) => s.size > 0, () => false);
    if (!present) await writeFile(path, await photo(width, height, seed, format));
    out.push({ path, width, height, format });
  }
  return out;
}

const WORDS = (
  'the a of and in on with at from by for to photo picture image small large red blue green yellow black white ' +
  'dog cat bird car bicycle tree house river mountain city street beach sunset people man woman child sitting ' +
  'running standing next under over near old new bright dark wooden metal glass table window door road field ' +
  'snow rain light shadow group two three several colourful quiet busy morning evening night market garden'
).split(' ');

function sentence(rand: () => number, words: number): string {
  const out: string[] = [];
  for (let i = 0; i < words; i++) out.push(WORDS[Math.floor(rand() * WORDS.length)]!);
  out[0] = out[0]![0]!.toUpperCase() + out[0]!.slice(1);
  return `${out.join(' ')}.`;
}

/** About `tokens` tokens of prose (one word is about one token for this vocabulary). */
export function prose(seed: number, tokens: number): string {
  const rand = xorshift(seed);
  const parts: string[] = [];
  let count = 0;
  while (count < tokens) {
    const n = 6 + Math.floor(rand() * 14);
    parts.push(sentence(rand, n));
    count += n + 1;
  }
  return parts.join(' ');
}

export interface TextCorpus {
  texts: string[];
  /** What the corpus holds, for the report. */
  description: string;
}

/**
 * Captions (8 to 20 words), medium passages (60 to 200), long passages (about 400 to 500,
 * under the 512 that real passages are cut to) and, in the full run, two long documents.
 */
export function textCorpus(size: SetSize): TextCorpus {
  const rand = xorshift(4242);
  const texts: string[] = [];
  const [captions, medium, passages, docs] = size === 'tiny' ? [4, 2, 1, 0] : size === 'quick' ? [16, 6, 2, 0] : [96, 32, 12, 2];
  for (let i = 0; i < captions; i++) texts.push(prose(1000 + i, 8 + Math.floor(rand() * 12)));
  for (let i = 0; i < medium; i++) texts.push(prose(2000 + i, 60 + Math.floor(rand() * 140)));
  for (let i = 0; i < passages; i++) texts.push(prose(3000 + i, 400 + Math.floor(rand() * 100)));
  for (let i = 0; i < docs; i++) texts.push(prose(4000 + i, 2000));
  // Interleave the kinds, as real traffic mixes them.
  const order = texts.map((_, i) => i).sort((a, b) => ((a * 2654435761) % 1000) - ((b * 2654435761) % 1000));
  return {
    texts: order.map((i) => texts[i]!),
    description: `${captions} captions, ${medium} passages of 60-200 words, ${passages} of 400-500${docs ? `, ${docs} documents of about 2,000 tokens` : ''}`,
  };
}
