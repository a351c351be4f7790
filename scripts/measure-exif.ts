/**
 * What reading a photo's metadata (src/image/photo-metadata.ts: sharp's header read, then exifr
 * on the EXIF block, tag by tag) costs per photo, against what embedding the same photo costs.
 * The target: under 2% of indexing time.
 *
 * The photos: 200 JPEGs at the bench's photo sizes (1024x768 to 2048x1536), each with a camera's
 * EXIF (IFD0, ~25 Exif tags, a 32 KB MakerNote, a UserComment, a GPS IFD; ~34 KB, as phones and
 * cameras write) and an XMP packet, read from memory as the indexer reads them (it has the bytes
 * already, to hash them).
 *
 * The embedding cost: with --model, the engine's own rate on these photos (embedImages); without,
 * the images/s of the full-size jina-clip-v1 in docs/measurements/bench-full.json (forging that
 * model takes long), measured on the same kind of machine (its `machine` field says which).
 *
 *   node --import tsx scripts/measure-exif.ts [--photos 200] [--model DIR] [--out docs/measurements/exif.json]
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { Embedder } from '../src/engine/embedder.ts';
import { readPhotoMetadata } from '../src/image/photo-metadata.ts';
import { ascii, buildTiff, gpsEntries, jpegWithExif, rational, short, TAG, type ExifEntry } from '../test/helpers/exif.ts';

const { values } = parseArgs({
  options: { photos: { type: 'string', default: '200' }, model: { type: 'string' }, out: { type: 'string', default: 'docs/measurements/exif.json' } },
});
const COUNT = Number(values.photos);
const SIZES: readonly [number, number][] = [[1024, 768], [1600, 1200], [800, 600], [2048, 1536], [1280, 960], [1200, 1600]];
const REPS = 7;

/** A noisy gradient: JPEG sizes like a photo's, not a flat colour's. */
async function picture(width: number, height: number, seed: number): Promise<Buffer> {
  const data = Buffer.alloc(width * height * 3);
  let state = seed || 1;
  for (let i = 0; i < data.length; i++) {
    state = (state * 1103515245 + 12345) >>> 0;
    data[i] = ((i / 3) % width) / width * 160 + (state >>> 25);
  }
  return sharp(data, { raw: { width, height, channels: 3 } }).withXmp(XMP).jpeg({ quality: 85 }).toBuffer();
}

function cameraExif(i: number): Buffer {
  const tags = (from: number, n: number): ExifEntry[] => Array.from({ length: n }, (_, k) => rational(from + k, [k + 1, 10]));
  return buildTiff({
    ifd0: [ascii(TAG.Make, 'SONY'), ascii(TAG.Model, 'ILCE-7M3'), short(TAG.Orientation, 1 + (i % 8)), ascii(0x0131, 'ILCE-7M3 v3.10'), ascii(0x0132, '2023:05:06 07:08:09'), ascii(0x013b, 'A Photographer'), ascii(0x8298, '(c) A Photographer')],
    exif: [
      ascii(TAG.DateTimeOriginal, `20${10 + (i % 14)}:0${1 + (i % 9)}:1${i % 10} 1${i % 10}:2${i % 6}:3${i % 10}`),
      ascii(TAG.DateTimeDigitized, '2023:05:06 07:08:09'),
      ascii(TAG.OffsetTimeOriginal, i % 2 ? '+02:00' : '-05:30'),
      ascii(TAG.LensModel, 'FE 24-70mm F2.8 GM'),
      ...tags(0x829a, 2), // ExposureTime, FNumber
      ...tags(0x9201, 9), // ShutterSpeed ... FocalLength
      ...tags(0xa20e, 2),
      { tag: 0x927c, type: 'undefined', value: Array.from({ length: 32 * 1024 }, (_, k) => (k * 7 + i) & 0xff) }, // MakerNote
      { tag: TAG.UserComment, type: 'undefined', value: Array.from({ length: 512 }, () => 0x20) },
    ],
    gps: [...gpsEntries(((i * 37) % 170) - 85, ((i * 53) % 358) - 179, (i % 50) * 10), ascii(0x0012, 'WGS-84'), ascii(0x001d, '2023:05:06')],
  });
}

const XMP =
  '<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">' +
  '<rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/" xmp:CreatorTool="ILCE-7M3 v3.10" xmp:Rating="3">' +
  `<dc:subject><rdf:Bag>${Array.from({ length: 40 }, (_, k) => `<rdf:li>keyword ${k}</rdf:li>`).join('')}</rdf:Bag></dc:subject>` +
  '</rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end="w"?>';

