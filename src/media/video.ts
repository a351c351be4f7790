/**
 * Videos for the index: recognise one by its first bytes, probe it (size, length, when and
 * where it was filmed), and turn it into a few frames worth embedding, all through FFmpeg
 * child processes (./ffmpeg.ts) with deadlines.
 *
 * Videos come from anywhere, so FFmpeg is held on a short leash:
 * - the demuxer is forced to the format the first bytes show (`-f mov|matroska|avi`) and only
 *   the file protocol is allowed, so a "video" that is really an HLS playlist, a concat list or
 *   a text file is never followed to other files or URLs, nor rendered;
 * - the frame size is checked twice: ffprobe's claim against `maxPixels` before decoding, and
 *   the decoder's own `-max_pixels` for streams whose real size differs from the claim;
 * - every run has a deadline and is SIGKILLed (and reaped) when it passes, when the caller
 *   aborts, or when the consumer of the frames stops early.
 */
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import sharp from 'sharp';
import { utcIso } from '../dates.ts';
import { invalidArgument, TesseraError } from '../errors.ts';
import type { Metadata } from '../store/store.ts';
import { FFMPEG_HINT, fpsModeArgs, runTool, startTool, type FfmpegTools, type RunResult } from './ffmpeg.ts';

export type VideoFormat = 'mp4' | 'mov' | 'webm' | 'mkv' | 'avi';

/**
 * How many leading bytes sniffVideo wants. 64 hold the usual ftyp box and EBML header; 128
 * also hold a long list of compatible brands and an EBML header written with 8-byte sizes.
 */
export const VIDEO_SNIFF_BYTES = 128;

/**
 * At least one frame every this many seconds within a shot (cuts add their own frames).
 * Measured on this machine (AMD EPYC, 2 cores, shared: load average about 10 during the runs)
 * with a 60 s 1280x720 30 fps H.264 video (testsrc2) at size 224: videoFrames took 5.8-6.4 s
 * of CPU (user, Node's start included; 1.2-1.4 frames/s of wall time under that load) whatever
 * the interval (1 s: 60 frames, 3 s: 20, 5 s: 12), and FFmpeg decoding alone (-f null) 4.9 s:
 * decoding every frame, which scene detection needs, is the cost, about 370 frames/s on one
 * core. What the interval buys is embedding: jina-clip-v1 embeds 4.36 images/s here
 * (docs/measurements/bench-full.json), 0.23 s a frame. At 3 s the 20 frames of a minute cost
 * 4.6 s to embed, about what decoding that minute costs, so indexing a video costs about twice
 * decoding it; 2 s would spend 1.4x the decoding on frames that mostly repeat the shot, 5 s
 * would leave a long shot with few frames for little saving.
 */
export const DEFAULT_VIDEO_INTERVAL = 3;
/** Frames per video at most; a longer video is sampled more sparsely (see videoFrames). */
export const DEFAULT_VIDEO_MAX_FRAMES = 300;
/**
 * FFmpeg time per video (see videoFrames: the time spent waiting on it). Decoding runs at about
 * 370 frames/s of 720p H.264 on one core here, so 10 minutes read about 2 hours of 720p30, 50
 * minutes of 1080p30 or 13 of 4K30; a file that decodes slower than that (or a hostile one that
 * never ends) is stopped rather than holding an indexing slot for ever.
 */
export const DEFAULT_VIDEO_DEADLINE_MS = 10 * 60_000;
/** The default `maxPixels`: 8192 x 8192, as for images; 8K video (7680 x 4320) is below it. */
export const DEFAULT_VIDEO_MAX_PIXELS = 8192 * 8192;
/**
 * A frame whose pixels, in every channel, vary less than this (standard deviation, 0-255) is
 * one flat colour (black intro, white flash, blank screen) and not worth a vector. Flat H.264
 * frames measure below 1 (ffmpeg showinfo), the test suite's textured ones 40-90. A frame of
 * nearly featureless sky might also fall below: that costs the frame, not the video, as the
 * interval keeps sampling.
 */
export const UNIFORM_STD_DEV = 6;
/** ffmpeg's scene score (0-1, the frame's difference from the last) above which a frame is a cut. */
export const SCENE_THRESHOLD = 0.3;
/** Cut frames closer than this to the last kept frame are dropped (a strobe or fast pans would give one a frame). */
export const SCENE_MIN_GAP = 0.5;
/** A frame's longer side is at most this many times `size` (a 1:100 claim would give huge frames). */
const MAX_ASPECT = 8;
/**
 * Decoder threads. The embedder runs on the same cores and is the bottleneck (about 0.23 s a
 * frame against 0.003 s to decode one), so one FFmpeg thread keeps ahead of it without taking
 * a core away from inference.
 */
const FFMPEG_THREADS = '1';
const MAX_PROBE_BYTES = 4 * 1024 * 1024;

