/**
 * The forge: builds model folders of jina-clip-v1's architecture in the Hugging Face hub
 * layout (config.json, preprocessor_config.json, tokenizer files, onnx/text_model.onnx,
 * onnx/vision_model.onnx), for tests and benchmarks on machines that cannot reach the hub;
 * the clip-* presets build OpenAI CLIP (clip-forge.ts), the v2-* presets jina-clip-v2 as
 * one combined graph with external data (onnx/model.onnx + model.onnx_data, v2-forge.ts).
 *
 * @example
 *   await forgeModel({ preset: 'tiny', outDir: '/tmp/tiny' });
 *   await forgeModel({ preset: 'colour', outDir: '/tmp/demo', attentionMask: false });
 *   await forgeModel({ preset: 'v2-colour', outDir: '/tmp/demo-v2' });
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { invalidArgument } from '../errors.ts';
import { forgeClipModel } from './clip-forge.ts';
import { isClipPreset } from './clip-presets.ts';
import { colourWeights } from './colour.ts';
import type { GraphBuilder, WeightSource } from './graph.ts';
import { modelConfig, PREPROCESSOR_CONFIG } from './hub-files.ts';
import { PRESET_NAMES, PRESETS, type PresetName } from './presets.ts';
import { Q8_STYLE_METADATA_KEY, quantizeStyled, type HubLikeOptions, type Q8Style } from './quantize.ts';
import { randomWeights } from './random-weights.ts';
import { buildTextGraph } from './text-tower.ts';
import { tokenizerFiles } from './tokenizer-files.ts';
import { forgeV2Model } from './v2-forge.ts';
import { isV2Preset } from './v2-presets.ts';
import { buildVisionGraph } from './vision-tower.ts';
import { buildVocab } from './vocab.ts';
import { writeModel, type ModelInfo } from './writer.ts';

export { CLIP_PREPROCESSOR_CONFIG } from './clip-forge.ts';
export { CLIP_PRESETS, type ClipPreset, type ClipPresetName } from './clip-presets.ts';
export { COLOURS, normalisePixel, type Colour } from './colour.ts';
export { IMAGE_MEAN, IMAGE_STD, PREPROCESSOR_CONFIG } from './hub-files.ts';
export { PRESET_NAMES, PRESETS, type Preset, type PresetName } from './presets.ts';
export { Q8_STYLE_METADATA_KEY, type HubLikeOptions, type WeightQuantType } from './quantize.ts';
export { TEXT_INPUTS, TEXT_OUTPUT } from './text-tower.ts';
export { VISION_INPUT, VISION_OUTPUT } from './vision-tower.ts';
export { V2_MODEL_DATA_FILE, V2_MODEL_FILE, V2_QUANTIZED_MODEL_FILE } from './v2-forge.ts';
export { V2_INPUTS, V2_OUTPUTS } from './v2-graph.ts';
export { V2_PREPROCESSOR_CONFIG, V2_TASK_INSTRUCTIONS } from './v2-hub-files.ts';
export { isV2Preset, V2_PRESET_NAMES, V2_PRESETS, type V2Preset, type V2PresetName, type V2TextDims } from './v2-presets.ts';
export { V2_MODEL_MAX_LENGTH } from './v2-tokenizer.ts';
export { V2_MASK_TOKEN, V2_SPECIAL_TOKENS, WORD_START } from './v2-vocab.ts';
export {
  COLOUR_LANGUAGES,
  colourWordList,
  MULTILINGUAL_COLOUR_WORDS,
  type ColourLanguage,
  type ColourWord,
} from './v2-colour-words.ts';

export const DEFAULT_SEED = 0;
export const OPSET_VERSION = 17;
/** IR version 8 is the one that goes with opset 17. */
const IR_VERSION = 8;

export interface ForgeOptions {
  preset: PresetName;
  /** Created if missing; files already there with the same names are replaced. */
  outDir: string;
  /**
   * Give the text graph an attention_mask input (default true; false for clip-* presets, as
   * the hub's CLIP exports; v2-* presets have none, their graph masks pad tokens itself).
   */
  attentionMask?: boolean;
  /** Seed of the random presets' weights (default 0); recorded but unused by `colour`. */
  seed?: number;
  /** Also write the q8 variant (onnx/*_quantized.onnx, dynamic int8 MatMuls; see quantize.ts). */
  quantized?: boolean;
  /**
   * How the q8 variant is made (with `quantized`): `forge` (default), per-column symmetric int8
   * MatMul weights; `hub-like`, as transformers.js's scripts/quantize.py makes the hub's
   * `_quantized` files (uint8 weights in a graph with a Conv: the vision towers of jina-clip-v1
   * and CLIP, and jina-clip-v2's combined graph as a whole; int8 in the text towers; per
   * tensor; Conv and embedding tables quantised too: quantize.ts, quantizeGraphHubLike).
   */
  q8Style?: Q8Style;
  /** Options of the hub-like variant (per channel, reduce range, weight type: quantize.ts). */
  hubLike?: HubLikeOptions;
  /** Called as each file is written, for progress output. */
  onFile?: (file: ForgedFile) => void;
}

export type { Q8Style } from './quantize.ts';
export const Q8_STYLES: readonly Q8Style[] = ['forge', 'hub-like'];

