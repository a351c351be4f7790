/**
 * A small EXIF (TIFF) block builder for tests: IFD0, the Exif IFD and the GPS IFD, laid out as
 * a camera writes them, with hooks to write them wrong (counts, offsets, pointers, truncation),
 * and splicers that put a block into a JPEG (APP1) or a PNG (eXIf) made by sharp.
 */

type Rational = readonly [number, number];

export type ExifEntry = { tag: number; raw?: { count?: number; offset?: number } } & (
  | { type: 'ascii'; value: string }
  | { type: 'byte' | 'undefined' | 'short' | 'long'; value: readonly number[] }
  | { type: 'rational' | 'srational'; value: readonly Rational[] }
);

export interface ExifSpec {
  ifd0?: ExifEntry[];
  exif?: ExifEntry[];
  gps?: ExifEntry[];
  bigEndian?: boolean;
  /** Overrides the Exif IFD pointer written in IFD0 (e.g. 8: IFD0 itself, a loop). */
  exifPointer?: number;
  /** Overrides IFD0's next-IFD link (e.g. 8: IFD0 again). */
  nextIfd?: number;
}

const TYPE = { byte: [1, 1], ascii: [2, 1], short: [3, 2], long: [4, 4], rational: [5, 8], undefined: [7, 1], srational: [10, 8] } as const;

export const ascii = (tag: number, value: string): ExifEntry => ({ tag, type: 'ascii', value });
export const short = (tag: number, ...value: number[]): ExifEntry => ({ tag, type: 'short', value });
export const byte = (tag: number, ...value: number[]): ExifEntry => ({ tag, type: 'byte', value });
export const rational = (tag: number, ...value: Rational[]): ExifEntry => ({ tag, type: 'rational', value });

/** Decimal degrees as the three rationals GPS writes: degrees, minutes, seconds in thousandths. */
export function dms(degrees: number): Rational[] {
  const d = Math.floor(degrees);
  const minutes = (degrees - d) * 60;
  const m = Math.floor(minutes + 1e-9);
  return [[d, 1], [m, 1], [Math.round((minutes - m) * 60 * 1000), 1000]];
}

/** Tags used by the tests. */
export const TAG = {
  ImageDescription: 0x010e,
  Make: 0x010f,
  Model: 0x0110,
  Orientation: 0x0112,
  ExifPointer: 0x8769,
  GpsPointer: 0x8825,
  DateTimeOriginal: 0x9003,
  DateTimeDigitized: 0x9004,
  OffsetTimeOriginal: 0x9011,
  OffsetTimeDigitized: 0x9012,
  UserComment: 0x9286,
  LensModel: 0xa434,
  GPSLatitudeRef: 1,
  GPSLatitude: 2,
  GPSLongitudeRef: 3,
  GPSLongitude: 4,
  GPSAltitudeRef: 5,
  GPSAltitude: 6,
} as const;

/** A GPS IFD for a position (south and west by sign), with altitude when given. */
export function gpsEntries(lat: number, lon: number, alt?: number): ExifEntry[] {
  const entries = [
    ascii(TAG.GPSLatitudeRef, lat < 0 ? 'S' : 'N'),
    rational(TAG.GPSLatitude, ...dms(Math.abs(lat))),
    ascii(TAG.GPSLongitudeRef, lon < 0 ? 'W' : 'E'),
    rational(TAG.GPSLongitude, ...dms(Math.abs(lon))),
  ];
  if (alt !== undefined) entries.push(byte(TAG.GPSAltitudeRef, alt < 0 ? 1 : 0), rational(TAG.GPSAltitude, [Math.round(Math.abs(alt) * 100), 100]));
  return entries;
}

