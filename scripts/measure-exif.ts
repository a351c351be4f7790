/**
 * What reading a photo's metadata (src/image/photo-metadata.ts: sharp's header read, then exifr
 * on the EXIF block, tag by tag) costs per photo, against what embedding the same photo costs.
 * The target: under 2% of indexing time.
 *
 * The photos: 200 of bench/photos.ts's (camera-like JPEGs with ~34 KB of EXIF and an XMP packet),
 * read from memory as the indexer reads them. `tessera bench` measures the same in its `photos`
 * scenario, against its own model's rate.
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
import { Embedder } from '../src/engine/embedder.ts';
import { cameraExif, exifCost, exifPhotos, PHOTO_SIZES, XMP } from '../bench/photos.ts';

const { values } = parseArgs({
  options: { photos: { type: 'string', default: '200' }, model: { type: 'string' }, out: { type: 'string', default: 'docs/measurements/exif.json' } },
});
const COUNT = Number(values.photos);
const REPS = 7;

console.log(`making ${COUNT} photos ...`);
const photos = await exifPhotos(COUNT);
const exifBytes = cameraExif(0).length;
const meanFileBytes = photos.reduce((n, p) => n + p.length, 0) / photos.length;
const { full, header } = await exifCost(photos, REPS);

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
  sizes: PHOTO_SIZES.map(([w, h]) => `${w}x${h}`).join(', '),
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
