// Synthetic datasets in each format the harness reads, built from the colour model's
// colours (src/forge/colour.ts) so the colour model has known right answers.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { COLOURS } from '../../src/forge/colour.ts';

type RGB = readonly [number, number, number];

export const COLOUR_NAMES = COLOURS.map((c) => c.name);

/** Deterministic pseudo-random numbers (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Raw RGB pixels: `main` everywhere but one rectangle of `other` covering about a quarter
 * of the image, placed by `variant`, so images of one class differ but one colour dominates.
 */
export function dominantPixels(size: number, main: RGB, other: RGB, variant: number): Buffer {
  const px = Buffer.alloc(size * size * 3);
  const patch = Math.floor(size / 2);
  const corner = variant % 4;
  const x0 = corner % 2 === 0 ? 0 : size - patch;
  const y0 = corner < 2 ? 0 : size - patch;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const inPatch = x >= x0 && x < x0 + patch && y >= y0 && y < y0 + patch;
      const c = inPatch ? other : main;
      px.set(c, 3 * (y * size + x));
    }
  }
  return px;
}

function png(px: Buffer, size: number): Promise<Buffer> {
  return sharp(px, { raw: { width: size, height: size, channels: 3 } }).png().toBuffer();
}

function otherColour(c: number, r: () => number): RGB {
  let o = Math.floor(r() * COLOURS.length);
  if (o === c) o = (o + 1) % COLOURS.length;
  return COLOURS[o]!.rgb as RGB;
}

/** Karpathy layout: dataset_synthetic.json + images/, one image per colour, three captions each. */
export async function writeKarpathy(dir: string): Promise<void> {
  await mkdir(join(dir, 'images'), { recursive: true });
  const r = rng(1);
  const images = [];
  for (const [c, colour] of COLOURS.entries()) {
    const filename = `${colour.name}.png`;
    await writeFile(join(dir, 'images', filename), await png(dominantPixels(64, colour.rgb as RGB, otherColour(c, r), c), 64));
    images.push({
      filename,
      split: 'test',
      sentences: [`a ${colour.name} square`, `a photo of something ${colour.name}.`, `mostly ${colour.name} with a patch`].map((raw) => ({ raw })),
    });
  }
  // A train image the test split must leave out.
  images.push({ filename: 'unused.png', split: 'train', sentences: [{ raw: 'not evaluated' }] });
  await writeFile(join(dir, 'dataset_synthetic.json'), JSON.stringify({ dataset: 'synthetic', images }));
}

/**
 * BEIR layout: four documents per colour (the first graded 2, the others 1 for the query
 * asking for that colour), one query per colour, plus a query without judgements.
 */
export async function writeBeir(dir: string): Promise<void> {
  await mkdir(join(dir, 'qrels'), { recursive: true });
  const r = rng(4);
  const filler = (n: number) => Array.from({ length: n }, () => FILLER[Math.floor(r() * FILLER.length)]!).join(' ');
  const corpus: string[] = [];
  const queries: string[] = [];
  const qrels = ['query-id\tcorpus-id\tscore'];
  for (const colour of COLOURS) {
    // The four documents of a colour are the same text (exact ties); filler words keep the
    // colour word a small part of each text, so a random model gets little from overlap.
    const title = `${filler(6)} ${colour.name}`;
    const text = filler(12);
    for (let d = 1; d <= 4; d++) {
      corpus.push(JSON.stringify({ _id: `${colour.name}-${d}`, title, text }));
      qrels.push(`q-${colour.name}\t${colour.name}-${d}\t${d === 1 ? 2 : 1}`);
    }
    queries.push(JSON.stringify({ _id: `q-${colour.name}`, text: `${filler(8)} ${colour.name} ${filler(8)}` }));
  }
  queries.push(JSON.stringify({ _id: 'q-unjudged', text: 'red and blue' }));
  await writeFile(join(dir, 'corpus.jsonl'), corpus.join('\n') + '\n');
  await writeFile(join(dir, 'queries.jsonl'), queries.join('\n') + '\n');
  await writeFile(join(dir, 'qrels', 'test.tsv'), qrels.join('\n') + '\n');
}

const FILLER = ['table', 'river', 'music', 'window', 'garden', 'paper', 'stone', 'cloud', 'market', 'letter', 'engine', 'forest', 'bridge', 'coffee', 'winter', 'doctor', 'island', 'silver', 'planet', 'pencil', 'mountain', 'kitchen', 'station', 'village'];

/**
 * Raw RGB pixels: a 4x4 grid of cells, 6 of them (shuffled) in colour c, the rest in five
 * other colours of the model: c holds the plurality, so the colour model (whose patches
 * vote) mostly sees c, while the mean colour, which a random network keeps, is diluted.
 * (A random image tower still keeps the mean colour, so it stays above chance here: classes
 * defined by colour cannot hide colour from it.)
 */
export function mixedPixels(size: number, c: number, r: () => number): Buffer {
  const others: number[] = [];
  while (others.length < 5) {
    const o = Math.floor(r() * COLOURS.length);
    if (o !== c && !others.includes(o)) others.push(o);
  }
  const layout = Array.from({ length: 16 }, (_, i) => (i < 6 ? c : others[(i - 6) % 5]!));
  for (let i = layout.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [layout[i], layout[j]] = [layout[j]!, layout[i]!];
  }
  const px = Buffer.alloc(size * size * 3);
  const cell = size / 4;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) px.set(COLOURS[layout[Math.floor(y / cell) * 4 + Math.floor(x / cell)]!]!.rgb, 3 * (y * size + x));
  }
  return px;
}

/** A folder per colour, `perClass` images each, every one a different mix with the colour in the plurality (image-image). */
export async function writeClassFolders(dir: string, perClass = 4): Promise<void> {
  const r = rng(2);
  for (const [c, colour] of COLOURS.entries()) {
    await mkdir(join(dir, colour.name), { recursive: true });
    for (let k = 0; k < perClass; k++) {
      await writeFile(join(dir, colour.name, `${k}.png`), await png(mixedPixels(64, c, r), 64));
    }
  }
}

/** CIFAR-100's binary layout (images three quarters one colour: zero-shot has one right answer): test.bin of 3074-byte records (coarse, fine, R, G, B planes of 32x32) + fine_label_names.txt. */
export async function writeCifar(dir: string, perClass = 3): Promise<void> {
  await mkdir(dir, { recursive: true });
  const r = rng(3);
  const records: Buffer[] = [];
  for (let k = 0; k < perClass; k++) {
    for (const [c, colour] of COLOURS.entries()) {
      const px = dominantPixels(32, colour.rgb as RGB, otherColour(c, r), k);
      const rec = Buffer.alloc(2 + 3072);
      rec[0] = 0; // coarse label, unused
      rec[1] = c;
      for (let p = 0; p < 1024; p++) for (let ch = 0; ch < 3; ch++) rec[2 + ch * 1024 + p] = px[3 * p + ch]!;
      records.push(rec);
    }
  }
  await writeFile(join(dir, 'test.bin'), Buffer.concat(records));
  await writeFile(join(dir, 'fine_label_names.txt'), COLOURS.map((c) => c.name).join('\n') + '\n');
  await writeFile(join(dir, 'coarse_label_names.txt'), 'colours\n');
}

/** The seed suite's layout with every synthetic set. */
export async function writeSuite(root: string): Promise<void> {
  await writeKarpathy(join(root, 'flickr8k'));
  await writeBeir(join(root, 'beir', 'colours'));
  await writeCifar(join(root, 'cifar100'));
  await writeClassFolders(join(root, 'labelled', 'colour-folders'));
}
