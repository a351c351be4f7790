import { join } from 'node:path';
import { readdir, stat } from 'node:fs/promises';
import { TesseraError } from '../errors.ts';
import { parsePreprocessorConfig, type ImagePreprocessConfig } from '../image/preprocess.ts';
import { TextTokenizer } from '../text/tokenizer.ts';
import { onnxGraphs, onnxLayoutOf, type Dtype, type OnnxLayout } from './dtype.ts';
import { readJsonFile } from './files.ts';
import { int8Setting, prepareInt8, prepareQuantized, type Int8Report, type QuantizeReport } from './int8/prepare.ts';
import { probeBatches } from './int8/probe.ts';
import { logOnce } from './rewrite/index.ts';
import { createSession, planOutput, requireInputs, type OutputPlan, type Session, type SessionSettings, type TensorData } from './session.ts';

/** jina-clip-v1 and v2, and OpenAI CLIP (the hub's ONNX exports, e.g. Xenova/clip-vit-base-patch16). */
export const SUPPORTED_MODEL_TYPES = ['jina_clip', 'clip'] as const;

export const TEXT_INPUTS = ['input_ids', 'attention_mask', 'token_type_ids'] as const;
export const VISION_INPUTS = ['pixel_values'] as const;

/**
 * The most tokens of one text tessera embeds: Jina's API limit for every jina-clip model.
 * jina-clip-v2's tokenizer advertises 8,194 (its backbone's position count), its card 8,192.
 */
export const MAX_TEXT_TOKENS = 8192;

interface Tower {
  session: Session;
  file: string;
  output: OutputPlan;
  /**
   * What a combined graph (both towers in one) needs for the other tower's input when only
   * this one is wanted, as transformers.js's JinaCLIPModel sends it: an empty image batch for
   * texts, one token per image for images. Empty for a graph of one tower.
   */
  placeholders(batch: number): Record<string, TensorData>;
  /** q8 only: the form of the graph run on this CPU and why (src/model/int8/prepare.ts). */
  int8?: Int8Report;
  /** q8 made at load from the fp32 graph (the folder has no q8 graph). */
  quantized?: QuantizeReport;
}

export interface TextTower extends Tower {
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

export interface VisionTower extends Tower {
  imageSize: number;
}

/** A model folder in the hub layout, loaded: configs read, the ONNX session(s) open. */
export interface LoadedModel {
  dir: string;
  modelType: string;
  dtype: Dtype;
  layout: OnnxLayout;
  tokenizer: TextTokenizer;
  image: ImagePreprocessConfig;
  text: TextTower;
  vision: VisionTower;
  /** Length of its vectors: config.json's projection_dim (both towers project to it). */
  dimensions: number;
  /** Text prefixes by task (the config's task_instructions, jina-clip-v2); empty when the model has none. */
  taskInstructions: Readonly<Record<string, string>>;
  /** The sizes the model was trained to be cut to (Matryoshka, jina-clip-v2), ascending; empty when none. */
  matryoshkaDimensions: readonly number[];
}

function record(value: unknown): Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

function positive(value: unknown): number | undefined {
  const n = Number(value);
  return Number.isInteger(n) && n > 0 ? n : undefined;
}

/**
 * jina-clip-v2's text_config names its backbone (jina-embeddings-v3) and passes settings to it
 * in hf_model_config_kwargs; v1's text_config holds them itself. Reads a key from either.
 */
function textSetting(textConfig: Record<string, unknown>, key: string): unknown {
  return textConfig[key] ?? record(textConfig.hf_model_config_kwargs)[key];
}

/** task_instructions as the config holds them (top level, text_config, or the backbone's kwargs). */
function taskInstructionsOf(config: Record<string, unknown>, path: string): Record<string, string> {
  const raw = config.task_instructions ?? textSetting(record(config.text_config), 'task_instructions');
  if (raw === undefined || raw === null) return {};
  const table = record(raw);
  if (raw !== table || Object.values(table).some((v) => typeof v !== 'string')) {
    throw new TesseraError('MODEL_FILE_INVALID', `${path}: task_instructions must map task names to text prefixes, got ${JSON.stringify(raw).slice(0, 80)}`);
  }
  return table as Record<string, string>;
}

function matryoshkaOf(config: Record<string, unknown>, path: string): number[] {
  const raw = config.matryoshka_dimensions;
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw) || raw.length === 0 || raw.some((d) => positive(d) === undefined)) {
    throw new TesseraError('MODEL_FILE_INVALID', `${path}: matryoshka_dimensions must be a list of positive integers, got ${JSON.stringify(raw).slice(0, 80)}`);
  }
  return [...(raw as number[])].sort((a, b) => a - b);
}

