/**
 * Pillow's resampling reproduced bit for bit (libImaging/Resample.c, Geometry.c and the
 * premultiply conversions in Convert.c), for the steps libvips cannot match:
 *
 * - BICUBIC/BILINEAR: libvips samples upscales at other positions (2 to 6 / 255 off on
 *   average) and box-shrinks first when reducing 4x or more; Pillow convolves directly.
 * - NEAREST, which Pillow uses for "P" and "1" images whatever filter is asked.
 * - RGBA/LA, which Pillow resizes premultiplied with its own rounding; any other rounding is
 *   amplified by 255 / alpha where alpha is small.
 *
 * Only the `size` x `size` window that survives the centre crop is computed, from only the
 * source pixels it reads: each output pixel of Pillow's separable resample depends on its
 * own row and column weights alone, so a window equals those pixels of the full result.
 */

/** Interleaved 8-bit pixels, `channels` per pixel, rows packed without padding. */
export interface RawImage {
  data: Uint8Array;
  width: number;
  height: number;
  channels: number;
}

/** A rectangle of pixels. */
export interface Rect {
  left: number;
  top: number;
  width: number;
  height: number;
}

/** A region of a larger source image: its pixels, where they sit, and the whole's size. */
export interface SourceRegion extends RawImage {
  left: number;
  top: number;
  fullWidth: number;
  fullHeight: number;
}

/** The window of the resized image to produce: `size` x `size` pixels from (left, top). */
export interface ResizeWindow {
  /** Size of the whole resized image. */
  width: number;
  height: number;
  left: number;
  top: number;
  size: number;
}

export type ResampleFilter = 'bicubic' | 'bilinear' | 'nearest';

// Pillow: 8 bits of pixel, 2 bits of headroom, the rest fraction.
const PRECISION_BITS = 32 - 8 - 2;
const ONE = 2 ** PRECISION_BITS;
const HALF = 2 ** (PRECISION_BITS - 1);

function bicubic(x: number): number {
  const a = -0.5;
  if (x < 0) x = -x;
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

function bilinear(x: number): number {
  if (x < 0) x = -x;
  return x < 1 ? 1 - x : 0;
}

const KERNELS = { bicubic: { fn: bicubic, support: 2 }, bilinear: { fn: bilinear, support: 1 } } as const;

/** One axis of a window: for each output pixel, the input pixels it reads and their weights. */
interface Axis {
  /** Does this axis change size at all (Pillow skips the pass when it does not)? */
  resized: boolean;
  /** First input index of each output pixel. */
  min: Int32Array;
  /** Number of input pixels each output pixel reads. */
  count: Int32Array;
  /** Fixed-point weights, `ksize` per output pixel (NEAREST: none). */
  weights: Int32Array;
  ksize: number;
}

/**
 * Pillow's precompute_coeffs + normalize_coeffs_8bpc for output pixels [first, first + n) of
 * a resize from inSize to outSize (in0 = 0, in1 = inSize), or ImagingScaleAffine's sample
 * positions for NEAREST.
 */
function axis(inSize: number, outSize: number, first: number, n: number, filter: ResampleFilter): Axis {
  const min = new Int32Array(n);
  const count = new Int32Array(n);
  if (inSize === outSize) {
    for (let i = 0; i < n; i++) {
      min[i] = first + i;
      count[i] = 1;
    }
    return { resized: false, min, count, weights: new Int32Array(0), ksize: 0 };
  }
  const scale = inSize / outSize;
  if (filter === 'nearest') {
    // Pillow accumulates xo += a[0] from a[2] + a[0] * 0.5 in doubles; replay it for identical floors.
    let xo = scale * 0.5;
    for (let x = 0; x < first; x++) xo += scale;
    for (let i = 0; i < n; i++) {
      min[i] = Math.min(inSize - 1, Math.floor(xo));
      count[i] = 1;
      xo += scale;
    }
    return { resized: true, min, count, weights: new Int32Array(0), ksize: 0 };
  }
  const { fn, support: baseSupport } = KERNELS[filter];
  const filterscale = Math.max(scale, 1);
  const support = baseSupport * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const weights = new Int32Array(n * ksize);
  const k = new Float64Array(ksize);
  const ss = 1 / filterscale;
  for (let i = 0; i < n; i++) {
    const center = (first + i + 0.5) * scale;
    // C's (int) truncates toward zero
    const xmin = Math.max(0, Math.trunc(center - support + 0.5));
    const xmax = Math.min(inSize, Math.trunc(center + support + 0.5)) - xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      const w = fn((x + xmin - center + 0.5) * ss);
      k[x] = w;
      ww += w;
    }
    for (let x = 0; x < xmax; x++) {
      const w = ww !== 0 ? k[x]! / ww : k[x]!;
      weights[i * ksize + x] = w < 0 ? Math.trunc(-0.5 + w * ONE) : Math.trunc(0.5 + w * ONE);
    }
    min[i] = xmin;
    count[i] = xmax;
  }
  return { resized: true, min, count, weights, ksize };
}

