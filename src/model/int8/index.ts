/**
 * int8 on the fast kernels without losing accuracy: pure functions on parsed ONNX models, and
 * the load-time steps the loader (src/model/load.ts) runs on q8 graphs with them.
 *
 *   onnx-file.ts   OnnxFile: a lossless wire-level reader/editor of .onnx files
 *   convert.ts     integer weights: summarize, toSigned (exact), toUnsigned (exact), toSevenBit
 *   cpu.ts         the CPU's int8 features (/proc/cpuinfo) and what its kernels do
 *   choose.ts      planInt8 (by CPU), measureVariants + pickVariant (by measurement)
 *   quantize.ts    quantizeMatMuls: q8 from fp32 at load (per channel), selectFloatWeights, cache key
 *   probe.ts       the measuring inputs: synthetic images and sentences through the model's own
 *                  preprocessing and tokenizer
 *   prepare.ts     at load: prepareInt8 (the form for this CPU, measured where needed, cached)
 *                  and prepareQuantized (q8 from fp32 for folders without q8 graphs), --int8
 *
 * @example
 *   const model = OnnxFile.parse(await readFile(path), dirname(path));
 *   const plan = planInt8(detectCpuInt8Features(), summarizeInt8(model));
 *   if (plan.decision === 'fixed') applyVariant(model, plan.variant!);
 *   // else: build each candidate (applyVariant on a fresh parse), time them with
 *   // measureVariants(plan.candidates, runner) and apply pickVariant(results).chosen
 *   await writeFile(out, model.toBytes());
 */
export { OnnxFile, TensorType, type OnnxNode, type OnnxTensor } from './onnx-file.ts';
export {
  applyVariant,
  convertWeightSign,
  INT8_VARIANTS,
  integerWeights,
  SEVEN_BIT_MAX,
  summarizeInt8,
  toSevenBit,
  toSigned,
  toUnsigned,
  type ConversionReport,
  type Int8Summary,
  type Int8Variant,
  type IntegerOp,
  type IntegerWeight,
  type WeightType,
} from './convert.ts';
export { detectCpuInt8Features, INT8_FLAGS, int8KernelClass, parseCpuInfo, type CpuInt8Features, type Int8KernelClass } from './cpu.ts';
export {
  measureVariants,
  MIN_COSINE,
  MIN_GAIN,
  pickVariant,
  planInt8,
  type Int8Choice,
  type Int8Plan,
  type MeasuredVariant,
  type MeasureOptions,
  type PickOptions,
  type PlanOptions,
  type VariantRun,
  type VariantRunner,
} from './choose.ts';
export {
  fileDigest,
  floatMatMulWeights,
  QUANTIZE_VERSION,
  quantizeCacheKey,
  quantizeMatMuls,
  selectFloatWeights,
  type FloatSelection,
  type LoadQuantizeOptions,
  type LoadQuantizeReport,
} from './quantize.ts';
export {
  INT8_LOAD_VERSION,
  INT8_SETTINGS,
  int8Setting,
  layerOf,
  MEASURE_ROUNDS,
  prepareInt8,
  prepareQuantized,
  type Int8Options,
  type Int8Report,
  type Int8Setting,
  type QuantizeReport,
  type VariantFigures,
} from './prepare.ts';
export { PROBE_IMAGE_COUNT, PROBE_TEXTS, probeBatches, probeImageRgb, probePixels, probeTextFeeds, type ProbeBatch } from './probe.ts';
