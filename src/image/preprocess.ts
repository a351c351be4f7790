import { invalidArgument } from '../errors.ts';
import type { ImagePreprocessConfig } from './config.ts';
import { isOpaque, probeImage, readPixels, type PixelRequest, type ProbedImage } from './decode.ts';
import type { PillowMode } from './format.ts';
import { clipCenterCropOffsets, clipRgbMode } from './clip-processor.ts';
import { centerCropOffsets, resizedSize } from './geometry.ts';
import { normalizeInto } from './normalize.ts';
import { premultiply, resampleWindow, sourceRectFor, unpremultiplyInPlace, type RawImage, type ResampleFilter, type ResizeWindow, type SourceRegion } from './resample.ts';
import { readImageSource, type ImageSource } from './source.ts';

// The engine and the model loader import the whole image API from here.
export { parsePreprocessorConfig, type ImagePreprocessConfig } from './config.ts';
export type { ImageSource } from './source.ts';

export interface PreprocessOptions {
  /**
   * EXIF orientation. 'apply' (default) rotates/flips the image as viewers display it before
   * resizing: users expect the picture they see to be the one embedded. 'ignore' keeps the
   * stored pixel order, which is what the Python reference does (PIL.Image.open does not
   * apply the tag) and so reproduces it exactly, sideways photos included.
   */
  exifOrientation?: 'apply' | 'ignore';
  /** Refuse images with more pixels than this, before decoding (default 100 000 000). */
  maxPixels?: number;
  /**
   * Whether a string may be a file path (default true). Set false wherever the strings come
   * from remote clients (the HTTP server): otherwise a client could make us read local files.
   */
  allowPaths?: boolean;
  /**
   * Resample every image exactly as Pillow does, however large (default false). By default
   * images whose shorter side is over 4 x size are first reduced natively by libvips, which
   * leaves a residual of about 0.002 (normalised units) and keeps the JS work bounded; with
   * this on, the JS work grows with the image (about 0.1 s per 3 megapixels). For parity
   * checks and evaluations.
   */
  exactResize?: boolean;
}

export interface PreprocessedImage {
  /** CHW float32, 3 x size x size, normalised with the config's mean and std. */
  pixels: Float32Array;
  /** Size of the original image (after EXIF orientation when applied), before any resize. */
  width: number;
  height: number;
}

/** The cropped RGB bytes the tensor is made of, before ToTensor / Normalize. */
export interface PreprocessedRgb {
  /** size x size pixels, interleaved R, G, B. */
  rgb: Uint8Array;
  width: number;
  height: number;
}

export const DEFAULT_MAX_PIXELS = 100_000_000;

/**
 * The final resize is Pillow's, reproduced exactly in JS (see resample.ts), over a source whose
 * shorter side is at most this many times the output: larger images are first reduced by
 * libvips (native, off the JS thread) to that size. This bounds the JS work at about 13
 * million multiply-adds per image (~40 ms on a slow core) whatever the input size, and leaves
 * a residual of about 0.002 (normalised units) on images reduced that way, none on the others.
 * At 3 the work drops by 40% and the residual rises by 15%; at 2 the max residual nears 0.1.
 */
const EXACT_FACTOR = 4;
/** libvips box-shrinks (not Pillow's filter) once a single reduction reaches 4x; stay under. */
const NATIVE_STEP_MAX = 3.5;

/**
 * jina-clip-v1's image preprocessing, faithful to the Python reference it was evaluated with
 * (open_clip's eval transform on Pillow and torchvision): decode without applying the ICC
 * profile; resize the shorter side to `config.size` with Pillow's filter, in the image's own
 * mode (palette and 1-bit images NEAREST, RGBA/LA premultiplied); centre-crop; convert to RGB
 * (alpha dropped, grey replicated); scale to [0, 1]; normalise.
 *
 * @example
 *   const { pixels, width, height } = await preprocessImage('photo.jpg', config);
 *   // pixels.length === 3 * 224 * 224; width x height is the photo's own size
 */
export async function preprocessImage(source: ImageSource, config: ImagePreprocessConfig, options?: PreprocessOptions): Promise<PreprocessedImage> {
  const pixels = new Float32Array(3 * config.size * config.size);
  const { width, height } = await preprocessImageInto(source, config, pixels, 0, options);
  return { pixels, width, height };
}

/**
 * preprocessImage writing straight into `target` at `offset` (3 x size x size floats), so a
 * batch tensor can be filled without copies.
 *
 * @example
 *   const batch = new Float32Array(n * 3 * 224 * 224);
 *   await Promise.all(items.map((item, i) => preprocessImageInto(item, config, batch, i * 3 * 224 * 224)));
 */
export async function preprocessImageInto(
  source: ImageSource,
  config: ImagePreprocessConfig,
  target: Float32Array,
  offset: number,
  options?: PreprocessOptions,
): Promise<{ width: number; height: number }> {
  const length = 3 * config.size * config.size;
  if (!Number.isInteger(offset) || offset < 0 || offset + length > target.length) {
    throw invalidArgument('offset', `an integer from 0 to ${target.length - length}`, offset);
  }
  const { rgb, width, height } = await preprocessImageRgb(source, config, options);
  normalizeInto(rgb, config, target, offset);
  return { width, height };
}