async function filesUnder(dir: string): Promise<Set<string>> {
  const entries = await readdir(join(dir, 'onnx')).catch(() => [] as string[]);
  return new Set(entries.map((name) => `onnx/${name}`));
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
  const tokenizer = await TextTokenizer.load(dir, Math.min(positive(textSetting(textConfig, 'max_position_embeddings')) ?? MAX_TEXT_TOKENS, MAX_TEXT_TOKENS));

  const dimensions = positive(config.projection_dim) ?? positive(textSetting(textConfig, 'embed_dim')) ?? positive(textSetting(textConfig, 'hidden_size'));
  if (dimensions === undefined) throw new TesseraError('MODEL_FILE_INVALID', `${configPath}: no projection_dim (the length of the model's vectors)`);

  const present = await filesUnder(dir);
  let layout = onnxLayoutOf(dtype, present);
  // q8 asked for, and only fp32 graphs: quantised at load (prepareQuantized).
  const fp32Layout = onnxLayoutOf('fp32', present);
  const quantizeAtLoad = !layout && dtype === 'q8' && fp32Layout !== undefined;
  if (quantizeAtLoad) layout = fp32Layout;
  if (!layout) {
    // Half a pair of towers names the missing half; nothing at all names both layouts.
    const towers = onnxGraphs(dtype, 'towers');
    const wanted = towers.some((f) => present.has(f))
      ? towers.filter((f) => !present.has(f)).map((f) => join(dir, f)).join(' and ')
      : `${towers.map((f) => join(dir, f)).join(' + ')} or ${join(dir, onnxGraphs(dtype, 'combined')[0]!)}`;
    throw new TesseraError('MODEL_FILE_MISSING', `${wanted} is missing (dtype ${dtype})`);
  }
  const files = onnxGraphs(quantizeAtLoad ? 'fp32' : dtype, layout).map((f) => join(dir, f));
  const imageSize = positive(visionConfig.image_size) ?? image.size;
  const common = { modelType, heads: positive(textSetting(textConfig, 'num_attention_heads')) ?? 12, imageSize };
  // One graph after another: the int8 step measures speed, and must not share the CPU with itself.
  const prepared: PreparedGraph[] = [];
  if (dtype === 'q8') {
    const probeModel = { tokenizer, image, imageSize };
    const fp32 = onnxGraphs('fp32', layout).map((f) => (present.has(f) ? join(dir, f) : undefined));
    for (const [i, file] of files.entries()) {
      const towers = layout === 'combined'
        ? { text: combinedPlaceholders(imageSize).text, image: combinedPlaceholders(imageSize).image }
        : i === 0 ? { text: none } : { image: none };
      prepared.push(await prepareGraph(file, quantizeAtLoad ? undefined : fp32[i], () => probeBatches(probeModel, towers), settings, quantizeAtLoad));
    }
  } else {
    prepared.push(...files.map((file) => ({ file, load: file })));
  }
  const sessions = await Promise.all(prepared.map((p) => openSession(p, settings)));
  const { text, vision } = layout === 'combined'
    ? combinedTowers(sessions[0]!, files[0]!, common)
    : separateTowers(sessions[0]!, files[0]!, sessions[1]!, files[1]!, common);
  for (const [tower, p] of [[text, prepared[0]!], [vision, prepared[layout === 'combined' ? 0 : 1]!]] as const) {
    if (p.int8) tower.int8 = p.int8;
    if (p.quantized) tower.quantized = p.quantized;
  }

  return {
    dir,
    modelType,
    dtype,
    layout,
    tokenizer,
    image,
    text,
    vision,
    dimensions,
    taskInstructions: taskInstructionsOf(config, configPath),
    matryoshkaDimensions: matryoshkaOf(config, configPath),
  };
}

