import { invalidArgument } from '../errors.ts';

/** Weight precision of the ONNX files to run: fp32, fp16, or int8 dynamic quantization (q8). */
export type Dtype = 'fp32' | 'fp16' | 'q8';

export const DTYPES: readonly Dtype[] = ['fp32', 'fp16', 'q8'];

/** The suffix the hub's transformers.js-style exports append to the ONNX file names per dtype. */
export const DTYPE_SUFFIX: Readonly<Record<Dtype, string>> = {
  fp32: '',
  fp16: '_fp16',
  q8: '_quantized',
};

export function isDtype(s: string): s is Dtype {
  return (DTYPES as readonly string[]).includes(s);
}

export function parseDtype(s: string): Dtype {
  if (!isDtype(s)) throw invalidArgument('dtype', `one of ${DTYPES.join(', ')}`, s);
  return s;
}

/** Repo-relative paths of the text and vision ONNX graphs for a dtype (jina-clip-v1's layout). */
export function onnxFiles(dtype: Dtype): { text: string; vision: string } {
  const suffix = DTYPE_SUFFIX[dtype];
  return { text: `onnx/text_model${suffix}.onnx`, vision: `onnx/vision_model${suffix}.onnx` };
}

/**
 * How a repo ships its graphs: `towers`, one graph per tower (jina-clip-v1, the CLIP exports),
 * or `combined`, one graph holding both with external data (jina-clip-v2: onnx/model.onnx).
 */
export type OnnxLayout = 'towers' | 'combined';

/** The graphs a layout needs for a dtype, repo-relative. */
export function onnxGraphs(dtype: Dtype, layout: OnnxLayout): string[] {
  if (layout === 'combined') return [`onnx/model${DTYPE_SUFFIX[dtype]}.onnx`];
  const { text, vision } = onnxFiles(dtype);
  return [text, vision];
}

/** The layout whose graphs for `dtype` are all among `files` (towers first), or undefined. */
export function onnxLayoutOf(dtype: Dtype, files: ReadonlySet<string>): OnnxLayout | undefined {
  return (['towers', 'combined'] as const).find((layout) => onnxGraphs(dtype, layout).every((f) => files.has(f)));
}