function valueBytes(e: ExifEntry, be: boolean): { count: number; bytes: Buffer } {
  const [, size] = TYPE[e.type];
  if (e.type === 'ascii') {
    const bytes = Buffer.from(`${e.value}\0`, 'latin1');
    return { count: bytes.length, bytes };
  }
  const count = e.value.length;
  const bytes = Buffer.alloc(count * size);
  e.value.forEach((v: number | Rational, i: number) => {
    const at = i * size;
    if (e.type === 'rational' || e.type === 'srational') {
      const [n, d] = v as Rational;
      const write = e.type === 'rational' ? (be ? bytes.writeUInt32BE : bytes.writeUInt32LE) : be ? bytes.writeInt32BE : bytes.writeInt32LE;
      write.call(bytes, n, at);
      write.call(bytes, d, at + 4);
    } else if (size === 1) bytes.writeUInt8(v as number, at);
    else if (size === 2) (be ? bytes.writeUInt16BE : bytes.writeUInt16LE).call(bytes, v as number, at);
    else (be ? bytes.writeUInt32BE : bytes.writeUInt32LE).call(bytes, v as number, at);
  });
  return { count, bytes };
}

/** The size of an IFD with its out-of-line values (each word-aligned). */
function ifdSize(entries: readonly ExifEntry[]): number {
  let size = 2 + entries.length * 12 + 4;
  for (const e of entries) {
    const { bytes } = valueBytes(e, false);
    if (bytes.length > 4) size += bytes.length + (bytes.length % 2);
  }
  return size;
}

function writeIfd(out: Buffer, start: number, entries: readonly ExifEntry[], next: number, be: boolean): void {
  const u16 = (v: number, at: number) => (be ? out.writeUInt16BE(v, at) : out.writeUInt16LE(v, at));
  const u32 = (v: number, at: number) => (be ? out.writeUInt32BE(v >>> 0, at) : out.writeUInt32LE(v >>> 0, at));
  const sorted = [...entries].sort((a, b) => a.tag - b.tag);
  u16(sorted.length, start);
  let data = start + 2 + sorted.length * 12 + 4;
  sorted.forEach((e, i) => {
    const at = start + 2 + i * 12;
    const { count, bytes } = valueBytes(e, be);
    u16(e.tag, at);
    u16(TYPE[e.type][0], at + 2);
    u32(e.raw?.count ?? count, at + 4);
    if (bytes.length <= 4) bytes.copy(out, at + 8);
    else {
      bytes.copy(out, data);
      u32(e.raw?.offset ?? data, at + 8);
      data += bytes.length + (bytes.length % 2);
    }
    if (e.raw?.offset !== undefined && bytes.length <= 4) u32(e.raw.offset, at + 8);
  });
  u32(next, start + 2 + sorted.length * 12);
}

/** A TIFF block ("II*\0" or "MM\0*" header) holding the given IFDs. */
export function buildTiff(spec: ExifSpec): Buffer {
  const be = spec.bigEndian ?? false;
  const exif = spec.exif ?? [];
  const gps = spec.gps ?? [];
  // Pointers are LONGs in IFD0; their values are known once the sizes are.
  const ifd0 = [...(spec.ifd0 ?? [])];
  if (exif.length > 0 || spec.exifPointer !== undefined) ifd0.push({ tag: TAG.ExifPointer, type: 'long', value: [0] });
  if (gps.length > 0) ifd0.push({ tag: TAG.GpsPointer, type: 'long', value: [0] });
  const exifAt = 8 + ifdSize(ifd0);
  const gpsAt = exifAt + (exif.length > 0 ? ifdSize(exif) : 0);
  for (const e of ifd0) {
    if (e.tag === TAG.ExifPointer) Object.assign(e, { value: [spec.exifPointer ?? exifAt] });
    if (e.tag === TAG.GpsPointer) Object.assign(e, { value: [gpsAt] });
  }
  const out = Buffer.alloc(gpsAt + (gps.length > 0 ? ifdSize(gps) : 0));
  out.write(be ? 'MM' : 'II', 0, 'latin1');
  if (be) {
    out.writeUInt16BE(42, 2);
    out.writeUInt32BE(8, 4);
  } else {
    out.writeUInt16LE(42, 2);
    out.writeUInt32LE(8, 4);
  }
  writeIfd(out, 8, ifd0, spec.nextIfd ?? 0, be);
  if (exif.length > 0) writeIfd(out, exifAt, exif, 0, be);
  if (gps.length > 0) writeIfd(out, gpsAt, gps, 0, be);
  return out;
}

