/**
 * The parts of Hugging Face transformers' CLIPImageProcessor (the Python reference of OpenAI
 * CLIP models) that differ from open_clip's eval transform; preprocess.ts runs the pipeline.
 *
 * CLIPImageProcessor.preprocess, on a PIL image: convert_to_rgb (PIL `convert('RGB')`, before
 * anything else), resize the shortest edge with PIL (image_transforms.resize), center_crop on
 * the numpy array, rescale (x * 1/255 in float64, then float32), normalize in float32. The
 * rescale and normalise give the same float32 values as torchvision's ToTensor + Normalize for
 * every byte value, so normalize.ts serves both pipelines.
 */
import type { PillowMode } from './format.ts';

/**
 * transformers' image_transforms.center_crop offsets: `top = (orig_height - crop_height) // 2`,
 * `left = (orig_width - crop_width) // 2` (floor division, where open_clip rounds half to even:
 * a 335-pixel-wide image is cut from column 55 here, 56 there).
 */
export function clipCenterCropOffsets(width: number, height: number, size: number): { left: number; top: number } {
  return { left: Math.floor((width - size) / 2), top: Math.floor((height - size) / 2) };
}

/**
 * The mode to read an image's pixels in before PIL's convert('RGB'): alpha is dropped as
 * convert does (no compositing), palettes are read as their RGB colours, 1-bit as 0/255 grey.
 * Grey and CMYK stay as they are and are converted in JS with Pillow's formulas.
 */
export function clipRgbMode(mode: PillowMode): 'RGB' | 'L' | 'CMYK' {
  if (mode === 'CMYK') return 'CMYK';
  if (mode === 'L' || mode === 'LA' || mode === '1') return 'L';
  return 'RGB';
}
