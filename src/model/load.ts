import { join } from 'node:path';
import { stat } from 'node:fs/promises';
import { TesseraError } from '../errors.ts';
import { parsePreprocessorConfig, type ImagePreprocessConfig } from '../image/preprocess.ts';
import { TextTokenizer } from '../text/tokenizer.ts';
import { onnxFiles, type Dtype } from './dtype.ts';
import { readJsonFile } from './files.ts';
import { createSession, planOutput, requireInputs, type OutputPlan, type Session, type SessionSettings } from './session.ts';

/** jina-clip-v1 and OpenAI CLIP (the hub's ONNX exports, e.g. Xenova/clip-vit-base-patch16). */
export const SUPPORTED_MODEL_TYPES = ['jina_clip', 'clip'] as const;

export const TEXT_INPUTS = ['input_ids', 'attention_mask', 'token_type_ids'] as const;
export const VISION_INPUTS = ['pixel_values'] as const;

export interface TextTower {
  session: Session;
  file: string;
  output: OutputPlan;
  takesAttentionMask: boolean;
  takesTokenTypeIds: boolean;
  /**
   * Padding after a text's last token cannot change its embedding even without an
   * attention_mask input: true for CLIP (causal attention, pooled at the first end token),
   * false for jina-clip (bidirectional attention, mean pooling). Such graphs may batch texts
   * of different lengths.
   */
  paddingInvariant: boolean;
  /** Attention heads, for sizing batches by attention memory. */
  heads: number;
}

export interface VisionTower {
  session: Session;
  file: string;
  output: OutputPlan;
  imageSize: number;
}

/** A model folder in the hub layout, loaded: configs read, both ONNX sessions open. */
export interface LoadedModel {
  dir: string;
  modelType: string;
  dtype: Dtype;
  tokenizer: TextTokenizer;
  image: ImagePreprocessConfig;
  text: TextTower;
  vision: VisionTower;
}

function record(value: unknown): Record<string, unknown> {
  return value !== null && typeof value === 'object' ? (value as Record<string, unknown>) : {};
}

export async function loadModelDir(dir: string, dtype: Dtype, settings: SessionSettings = {}): Promise<LoadedModel> {
  const isDir = await stat(dir).then((s) => s.isDirectory(), () => false);
  if (!isDir) throw new TesseraError('MODEL_NOT_FOUND', `${dir} is not a folder`);

  const configPath = join(dir, 'config.json');
  const config = record(await readJsonFile(configPath));
  const modelType = String(config.model_type);
  if (!(SUPPORTED_MODEL_TYPES as readonly string[]).includes(modelType)) {
    throw new TesseraError('MODEL_FILE_INVALID', `${configPath}: model_type ${JSON.stringify(config.model_type)} is not supported (supported: ${SUPPORTED_MODEL_TYPES.join(', ')})`);
  }
  const textConfig = record(config.text_config);
  const visionConfig = record(config.vision_config);

  const preprocessorPath = join(dir, 'preprocessor_config.json');
  const image = parsePreprocessorConfig(await readJsonFile(preprocessorPath), preprocessorPath);
  const maxPositions = Number(textConfig.max_position_embeddings);
  const tokenizer = await TextTokenizer.load(dir, Number.isFinite(maxPositions) && maxPositions > 0 ? maxPositions : undefined);

  const files = onnxFiles(dtype);
  const textFile = join(dir, files.text);
  const visionFile = join(dir, files.vision);
  for (const file of [textFile, visionFile]) {
    const exists = await stat(file).then((s) => s.isFile(), () => false);
    if (!exists) throw new TesseraError('MODEL_FILE_MISSING', `${file} is missing (dtype ${dtype})`);
  }
  const [textSession, visionSession] = await Promise.all([createSession(textFile, settings), createSession(visionFile, settings)]);

  requireInputs(textSession, TEXT_INPUTS, 'input_ids', textFile);
  requireInputs(visionSession, VISION_INPUTS, 'pixel_values', visionFile);
  const heads = Number(textConfig.num_attention_heads);
  const imageSize = Number(visionConfig.image_size);

  return {
    dir,
    modelType,
    dtype,
    tokenizer,
    image,
    text: {
      session: textSession,
      file: textFile,
      output: planOutput(textSession, 'text', textFile),
      takesAttentionMask: textSession.inputNames.includes('attention_mask'),
      takesTokenTypeIds: textSession.inputNames.includes('token_type_ids'),
      paddingInvariant: modelType === 'clip',
      heads: Number.isFinite(heads) && heads > 0 ? heads : 12,
    },
    vision: {
      session: visionSession,
      file: visionFile,
      output: planOutput(visionSession, 'image', visionFile),
      imageSize: Number.isFinite(imageSize) && imageSize > 0 ? imageSize : image.size,
    },
  };
}

export async function releaseModel(model: LoadedModel): Promise<void> {
  await Promise.all([model.text.session.release(), model.vision.session.release()]);
}