export interface VideoInfo {
  /** Seconds; 0 when the container does not say. */
  duration: number;
  /** Size as displayed: after the rotation of phone videos, and non-square pixels made square. */
  width: number;
  height: number;
  /**
   * Photo-style keys from the container, those it has: `taken_at` (ISO 8601 UTC, seconds) with
   * `taken_at_offset_known`, `gps_lat`/`gps_lon` (degrees) and `gps_alt` (metres),
   * `camera_make`, `camera_model`.
   */
  metadata: Metadata;
}

export interface VideoLimits {
  /** Wall-clock limit of each FFmpeg run (for videoFrames: the time spent waiting on FFmpeg). */
  deadlineMs: number;
  /** Default 8192*8192; a larger frame claim -> VIDEO_TOO_LARGE. */
  maxPixels?: number;
  signal?: AbortSignal;
}

export interface FrameOptions extends VideoLimits {
  /** At least one frame every `interval` seconds (plus one at every scene change). */
  interval: number;
  maxFrames: number;
  /** The model's input size: frames are scaled by FFmpeg so that their SHORTER side is `size` (aspect kept), never decoded to full size in JS. */
  size: number;
}

export interface VideoFrame {
  /** Seconds from the start, millisecond precision. */
  t: number;
  /** A PNG of the scaled frame, for the embedder. */
  image: Buffer;
  /** sha256 hex of the raw RGB pixels. */
  hash: string;
}

// ---- sniffing ----

/** ISO-BMFF brands of video files. */
const MP4_BRANDS = new Set(['isom', 'iso2', 'iso3', 'iso4', 'iso5', 'iso6', 'iso7', 'iso8', 'iso9', 'mp41', 'mp42', 'mp71', 'avc1', 'M4V ', 'M4VH', 'M4VP', 'dash', 'MSNV', 'XAVC', 'mmp4', 'f4v ', 'NDAS', 'CAEP', 'caqv', 'ROSS', 'KDDI']);
/** ISO-BMFF brands of still images and image sequences (HEIF, HEIC, AVIF, Canon CR3): never videos here. */
const IMAGE_BRANDS = new Set(['heic', 'heix', 'hevc', 'hevx', 'heim', 'heis', 'hevm', 'hevs', 'mif1', 'mif2', 'msf1', 'miaf', 'avif', 'avis', 'avio', 'crx ', 'jpeg', 'jpgs']);
/** ISO-BMFF brands of audio-only files. */
const AUDIO_BRANDS = new Set(['M4A ', 'M4B ', 'M4P ', 'F4A ', 'F4B ']);
/** First boxes of old QuickTime files that have no ftyp. */
const QUICKTIME_BOXES = new Set(['moov', 'mdat', 'wide', 'free', 'skip', 'pnot']);

/**
 * The video format of a file from its first bytes (VIDEO_SNIFF_BYTES; fewer may do), or
 * undefined. ISO-BMFF by its ftyp brands (an image brand anywhere in the list rules it out:
 * HEIC and AVIF are ISO-BMFF too), Matroska/WebM by the EBML DocType, AVI by its RIFF form.
 */
export function sniffVideo(head: Uint8Array): VideoFormat | undefined {
  const ascii = (from: number, to: number) => (head.length >= to ? String.fromCharCode(...head.subarray(from, to)) : '');
  if (ascii(0, 4) === 'RIFF' && ascii(8, 12) === 'AVI ') return 'avi';
  if (head[0] === 0x1a && head[1] === 0x45 && head[2] === 0xdf && head[3] === 0xa3) return sniffEbml(head);
  const box = ascii(4, 8);
  if (box === 'ftyp') return sniffFtyp(head);
  const size = head.length >= 4 ? new DataView(head.buffer, head.byteOffset, 4).getUint32(0) : 0;
  if (QUICKTIME_BOXES.has(box) && (size >= 8 || size <= 1)) return 'mov';
  return undefined;
}

function sniffFtyp(head: Uint8Array): VideoFormat | undefined {
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const size = head.length >= 16 ? view.getUint32(0) : 0;
  if (size < 16) return undefined;
  const brand = (at: number) => String.fromCharCode(...head.subarray(at, at + 4));
  const major = brand(8);
  const compatible: string[] = [];
  for (let at = 16; at + 4 <= Math.min(size, head.length); at += 4) compatible.push(brand(at));
  if (IMAGE_BRANDS.has(major) || AUDIO_BRANDS.has(major) || compatible.some((b) => IMAGE_BRANDS.has(b))) return undefined;
  const isMp4 = (b: string) => MP4_BRANDS.has(b) || b.startsWith('3gp') || b.startsWith('3g2');
  if (major === 'qt  ') return 'mov';
  if (isMp4(major)) return 'mp4';
  // An unknown major brand (a camera's own) that declares itself compatible with a known one.
  if (compatible.includes('qt  ')) return 'mov';
  if (compatible.some(isMp4)) return 'mp4';
  return undefined;
}

