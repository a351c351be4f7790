/**
 * Metadata read from a photo's own bytes (EXIF, XMP, header): when it was taken, where, with
 * what, and its size as displayed. Photo files come from anywhere, so every value is checked
 * for type and range and a bad one is left out (never clamped, never rolled over); nothing
 * here throws, and a file with unreadable metadata is still indexed.
 *
 * sharp reads the header (size, orientation) and hands over the raw EXIF and XMP blocks of
 * every format libvips decodes (JPEG, PNG eXIf, WebP, AVIF, TIFF, ...; exifr alone cannot read
 * WebP); exifr parses the blocks, picking only the tags below, so MakerNote, UserComment and
 * thumbnails are never read.
 */
import exifr from 'exifr';
import sharp, { type Metadata as ImageHeader } from 'sharp';
import { utcIso } from '../dates.ts';
import type { Metadata } from '../store/store.ts';

/** The keys readPhotoMetadata may set. */
export const PHOTO_KEYS: readonly string[] = [
  'taken_at',
  'taken_at_offset_known',
  'gps_lat',
  'gps_lon',
  'gps_alt',
  'camera_make',
  'camera_model',
  'lens',
  'width',
  'height',
  'orientation',
];

/** XMP above this is not parsed (a JPEG's XMP packet is at most 64 KB; PNG's iTXt is unbounded). */
const MAX_XMP_BYTES = 256 * 1024;
/** Make, Model and lens longer than this are junk, not names. */
const MAX_NAME_CHARS = 256;
/** Higher than any balloon; anything beyond is a broken GPS block. */
const MAX_ALTITUDE_M = 100_000;

type ExifOptions = NonNullable<Parameters<typeof exifr.sidecar>[1]>;

// The tags read, by block, as numeric ids (exifr looks numbers up without its dictionaries).
const PICK = {
  ifd0: [0x010f /* Make */, 0x0110 /* Model */],
  exif: [
    0x9003 /* DateTimeOriginal */,
    0x9004 /* DateTimeDigitized, exifr's CreateDate */,
    0x9011 /* OffsetTimeOriginal */,
    0x9012 /* OffsetTimeDigitized */,
    0xa434 /* LensModel */,
  ],
  gps: [1, 2, 3, 4, 5, 6] /* Latitude(Ref), Longitude(Ref), Altitude(Ref) */,
};

/** exifr options reading `pick` only: other blocks, segments, MakerNote, UserComment, thumbnails stay unread. */
function options(pick: { ifd0?: number[]; exif?: number[]; gps?: number[] }): ExifOptions {
  const block = (tags: number[] | undefined) => (tags ? { pick: tags } : false);
  return {
    // A disabled IFD0 is still read for the pointers to the blocks that are enabled.
    ifd0: block(pick.ifd0),
    exif: block(pick.exif),
    gps: block(pick.gps),
    ifd1: false,
    interop: false,
    makerNote: false,
    userComment: false,
    xmp: false,
    icc: false,
    iptc: false,
    jfif: false,
    ihdr: false,
    // Raw values: reviveValues would turn dates into Dates in the indexing machine's time zone
    // and roll impossible ones over (month 13 -> next year); translateValues would turn enums to words.
    reviveValues: false,
    translateValues: false,
  } as ExifOptions;
}

// One set of options per tag, built once: exifr caches parsed options by object identity, for ever.
const EACH_TAG = (Object.entries(PICK) as ['ifd0' | 'exif' | 'gps', number[]][]).flatMap(([block, tags]) => tags.map((tag) => options({ [block]: [tag] })));
const XMP_OPTIONS = { xmp: true, reviveValues: false } as ExifOptions;

/**
 * The photo keys of an image, those it has: `taken_at` (ISO 8601 UTC, seconds) with
 * `taken_at_offset_known`, `gps_lat`/`gps_lon` (degrees, south and west negative), `gps_alt`
 * (metres, negative below sea level), `camera_make`, `camera_model`, `lens`, `width` and
 * `height` as displayed (after the EXIF orientation), `orientation` (1-8). Never throws.
 */