console.log(`making ${COUNT} photos ...`);
const bases = await Promise.all(SIZES.map(([w, h], k) => picture(w, h, k + 1)));
// Every photo its own EXIF (date, place, orientation) on one of the pictures.
const photos = Array.from({ length: COUNT }, (_, i) => jpegWithExif(bases[i % bases.length]!, cameraExif(i)));
const exifBytes = cameraExif(0).length;
const meanFileBytes = photos.reduce((n, p) => n + p.length, 0) / photos.length;

/** ms per photo of each reader over every photo, one photo at a time; passes alternate between readers, so both see the same machine. */
async function perPhoto(readers: ((bytes: Buffer) => Promise<unknown>)[]): Promise<{ best: number; median: number; runs: number[] }[]> {
  for (const read of readers) for (const p of photos.slice(0, 20)) await read(p);
  const runs: number[][] = readers.map(() => []);
  for (let r = 0; r < REPS; r++) {
    for (const [k, read] of readers.entries()) {
      const started = performance.now();
      for (const p of photos) await read(p);
      runs[k]!.push((performance.now() - started) / photos.length);
    }
  }
  return runs.map((r) => ({ best: Math.min(...r), median: [...r].sort((a, b) => a - b)[Math.floor(r.length / 2)]!, runs: r }));
}

const [full, header] = await perPhoto([readPhotoMetadata, (bytes) => sharp(bytes).metadata()]);
const sample = await readPhotoMetadata(photos[1]!);
if (sample.taken_at === undefined || sample.gps_lat === undefined) throw new Error(`the photos' metadata was not read: ${JSON.stringify(sample)}`);

let embed: { ms_per_image: number; source: string };
if (values.model) {
  const dir = await mkdtemp(join(tmpdir(), 'tessera-exif-'));
  try {
    const paths = await Promise.all(photos.map(async (p, i) => {
      const path = join(dir, `p${i}.jpg`);
      await writeFile(path, p);
      return path;
    }));
    const embedder = await Embedder.load(values.model);
    try {
      await embedder.embedImages(paths.slice(0, 2));
      const started = performance.now();
      await embedder.embedImages(paths);
      embed = { ms_per_image: (performance.now() - started) / paths.length, source: `embedImages over these photos, model ${values.model}` };
    } finally {
      await embedder.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
} else {
  const bench = JSON.parse(readFileSync('docs/measurements/bench-full.json', 'utf8')) as { machine: { cpu: string; cores: number }; images: { tessera: { images_per_s: number } } };
  embed = {
    ms_per_image: 1000 / bench.images.tessera.images_per_s,
    source: `docs/measurements/bench-full.json: full-size jina-clip-v1, ${bench.images.tessera.images_per_s} images/s (${bench.machine.cpu}, ${bench.machine.cores} cores)`,
  };
}

let cpu = cpus()[0]?.model ?? 'unknown';
try {
  cpu = /Model name:\s*(.+)/.exec(execFileSync('lscpu', { encoding: 'utf8' }))?.[1]?.trim() ?? cpu;
} catch {}
const round = (x: number, d = 3) => Math.round(x * 10 ** d) / 10 ** d;
const share = full.median / (full.median + embed.ms_per_image);
const result = {
  photos: COUNT,
  sizes: SIZES.map(([w, h]) => `${w}x${h}`).join(', '),
  mean_file_bytes: Math.round(meanFileBytes),
  exif_block_bytes: exifBytes,
  xmp_bytes: Buffer.byteLength(XMP),
  exif_ms_per_photo: round(full.median),
  exif_best_ms_per_photo: round(full.best),
  exif_runs_ms: full.runs.map((r) => round(r)),
  header_only_ms_per_photo: round(header.median),
  embed_ms_per_image: round(embed.ms_per_image, 1),
  embed_source: embed.source,
  exif_share: round(share, 4),
  target_share: 0.02,
  cpu,
  cores: cpus().length,
  node: process.version,
  date: new Date().toISOString(),
  note: 'exif_ms_per_photo: readPhotoMetadata (sharp header read + exifr, 13 tags read one by one) from bytes in memory, one photo at a time, median of 7 passes (best beside it); header_only: sharp(bytes).metadata() alone, in passes alternating with the full read; exif_share: exif / (exif + embedding), indexing time beyond embedding (reading, hashing, writing) left out, so the share is an upper bound',
};
console.log(
  `metadata: ${result.exif_ms_per_photo} ms/photo (sharp header alone ${result.header_only_ms_per_photo} ms); embedding ${result.embed_ms_per_image} ms/image; share ${(100 * share).toFixed(2)}% (target < 2%) on ${cpu}`,
);
mkdirSync(dirname(values.out!), { recursive: true });
writeFileSync(values.out!, JSON.stringify(result, null, 2) + '\n');
console.log(`wrote ${values.out}`);