/** Reads the EBML header's elements for the DocType: "webm" or "matroska". */
function sniffEbml(head: Uint8Array): VideoFormat | undefined {
  const header = vint(head, 4, false);
  if (!header) return undefined;
  const end = Math.min(head.length, header.next + header.value);
  let at = header.next;
  while (at < end) {
    const id = vint(head, at, true);
    if (!id) return undefined;
    const size = vint(head, id.next, false);
    if (!size) return undefined;
    if (id.value === 0x4282) {
      if (size.next + size.value > head.length) return undefined;
      const docType = String.fromCharCode(...head.subarray(size.next, size.next + size.value)).replace(/\0+$/, '');
      return docType === 'webm' ? 'webm' : docType === 'matroska' ? 'mkv' : undefined;
    }
    at = size.next + size.value;
  }
  return undefined;
}

/** An EBML variable-length integer at `at`: an element ID keeps its length marker, a size drops it. */
function vint(bytes: Uint8Array, at: number, keepMarker: boolean): { value: number; next: number } | undefined {
  const first = bytes[at];
  if (first === undefined || first === 0) return undefined;
  const length = Math.clz32(first) - 23; // 1 for 0b1xxxxxxx ... 8 for 0b00000001
  if (at + length > bytes.length) return undefined;
  let value = keepMarker ? first : first & (0xff >> length);
  for (let i = 1; i < length; i++) value = value * 256 + bytes[at + i]!;
  return { value, next: at + length };
}

/** The demuxer FFmpeg is held to for a file, from its first bytes. */
async function demuxerOf(path: string): Promise<string> {
  let head: Buffer;
  try {
    const file = await open(path, 'r');
    try {
      const { buffer, bytesRead } = await file.read(Buffer.alloc(VIDEO_SNIFF_BYTES), 0, VIDEO_SNIFF_BYTES, 0);
      head = buffer.subarray(0, bytesRead);
    } finally {
      await file.close();
    }
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a folder' : (code ?? String(err));
    throw new TesseraError('VIDEO_UNDECODABLE', `${label(path)} cannot be read: ${why}`, { cause: err });
  }
  const format = sniffVideo(head);
  if (!format) throw new TesseraError('VIDEO_UNDECODABLE', `${label(path)} is not an MP4, MOV, WebM, Matroska or AVI video`);
  return format === 'mp4' || format === 'mov' ? 'mov' : format === 'avi' ? 'avi' : 'matroska';
}

/** Options before `-i` on every run: the forced demuxer, files only, the decoder's pixel limit. */
function inputArgs(demuxer: string, path: string, maxPixels: number): string[] {
  return ['-protocol_whitelist', 'file', '-max_pixels', String(maxPixels), '-f', demuxer, '-i', `file:${path}`];
}

// ---- probing ----

/**
 * Duration, displayed size and the photo-style metadata of the first video stream (not a
 * cover picture). VIDEO_UNDECODABLE when ffprobe cannot read it or it has no video stream,
 * VIDEO_TOO_LARGE when its frames claim more than `maxPixels`, VIDEO_TIMEOUT past the deadline,
 * FFMPEG_MISSING when ffprobe does not run.
 */
export async function probeVideo(tools: FfmpegTools, path: string, limits: VideoLimits): Promise<VideoInfo> {
  const maxPixels = checkLimits(limits);
  const demuxer = await demuxerOf(path);
  const args = ['-hide_banner', '-loglevel', 'level+error', '-print_format', 'json', '-show_format', '-show_streams', '-select_streams', 'V', ...inputArgs(demuxer, path, maxPixels)];
  const run = await runTool(tools.ffprobe, args, { deadlineMs: limits.deadlineMs, signal: limits.signal, maxStdoutBytes: MAX_PROBE_BYTES });
  failOnStop(run, tools.ffprobe, path, limits);
  tooLarge(run.stderr, path, maxPixels);
  if (run.code !== 0) throw undecodable(path, run.stderr);
  let report: Probe;
  try {
    report = JSON.parse(run.stdout.toString('utf8')) as Probe;
  } catch (err) {
    throw new TesseraError('VIDEO_UNDECODABLE', `${label(path)}: ffprobe's report is not JSON`, { cause: err });
  }
  const stream = (report.streams ?? []).find((s) => s.codec_type === 'video' && s.disposition?.attached_pic !== 1);
  if (!stream) throw new TesseraError('VIDEO_UNDECODABLE', `${label(path)} has no video stream`);
  const [w, h] = [stream.width, stream.height];
  if (!(Number.isInteger(w) && Number.isInteger(h) && w! > 0 && h! > 0)) {
    throw new TesseraError('VIDEO_UNDECODABLE', `${label(path)}: FFmpeg finds no frame size in its video stream${reasonSuffix(run.stderr)}`);
  }
  if (w! * h! > maxPixels) throw new TesseraError('VIDEO_TOO_LARGE', `${label(path)} claims ${w}x${h} pixels per frame, more than the limit of ${maxPixels}`);
  return {
    duration: seconds(report.format?.duration) ?? seconds(stream.duration) ?? 0,
    ...displayedSize(w!, h!, stream),
    metadata: videoMetadata(report.format?.tags ?? {}, stream.tags ?? {}),
  };
}

