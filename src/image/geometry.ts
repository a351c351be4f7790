/**
 * The reference's geometry, with its exact rounding: torchvision's Resize(size) with an int
 * size, then CenterCrop(size).
 */

export interface Size {
  width: number;
  height: number;
}

/**
 * torchvision's _compute_resized_output_size for an int size: the shorter side becomes
 * `size`, the longer `int(size * long / short)` (truncated, evaluated left to right in
 * doubles exactly as Python does).
 */
export function resizedSize(width: number, height: number, size: number): Size {
  if (width <= height) return { width: size, height: Math.trunc((size * height) / width) };
  return { width: Math.trunc((size * width) / height), height: size };
}

/** Python's round(): halves go to the even neighbour. */
export function roundHalfEven(x: number): number {
  const floor = Math.floor(x);
  const diff = x - floor;
  if (diff > 0.5) return floor + 1;
  if (diff < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

/** torchvision's CenterCrop offsets: top = int(round((h - size) / 2.0)), left likewise. */
export function centerCropOffsets(width: number, height: number, size: number): { left: number; top: number } {
  return { left: roundHalfEven((width - size) / 2), top: roundHalfEven((height - size) / 2) };
}
