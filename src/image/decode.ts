import sharp, { type Metadata, type Sharp, type SharpOptions } from 'sharp';
import { TesseraError } from '../errors.ts';
import { ACCEPTED_FORMATS, FORMAT_NAMES, pillowMode, sniffFormat, type PillowMode, type RasterFormat } from './format.ts';
import { gifFirstFrame } from './gif.ts';
import type { Rect, SourceRegion } from './resample.ts';

export interface DecodeOptions {
  /** 'apply' rotates/flips by the EXIF Orientation tag first; 'ignore' keeps the stored pixels. */
  exifOrientation: 'apply' | 'ignore';
  /** Refuse images with more pixels than this (width x height), before decoding any. */
  maxPixels: number;
}

/** An image that passed every check short of decoding its pixels. */
export interface ProbedImage {
  bytes: Uint8Array;
  label: string;
  format: RasterFormat;
  /** The mode Pillow opens it in. */
  mode: PillowMode;
  /** libvips reports an alpha band that Pillow does not have (PNG tRNS colour key). */
  ignoreAlpha: boolean;
  /** libvips decodes it with an alpha band. */
  hasAlpha: boolean;
  /** GIF: the RGB Pillow shows where libvips says alpha 0. */
  gifFill?: [number, number, number];
  /** Size as the pipeline sees it: after EXIF orientation when that is applied. */
  width: number;
  height: number;
  options: DecodeOptions;
}

/**
 * Reads the header only: refuses formats we do not accept, undecodable headers and images
 * over the pixel limit before a single pixel is decoded.
 */
export async function probeImage(bytes: Uint8Array, label: string, options: DecodeOptions): Promise<ProbedImage> {
  const sniffed = sniffFormat(bytes);
  if (sniffed && !isRaster(sniffed)) {
    throw new TesseraError('IMAGE_FORMAT_UNSUPPORTED', `${label} is a ${FORMAT_NAMES[sniffed]} file; only ${ACCEPTED_FORMATS} images are accepted`);
  }
  let meta: Metadata;
  try {
    // Header only; the pixel limit is checked below, with a better message than libvips'.
    meta = await sharp(bytes, { ...inputOptions(options), limitInputPixels: false }).metadata();
  } catch (err) {
    throw undecodable(label, err);
  }
  const format = rasterFormat(meta);
  if (!format) {
    const name = meta.format === 'heif' ? `HEIF (${meta.compression ?? 'unknown'} compressed)` : meta.format;
    throw new TesseraError('IMAGE_FORMAT_UNSUPPORTED', `${label} is a ${name} image; only ${ACCEPTED_FORMATS} images are accepted`);
  }
  const rawWidth = meta.width ?? 0;
  const rawHeight = meta.height ?? 0;
  if (!(rawWidth > 0 && rawHeight > 0)) throw new TesseraError('IMAGE_UNDECODABLE', `${label} has no pixels (${rawWidth}x${rawHeight})`);
  if (rawWidth * rawHeight > options.maxPixels) throw tooLarge(label, rawWidth, rawHeight, options.maxPixels);
  const oriented = options.exifOrientation === 'apply' && meta.autoOrient ? meta.autoOrient : { width: rawWidth, height: rawHeight };
  const hasAlpha = meta.hasAlpha ?? false;
  if (format === 'gif') {
    const gif = gifFirstFrame(bytes);
    const mode = gif?.mode ?? 'P';
    return { bytes, label, format, mode, ignoreAlpha: false, hasAlpha, gifFill: gif?.fill, width: oriented.width, height: oriented.height, options };
  }
  const { mode, ignoreAlpha } = pillowMode(format, bytes, {
    space: meta.space ?? 'srgb',
    hasAlpha,
    isPalette: meta.isPalette ?? false,
    bitsPerSample: meta.bitsPerSample,
  });
  return { bytes, label, format, mode, ignoreAlpha, hasAlpha, width: oriented.width, height: oriented.height, options };
}

/** Is every alpha value 255? Decodes the alpha band natively (off the JS thread). */
export async function isOpaque(image: ProbedImage): Promise<boolean> {
  try {
    const stats = await sharp(image.bytes, inputOptions(image.options)).stats();
    return stats.isOpaque;
  } catch (err) {
    throw decodeError(image, err);
  }
}

/**
 * How to get the pixels the final (exact) resampling step reads: optionally shrink the image
 * natively first, then cut out `rect` of the result.
 */
export interface PixelRequest {
  /** Native reduction, in steps, each under libvips' box-shrink threshold; last = final size. */
  reduceSteps: Array<{ width: number; height: number }>;
  interpolation: 'bicubic' | 'bilinear';
  /** Region to return, in the coordinates of the last step (or of the image). */
  rect: Rect;
  /** Colour space to work and deliver in (16-bit input becomes 8-bit on entry). */
  space: 'b-w' | 'srgb' | 'cmyk';
  /**
   * Bands to return: 1 (grey), 2 (grey + alpha), 3 (RGB), 4 (RGBA or CMYK). `dropAlpha`
   * drops libvips' alpha band (tRNS, palettes, opaque images).
   */
  bands: 1 | 2 | 3 | 4;
  dropAlpha: boolean;
}

/**
 * Decodes, optionally reduces (libvips cubic/linear, which matches Pillow to about 0.15 / 255
 * at factors under 4) and crops natively, returning raw pixels in the image's own mode.
 * ICC profiles are never applied; 16-bit samples become 8-bit by their high byte (as Pillow
 * does) before any resampling.
 */