interface ProbeStream {
  codec_type?: string;
  width?: number;
  height?: number;
  duration?: string;
  sample_aspect_ratio?: string;
  disposition?: { attached_pic?: number };
  tags?: Record<string, unknown>;
  side_data_list?: { rotation?: unknown }[];
}

interface Probe {
  streams?: ProbeStream[];
  format?: { duration?: string; tags?: Record<string, unknown> };
}

function seconds(value: unknown): number | undefined {
  const n = typeof value === 'string' ? Number(value) : NaN;
  return Number.isFinite(n) && n >= 0 ? n : undefined;
}

/**
 * The size a player shows: FFmpeg turns frames by the display matrix of phone videos (it
 * autorotates by default, and so do videoFrames and frameAt), so a quarter turn swaps width and
 * height; non-square pixels (DV, anamorphic) are stretched to square ones.
 */
function displayedSize(width: number, height: number, stream: ProbeStream): { width: number; height: number } {
  const sar = /^(\d+):(\d+)$/.exec(stream.sample_aspect_ratio ?? '');
  const ratio = sar && Number(sar[1]) > 0 && Number(sar[2]) > 0 ? Number(sar[1]) / Number(sar[2]) : 1;
  // A SAR beyond 1:8..8:1 is junk; ignored rather than trusted.
  const w = ratio >= 1 / 8 && ratio <= 8 ? Math.max(1, Math.round(width * ratio)) : width;
  const rotation = rotationOf(stream);
  return rotation === 90 || rotation === 270 ? { width: height, height: w } : { width: w, height };
}

/** The display rotation in degrees, 0/90/180/270: side data (FFmpeg 5+), or the older `rotate` tag. */
function rotationOf(stream: ProbeStream): number {
  const side = stream.side_data_list?.find((d) => typeof d.rotation === 'number')?.rotation;
  const raw = typeof side === 'number' ? side : Number(stream.tags?.rotate ?? 0);
  if (!Number.isFinite(raw)) return 0;
  return ((Math.round(raw / 90) * 90) % 360 + 360) % 360;
}

// ---- metadata ----

/** Above this, Make and Model are junk, not names (as for photos). */
const MAX_NAME_CHARS = 256;
const MAX_ALTITUDE_M = 100_000;

/**
 * taken_at and GPS from the container's tags. The capture date: Apple's
 * com.apple.quicktime.creationdate first (the local time with its offset, kept through edits),
 * then creation_time (MP4/MOV mvhd: UTC by the standard, so its offset is known; Matroska
 * DateUTC likewise), of the file and then of the stream. The place: ISO 6709 in `location`
 * (MP4 ©xyz, Android) or com.apple.quicktime.location.ISO6709 (iPhone).
 */
function videoMetadata(formatTags: Record<string, unknown>, streamTags: Record<string, unknown>): Metadata {
  const tag = (tags: Record<string, unknown>, name: string): string | undefined => {
    const key = Object.keys(tags).find((k) => k.toLowerCase() === name.toLowerCase());
    const value = key === undefined ? undefined : tags[key];
    return typeof value === 'string' ? value.replace(/\0/g, '').trim() : undefined;
  };
  const either = (name: string) => tag(formatTags, name) ?? tag(streamTags, name);
  const out: Metadata = {};
  const taken = isoTaken(either('com.apple.quicktime.creationdate')) ?? isoTaken(tag(formatTags, 'creation_time')) ?? isoTaken(tag(streamTags, 'creation_time'));
  if (taken) {
    out.taken_at = taken.iso;
    out.taken_at_offset_known = taken.offsetKnown;
  }
  const place = iso6709(either('com.apple.quicktime.location.ISO6709') ?? either('location') ?? either('location-eng'));
  if (place) {
    out.gps_lat = place.lat;
    out.gps_lon = place.lon;
    if (place.alt !== undefined) out.gps_alt = place.alt;
  }
  const make = name(either('com.apple.quicktime.make') ?? either('com.android.manufacturer') ?? either('make'));
  const model = name(either('com.apple.quicktime.model') ?? either('com.android.model') ?? either('model'));
  if (make !== undefined) out.camera_make = make;
  if (model !== undefined) out.camera_model = model;
  return out;
}

function name(value: string | undefined): string | undefined {
  return value === undefined || value === '' || value.length > MAX_NAME_CHARS ? undefined : value;
}

/**
 * "2021-06-05T14:03:09.000000Z", "2021-06-05T16:03:09+0200", "2021-06-05 14:03:09": the UTC
 * time, its offset known when the text has one. The zero dates of writers that leave the field
 * unset (1904-01-01, the MP4 epoch; 1970-01-01) are no dates.
 */