export async function readPhotoMetadata(bytes: Uint8Array): Promise<Metadata> {
  let header: ImageHeader;
  try {
    header = await sharp(bytes).metadata();
  } catch {
    return {}; // not an image sharp can read: the embedder reports it when it decodes
  }
  const out: Metadata = {};
  const { orientation, width, height } = header;
  const valid = orientation !== undefined && Number.isInteger(orientation) && orientation >= 1 && orientation <= 8;
  if (valid) out.orientation = orientation;
  if (width !== undefined && height !== undefined && Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0) {
    // Orientations 5-8 turn the picture a quarter: displayed, width and height trade places.
    const turned = valid && orientation >= 5;
    out.width = turned ? height : width;
    out.height = turned ? width : height;
  }

  const tags = header.exif ? await parseExif(header.exif) : {};
  Object.assign(out, names(tags), gps(tags));
  const taken = exifDate(tags) ?? (header.xmp && header.xmp.length <= MAX_XMP_BYTES ? await xmpDate(header.xmp) : undefined);
  if (taken) {
    out.taken_at = taken.iso;
    out.taken_at_offset_known = taken.offsetKnown;
  }
  return out;
}

type Tags = Record<string, unknown>;

async function parseExif(block: Buffer): Promise<Tags> {
  // JPEG and WebP blocks start with "Exif\0\0", PNG's eXIf with the TIFF header itself.
  const tiff = block.subarray(0, 6).toString('latin1') === 'Exif\0\0' ? block.subarray(6) : block;
  const order = tiff.subarray(0, 4).toString('latin1');
  if (order !== 'II*\0' && order !== 'MM\0*') return {};
  // Each tag alone: one bad tag (a count or offset past the end) costs exifr its whole block,
  // and IFD0's pointers to the others with it, not always saying so. Alone, only it is lost.
  // All of readPhotoMetadata costs about 1.3 ms a photo, 0.6% of embedding it (scripts/measure-exif.ts).
  const tags: Tags = {};
  for (const only of EACH_TAG) Object.assign(tags, await parseTags(tiff, only));
  return tags;
}

async function parseTags(tiff: Buffer, options: ExifOptions): Promise<Tags> {
  try {
    const tags: unknown = await exifr.parse(tiff, options);
    return tags !== null && typeof tags === 'object' ? (tags as Tags) : {};
  } catch {
    return {}; // exifr throws on some structures its silentErrors does not cover
  }
}

function names(tags: Tags): Metadata {
  const out: Metadata = {};
  const make = name(tags.Make);
  const model = name(tags.Model);
  const lens = name(tags.LensModel);
  if (make !== undefined) out.camera_make = make;
  if (model !== undefined) out.camera_model = model;
  if (lens !== undefined) out.lens = lens;
  return out;
}

function name(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const s = value.replace(/\0/g, '').trim();
  return s === '' || s.length > MAX_NAME_CHARS ? undefined : s;
}

// ---- dates ----

interface Taken {
  iso: string;
  offsetKnown: boolean;
}

/**
 * DateTimeOriginal with OffsetTimeOriginal; failing that (absent or invalid),
 * DateTimeDigitized with OffsetTimeDigitized (the same moment for a camera; a scan's date for a scan).
 */
function exifDate(tags: Tags): Taken | undefined {
  return taken(tags.DateTimeOriginal, tags.OffsetTimeOriginal) ?? taken(tags.CreateDate, tags.OffsetTimeDigitized);
}

function taken(value: unknown, offset: unknown): Taken | undefined {
  if (typeof value !== 'string') return undefined;
  const m = /^(\d{4}):(\d{2}):(\d{2}) (\d{2}):(\d{2}):(\d{2})$/.exec(value.replace(/\0/g, '').trim());
  if (!m) return undefined;
  // An offset that is absent or malformed leaves the time as written, marked as of unknown zone.
  const minutes = typeof offset === 'string' ? offsetMinutes(offset.replace(/\0/g, '').trim()) : undefined;
  return utc(m.slice(1, 7).map(Number), minutes);
}

/** "+01:00", "-05:30", "Z" as minutes east of UTC, within -14:00..+14:00; else undefined. */
function offsetMinutes(text: string): number | undefined {
  if (text === 'Z') return 0;
  const m = /^([+-])(\d{2}):(\d{2})$/.exec(text);
  if (!m) return undefined;
  const minutes = Number(m[2]) * 60 + Number(m[3]);
  if (Number(m[3]) > 59 || minutes > 14 * 60) return undefined;
  return m[1] === '-' ? -minutes : minutes;
}