function span(a: Axis): { first: number; end: number } {
  const last = a.min.length - 1;
  return { first: a.min[0]!, end: a.min[last]! + a.count[last]! };
}

/**
 * The rectangle of a `fullWidth` x `fullHeight` source that `window` reads: decode only this
 * much to resize it.
 */
export function sourceRectFor(fullWidth: number, fullHeight: number, window: ResizeWindow, filter: ResampleFilter): Rect {
  const x = span(axis(fullWidth, window.width, window.left, window.size, filter));
  const y = span(axis(fullHeight, window.height, window.top, window.size, filter));
  return { left: x.first, top: y.first, width: x.end - x.first, height: y.end - y.first };
}

function clip8(v: number): number {
  if (v >= ONE * 256) return 255;
  if (v <= 0) return 0;
  return v >> PRECISION_BITS;
}

/** Lets other work run when a long computation has held the thread for a while. */
class Yielder {
  private since = performance.now();
  async maybe(): Promise<void> {
    if (performance.now() - this.since < 8) return;
    await new Promise<void>((resolve) => setImmediate(resolve));
    this.since = performance.now();
  }
}

/**
 * Pillow's Image.resize((window.width, window.height), filter) on an 8-bit image of
 * `src.channels` bands, returning only `window` (size x size pixels, same bands). `src` must
 * cover sourceRectFor(...) of the window. NEAREST is Pillow's ImagingScaleAffine; the others
 * its two-pass fixed-point convolution, horizontal first, rounded to 8 bits between passes.
 * Yields to the event loop now and then, so a large source does not stall other work.
 */
export async function resampleWindow(src: SourceRegion, window: ResizeWindow, filter: ResampleFilter): Promise<RawImage> {
  const { size } = window;
  const ch = src.channels;
  const h = axis(src.fullWidth, window.width, window.left, size, filter);
  const v = axis(src.fullHeight, window.height, window.top, size, filter);
  const yielder = new Yielder();

  if (filter === 'nearest' || (!h.resized && !v.resized)) {
    const out = new Uint8Array(size * size * ch);
    for (let y = 0; y < size; y++) {
      const row = (v.min[y]! - src.top) * src.width;
      for (let x = 0; x < size; x++) {
        const from = (row + h.min[x]! - src.left) * ch;
        const to = (y * size + x) * ch;
        for (let c = 0; c < ch; c++) out[to + c] = src.data[from + c]!;
      }
    }
    return { data: out, width: size, height: size, channels: ch };
  }

  // Horizontal pass over the source rows the vertical pass needs.
  const rows = span(v);
  const tmpH = rows.end - rows.first;
  const stride = size * ch;
  const tmp = new Uint8Array(stride * tmpH);
  for (let y = 0; y < tmpH; y++) {
    const srcRow = (rows.first + y - src.top) * src.width;
    if (h.resized) {
      horizontalRow(src.data, srcRow - src.left, ch, h, tmp, y * stride);
    } else {
      const from = (srcRow + window.left - src.left) * ch;
      tmp.set(src.data.subarray(from, from + stride), y * stride);
    }
    if ((y & 15) === 15) await yielder.maybe();
  }
  if (!v.resized) return { data: tmp, width: size, height: size, channels: ch };

  // Vertical pass: int32 sums as in Pillow (its weights are sized so they cannot overflow).
  const out = new Uint8Array(size * stride);
  for (let yy = 0; yy < size; yy++) {
    const kOff = yy * v.ksize;
    const base = (v.min[yy]! - rows.first) * stride;
    const n = v.count[yy]!;
    const outRow = yy * stride;
    for (let i = 0; i < stride; i++) {
      let s = HALF;
      for (let y = 0, q = base + i; y < n; y++, q += stride) s = (s + Math.imul(tmp[q]!, v.weights[kOff + y]!)) | 0;
      out[outRow + i] = clip8(s);
    }
  }
  return { data: out, width: size, height: size, channels: ch };
}