function isoTaken(value: string | undefined): { iso: string; offsetKnown: boolean } | undefined {
  if (value === undefined) return undefined;
  const m = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(Z|[+-]\d{2}:?\d{2})?$/.exec(value);
  if (!m) return undefined;
  let offset: number | undefined;
  if (m[7] !== undefined && m[7] !== 'Z') {
    const z = /^([+-])(\d{2}):?(\d{2})$/.exec(m[7])!;
    const minutes = Number(z[2]) * 60 + Number(z[3]);
    if (Number(z[3]) > 59 || minutes > 14 * 60) return undefined;
    offset = z[1] === '-' ? -minutes : minutes;
  } else if (m[7] === 'Z') offset = 0;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const iso = utcIso(year, month, day, hour, minute, second, offset ?? 0);
  if (iso === undefined || iso.startsWith('1904-01-01T00:00:00') || iso.startsWith('1970-01-01T00:00:00')) return undefined;
  return { iso, offsetKnown: offset !== undefined };
}

/**
 * ISO 6709 "±DD.DDDD±DDD.DDDD[±AAA.AAA][CRS...]/" as signed degrees (and metres); the
 * degrees-minutes(-seconds) forms ±DDMM.M / ±DDMMSS.S too. Out of range: no place.
 */
function iso6709(value: string | undefined): { lat: number; lon: number; alt?: number } | undefined {
  if (value === undefined) return undefined;
  const m = /^([+-]\d+(?:\.\d+)?)([+-]\d+(?:\.\d+)?)([+-]\d+(?:\.\d+)?)?(?:CRS[^/]*)?\/?$/.exec(value);
  if (!m) return undefined;
  const lat = angle(m[1]!, 2, 90);
  const lon = angle(m[2]!, 3, 180);
  if (lat === undefined || lon === undefined) return undefined;
  const out: { lat: number; lon: number; alt?: number } = { lat, lon };
  const alt = m[3] === undefined ? undefined : Number(m[3]);
  if (alt !== undefined && Number.isFinite(alt) && Math.abs(alt) <= MAX_ALTITUDE_M) out.alt = Math.round(alt * 1000) / 1000 || 0;
  return out;
}

/** "+48.8584" (degreeDigits 2), "+4851.50" (DDMM), "+485130.2" (DDMMSS) as signed degrees. */
function angle(text: string, degreeDigits: number, max: number): number | undefined {
  const sign = text[0] === '-' ? -1 : 1;
  const [whole, fraction = ''] = text.slice(1).split('.') as [string, string?];
  const digits = whole.length;
  let degrees: number;
  // Decimal degrees, padded ("+002.2945") or not ("+2.2945"); else DDMM(.M) or DDMMSS(.S).
  if (digits >= 1 && digits <= degreeDigits) degrees = Number(`${whole}.${fraction || '0'}`);
  else if (digits === degreeDigits + 2 || digits === degreeDigits + 4) {
    const d = Number(whole.slice(0, degreeDigits));
    const mm = Number(whole.slice(degreeDigits, degreeDigits + 2));
    const rest = Number(`${whole.slice(degreeDigits + 2) || '0'}.${fraction || '0'}`);
    const [minutes, secs] = digits === degreeDigits + 2 ? [mm + Number(`0.${fraction || '0'}`), 0] : [mm, rest];
    if (minutes >= 60 || secs >= 60) return undefined;
    degrees = d + minutes / 60 + secs / 3600;
  } else return undefined;
  if (!Number.isFinite(degrees) || degrees > max) return undefined;
  return (sign * Math.round(degrees * 1e7)) / 1e7 || 0; // about 1 cm, as for photos; no -0
}

// ---- frames ----

/**
 * The size videoFrames gives frames of a video whose displayed size is `info`'s: the shorter
 * side `size`, the longer one in proportion (at most MAX_ASPECT times `size`). FFmpeg is told
 * this exact size, so the raw stream splits into frames of known length whatever its rounding.
 */
export function videoFrameSize(info: Pick<VideoInfo, 'width' | 'height'>, size: number): { width: number; height: number } {
  const short = Math.min(info.width, info.height);
  const long = Math.max(info.width, info.height);
  const scaled = Math.min(size * MAX_ASPECT, Math.max(size, Math.round((long * size) / short)));
  return info.width >= info.height ? { width: scaled, height: size } : { width: size, height: scaled };
}

/**
 * The frames worth embedding, streamed as FFmpeg decodes them. One FFmpeg run decodes every
 * frame (scene detection needs them all) and keeps, by its select filter: the first frame;
 * any frame `every` seconds after the last kept one, where every = max(interval,
 * duration/maxFrames) so that a long video is sampled over its whole length; any cut (scene
 * score above SCENE_THRESHOLD) at least `gap` seconds after the last kept one, where gap =
 * max(SCENE_MIN_GAP, duration/maxFrames) so that cuts cannot use up maxFrames before the end.
 * Kept frames are scaled by FFmpeg to videoFrameSize and sent as raw RGB over a pipe, read one
 * at a time (FFmpeg waits while the consumer embeds). Flat frames (UNIFORM_STD_DEV) are skipped,
 * except that a video of nothing but flat frames gives its first one rather than none.
 *
 * `deadlineMs` counts the time spent waiting on FFmpeg, not the time the consumer takes between
 * frames: a slow embedder cannot time a video out, a slow or stuck decode does (VIDEO_TIMEOUT).
 * FFmpeg is SIGKILLed and reaped when the consumer stops early (break, return()), on the
 * deadline and on abort (REQUEST_CANCELLED, or the signal's reason if it is a TesseraError).
 * A file FFmpeg cannot read, without a video stream or without frames: VIDEO_UNDECODABLE.
 */
