import { closeSync, existsSync, openSync, readdirSync, readFileSync, readSync, statSync } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import sharp from 'sharp';
import type { ImageLoader } from './embed.ts';

/** A captioned image set (Karpathy split): images and, per caption, the image it describes. */
export interface CaptionedSet {
  name: string;
  images: { file: string; load: ImageLoader }[];
  captions: string[];
  imageOf: number[];
}

/** A BEIR-format text retrieval set. */
export interface BeirSet {
  name: string;
  corpus: { id: string; text: string }[];
  queries: { id: string; text: string }[];
  /** query id -> (document id -> relevance) */
  qrels: Map<string, Map<string, number>>;
}

/** A labelled image set: class names and, per image, its loader and class index. */
export interface LabelledSet {
  name: string;
  format: 'folders' | 'cifar-binary';
  classes: string[];
  images: { id: string; label: number; load: ImageLoader }[];
}

function fail(what: string, path: string, hint: string): never {
  throw new Error(`${what} (${path}): ${hint}`);
}

/**
 * A folder with a Karpathy JSON file (dataset_flickr8k.json, dataset_flickr30k.json,
 * dataset_coco.json, or any dataset_*.json) and an images/ folder. Uses the "test" split;
 * MSCOCO images are looked up as images/<filename>, then images/<filepath>/<filename>.
 */
export function loadKarpathy(dir: string, split = 'test', limit?: number): CaptionedSet {
  const jsonName = readdirSync(dir).find((f) => /^dataset_.*\.json$/.test(f));
  if (!jsonName) fail('no Karpathy JSON', dir, 'expected a dataset_*.json file (e.g. dataset_flickr8k.json) beside an images/ folder');
  const parsed = JSON.parse(readFileSync(join(dir, jsonName), 'utf8')) as {
    images?: { filename: string; filepath?: string; split: string; sentences: { raw: string }[] }[];
  };
  if (!Array.isArray(parsed.images)) fail('not a Karpathy JSON', join(dir, jsonName), 'expected {"images": [{"filename", "split", "sentences": [{"raw"}]}]}');
  let entries = parsed.images.filter((e) => e.split === split);
  if (entries.length === 0) fail(`no images in split "${split}"`, join(dir, jsonName), 'the Karpathy split names are train, restval, val and test');
  if (limit !== undefined) entries = entries.slice(0, limit);
  const images: CaptionedSet['images'] = [];
  const captions: string[] = [];
  const imageOf: number[] = [];
  entries.forEach((e, i) => {
    const direct = join(dir, 'images', e.filename);
    const file = existsSync(direct) || !e.filepath ? direct : join(dir, 'images', e.filepath, e.filename);
    images.push({ file, load: () => readFile(file) });
    for (const s of e.sentences) {
      captions.push(s.raw.trim());
      imageOf.push(i);
    }
  });
  const missing = images.find((im) => !existsSync(im.file));
  if (missing) fail('image missing', missing.file, `the ${split} images of ${jsonName} go in ${join(dir, 'images')}`);
  return { name: basename(dir), images, captions, imageOf };
}

function readJsonl(path: string): Record<string, unknown>[] {
  return readFileSync(path, 'utf8').split('\n').filter((l) => l.trim()).map((l, n) => {
    try {
      return JSON.parse(l) as Record<string, unknown>;
    } catch {
      return fail(`line ${n + 1} is not JSON`, path, 'BEIR files hold one JSON object per line');
    }
  });
}

/**
 * A BEIR folder: corpus.jsonl ({_id, title, text}), queries.jsonl ({_id, text}) and
 * qrels/test.tsv (header "query-id corpus-id score"). Document text is title + " " + text,
 * as MTEB builds it (just the text when the title is empty). Only queries with judgements
 * are kept; with `limit`, the first N of them.
 */
export function loadBeir(dir: string, split = 'test', limit?: number): BeirSet {
  for (const f of ['corpus.jsonl', 'queries.jsonl', join('qrels', `${split}.tsv`)]) {
    if (!existsSync(join(dir, f))) fail(`missing ${f}`, dir, 'a BEIR folder holds corpus.jsonl, queries.jsonl and qrels/test.tsv');
  }
  const qrels = new Map<string, Map<string, number>>();
  const lines = readFileSync(join(dir, 'qrels', `${split}.tsv`), 'utf8').split('\n').filter((l) => l.trim());
  for (const [n, line] of lines.entries()) {
    const [q, d, s] = line.split('\t');
    if (n === 0 && isNaN(Number(s))) continue; // the header
    if (q === undefined || d === undefined || s === undefined || isNaN(Number(s))) fail(`qrels line ${n + 1} is malformed`, dir, 'expected query-id<TAB>corpus-id<TAB>score');
    if (!qrels.has(q)) qrels.set(q, new Map());
    qrels.get(q)!.set(d, Number(s));
  }
  const corpus = readJsonl(join(dir, 'corpus.jsonl')).map((r) => {
    const title = String(r.title ?? '').trim();
    const text = String(r.text ?? '');
    return { id: String(r._id), text: title ? `${title} ${text}` : text };
  });
  let queries = readJsonl(join(dir, 'queries.jsonl')).map((r) => ({ id: String(r._id), text: String(r.text ?? '') })).filter((q) => qrels.has(q.id));
  if (limit !== undefined) queries = queries.slice(0, limit);
  return { name: basename(dir), corpus, queries, qrels };
}