/**
 * One row of Pillow's ImagingResampleHorizontal_8bpc: `rowBase` is the pixel index of
 * source column 0 of this row in `data`.
 */
function horizontalRow(data: Uint8Array, rowBase: number, ch: number, h: Axis, out: Uint8Array, outBase: number): void {
  const { ksize, min, count, weights } = h;
  const cols = min.length;
  let o = outBase;
  for (let xx = 0; xx < cols; xx++) {
    const kOff = xx * ksize;
    const n = count[xx]!;
    let p = (rowBase + min[xx]!) * ch;
    if (ch === 3) {
      let s0 = HALF;
      let s1 = HALF;
      let s2 = HALF;
      for (let x = 0; x < n; x++, p += 3) {
        const w = weights[kOff + x]!;
        s0 = (s0 + Math.imul(data[p]!, w)) | 0;
        s1 = (s1 + Math.imul(data[p + 1]!, w)) | 0;
        s2 = (s2 + Math.imul(data[p + 2]!, w)) | 0;
      }
      out[o++] = clip8(s0);
      out[o++] = clip8(s1);
      out[o++] = clip8(s2);
    } else if (ch === 4) {
      let s0 = HALF;
      let s1 = HALF;
      let s2 = HALF;
      let s3 = HALF;
      for (let x = 0; x < n; x++, p += 4) {
        const w = weights[kOff + x]!;
        s0 = (s0 + Math.imul(data[p]!, w)) | 0;
        s1 = (s1 + Math.imul(data[p + 1]!, w)) | 0;
        s2 = (s2 + Math.imul(data[p + 2]!, w)) | 0;
        s3 = (s3 + Math.imul(data[p + 3]!, w)) | 0;
      }
      out[o++] = clip8(s0);
      out[o++] = clip8(s1);
      out[o++] = clip8(s2);
      out[o++] = clip8(s3);
    } else if (ch === 1) {
      let s0 = HALF;
      for (let x = 0; x < n; x++) s0 = (s0 + Math.imul(data[p + x]!, weights[kOff + x]!)) | 0;
      out[o++] = clip8(s0);
    } else {
      for (let c = 0; c < ch; c++) {
        let s = HALF;
        for (let x = 0, q = p + c; x < n; x++, q += ch) s = (s + Math.imul(data[q]!, weights[kOff + x]!)) | 0;
        out[o++] = clip8(s);
      }
    }
  }
}

/**
 * Pillow's RGBA -> RGBa and LA -> La conversions: colour * alpha / 255 rounded (MULDIV255).
 * The last band is alpha. Returns a new image.
 */
export function premultiply<T extends RawImage>(src: T): T {
  const ch = src.channels;
  const a = ch - 1;
  const data = new Uint8Array(src.data.length);
  const from = src.data;
  for (let i = 0; i < data.length; i += ch) {
    const alpha = from[i + a]!;
    for (let c = 0; c < a; c++) {
      const t = from[i + c]! * alpha + 128;
      data[i + c] = ((t >> 8) + t) >> 8;
    }
    data[i + a] = alpha;
  }
  return { ...src, data };
}

/**
 * Pillow's RGBa -> RGBA and La -> LA conversions: colour * 255 / alpha with integer
 * division, left as is where alpha is 0 or 255. In place.
 */
export function unpremultiplyInPlace(img: RawImage): void {
  const ch = img.channels;
  const a = ch - 1;
  const data = img.data;
  for (let i = 0; i < data.length; i += ch) {
    const alpha = data[i + a]!;
    if (alpha === 0 || alpha === 255) continue;
    for (let c = 0; c < a; c++) data[i + c] = Math.min(255, Math.trunc((255 * data[i + c]!) / alpha));
  }
}