export async function* videoFrames(tools: FfmpegTools, path: string, info: VideoInfo, options: FrameOptions): AsyncGenerator<VideoFrame> {
  const maxPixels = checkLimits(options);
  const { interval, maxFrames, size } = options;
  if (!(Number.isFinite(interval) && interval > 0)) throw invalidArgument('interval', 'a positive number of seconds', interval);
  if (!(Number.isInteger(maxFrames) && maxFrames >= 1)) throw invalidArgument('maxFrames', 'a positive integer', maxFrames);
  if (!(Number.isInteger(size) && size >= 1 && size <= 4096)) throw invalidArgument('size', 'an integer from 1 to 4096', size);
  if (!(info.width > 0 && info.height > 0)) throw invalidArgument('info', 'the VideoInfo of probeVideo', `${info.width}x${info.height}`);
  const demuxer = await demuxerOf(path);

  const { width, height } = videoFrameSize(info, size);
  const frameBytes = width * height * 3;
  const duration = Number.isFinite(info.duration) && info.duration > 0 ? info.duration : 0;
  const every = Math.max(interval, duration / maxFrames);
  const gap = Math.max(SCENE_MIN_GAP, duration / maxFrames);
  const select = `select='isnan(prev_selected_t)+gte(t-prev_selected_t,${num(every)})+gt(scene,${SCENE_THRESHOLD})*gte(t-prev_selected_t,${num(gap)})'`;
  // select before scale: only kept frames are scaled; showinfo last reports each kept frame's time.
  // `-fps_mode passthrough`: each kept frame goes out once, none duplicated (rawvideo would get
  // constant-rate duplicates) or dropped (vfr drops equal timestamps), so frames and showinfo
  // lines pair one to one.
  const filter = `${select},scale=${width}:${height}:flags=area,setsar=1,showinfo`;
  const args = [
    '-nostdin', '-hide_banner', '-nostats', '-loglevel', 'level+info', '-threads', FFMPEG_THREADS, '-filter_threads', '1',
    ...inputArgs(demuxer, path, maxPixels),
    '-map', '0:V:0', '-vf', filter, ...fpsModeArgs(tools, 'passthrough'), '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1',
  ];

  // FFmpeg logs a kept frame (showinfo) before writing it, so its time is usually already here when its pixels are.
  const times: number[] = [];
  const errors: string[] = [];
  let tooBig: TesseraError | undefined;
  let stderrDone = false;
  let wake: (() => void) | undefined;
  const onLine = (line: string) => {
    const shown = /^\[Parsed_showinfo_\d+ @ [^\]]+\] (?:\[info\] )?n:\s*\d+\s+pts:\s*\S+\s+pts_time:(\S+)/.exec(line);
    if (shown) times.push(Number(shown[1]));
    else if (/\[(error|fatal|panic)\]/.test(line)) {
      errors.push(line);
      if (errors.length > 8) errors.shift();
      tooBig ??= tooLargeError(line, path, maxPixels);
    }
    wake?.();
  };
  const tool = startTool(tools.ffmpeg, args, { onStderrLine: onLine, readStdout: true });
  tool.child.stderr!.once('end', () => {
    stderrDone = true;
    wake?.();
  });
  const clock = new FfmpegClock(options.deadlineMs, options.signal, () => void tool.kill());

  let yielded = 0;
  let flat: { raw: Buffer; t: number } | undefined;
  try {
    while (yielded < maxFrames) {
      const raw = await clock.wait(readBytes(tool.stdout, frameBytes));
      if (raw === undefined || raw.length < frameBytes) break;
      while (times.length === 0 && !stderrDone) await clock.wait(new Promise<void>((resolve) => (wake = resolve)));
      const pts = times.shift();
      const t = pts !== undefined && Number.isFinite(pts) ? Math.max(0, Math.round(pts * 1000) / 1000) : 0;
      if (isFlat(raw)) {
        flat ??= { raw: Buffer.from(raw), t };
        continue;
      }
      yielded++;
      yield await frame(raw, t, width, height);
    }
    if (yielded === maxFrames) return; // finally stops FFmpeg, which has more to give
    const exit = await clock.wait(tool.closed);
    if (exit.error) throw missing(tools.ffmpeg, exit.error);
    if (tooBig) throw tooBig;
    if (yielded > 0) return; // a damaged end after good frames: what was read is kept
    if (exit.code === 0 && flat) {
      yield await frame(flat.raw, flat.t, width, height);
      return;
    }
    const reason = shortReason(errors.join('\n'), path);
    throw new TesseraError('VIDEO_UNDECODABLE', `${label(path)}: FFmpeg gave no frames${reason ? ` (${reason})` : exit.code === 0 ? ' (no decodable video frames)' : ''}`);
  } catch (err) {
    if (err === DEADLINE) throw new TesseraError('VIDEO_TIMEOUT', `reading ${label(path)} took longer than its ${formatMs(options.deadlineMs)} deadline; FFmpeg was stopped`);
    if (err === ABORTED) throw cancelled(options.signal?.reason, path);
    throw err;
  } finally {
    clock.dispose();
    await tool.kill();
  }
}

