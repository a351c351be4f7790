/**
 * What an image is before any decoder sees it: its container, from the first bytes, and the
 * mode Pillow would open it in, which decides how the reference resizes it.
 */

/** Raster formats we decode. */
export type RasterFormat = 'jpeg' | 'png' | 'webp' | 'gif' | 'tiff' | 'avif';

/** Formats recognised by signature but refused: vector, documents, or no decoder here. */
export type RefusedFormat = 'svg' | 'pdf' | 'heic' | 'bmp' | 'ico' | 'psd' | 'jxl' | 'jp2' | 'postscript' | 'pnm' | 'gzip';

const ascii = (bytes: Uint8Array, from: number, to: number) => Buffer.from(bytes.subarray(from, to)).toString('latin1');

/** The format the signature says, or undefined when the bytes start like nothing we know. */
export function sniffFormat(bytes: Uint8Array): RasterFormat | RefusedFormat | undefined {
  const b = bytes;
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'jpeg';
  if (b.length >= 8 && ascii(b, 0, 8) === '\x89PNG\r\n\x1a\n') return 'png';
  if (b.length >= 6 && (ascii(b, 0, 6) === 'GIF87a' || ascii(b, 0, 6) === 'GIF89a')) return 'gif';
  if (b.length >= 12 && ascii(b, 0, 4) === 'RIFF' && ascii(b, 8, 12) === 'WEBP') return 'webp';
  if (b.length >= 4 && (ascii(b, 0, 4) === 'II*\0' || ascii(b, 0, 4) === 'MM\0*' || ascii(b, 0, 4) === 'II+\0' || ascii(b, 0, 4) === 'MM\0+')) return 'tiff';
  if (b.length >= 12 && ascii(b, 4, 8) === 'ftyp') {
    const brand = ascii(b, 8, 12);
    if (brand === 'avif' || brand === 'avis') return 'avif';
    if (['heic', 'heix', 'hevc', 'hevx', 'heim', 'heis', 'mif1', 'msf1'].includes(brand)) return 'heic';
    if (brand === 'jp2 ' || brand === 'jpx ') return 'jp2';
    return undefined;
  }
  if (b.length >= 5 && ascii(b, 0, 5) === '%PDF-') return 'pdf';
  if (b.length >= 4 && ascii(b, 0, 4) === '%!PS') return 'postscript';
  if (b.length >= 4 && ascii(b, 0, 4) === '8BPS') return 'psd';
  if (b.length >= 2 && ascii(b, 0, 2) === 'BM') return 'bmp';
  if (b.length >= 4 && b[0] === 0 && b[1] === 0 && (b[2] === 1 || b[2] === 2) && b[3] === 0) return 'ico';
  if (b.length >= 2 && b[0] === 0xff && b[1] === 0x0a) return 'jxl';
  if (b.length >= 12 && ascii(b, 4, 8) === 'JXL ') return 'jxl';
  if (b.length >= 12 && ascii(b, 4, 8) === 'jP  ') return 'jp2';
  if (b.length >= 3 && b[0] === 0x50 && b[1]! >= 0x31 && b[1]! <= 0x37 && /\s/.test(String.fromCharCode(b[2]!))) return 'pnm';
  // gzip: SVGZ most likely, which libvips would inflate and render
  if (b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b) return 'gzip';
  if (looksLikeSvg(b)) return 'svg';
  return undefined;
}

function looksLikeSvg(bytes: Uint8Array): boolean {
  const head = ascii(bytes, 0, Math.min(bytes.length, 4096)).replace(/^\uFEFF|^\xEF\xBB\xBF/, '').trimStart();
  if (!head.startsWith('<')) return false;
  return /<svg[\s>]/i.test(head) || /<!DOCTYPE\s+svg/i.test(head);
}

export const FORMAT_NAMES: Record<RasterFormat | RefusedFormat, string> = {
  jpeg: 'JPEG',
  png: 'PNG',
  webp: 'WebP',
  gif: 'GIF',
  tiff: 'TIFF',
  avif: 'AVIF',
  svg: 'SVG',
  pdf: 'PDF',
  heic: 'HEIC/HEIF',
  bmp: 'BMP',
  ico: 'ICO',
  psd: 'Photoshop (PSD)',
  jxl: 'JPEG XL',
  jp2: 'JPEG 2000',
  postscript: 'PostScript',
  pnm: 'PNM (PBM/PGM/PPM/PAM)',
  gzip: 'gzip-compressed (SVGZ?)',
};

export const ACCEPTED_FORMATS = 'JPEG, PNG, WebP, GIF, AVIF or TIFF';

/**
 * The Pillow modes that matter to the reference pipeline. "P" and "1" are resized with
 * NEAREST whatever filter is asked; "RGBA" and "LA" premultiplied; the rest plainly.
 */
export type PillowMode = '1' | 'L' | 'LA' | 'P' | 'RGB' | 'RGBA' | 'CMYK';

/** What sharp's metadata() says about the pixels (the subset we read). */
export interface PixelFacts {
  space: string;
  hasAlpha: boolean;
  isPalette: boolean;
  bitsPerSample?: number;
}

/**
 * The mode Pillow's Image.open gives this image, and whether libvips reports an alpha band
 * that Pillow does not have (a PNG tRNS colour key on a grey or RGB image: Pillow keeps
 * mode L/RGB and ignores it in convert('RGB'), libvips turns it into alpha).
 */
export function pillowMode(format: RasterFormat, bytes: Uint8Array, facts: PixelFacts): { mode: PillowMode; ignoreAlpha: boolean } {
  if (facts.isPalette) return { mode: 'P', ignoreAlpha: false };
  if (facts.space === 'cmyk') return { mode: 'CMYK', ignoreAlpha: false };
  const grey = facts.space === 'b-w' || facts.space === 'grey16';
  if (grey && !facts.hasAlpha && facts.bitsPerSample === 1) return { mode: '1', ignoreAlpha: false };
  if (format === 'png' && facts.hasAlpha) {
    // IHDR is always the first chunk: colour type at byte 25; bit 4 means a real alpha channel.
    const colourType = bytes.length > 25 ? bytes[25]! : 6;
    if ((colourType & 4) === 0) {
      if (grey && facts.bitsPerSample === 1) return { mode: '1', ignoreAlpha: true };
      return { mode: grey ? 'L' : 'RGB', ignoreAlpha: true };
    }
  }
  if (grey) return { mode: facts.hasAlpha ? 'LA' : 'L', ignoreAlpha: false };
  return { mode: facts.hasAlpha ? 'RGBA' : 'RGB', ignoreAlpha: false };
}