interface PreparedGraph {
  /** The graph file of the dtype asked for (or the fp32 one q8 was made from). */
  file: string;
  /** What the session loads (the graph rewrite runs on it). */
  load: string;
  int8?: Int8Report;
  quantized?: QuantizeReport;
}

const stderrLog = (line: string): void => void process.stderr.write(`tessera: ${line}\n`);

function int8Line(file: string, r: Int8Report): string {
  const figures = r.measured?.map((m) => `${m.variant} ${m.bestMs} ms CPU (${m.wallMs} ms wall), min cosine ${m.minCosine.toFixed(5)}${m.passes ? '' : ' (fails)'}`).join('; ');
  const how = r.decision === 'measured' ? `measured against ${r.reference === 'fp32' ? 'fp32' : 'the file as it is'}${r.cached ? ', cached' : ` in ${r.seconds} s`}: ${figures}` : `${r.decision}${r.cached ? ', cached' : ''}: ${r.reason}`;
  return `${file}: int8 form ${r.variant} on ${r.kernel} (${how})`;
}

/**
 * The int8 steps for one q8 graph (src/model/int8/prepare.ts): q8 made from fp32 when the folder
 * has none, then the form for this CPU. Neither stops a q8 file from loading: when the form
 * cannot be made, the file runs as it is, and that is said.
 */
async function prepareGraph(file: string, fp32: string | undefined, probe: () => ReturnType<typeof probeBatches>, settings: SessionSettings, quantizeAtLoad: boolean): Promise<PreparedGraph> {
  const log = settings.log ?? stderrLog;
  const setting = int8Setting(settings.int8);
  const measuring = { probe: [] as Awaited<ReturnType<typeof probeBatches>>, session: { intraOpThreads: settings.intraOpThreads, graphOptimizationLevel: settings.graphOptimizationLevel } };
  const probeOnce = async () => (measuring.probe.length > 0 ? measuring.probe : (measuring.probe = await probe()));
  let source = file;
  let quantized: QuantizeReport | undefined;
  if (quantizeAtLoad) {
    try {
      quantized = await prepareQuantized(file, { ...measuring, probe: await probeOnce() });
    } catch (err) {
      throw new TesseraError('MODEL_FILE_MISSING', `${file.replace(/\.onnx$/, '_quantized.onnx')} is missing (dtype q8) and quantising ${file} at load failed: ${(err as Error).message.split('\n')[0]}`, { cause: err });
    }
    source = quantized.file;
    log(`${file}: no q8 graph in the folder; quantised at load (${quantized.quantized} MatMul weights int8 per column, ${quantized.keptFloat.length} left in float, min cosine ${quantized.minCosine.toFixed(5)} to fp32${quantized.cached ? ', cached' : `, in ${quantized.seconds} s`}) into ${quantized.file}`);
    fp32 = file;
  }
  // Execution providers other than the CPU run their own int8 kernels: nothing to choose here.
  const provider = settings.executionProviders?.[0];
  if (provider !== undefined && provider !== 'cpu') return { file, load: source, ...(quantized ? { quantized } : {}) };
  try {
    const int8 = await prepareInt8(source, { setting, cpu: settings.cpuFeatures, reference: fp32, ...measuring, probe: setting === 'auto' ? await probeOnce() : [] });
    log(int8Line(quantizeAtLoad ? source : file, int8));
    return { file, load: int8.file ?? source, int8, ...(quantized ? { quantized } : {}) };
  } catch (err) {
    logOnce(log, `${source}: the int8 step failed (${(err as Error).message.split('\n')[0]}); running the graph as it is`);
    return { file, load: source, ...(quantized ? { quantized } : {}) };
  }
}