function num(n: number): string {
  return String(Math.round(n * 1000) / 1000);
}

async function frame(raw: Buffer, t: number, width: number, height: number): Promise<VideoFrame> {
  const hash = createHash('sha256').update(raw).digest('hex');
  // Level 1: these PNGs live for one embedding; speed matters more than size.
  const image = await sharp(raw, { raw: { width, height, channels: 3 } }).png({ compressionLevel: 1 }).toBuffer();
  return { t, image, hash };
}

/** Whether every channel of a raw RGB frame has a standard deviation below UNIFORM_STD_DEV. */
function isFlat(raw: Buffer): boolean {
  const sum = [0, 0, 0];
  const squares = [0, 0, 0];
  for (let i = 0; i < raw.length; i += 3) {
    for (let c = 0; c < 3; c++) {
      const v = raw[i + c]!;
      sum[c]! += v;
      squares[c]! += v * v;
    }
  }
  const n = raw.length / 3;
  return [0, 1, 2].every((c) => {
    const mean = sum[c]! / n;
    return Math.sqrt(Math.max(0, squares[c]! / n - mean * mean)) < UNIFORM_STD_DEV;
  });
}

/** The next `bytes` bytes of a paused stream; fewer at its end, undefined once it has ended. */
function readBytes(stream: Readable, bytes: number): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const settle = (value: Buffer | undefined, error?: unknown) => {
      stream.off('readable', attempt);
      stream.off('end', ended);
      stream.off('close', ended);
      stream.off('error', failed);
      if (error !== undefined) reject(error);
      else resolve(value);
    };
    function attempt(): boolean {
      const chunk = stream.read(bytes) as Buffer | null;
      if (chunk !== null) settle(chunk);
      else if (stream.readableEnded || stream.destroyed) settle(undefined);
      else return false;
      return true;
    }
    function ended() {
      // Whatever was left is read by read() at the end; 'end' itself means nothing is.
      const rest = stream.read() as Buffer | null;
      settle(rest ?? undefined);
    }
    function failed(err: unknown) {
      settle(undefined, err);
    }
    if (attempt()) return;
    stream.on('readable', attempt);
    stream.once('end', ended);
    stream.once('close', ended);
    stream.once('error', failed);
  });
}

const DEADLINE = Symbol('deadline');
const ABORTED = Symbol('aborted');

/**
 * The deadline of a videoFrames run, counting only the time its generator waits on FFmpeg. On
 * the deadline or an abort it kills FFmpeg at once (`stop`) and the pending wait throws.
 */
class FfmpegClock {
  private spent = 0;
  private failWait: ((reason: symbol) => void) | undefined;
  private readonly onAbort = () => {
    this.stop();
    this.failWait?.(ABORTED);
  };

  constructor(
    private readonly limitMs: number,
    private readonly signal: AbortSignal | undefined,
    private readonly stop: () => void,
  ) {
    signal?.addEventListener('abort', this.onAbort, { once: true });
  }

  async wait<T>(work: Promise<T>): Promise<T> {
    if (this.signal?.aborted) {
      this.stop();
      throw ABORTED;
    }
    const remaining = this.limitMs - this.spent;
    if (remaining <= 0) {
      this.stop();
      throw DEADLINE;
    }
    const started = performance.now();
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        work,
        new Promise<never>((_, reject) => {
          this.failWait = reject;
          timer = setTimeout(() => {
            this.stop();
            reject(DEADLINE);
          }, remaining);
        }),
      ]);
    } finally {
      clearTimeout(timer);
      this.failWait = undefined;
      this.spent += performance.now() - started;
    }
  }

  dispose(): void {
    this.signal?.removeEventListener('abort', this.onAbort);
  }
}

// ---- thumbnails ----

/**
 * The frame at `t` seconds as a JPEG at most `size` px on its longer side (never enlarged), for
 * a thumbnail. FFmpeg seeks before decoding (-ss before -i: to the keyframe before `t`, then
 * decodes up to it), so a frame late in a long video costs about as much as one at its start.
 */