export async function readPixels(image: ProbedImage, request: PixelRequest): Promise<SourceRegion> {
  const kernel = request.interpolation === 'bicubic' ? 'cubic' : 'linear';
  const { space } = request;
  const last = request.reduceSteps.at(-1) ?? { width: image.width, height: image.height };
  try {
    let pipeline = sharp(image.bytes, inputOptions(image.options))
      // Converting to 8-bit up front also keeps libvips from JPEG shrink-on-load, which is
      // DCT scaling, not Pillow's filter.
      .pipelineColourspace(space);
    const steps = request.reduceSteps;
    if (steps.length > 0 && request.dropAlpha && image.ignoreAlpha) {
      // A tRNS colour key must not premultiply anything: drop it before resizing.
      pipeline = rawInput(await toRaw(pipeline.removeAlpha().toColourspace(space)));
    }
    for (let i = 0; i < steps.length - 1; i++) {
      const step = steps[i]!;
      let reduce = pipeline.resize(step.width, step.height, { kernel, fit: 'fill' });
      if (request.dropAlpha) reduce = reduce.removeAlpha();
      pipeline = rawInput(await toRaw(reduce.toColourspace(space)));
    }
    if (steps.length > 0) pipeline = pipeline.resize(last.width, last.height, { kernel, fit: 'fill' });
    const { rect } = request;
    pipeline = pipeline.extract({ left: rect.left, top: rect.top, width: rect.width, height: rect.height });
    if (request.dropAlpha) pipeline = pipeline.removeAlpha();
    // Raw b-w output keeps band 0 only, so grey + alpha comes out as sRGB (L, L, L, A) and is repacked.
    pipeline = pipeline.toColourspace(request.bands === 2 ? 'srgb' : space);
    const raw = await toRaw(pipeline);
    // A plain Uint8Array view, so the resampling loops see one array type.
    let data = new Uint8Array(raw.data.buffer, raw.data.byteOffset, raw.data.length);
    if (request.bands === 2) data = pickBands(raw.data, raw.channels, [0, raw.channels - 1]);
    else if (raw.channels !== request.bands) throw new Error(`expected ${request.bands} bands from libvips, got ${raw.channels}`);
    return { data, width: raw.width, height: raw.height, channels: request.bands, left: rect.left, top: rect.top, fullWidth: last.width, fullHeight: last.height };
  } catch (err) {
    throw decodeError(image, err);
  }
}

interface Raw {
  data: Buffer;
  width: number;
  height: number;
  channels: 1 | 2 | 3 | 4;
}

async function toRaw(pipeline: Sharp): Promise<Raw> {
  const { data, info } = await pipeline.raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, channels: info.channels };
}

/**
 * Intermediate steps hold 1 (grey) or 3 (RGB) bands, never alpha, so raw input is
 * unambiguous. (CMYK has 4 and is therefore always reduced in one step.)
 */
function rawInput(raw: Raw): Sharp {
  return sharp(raw.data, { raw: { width: raw.width, height: raw.height, channels: raw.channels } });
}

function pickBands(data: Uint8Array, channels: number, bands: number[]): Uint8Array {
  const pixels = data.length / channels;
  const out = new Uint8Array(pixels * bands.length);
  for (let i = 0; i < pixels; i++) for (let b = 0; b < bands.length; b++) out[i * bands.length + b] = data[i * channels + bands[b]!]!;
  return out;
}

function inputOptions(options: DecodeOptions): SharpOptions {
  return {
    // The reference (Pillow) never applies embedded profiles.
    ignoreIcc: true,
    autoOrient: options.exifOrientation === 'apply',
    // Abort on decode errors and truncated data, as Pillow does, but not on warnings such
    // as libpng's complaints about sRGB profiles, which Pillow ignores too.
    failOn: 'error',
    limitInputPixels: options.maxPixels,
    // First frame / page only (GIF, WebP, TIFF, AVIF sequences).
    page: 0,
    pages: 1,
  };
}

function rasterFormat(meta: Metadata): RasterFormat | undefined {
  switch (meta.format) {
    case 'jpeg':
    case 'png':
    case 'webp':
    case 'gif':
    case 'tiff':
      return meta.format;
    case 'heif':
      return meta.compression === 'av1' ? 'avif' : undefined;
    default:
      return undefined;
  }
}

function isRaster(format: string): format is RasterFormat {
  return ['jpeg', 'png', 'webp', 'gif', 'tiff', 'avif'].includes(format);
}

function tooLarge(label: string, width: number, height: number, limit: number): TesseraError {
  return new TesseraError(
    'IMAGE_TOO_LARGE',
    `${label} is ${width}x${height} (${width * height} pixels), more than the limit of ${limit} pixels`,
  );
}

function undecodable(label: string, err: unknown): TesseraError {
  const reason = err instanceof Error ? err.message.replace(/\s+/g, ' ').trim() : String(err);
  return new TesseraError('IMAGE_UNDECODABLE', `${label} could not be decoded: ${reason}`, { cause: err });
}

function decodeError(image: ProbedImage, err: unknown): TesseraError {
  if (err instanceof TesseraError) return err;
  if (err instanceof Error && /pixel limit/i.test(err.message)) return tooLarge(image.label, image.width, image.height, image.options.maxPixels);
  return undecodable(image.label, err);
}
