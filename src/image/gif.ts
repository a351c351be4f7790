/**
 * What Pillow makes of a GIF's first frame, read from the file's blocks (no LZW decoding):
 * libvips expands GIFs to RGB(A) and hides the two facts the reference depends on.
 *
 * - Mode: Pillow opens the frame as "P", except when its colour table is the identity grey
 *   ramp (entry i = (i, i, i), as Pillow itself writes greyscale GIFs): then "L", which is
 *   resized BICUBIC rather than NEAREST.
 * - Transparent pixels: Pillow's convert('RGB') shows the colour of the transparent index
 *   (and fills the canvas outside the frame with that index, or 0); libvips returns them as
 *   (0, 0, 0) with alpha 0.
 */
export interface GifFrameFacts {
  mode: 'P' | 'L';
  /** RGB that Pillow shows where libvips reports alpha 0. */
  fill: [number, number, number];
}

/** Undefined when the block structure cannot be followed (libvips will judge the file). */
export function gifFirstFrame(bytes: Uint8Array): GifFrameFacts | undefined {
  if (bytes.length < 13) return undefined;
  let pos = 13;
  let global: Uint8Array | undefined;
  const flags = bytes[10]!;
  if (flags & 0x80) {
    const size = 3 << ((flags & 7) + 1);
    global = bytes.subarray(pos, pos + size);
    if (global.length < size) return undefined;
    pos += size;
  }
  let transparent: number | undefined;
  while (pos < bytes.length) {
    const tag = bytes[pos++]!;
    if (tag === 0x21) {
      const label = bytes[pos++];
      if (label === undefined) return undefined;
      // Graphic Control Extension: [4, flags, delay lo, delay hi, transparent index, 0]
      if (label === 0xf9 && bytes[pos] === 4 && pos + 5 < bytes.length) {
        transparent = bytes[pos + 1]! & 1 ? bytes[pos + 4]! : undefined;
      }
      // skip the data sub-blocks
      while (pos < bytes.length && bytes[pos] !== 0) pos += bytes[pos]! + 1;
      pos++;
    } else if (tag === 0x2c) {
      if (pos + 9 > bytes.length) return undefined;
      const imageFlags = bytes[pos + 8]!;
      let table = global;
      if (imageFlags & 0x80) {
        const size = 3 << ((imageFlags & 7) + 1);
        table = bytes.subarray(pos + 9, pos + 9 + size);
        if (table.length < size) return undefined;
      }
      const palette = table && !isGreyRamp(table) ? table : undefined;
      const index = transparent ?? 0;
      const fill: [number, number, number] = palette && index * 3 + 2 < palette.length
        ? [palette[index * 3]!, palette[index * 3 + 1]!, palette[index * 3 + 2]!]
        : [index, index, index];
      return { mode: palette ? 'P' : 'L', fill };
    } else {
      return undefined;
    }
  }
  return undefined;
}

/** Pillow's GifImageFile._is_palette_needed, negated. */
function isGreyRamp(table: Uint8Array): boolean {
  for (let i = 0; i < table.length; i += 3) {
    const v = i / 3;
    if (table[i] !== v || table[i + 1] !== v || table[i + 2] !== v) return false;
  }
  return true;
}