export async function frameAt(tools: FfmpegTools, path: string, t: number, size: number, limits: VideoLimits): Promise<Buffer> {
  const maxPixels = checkLimits(limits);
  if (!(Number.isFinite(t) && t >= 0)) throw invalidArgument('t', 'a number of seconds >= 0', t);
  if (!(Number.isInteger(size) && size >= 1 && size <= 8192)) throw invalidArgument('size', 'an integer from 1 to 8192', size);
  const demuxer = await demuxerOf(path);
  // Square the pixels first (a no-op for most videos), then fit within size x size.
  const scale = `scale='iw*sar':ih,setsar=1,scale='min(${size},iw)':'min(${size},ih)':force_original_aspect_ratio=decrease`;
  const args = [
    '-nostdin', '-hide_banner', '-nostats', '-loglevel', 'level+error', '-threads', FFMPEG_THREADS,
    '-ss', num(t), ...inputArgs(demuxer, path, maxPixels),
    '-map', '0:V:0', '-frames:v', '1', '-vf', scale, '-pix_fmt', 'yuvj420p', '-c:v', 'mjpeg', '-q:v', '3', '-f', 'image2pipe', 'pipe:1',
  ];
  // A JPEG of size x size at q 3 stays far below 3 bytes a pixel.
  const run = await runTool(tools.ffmpeg, args, { deadlineMs: limits.deadlineMs, signal: limits.signal, maxStdoutBytes: size * size * 3 + 64 * 1024 });
  failOnStop(run, tools.ffmpeg, path, limits);
  tooLarge(run.stderr, path, maxPixels);
  const jpeg = run.stdout;
  if (run.code !== 0 || jpeg.length < 4 || jpeg[0] !== 0xff || jpeg[1] !== 0xd8) {
    const reason = shortReason(run.stderr, path);
    throw new TesseraError('VIDEO_UNDECODABLE', `${label(path)}: FFmpeg gave no frame at ${num(t)} s${reason ? ` (${reason})` : ''}`);
  }
  return jpeg;
}

// ---- errors ----

const PICTURE_TOO_LARGE = /Picture size (\d+)x(\d+) (?:is invalid|exceeds specified max pixel count)/;

function checkLimits(limits: VideoLimits): number {
  if (!(Number.isFinite(limits.deadlineMs) && limits.deadlineMs > 0)) throw invalidArgument('deadlineMs', 'a positive number of milliseconds', limits.deadlineMs);
  const maxPixels = limits.maxPixels ?? DEFAULT_VIDEO_MAX_PIXELS;
  if (!(Number.isInteger(maxPixels) && maxPixels >= 1)) throw invalidArgument('maxPixels', 'a positive integer', maxPixels);
  return maxPixels;
}

function failOnStop(run: RunResult, binary: string, path: string, limits: VideoLimits): void {
  if (run.spawnError) throw missing(binary, run.spawnError);
  if (run.stopped === 'deadline') throw new TesseraError('VIDEO_TIMEOUT', `reading ${label(path)} took longer than its ${formatMs(limits.deadlineMs)} deadline; FFmpeg was stopped`);
  if (run.stopped === 'abort') throw cancelled(limits.signal?.reason, path);
  if (run.stopped === 'overflow') throw new TesseraError('VIDEO_UNDECODABLE', `${label(path)}: FFmpeg's output is larger than it can be for this file`);
}

/** A frame size FFmpeg refused as too large (beyond its own limit, or -max_pixels) is VIDEO_TOO_LARGE, not undecodable. */
function tooLarge(stderr: string, path: string, maxPixels: number): void {
  const error = tooLargeError(stderr, path, maxPixels);
  if (error) throw error;
}

function tooLargeError(stderr: string, path: string, maxPixels: number): TesseraError | undefined {
  const m = PICTURE_TOO_LARGE.exec(stderr);
  return m ? new TesseraError('VIDEO_TOO_LARGE', `${label(path)} claims ${m[1]}x${m[2]} pixels per frame, more than the limit of ${maxPixels}`) : undefined;
}

function missing(binary: string, cause: Error): TesseraError {
  return new TesseraError('FFMPEG_MISSING', `${binary} does not run (${(cause as NodeJS.ErrnoException).code ?? cause.message}); ${FFMPEG_HINT}`, { cause });
}

function cancelled(reason: unknown, path: string): TesseraError {
  if (reason instanceof TesseraError) return reason;
  return new TesseraError('REQUEST_CANCELLED', `reading ${label(path)} was cancelled`, { cause: reason });
}

function undecodable(path: string, stderr: string): TesseraError {
  const reason = shortReason(stderr, path);
  return new TesseraError('VIDEO_UNDECODABLE', `${label(path)}: FFmpeg cannot read it${reason ? ` (${reason})` : ''}`);
}

function reasonSuffix(stderr: string): string {
  const reason = shortReason(stderr, '');
  return reason ? ` (${reason})` : '';
}

/**
 * The last two distinct error lines of FFmpeg's stderr, without their "[h264 @ 0x...] [error]"
 * prefixes and the file's own name, at most 200 characters: enough to tell a truncated file
 * ("moov atom not found") from a foreign one ("Invalid data found when processing input").
 */
function shortReason(stderr: string, path: string): string {
  const lines = stderr
    .split(/\r?\n/)
    .map((line) => line.replace(/^(\[[^\]]*\]\s*)+/, '').replace(`file:${path}: `, '').trim())
    .filter((line) => line !== '');
  const distinct = [...new Set(lines)].slice(-2);
  const text = distinct.join('; ');
  return text.length > 200 ? `${text.slice(0, 197)}...` : text;
}

function label(path: string): string {
  return JSON.stringify(path.length > 200 ? `...${path.slice(-197)}` : path);
}

function formatMs(ms: number): string {
  return ms >= 1000 && ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}