/**
 * The pipeline up to convert('RGB'): the size x size RGB bytes, before scaling and
 * normalisation (which are exact arithmetic). For tests and debugging.
 */
export async function preprocessImageRgb(source: ImageSource, config: ImagePreprocessConfig, options: PreprocessOptions = {}): Promise<PreprocessedRgb> {
  const exifOrientation = options.exifOrientation ?? 'apply';
  if (exifOrientation !== 'apply' && exifOrientation !== 'ignore') throw invalidArgument('exifOrientation', '"apply" or "ignore"', exifOrientation);
  const maxPixels = options.maxPixels ?? DEFAULT_MAX_PIXELS;
  if (!Number.isInteger(maxPixels) || maxPixels < 1) throw invalidArgument('maxPixels', 'a positive integer', maxPixels);
  if (!Number.isInteger(config.size) || config.size < 1) throw invalidArgument('config.size', 'a positive integer', config.size);

  const { bytes, label } = await readImageSource(source, { allowPaths: options.allowPaths });
  const image = await probeImage(bytes, label, { exifOrientation, maxPixels });
  const plan = await planResize(image, config, options.exactResize ?? false);
  let region = await readPixels(image, plan.request);
  if (plan.gifFill) region = fillTransparent(region, plan.gifFill, BANDS[plan.mode]);
  if (plan.rgbFirst) region = { ...region, data: toRgb(region, plan.mode), channels: 3 };
  if (plan.premultiplied) region = premultiply(region);
  const out = await resampleWindow(region, plan.window, plan.filter);
  if (plan.premultiplied) unpremultiplyInPlace(out);
  return { rgb: toRgb(out, plan.rgbFirst ? 'RGB' : plan.mode), width: image.width, height: image.height };
}

interface ResizePlan {
  /** The mode the pixels are resampled in (an opaque RGBA image counts as RGB). */
  mode: PillowMode;
  filter: ResampleFilter;
  premultiplied: boolean;
  /** The crop window within the resized image. */
  window: ResizeWindow;
  request: PixelRequest;
  /** GIF: libvips delivers RGB(A); paint alpha-0 pixels this colour, keep the mode's bands. */
  gifFill?: [number, number, number];
  /** Convert the region read (in `mode`) to RGB before resampling (CLIPImageProcessor). */
  rgbFirst?: boolean;
}

async function planResize(image: ProbedImage, config: ImagePreprocessConfig, exact: boolean): Promise<ResizePlan> {
  if (config.pipeline === 'clip_image_processor') return planClipResize(image, config, exact);
  const { size } = config;
  const resized = resizedSize(image.width, image.height, size);
  const { left, top } = centerCropOffsets(resized.width, resized.height, size);
  const window: ResizeWindow = { ...resized, left, top, size };
  const resizes = resized.width !== image.width || resized.height !== image.height;

  let mode = image.mode;
  let dropAlpha = image.ignoreAlpha || mode === 'P';
  const short = Math.min(image.width, image.height);
  const wantsReduce = !exact && short > EXACT_FACTOR * size && image.format !== 'gif';
  if (wantsReduce && (mode === 'RGBA' || mode === 'LA') && (await isOpaque(image))) {
    // Premultiplying by 255 changes nothing in Pillow either: resize it as RGB / L.
    mode = mode === 'RGBA' ? 'RGB' : 'L';
    dropAlpha = true;
  }
  const nearest = mode === 'P' || mode === '1';
  const reducible = wantsReduce && !nearest && mode !== 'RGBA' && mode !== 'LA';
  const reduceSteps = reducible ? reductionSteps(image.width, image.height, (EXACT_FACTOR * size) / short, mode === 'CMYK') : [];
  const last = reduceSteps.at(-1) ?? { width: image.width, height: image.height };
  const filter: ResampleFilter = nearest ? 'nearest' : config.interpolation;
  const rect = sourceRectFor(last.width, last.height, window, filter);
  const interpolation = config.interpolation;
  const plan = { mode, filter, premultiplied: resizes && (mode === 'RGBA' || mode === 'LA'), window };
  if (image.format === 'gif') {
    // libvips expands GIFs to RGB(A); Pillow's view (palette or grey, transparent colour) is rebuilt in JS.
    const request: PixelRequest = { reduceSteps, interpolation, rect, space: 'srgb', bands: image.hasAlpha ? 4 : 3, dropAlpha: false };
    const rebuild = image.hasAlpha || mode === 'L';
    return { ...plan, request, gifFill: rebuild ? image.gifFill ?? [0, 0, 0] : undefined };
  }
  const space = mode === 'CMYK' ? 'cmyk' : mode === 'L' || mode === 'LA' || mode === '1' ? 'b-w' : 'srgb';
  return { ...plan, request: { reduceSteps, interpolation, rect, space, bands: BANDS[mode], dropAlpha } };
}

