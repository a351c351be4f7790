/**
 * Forges jina-clip-v2 models in the hub's layout (jinaai/jina-clip-v2): config.json,
 * preprocessor_config.json, tokenizer.json, tokenizer_config.json, special_tokens_map.json,
 * onnx/model.onnx with its weights in onnx/model.onnx_data and, when asked,
 * onnx/model_quantized.onnx (self-contained, as the hub's: quantize.py's check_and_save_model
 * moves weights to external data only past protobuf's 2 GB, which 8-bit weights stay under).
 * The hub-like q8 of this one graph has uint8 weights throughout, text tower included: the
 * graph holds the vision tower's Conv, and quantize.py picks one weight type per file.
 * forgeModel (index.ts) calls this for the v2-* presets.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { WeightSource } from './graph.ts';
import { Q8_STYLE_METADATA_KEY, quantizeStyled, type HubLikeOptions, type Q8Style } from './quantize.ts';
import { randomWeights } from './random-weights.ts';
import { v2ColourWeights } from './v2-colour.ts';
import { buildV2Graph } from './v2-graph.ts';
import { v2ModelConfig, v2PreprocessorConfig } from './v2-hub-files.ts';
import { V2_PRESETS, type V2PresetName } from './v2-presets.ts';
import { v2TokenizerFiles } from './v2-tokenizer.ts';
import { buildV2Vocab } from './v2-vocab.ts';
import { writeModel, writeModelWithExternalData, type ModelInfo } from './writer.ts';

export const V2_MODEL_FILE = 'onnx/model.onnx';
export const V2_MODEL_DATA_FILE = 'onnx/model.onnx_data';
export const V2_QUANTIZED_MODEL_FILE = 'onnx/model_quantized.onnx';

export interface V2ForgeOptions {
  preset: V2PresetName;
  outDir: string;
  seed: number;
  quantized: boolean;
  /** How the q8 variant is made (default `forge`; index.ts, ForgeOptions.q8Style). */
  q8Style?: Q8Style;
  hubLike?: HubLikeOptions;
  onFile: (path: string, bytes: number) => void;
}

export async function forgeV2Model(options: V2ForgeOptions): Promise<void> {
  const { outDir, seed } = options;
  const preset = V2_PRESETS[options.preset];
  const vocab = buildV2Vocab(preset.text.vocabSize, preset.text.scripts);
  const weights: WeightSource = preset.weights === 'colour' ? v2ColourWeights(preset, vocab) : randomWeights(seed);
  await mkdir(join(outDir, 'onnx'), { recursive: true });
  const writeText = async (path: string, content: string): Promise<void> => {
    await writeFile(join(outDir, path), content);
    options.onFile(path, Buffer.byteLength(content));
  };
  const json = (value: unknown): string => `${JSON.stringify(value, null, 2)}\n`;

  await writeText('config.json', json(v2ModelConfig(preset, { preset: preset.name, seed })));
  await writeText('preprocessor_config.json', json(v2PreprocessorConfig(preset)));
  for (const [path, content] of Object.entries(v2TokenizerFiles(vocab))) await writeText(path, json(content));

  const info = (variant: string): ModelInfo => ({
    producerName: 'tessera-forge',
    producerVersion: '1',
    docString: `jina-clip-v2 text and vision towers${variant}, forged by tessera (preset ${preset.name}); not a trained model`,
    metadata: { tessera_forge_preset: preset.name, tessera_forge_seed: String(seed) },
    opsetVersion: 17,
    irVersion: 8,
  });
  const sizes = await writeModelWithExternalData(join(outDir, V2_MODEL_FILE), buildV2Graph(preset), weights, info(''));
  options.onFile(V2_MODEL_FILE, sizes.model);
  options.onFile(V2_MODEL_DATA_FILE, sizes.data);
  if (options.quantized) {
    // Self-contained, as the hub's: int8 MatMul weights keep even v2-full's under 2 GB, and
    // transformers.js looks for external data only where config.json names the file.
    const style = options.q8Style ?? 'forge';
    const q8 = quantizeStyled(style, buildV2Graph(preset), weights, options.hubLike);
    const base = info(` (q8${style === 'hub-like' ? ', hub-like' : ''})`);
    const q8Info = { ...base, metadata: { ...base.metadata, [Q8_STYLE_METADATA_KEY]: style } };
    options.onFile(V2_QUANTIZED_MODEL_FILE, await writeModel(join(outDir, V2_QUANTIZED_MODEL_FILE), q8.graph, q8.weights, q8Info));
  }
}