/** `jpeg` with `tiff` as its EXIF APP1 segment, right after SOI (at most 65,527 bytes of TIFF). */
export function jpegWithExif(jpeg: Buffer, tiff: Buffer): Buffer {
  if (jpeg[0] !== 0xff || jpeg[1] !== 0xd8) throw new Error('not a JPEG');
  const payload = Buffer.concat([Buffer.from('Exif\0\0', 'latin1'), tiff]);
  if (payload.length + 2 > 0xffff) throw new Error(`an APP1 segment holds at most 65,533 bytes, not ${payload.length}`);
  const head = Buffer.from([0xff, 0xe1, 0, 0]);
  head.writeUInt16BE(payload.length + 2, 2);
  return Buffer.concat([jpeg.subarray(0, 2), head, payload, jpeg.subarray(2)]);
}

/** `png` with `tiff` as an eXIf chunk right after IHDR (no size limit: PNG chunks go to 2 GB). */
export function pngWithExif(png: Buffer, tiff: Buffer): Buffer {
  const ihdrEnd = 8 + 4 + 4 + png.readUInt32BE(8) + 4;
  return Buffer.concat([png.subarray(0, ihdrEnd), pngChunk('eXIf', tiff), png.subarray(ihdrEnd)]);
}

function pngChunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes: Buffer): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

// ---- the photos the tests index ----

export interface PhotoCase {
  /** File name, extension included. */
  name: string;
  bytes: Buffer;
  /** readPhotoMetadata's answer, exactly. */
  expected: Record<string, string | number | boolean>;
}

/** 48x32 pixels: width and height tell a quarter turn apart. */
const W = 48;
const H = 32;

async function blank(format: 'jpeg' | 'png' | 'webp', rgb: readonly [number, number, number] = [200, 60, 30]) {
  const { default: sharp } = await import('sharp');
  return sharp({ create: { width: W, height: H, channels: 3, background: { r: rgb[0], g: rgb[1], b: rgb[2] } } }).toFormat(format);
}

/** IFD0, Exif and GPS of a well-formed photo, for the hostile cases to spoil one part of. */
export function cameraExif(): Required<Pick<ExifSpec, 'ifd0' | 'exif' | 'gps'>> {
  return {
    ifd0: [ascii(TAG.Make, 'SONY'), ascii(TAG.Model, 'ILCE-7M3')],
    exif: [ascii(TAG.DateTimeOriginal, '2019:02:28 23:59:59'), ascii(TAG.OffsetTimeOriginal, '-05:30'), ascii(TAG.LensModel, 'FE 35mm F1.8')],
    gps: gpsEntries(-12.0464, -77.0428, -3.5),
  };
}

/** What readPhotoMetadata makes of cameraExif() (less what a case spoils). */
export const CAMERA = {
  width: W,
  height: H,
  camera_make: 'SONY',
  camera_model: 'ILCE-7M3',
  lens: 'FE 35mm F1.8',
  taken_at: '2019-03-01T05:29:59Z',
  taken_at_offset_known: true,
  gps_lat: -12.0464,
  gps_lon: -77.0428,
  gps_alt: -3.5,
} as const;

function without<T extends object>(o: T, ...keys: string[]): Record<string, string | number | boolean> {
  return Object.fromEntries(Object.entries(o).filter(([k]) => !keys.includes(k)));
}

/**
 * Real JPEG, PNG and WebP files with real EXIF: some written by sharp (libexif), most by the
 * builder above, hostile ones included; each with the metadata expected of it.
 */