/** A session for a prepared graph; a derived file ONNX Runtime cannot load gives way to the graph it came from. */
async function openSession(p: PreparedGraph, settings: SessionSettings): Promise<Session> {
  try {
    return await createSession(p.load, settings);
  } catch (err) {
    const fallback = p.quantized?.file ?? p.file;
    if (!p.int8?.file || p.load === fallback) throw err;
    logOnce(settings.log ?? stderrLog, `${p.load}: cannot be loaded (${(err as Error).message.split('\n')[0]}); running ${fallback} as it is`);
    p.int8 = { ...p.int8, file: null, variant: 'as-is', reason: `the ${p.int8.variant} form could not be loaded` };
    p.load = fallback;
    return createSession(fallback, settings);
  }
}

interface TowerFacts {
  modelType: string;
  heads: number;
  imageSize: number;
}

const none = (): Record<string, TensorData> => ({});

function textTower(session: Session, file: string, facts: TowerFacts, placeholders: Tower['placeholders']): TextTower {
  return {
    session,
    file,
    output: planOutput(session, 'text', file),
    placeholders,
    takesAttentionMask: session.inputNames.includes('attention_mask'),
    takesTokenTypeIds: session.inputNames.includes('token_type_ids'),
    paddingInvariant: facts.modelType === 'clip',
    heads: facts.heads,
  };
}

/** jina-clip-v1 and CLIP: onnx/text_model.onnx and onnx/vision_model.onnx. */
function separateTowers(textSession: Session, textFile: string, visionSession: Session, visionFile: string, facts: TowerFacts) {
  requireInputs(textSession, TEXT_INPUTS, ['input_ids'], textFile);
  requireInputs(visionSession, VISION_INPUTS, ['pixel_values'], visionFile);
  return {
    text: textTower(textSession, textFile, facts, none),
    vision: { session: visionSession, file: visionFile, output: planOutput(visionSession, 'image', visionFile), placeholders: none, imageSize: facts.imageSize } as VisionTower,
  };
}

/**
 * What a combined graph needs for the other tower's input when only one is wanted, as
 * transformers.js's JinaCLIPModel sends it: an empty image batch for texts, one token per image
 * for images.
 */
function combinedPlaceholders(size: number): { text: Tower['placeholders']; image: Tower['placeholders'] } {
  return {
    text: () => ({ pixel_values: { type: 'float32', data: new Float32Array(0), dims: [0, 3, size, size] } }),
    image: (batch: number) => ({ input_ids: { type: 'int64', data: new BigInt64Array(batch).fill(1n), dims: [batch, 1] } }),
  };
}

/** jina-clip-v2: one onnx/model.onnx taking input_ids and pixel_values, giving both embeddings. */
function combinedTowers(session: Session, file: string, facts: TowerFacts) {
  requireInputs(session, [...TEXT_INPUTS, ...VISION_INPUTS], ['input_ids', 'pixel_values'], file);
  const placeholders = combinedPlaceholders(facts.imageSize);
  return {
    text: textTower(session, file, facts, placeholders.text),
    vision: { session, file, output: planOutput(session, 'image', file), placeholders: placeholders.image, imageSize: facts.imageSize } as VisionTower,
  };
}

export async function releaseModel(model: LoadedModel): Promise<void> {
  const sessions = new Set([model.text.session, model.vision.session]);
  await Promise.all([...sessions].map((s) => s.release()));
}