export interface ForgedFile {
  /** Relative to outDir, with forward slashes. */
  path: string;
  bytes: number;
}

export interface ForgeSummary {
  outDir: string;
  preset: PresetName;
  seed: number;
  attentionMask: boolean;
  files: ForgedFile[];
  seconds: number;
}

export async function forgeModel(options: ForgeOptions): Promise<ForgeSummary> {
  const started = performance.now();
  const { preset: presetName, outDir } = options;
  const attentionMask = options.attentionMask ?? !(isClipPreset(presetName) || isV2Preset(presetName));
  const seed = options.seed ?? DEFAULT_SEED;
  if (!PRESET_NAMES.includes(presetName)) throw invalidArgument('preset', PRESET_NAMES.join(' | '), presetName);
  if (typeof outDir !== 'string' || outDir === '') throw invalidArgument('outDir', 'a directory path', outDir);
  if (typeof attentionMask !== 'boolean') throw invalidArgument('attentionMask', 'a boolean', attentionMask);
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw invalidArgument('seed', 'an integer from 0 to 4294967295', seed);
  const q8Style = options.q8Style ?? 'forge';
  if (!Q8_STYLES.includes(q8Style)) throw invalidArgument('q8Style', Q8_STYLES.join(' | '), q8Style);

  const files: ForgedFile[] = [];
  if (isV2Preset(presetName)) {
    if (attentionMask) throw invalidArgument('attentionMask', 'false or unset for the v2 presets (their graph derives the mask from input_ids)', true);
    const onFile = (path: string, bytes: number): void => {
      files.push({ path, bytes });
      options.onFile?.({ path, bytes });
    };
    await forgeV2Model({ preset: presetName, outDir, seed, quantized: options.quantized === true, q8Style, hubLike: options.hubLike, onFile });
    return { outDir, preset: presetName, seed, attentionMask, files, seconds: (performance.now() - started) / 1000 };
  }
  if (isClipPreset(presetName)) {
    const onFile = (path: string, bytes: number): void => {
      files.push({ path, bytes });
      options.onFile?.({ path, bytes });
    };
    await forgeClipModel({ preset: presetName, outDir, attentionMask, seed, quantized: options.quantized === true, q8Style, hubLike: options.hubLike, onFile });
    return { outDir, preset: presetName, seed, attentionMask, files, seconds: (performance.now() - started) / 1000 };
  }
  const preset = PRESETS[presetName];
  const vocab = buildVocab(preset.text.vocabSize);
  const weights: WeightSource = preset.weights === 'colour' ? colourWeights(preset, vocab) : randomWeights(seed);
  const record = { preset: presetName, seed, attention_mask: attentionMask };

  await mkdir(join(outDir, 'onnx'), { recursive: true });
  const done = (path: string, bytes: number): void => {
    const file = { path, bytes };
    files.push(file);
    options.onFile?.(file);
  };
  const writeText = async (path: string, content: string): Promise<void> => {
    await writeFile(join(outDir, path), content);
    done(path, Buffer.byteLength(content));
  };
  const json = (value: unknown): string => `${JSON.stringify(value, null, 2)}\n`;

  await writeText('config.json', json(modelConfig(preset, record)));
  await writeText('preprocessor_config.json', json(PREPROCESSOR_CONFIG));
  for (const [path, content] of Object.entries(tokenizerFiles(vocab))) {
    await writeText(path, typeof content === 'string' ? content : json(content));
  }

  const info = (tower: string): ModelInfo => ({
    producerName: 'tessera-forge',
    producerVersion: '1',
    docString: `jina-clip-v1 ${tower} tower, forged by tessera (preset ${presetName}); not a trained model`,
    metadata: { tessera_forge_preset: presetName, tessera_forge_seed: String(seed), tessera_forge_attention_mask: String(attentionMask) },
    opsetVersion: OPSET_VERSION,
    irVersion: IR_VERSION,
  });
  const textPath = 'onnx/text_model.onnx';
  done(textPath, await writeModel(join(outDir, textPath), buildTextGraph(preset.text, { attentionMask }), weights, info('text')));
  const visionPath = 'onnx/vision_model.onnx';
  done(visionPath, await writeModel(join(outDir, visionPath), buildVisionGraph(preset.vision, preset.projectionDim), weights, info('vision')));
  if (options.quantized) {
    const quantize = (g: GraphBuilder) => quantizeStyled(q8Style, g, weights, options.hubLike);
    const q8Info = (tower: string): ModelInfo => {
      const base = info(`${tower} (q8${q8Style === 'hub-like' ? ', hub-like' : ''})`);
      return { ...base, metadata: { ...base.metadata, [Q8_STYLE_METADATA_KEY]: q8Style } };
    };
    const text = quantize(buildTextGraph(preset.text, { attentionMask }));
    done('onnx/text_model_quantized.onnx', await writeModel(join(outDir, 'onnx/text_model_quantized.onnx'), text.graph, text.weights, q8Info('text')));
    const vision = quantize(buildVisionGraph(preset.vision, preset.projectionDim));
    done('onnx/vision_model_quantized.onnx', await writeModel(join(outDir, 'onnx/vision_model_quantized.onnx'), vision.graph, vision.weights, q8Info('vision')));
  }
  return { outDir, preset: presetName, seed, attentionMask, files, seconds: (performance.now() - started) / 1000 };
}