export async function photoCases(): Promise<PhotoCase[]> {
  const jpeg = await (await blank('jpeg')).toBuffer();
  const png = await (await blank('png')).toBuffer();
  const cam = cameraExif();
  const spoil = (part: Partial<ExifSpec>) => jpegWithExif(jpeg, buildTiff({ ...cam, ...part }));
  const xmp =
    '<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">' +
    '<rdf:Description rdf:about="" xmlns:photoshop="http://ns.adobe.com/photoshop/1.0/" xmlns:xmp="http://ns.adobe.com/xap/1.0/" ' +
    'photoshop:DateCreated="2017-12-31T23:30:00-01:00" xmp:CreateDate="2016-01-01T00:00:00Z"/></rdf:RDF></x:xmpmeta><?xpacket end="w"?>';
  return [
    {
      // Written by sharp (libvips + libexif): IFD2 is the Exif IFD, IFD3 the GPS IFD.
      name: 'north-east.jpg',
      bytes: await (await blank('jpeg'))
        .withExif({
          IFD0: { Make: 'Canon', Model: 'Canon EOS R5' },
          IFD2: { DateTimeOriginal: '2021:07:14 20:03:11', OffsetTimeOriginal: '+02:00', LensModel: 'RF24-105mm F4 L IS USM' },
          IFD3: { GPSLatitudeRef: 'N', GPSLatitude: '48/1 51/1 30240/1000', GPSLongitudeRef: 'E', GPSLongitude: '2/1 17/1 40200/1000', GPSAltitude: '35/1' },
        })
        .toBuffer(),
      // libvips writes Orientation 1 with every EXIF block.
      expected: { width: W, height: H, orientation: 1, camera_make: 'Canon', camera_model: 'Canon EOS R5', lens: 'RF24-105mm F4 L IS USM', taken_at: '2021-07-14T18:03:11Z', taken_at_offset_known: true, gps_lat: 48.8584, gps_lon: 2.2945, gps_alt: 35 },
    },
    // South and west, below sea level; the offset (-05:30) crosses midnight and a month end.
    { name: 'south-west.jpg', bytes: spoil({}), expected: { ...CAMERA } },
    {
      // Big-endian ("MM"), no offset: the wall clock written as UTC, marked as such.
      name: 'big-endian-no-offset.jpg',
      bytes: jpegWithExif(jpeg, buildTiff({ ...cam, bigEndian: true, exif: [ascii(TAG.DateTimeOriginal, '2019:02:28 23:59:59')] })),
      expected: { ...without(CAMERA, 'lens'), taken_at: '2019-02-28T23:59:59Z', taken_at_offset_known: false },
    },
    { name: 'antimeridian-east.jpg', bytes: spoil({ gps: gpsEntries(-16.5, 179.9) }), expected: { ...without(CAMERA, 'gps_alt'), gps_lat: -16.5, gps_lon: 179.9 } },
    { name: 'antimeridian-west.jpg', bytes: spoil({ gps: gpsEntries(-16.5, -179.9) }), expected: { ...without(CAMERA, 'gps_alt'), gps_lat: -16.5, gps_lon: -179.9 } },
    {
      // A PNG's eXIf chunk; a leap day; +05:30 puts it on the day before in UTC.
      name: 'offset-leap-day.png',
      bytes: pngWithExif(png, buildTiff({ exif: [ascii(TAG.DateTimeOriginal, '2020:02:29 00:30:00'), ascii(TAG.OffsetTimeOriginal, '+05:30')] })),
      expected: { width: W, height: H, taken_at: '2020-02-28T19:00:00Z', taken_at_offset_known: true },
    },
    // Orientation 6: stored 48x32, shown 32x48.
    { name: 'portrait.jpg', bytes: jpegWithExif(jpeg, buildTiff({ ifd0: [ascii(TAG.Make, 'Apple'), short(TAG.Orientation, 6)] })), expected: { width: H, height: W, orientation: 6, camera_make: 'Apple' } },
    { name: 'no-exif.png', bytes: png, expected: { width: W, height: H } },
    {
      // WebP (which exifr cannot read by itself) written by sharp; only DateTimeDigitized.
      name: 'digitized.webp',
      bytes: await (await blank('webp')).withExif({ IFD0: { Make: 'FUJIFILM' }, IFD2: { DateTimeDigitized: '2018:06:01 12:00:00', OffsetTimeDigitized: '-03:00' } }).toBuffer(),
      expected: { width: W, height: H, orientation: 1, camera_make: 'FUJIFILM', taken_at: '2018-06-01T15:00:00Z', taken_at_offset_known: true },
    },
    // No EXIF date: XMP's photoshop:DateCreated (before xmp:CreateDate).
    { name: 'xmp-only.jpg', bytes: await (await blank('jpeg')).withXmp(xmp).toBuffer(), expected: { width: W, height: H, taken_at: '2018-01-01T00:30:00Z', taken_at_offset_known: true } },

    // ---- hostile: each still indexed, the bad fields left out, the good ones kept ----
    // Cut inside the Exif IFD: IFD0 (Make, Model, two pointers, two strings) is the first 76 bytes.
    { name: 'truncated.jpg', bytes: jpegWithExif(jpeg, buildTiff(cam).subarray(0, 80)), expected: { width: W, height: H, camera_make: 'SONY', camera_model: 'ILCE-7M3' } },
    { name: 'absurd-count.jpg', bytes: spoil({ ifd0: [{ ...ascii(TAG.Make, 'SONY'), raw: { count: 0x7fffffff } }, ascii(TAG.Model, 'ILCE-7M3')] }), expected: without(CAMERA, 'camera_make') },
    {
      name: 'absurd-offset.jpg',
      bytes: spoil({ exif: [{ ...ascii(TAG.DateTimeOriginal, '2019:02:28 23:59:59'), raw: { offset: 0xfffffff0 } }, ascii(TAG.LensModel, 'FE 35mm F1.8')] }),
      expected: without(CAMERA, 'taken_at', 'taken_at_offset_known'),
    },
    // The Exif pointer and the next-IFD link both lead back to IFD0.
    { name: 'ifd-loop.jpg', bytes: jpegWithExif(jpeg, buildTiff({ ifd0: cam.ifd0, gps: cam.gps, exifPointer: 8, nextIfd: 8 })), expected: without(CAMERA, 'lens', 'taken_at', 'taken_at_offset_known') },
    {
      // 1 MB ImageDescription and 1 MB UserComment (in a PNG: a JPEG segment holds 64 KB).
      name: 'huge-comment.png',
      bytes: pngWithExif(png, buildTiff({ ifd0: [...cam.ifd0, ascii(TAG.ImageDescription, 'x'.repeat(1 << 20))], exif: [...cam.exif, { tag: TAG.UserComment, type: 'undefined', value: new Array<number>(1 << 20).fill(65) }], gps: cam.gps })),
      expected: { ...CAMERA },
    },
    { name: 'month-13.jpg', bytes: spoil({ exif: [ascii(TAG.DateTimeOriginal, '2021:13:01 10:00:00'), ascii(TAG.LensModel, 'FE 35mm F1.8')] }), expected: without(CAMERA, 'taken_at', 'taken_at_offset_known') },
    {
      name: 'latitude-95.jpg',
      bytes: spoil({ gps: [ascii(TAG.GPSLatitudeRef, 'N'), rational(TAG.GPSLatitude, [95, 1], [0, 1], [0, 1]), ascii(TAG.GPSLongitudeRef, 'E'), rational(TAG.GPSLongitude, [10, 1], [0, 1], [0, 1])] }),
      expected: without(CAMERA, 'gps_lat', 'gps_lon', 'gps_alt'),
    },
    { name: 'longitude-200.jpg', bytes: spoil({ gps: gpsEntries(10, 200) }), expected: without(CAMERA, 'gps_lat', 'gps_lon', 'gps_alt') },
    {
      // Zero denominators: 0/0 and 1/0.
      name: 'nan-rationals.jpg',
      bytes: spoil({ gps: [ascii(TAG.GPSLatitudeRef, 'N'), rational(TAG.GPSLatitude, [0, 0], [0, 0], [0, 0]), ascii(TAG.GPSLongitudeRef, 'E'), rational(TAG.GPSLongitude, [10, 1], [0, 1], [0, 1]), rational(TAG.GPSAltitude, [1, 0])] }),
      expected: without(CAMERA, 'gps_lat', 'gps_lon', 'gps_alt'),
    },
    {
      // NULs, blanks, a 300-character "lens", a BYTE Make instead of ASCII.
      name: 'junk-strings.jpg',
      bytes: spoil({ ifd0: [{ tag: TAG.Make, type: 'byte', value: [83, 79, 78, 89, 0] }, ascii(TAG.Model, '  ILCE-7M3\0\0 ')], exif: [...cam.exif.slice(0, 2), ascii(TAG.LensModel, 'L'.repeat(300))] }),
      expected: without(CAMERA, 'camera_make', 'lens'),
    },
  ];
}
