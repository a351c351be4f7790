/**
 * What reading a photo's metadata costs (src/image/photo-metadata.ts: sharp's header read, then
 * exifr on the EXIF block, tag by tag) against what embedding the same photo costs: the
 * `photos` scenario of `tessera bench`, and scripts/measure-exif.ts. Target: under 2% of
 * indexing time.
 *
 * The photos: JPEGs at camera-like sizes (1024x768 to 2048x1536), each with a camera's EXIF
 * (IFD0, ~25 Exif tags, a 32 KB MakerNote, a UserComment, a GPS IFD; ~34 KB, as phones and
 * cameras write) and an XMP packet, read from memory as the indexer reads them (it has the
 * bytes already, to hash them).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import type { EmbedderOptions } from '../src/engine/embedder.ts';
import { readPhotoMetadata } from '../src/image/photo-metadata.ts';
import type { SetSize } from './corpus.ts';
import { engineImages, loadEngine } from './engine-driver.ts';
import { ascii, buildTiff, gpsEntries, jpegWithExif, rational, short, TAG, type ExifEntry } from '../test/helpers/exif.ts';

export const PHOTO_SIZES: readonly [number, number][] = [[1024, 768], [1600, 1200], [800, 600], [2048, 1536], [1280, 960], [1200, 1600]];

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

export function cameraExif(i: number): Buffer {
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

export const XMP =
  '<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">' +
  '<rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/" xmp:CreatorTool="ILCE-7M3 v3.10" xmp:Rating="3">' +
  `<dc:subject><rdf:Bag>${Array.from({ length: 40 }, (_, k) => `<rdf:li>keyword ${k}</rdf:li>`).join('')}</rdf:Bag></dc:subject>` +
  '</rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end="w"?>';

/** `count` photos, each its own EXIF (date, place, orientation) on one of a few pictures. */
export async function exifPhotos(count: number): Promise<Buffer[]> {
  const bases = await Promise.all(PHOTO_SIZES.map(([w, h], k) => picture(w, h, k + 1)));
  return Array.from({ length: count }, (_, i) => jpegWithExif(bases[i % bases.length]!, cameraExif(i)));
}

/**
 * ms per photo of each reader over every photo, one photo at a time; passes alternate between
 * readers, so both see the same machine.
 */
export async function perPhoto(photos: readonly Buffer[], readers: ((bytes: Buffer) => Promise<unknown>)[], reps: number): Promise<{ best: number; median: number; runs: number[] }[]> {
  for (const read of readers) for (const p of photos.slice(0, 20)) await read(p);
  const runs: number[][] = readers.map(() => []);
  for (let r = 0; r < reps; r++) {
    for (const [k, read] of readers.entries()) {
      const started = performance.now();
      for (const p of photos) await read(p);
      runs[k]!.push((performance.now() - started) / photos.length);
    }
  }
  return runs.map((r) => ({ best: Math.min(...r), median: [...r].sort((a, b) => a - b)[Math.floor(r.length / 2)]!, runs: r }));
}

/** The metadata reader's cost per photo (median of `reps` passes) and the sharp header read's alone. */
export async function exifCost(photos: readonly Buffer[], reps: number): Promise<{ full: { best: number; median: number; runs: number[] }; header: { best: number; median: number; runs: number[] } }> {
  const [full, header] = await perPhoto(photos, [readPhotoMetadata, (bytes) => sharp(bytes).metadata()], reps);
  const sample = await readPhotoMetadata(photos[Math.min(1, photos.length - 1)]!);
  if (sample.taken_at === undefined || sample.gps_lat === undefined) throw new Error(`the photos' metadata was not read: ${JSON.stringify(sample)}`);
  return { full: full!, header: header! };
}

/** Photos per run of the bench's `photos` scenario, and passes of the reader over them. */
const PHOTOS_PLAN = { tiny: { photos: 6, reps: 1 }, quick: { photos: 24, reps: 5 }, full: { photos: 100, reps: 7 } } as const;

/**
 * The `photos` scenario of `tessera bench`: the metadata reader's cost per photo against the
 * engine's embedding cost per image on the same photos, with the bench's own model.
 */
export async function photosScenario(modelDir: string, engine: EmbedderOptions, size: SetSize, log: (line: string) => void): Promise<Record<string, unknown>> {
  const plan = PHOTOS_PLAN[size];
  log(`photos: ${plan.photos} camera JPEGs with EXIF, metadata read ${plan.reps}x, then embedded ...`);
  const photos = await exifPhotos(plan.photos);
  const { full, header } = await exifCost(photos, plan.reps);
  const folder = await mkdtemp(join(tmpdir(), 'tessera-bench-photos-'));
  try {
    const paths = await Promise.all(photos.map(async (p, i) => {
      const path = join(folder, `p${i}.jpg`);
      await writeFile(path, p);
      return path;
    }));
    const embedder = await loadEngine(modelDir, engine);
    let run;
    try {
      await engineImages(embedder, paths.slice(0, 2));
      run = await engineImages(embedder, paths);
    } finally {
      await embedder.close();
    }
    const embedMs = run.wallMs / run.items;
    const round = (x: number, d = 3) => Math.round(x * 10 ** d) / 10 ** d;
    return {
      photos: plan.photos,
      exif_ms_per_photo: round(full.median),
      header_only_ms_per_photo: round(header.median),
      embed_ms_per_image: round(embedMs, 1),
      exif_share: round(full.median / (full.median + embedMs), 4),
      target_share: 0.02,
      note: 'exif: readPhotoMetadata from bytes in memory, one photo at a time (median of the passes); embed: the engine over the same photos from files; share = exif / (exif + embed), other indexing costs left out',
    };
  } finally {
    await rm(folder, { recursive: true, force: true });
  }
}
