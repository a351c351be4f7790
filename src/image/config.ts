import { TesseraError } from '../errors.ts';

/**
 * How a model wants its images: resize the shorter side to `size` with `interpolation`,
 * centre-crop `size` x `size`, scale to [0, 1], normalise with `mean` / `std` per channel.
 */
export interface ImagePreprocessConfig {
  /**
   * Which reference pipeline to reproduce. `open_clip`: open_clip's eval transform
   * (jina-clip-v1): resize in the image's own mode (palette NEAREST, alpha premultiplied),
   * crop with `round((h - size) / 2)`, then convert to RGB. `clip_image_processor`: Hugging
   * Face transformers' CLIPImageProcessor (OpenAI CLIP): convert to RGB first, resize, crop
   * with `(h - size) // 2`.
   */
  pipeline: ImagePipeline;
  size: number;
  mean: [number, number, number];
  std: [number, number, number];
  resizeMode: 'shortest';
  interpolation: 'bicubic' | 'bilinear';
}

export type ImagePipeline = 'open_clip' | 'clip_image_processor';

// PIL.Image.Resampling values as written in Hugging Face processor configs.
const PIL_RESAMPLE: Record<number, ImagePreprocessConfig['interpolation']> = { 2: 'bilinear', 3: 'bicubic' };

/**
 * Reads a preprocessor_config.json. Understands jina-clip's keys (`size`, `mean`, `std`,
 * `resize_mode`, `interpolation`) and Hugging Face CLIPImageProcessor's (`image_mean`,
 * `image_std`, `size: {shortest_edge}`, `crop_size`, `resample`).
 *
 * @example
 *   parsePreprocessorConfig(JSON.parse(text), 'preprocessor_config.json')
 *   // { size: 224, mean: [0.481, 0.458, 0.408], std: [...], resizeMode: 'shortest', interpolation: 'bicubic' }
 * @throws TesseraError MODEL_FILE_INVALID naming the file and the key when a value is malformed
 */
export function parsePreprocessorConfig(json: unknown, file: string): ImagePreprocessConfig {
  const fail = (key: string, expected: string, actual: unknown): never => {
    const shown = actual === undefined ? 'nothing' : JSON.stringify(actual);
    throw new TesseraError('MODEL_FILE_INVALID', `${file}: expected ${expected} for "${key}" but found ${shown}`);
  };
  if (typeof json !== 'object' || json === null || Array.isArray(json)) fail('(top level)', 'a JSON object', json);
  const obj = json as Record<string, unknown>;

  const sizeKey = 'size' in obj ? 'size' : 'crop_size';
  const size = readSize(obj[sizeKey], sizeKey, fail);
  if ('crop_size' in obj && sizeKey === 'size') {
    const crop = readSize(obj.crop_size, 'crop_size', fail);
    if (crop !== size) fail('crop_size', `the same size as "size" (${size}); a crop smaller than the resize is not supported`, obj.crop_size);
  }

  const meanKey = 'mean' in obj ? 'mean' : 'image_mean';
  const stdKey = 'std' in obj ? 'std' : 'image_std';
  const mean = readTriple(obj[meanKey], meanKey, false, fail);
  const std = readTriple(obj[stdKey], stdKey, true, fail);

  if ('resize_mode' in obj && obj.resize_mode !== 'shortest') fail('resize_mode', '"shortest"', obj.resize_mode);

  let interpolation: ImagePreprocessConfig['interpolation'] = 'bicubic';
  if ('interpolation' in obj) {
    if (obj.interpolation !== 'bicubic' && obj.interpolation !== 'bilinear') fail('interpolation', '"bicubic" or "bilinear"', obj.interpolation);
    interpolation = obj.interpolation as ImagePreprocessConfig['interpolation'];
  } else if ('resample' in obj) {
    const mapped = typeof obj.resample === 'number' ? PIL_RESAMPLE[obj.resample] : undefined;
    if (!mapped) fail('resample', '2 (bilinear) or 3 (bicubic)', obj.resample);
    interpolation = mapped!;
  }
  return { pipeline: pipelineOf(obj), size, mean, std, resizeMode: 'shortest', interpolation };
}

/**
 * The processor class named in the file decides (`JinaCLIPImageProcessor` -> open_clip, any
 * other `*ImageProcessor` / `*FeatureExtractor` of transformers -> clip_image_processor); a file
 * naming none is judged by its keys: transformers' `crop_size` / `do_center_crop` mean its
 * image processor, anything else open_clip.
 */
function pipelineOf(obj: Record<string, unknown>): ImagePipeline {
  const named = [obj.image_processor_type, obj.feature_extractor_type].find((v): v is string => typeof v === 'string');
  if (named !== undefined) return /^JinaCLIP/i.test(named) ? 'open_clip' : 'clip_image_processor';
  return 'crop_size' in obj || 'do_center_crop' in obj ? 'clip_image_processor' : 'open_clip';
}

type Fail = (key: string, expected: string, actual: unknown) => never;

function readSize(value: unknown, key: string, fail: Fail): number {
  let n = value;
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const v = value as Record<string, unknown>;
    if ('shortest_edge' in v) n = v.shortest_edge;
    else if ('height' in v && v.height === v.width) n = v.height;
    else fail(key, 'a number, {"shortest_edge": n} or {"height": n, "width": n}', value);
  }
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 8192) fail(key, 'an integer from 1 to 8192', value);
  return n as number;
}

function readTriple(value: unknown, key: string, positive: boolean, fail: Fail): [number, number, number] {
  const ok =
    Array.isArray(value) &&
    value.length === 3 &&
    value.every((v) => typeof v === 'number' && Number.isFinite(v) && (!positive || v > 0));
  if (!ok) fail(key, positive ? 'an array of 3 positive numbers' : 'an array of 3 numbers', value);
  return [...(value as number[])] as [number, number, number];
}