/** The UTC time of a wall-clock time at `offset` minutes east (unknown: the wall clock written as UTC), every field checked. */
function utc([year, month, day, hour, minute, second]: number[], offset: number | undefined): Taken | undefined {
  const iso = utcIso(year!, month!, day!, hour!, minute!, second!, offset ?? 0);
  return iso === undefined ? undefined : { iso, offsetKnown: offset !== undefined };
}

/**
 * The XMP fallback for files without an EXIF date (edited exports, some PNGs): photoshop:DateCreated
 * (when the photo was taken), then xmp:CreateDate. ISO 8601 with minutes at least and an
 * optional offset; a date without a time says too little and is passed over.
 */
async function xmpDate(xmp: Buffer): Promise<Taken | undefined> {
  let parsed: Tags;
  try {
    parsed = ((await exifr.sidecar(xmp, XMP_OPTIONS, 'xmp')) ?? {}) as Tags;
  } catch {
    return undefined;
  }
  const field = (ns: string, key: string): unknown => {
    const group = parsed[ns];
    return group !== null && typeof group === 'object' ? (group as Tags)[key] : undefined;
  };
  return isoDate(field('photoshop', 'DateCreated')) ?? isoDate(field('xmp', 'CreateDate'));
}

function isoDate(value: unknown): Taken | undefined {
  if (typeof value !== 'string') return undefined;
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?(Z|[+-]\d{2}:\d{2})?$/.exec(value.trim());
  if (!m) return undefined;
  let offset: number | undefined;
  if (m[7] !== undefined) {
    offset = offsetMinutes(m[7]);
    if (offset === undefined) return undefined; // an offset given but impossible: the value is broken
  }
  return utc([m[1], m[2], m[3], m[4], m[5], m[6] ?? '0'].map(Number), offset);
}

// ---- GPS ----

function gps(tags: Tags): Metadata {
  const out: Metadata = {};
  const lat = coordinate(tags.GPSLatitude, tags.GPSLatitudeRef, 'N', 'S', 90);
  const lon = coordinate(tags.GPSLongitude, tags.GPSLongitudeRef, 'E', 'W', 180);
  // Half a position is no position: both or neither.
  if (lat === undefined || lon === undefined) return out;
  out.gps_lat = lat;
  out.gps_lon = lon;
  const alt = altitude(tags.GPSAltitude, tags.GPSAltitudeRef);
  if (alt !== undefined) out.gps_alt = alt;
  return out;
}

/** Degrees, minutes, seconds (rationals; exifr divides, 0/0 gives NaN) and N/S or E/W as signed degrees. */
function coordinate(value: unknown, ref: unknown, positive: string, negative: string, max: number): number | undefined {
  const parts = numbers(value);
  if (!parts || parts.length < 1 || parts.length > 3 || !parts.every((p) => Number.isFinite(p) && p >= 0)) return undefined;
  const [d, m = 0, s = 0] = parts as [number, number?, number?];
  if (m >= 60 || s >= 60) return undefined;
  const degrees = d + m / 60 + s / 3600;
  if (degrees > max) return undefined;
  const side = typeof ref === 'string' ? ref.replace(/\0/g, '').trim().toUpperCase() : undefined;
  // Without its reference the sign is unknown: left out rather than guessed.
  if (side !== positive && side !== negative) return undefined;
  const rounded = Math.round(degrees * 1e7) / 1e7; // about 1 cm; drops the float noise of d + m/60 + s/3600
  return side === negative ? -rounded : rounded;
}

/** Metres; GPSAltitudeRef 1 means below sea level, 0 or absent above. */
function altitude(value: unknown, ref: unknown): number | undefined {
  const [metres] = numbers(value) ?? [];
  if (metres === undefined || !Number.isFinite(metres) || metres < 0 || metres > MAX_ALTITUDE_M) return undefined;
  const [below = 0] = ref === undefined ? [] : (numbers(ref) ?? [-1]);
  if (below !== 0 && below !== 1) return undefined;
  const rounded = Math.round(metres * 1000) / 1000;
  return below === 1 && rounded !== 0 ? -rounded : rounded;
}

/** A number or a list of numbers (exifr gives arrays for counts above 1, typed arrays for bytes). */
function numbers(value: unknown): number[] | undefined {
  if (typeof value === 'number') return [value];
  if (Array.isArray(value) || ArrayBuffer.isView(value)) {
    const list = Array.from(value as ArrayLike<unknown>);
    return list.every((v) => typeof v === 'number') ? (list as number[]) : undefined;
  }
  return undefined;
}