/**
 * transformers' CLIPImageProcessor: convert('RGB') first, then resize the RGB image with the
 * asked filter (so no NEAREST for palettes, no premultiplied alpha), then crop with floor
 * division. The region is read in the mode convert('RGB') starts from once alpha is dropped
 * (RGB, grey or CMYK) and converted in JS with Pillow's formulas before the resample; images
 * with a real alpha band are never reduced natively, since libvips would resize them
 * premultiplied.
 */
function planClipResize(image: ProbedImage, config: ImagePreprocessConfig, exact: boolean): ResizePlan {
  const { size } = config;
  // get_resize_output_image_size(default_to_square=False) has torchvision's rule.
  const resized = resizedSize(image.width, image.height, size);
  const { left, top } = clipCenterCropOffsets(resized.width, resized.height, size);
  const window: ResizeWindow = { ...resized, left, top, size };
  const filter: ResampleFilter = config.interpolation;
  const interpolation = config.interpolation;
  const short = Math.min(image.width, image.height);
  const alphaFree = !image.hasAlpha || image.ignoreAlpha;
  const wantsReduce = !exact && short > EXACT_FACTOR * size && image.format !== 'gif' && alphaFree;

  if (image.format === 'gif') {
    // As in planResize: libvips' RGB(A) is turned back into Pillow's P / L view, then to RGB.
    const rect = sourceRectFor(image.width, image.height, window, filter);
    const request: PixelRequest = { reduceSteps: [], interpolation, rect, space: 'srgb', bands: image.hasAlpha ? 4 : 3, dropAlpha: false };
    const rebuild = image.hasAlpha || image.mode === 'L';
    return { mode: image.mode, filter, premultiplied: false, window, request, gifFill: rebuild ? image.gifFill ?? [0, 0, 0] : undefined, rgbFirst: true };
  }
  const mode = clipRgbMode(image.mode);
  const reduceSteps = wantsReduce ? reductionSteps(image.width, image.height, (EXACT_FACTOR * size) / short, mode === 'CMYK') : [];
  const last = reduceSteps.at(-1) ?? { width: image.width, height: image.height };
  const rect = sourceRectFor(last.width, last.height, window, filter);
  const space = mode === 'CMYK' ? 'cmyk' : mode === 'L' ? 'b-w' : 'srgb';
  const request: PixelRequest = { reduceSteps, interpolation, rect, space, bands: BANDS[mode], dropAlpha: true };
  return { mode, filter, premultiplied: false, window, request, rgbFirst: true };
}

const BANDS: Record<PillowMode, 1 | 2 | 3 | 4> = { '1': 1, L: 1, LA: 2, P: 3, RGB: 3, RGBA: 4, CMYK: 4 };

/**
 * A GIF region as Pillow sees it: pixels libvips marks transparent take `fill`, then the
 * alpha band goes and grey ("L") frames keep one band.
 */
function fillTransparent(region: SourceRegion, fill: [number, number, number], bands: number): SourceRegion {
  const ch = region.channels;
  const pixels = region.width * region.height;
  const data = new Uint8Array(pixels * bands);
  for (let i = 0; i < pixels; i++) {
    const transparent = ch === 4 && region.data[i * 4 + 3] === 0;
    for (let b = 0; b < bands; b++) data[i * bands + b] = transparent ? fill[b]! : region.data[i * ch + b]!;
  }
  return { ...region, data, channels: bands };
}

/**
 * Sizes for the native reduction by `scale` (< 1): as few equal steps as keep each under
 * NATIVE_STEP_MAX, the last landing exactly on the scaled size.
 */
function reductionSteps(width: number, height: number, scale: number, singleStep: boolean): Array<{ width: number; height: number }> {
  const factor = 1 / scale;
  const n = singleStep ? 1 : Math.ceil(Math.log(factor) / Math.log(NATIVE_STEP_MAX));
  const steps: Array<{ width: number; height: number }> = [];
  for (let k = 1; k <= n; k++) {
    const s = k === n ? scale : factor ** (-k / n);
    steps.push({ width: Math.max(1, Math.round(width * s)), height: Math.max(1, Math.round(height * s)) });
  }
  return steps;
}

/** convert('RGB') from the resampled mode: grey replicated, alpha dropped, Pillow's CMYK formula. */
function toRgb(img: RawImage, mode: PillowMode): Uint8Array {
  const n = img.width * img.height;
  const ch = img.channels;
  const src = img.data;
  if (ch === 3) return src;
  const rgb = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    const p = i * ch;
    if (mode === 'CMYK') {
      // Pillow's cmyk2rgb: nk - round(c * nk / 255), nk = 255 - k
      const nk = 255 - src[p + 3]!;
      for (let c = 0; c < 3; c++) {
        const t = src[p + c]! * nk + 128;
        rgb[i * 3 + c] = nk - (((t >> 8) + t) >> 8);
      }
    } else if (ch <= 2) {
      rgb[i * 3] = rgb[i * 3 + 1] = rgb[i * 3 + 2] = src[p]!;
    } else {
      rgb[i * 3] = src[p]!;
      rgb[i * 3 + 1] = src[p + 1]!;
      rgb[i * 3 + 2] = src[p + 2]!;
    }
  }
  return rgb;
}