const IMAGE_EXTENSIONS = new Set(['.png', '.jpg', '.jpeg', '.webp', '.gif', '.bmp', '.tif', '.tiff', '.avif']);

/**
 * A labelled image set: either CIFAR's own binary test file (test.bin, with
 * fine_label_names.txt for CIFAR-100 or batches.meta.txt for CIFAR-10, as in the
 * *-binary.tar.gz archives), or one folder per class of image files.
 */
export function loadLabelled(dir: string, limit?: number): LabelledSet {
  if (existsSync(join(dir, 'test.bin'))) return loadCifarBinary(dir, limit);
  const classes = readdirSync(dir).filter((d) => statSync(join(dir, d)).isDirectory()).sort();
  if (classes.length < 2) fail('not a labelled image set', dir, 'expected CIFAR\'s test.bin or one folder per class (at least two)');
  let images: LabelledSet['images'] = [];
  classes.forEach((c, label) => {
    for (const f of readdirSync(join(dir, c)).sort()) {
      if (!IMAGE_EXTENSIONS.has(extname(f).toLowerCase())) continue;
      const file = join(dir, c, f);
      images.push({ id: `${c}/${f}`, label, load: () => readFile(file) });
    }
  });
  if (limit !== undefined) images = images.slice(0, limit);
  return { name: basename(dir), format: 'folders', classes, images };
}

/** CIFAR record layout: 1 label byte (CIFAR-10) or coarse + fine (CIFAR-100), then 32x32 R, G, B planes. */
export const CIFAR_PIXELS = 32 * 32 * 3;

function loadCifarBinary(dir: string, limit?: number): LabelledSet {
  const bin = join(dir, 'test.bin');
  const fine = join(dir, 'fine_label_names.txt');
  const meta10 = join(dir, 'batches.meta.txt');
  const namesFile = existsSync(fine) ? fine : existsSync(meta10) ? meta10 : undefined;
  if (!namesFile) fail('no label names', dir, 'CIFAR-100 needs fine_label_names.txt beside test.bin (CIFAR-10: batches.meta.txt)');
  const classes = readFileSync(namesFile, 'utf8').split('\n').map((l) => l.trim()).filter(Boolean);
  const labelBytes = namesFile === fine ? 2 : 1;
  const recordBytes = labelBytes + CIFAR_PIXELS;
  const size = statSync(bin).size;
  if (size % recordBytes !== 0) fail(`size ${size} is not a multiple of ${recordBytes}`, bin, `expected ${recordBytes}-byte records`);
  let count = size / recordBytes;
  if (limit !== undefined) count = Math.min(count, limit);
  // Labels up front (a few bytes each); pixels are read and encoded only when a chunk needs them.
  const all = readLabels(bin, recordBytes, labelBytes, count);
  const images = all.map((label, r) => ({
    id: `test.bin#${r}`,
    label,
    load: () => cifarRecordPng(bin, r * recordBytes + labelBytes),
  }));
  const bad = images.find((im) => im.label >= classes.length);
  if (bad) fail(`label ${bad.label} out of range`, bin, `${basename(namesFile)} names ${classes.length} classes`);
  return { name: basename(dir), format: 'cifar-binary', classes, images };
}

/** Reads only the label bytes, a block of records at a time: the pixels stay on disk. */
function readLabels(bin: string, recordBytes: number, labelBytes: number, count: number): number[] {
  const labels: number[] = [];
  const block = 256;
  const buf = Buffer.alloc(block * recordBytes);
  const fd = openSync(bin, 'r');
  try {
    for (let r = 0; r < count; r += block) {
      const n = Math.min(block, count - r);
      readSync(fd, buf, 0, n * recordBytes, r * recordBytes);
      for (let k = 0; k < n; k++) labels.push(buf[k * recordBytes + labelBytes - 1]!);
    }
  } finally {
    closeSync(fd);
  }
  return labels;
}

/** One CIFAR image as PNG: the planar R, G, B bytes interleaved for sharp. */
async function cifarRecordPng(bin: string, offset: number): Promise<Uint8Array> {
  const fh = await open(bin, 'r');
  try {
    const planes = Buffer.alloc(CIFAR_PIXELS);
    await fh.read(planes, 0, CIFAR_PIXELS, offset);
    return await planarToPng(planes, 32, 32);
  } finally {
    await fh.close();
  }
}

export async function planarToPng(planes: Uint8Array, width: number, height: number): Promise<Buffer> {
  const n = width * height;
  const rgb = Buffer.alloc(n * 3);
  for (let p = 0; p < n; p++) {
    rgb[3 * p] = planes[p]!;
    rgb[3 * p + 1] = planes[n + p]!;
    rgb[3 * p + 2] = planes[2 * n + p]!;
  }
  return sharp(rgb, { raw: { width, height, channels: 3 } }).png().toBuffer();
}
