/**
 * The model a benchmark runs on: a forge preset (default `full`, jina-clip-v1's dimensions;
 * `v2-full`, jina-clip-v2's) built once into a cache outside the repository with its q8
 * variant, a model folder in the hub layout, or anything else the engine resolves (a hub id).
 * The forged q8 variant is the hub-like one (BENCH_Q8_STYLE): what users download.
 */
import { open, readdir, readFile, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { invalidArgument } from '../src/errors.ts';
import { forgeModel, PRESET_NAMES, Q8_STYLE_METADATA_KEY, type PresetName, type Q8Style } from '../src/forge/index.ts';
import { onnxGraphs, onnxLayoutOf, type Dtype, type OnnxLayout } from '../src/model/dtype.ts';
import { externalDataFiles } from '../src/model/hub.ts';
import { resolveModel } from '../src/model/source.ts';

export function cacheRoot(): string {
  return process.env.TESSERA_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'tessera');
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(() => true, () => false);
}

type Json = Record<string, unknown>;

function record(value: unknown): Json {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Json) : {};
}

async function readConfig(dir: string): Promise<Json> {
  return record(JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')));
}

export interface ModelFiles {
  layout: OnnxLayout;
  /** Repo-relative: the graphs of the dtype, then the external data files they load. */
  files: string[];
}

/**
 * External data chunks of `graph` (repo-relative) as config.json declares them for
 * transformers.js (`"transformers.js_config": {"use_external_data_format": {"model.onnx": true}}`):
 * `<graph>_data`, then `<graph>_data_1`, ... for a count of chunks.
 */
function declaredExternalData(config: Json, graph: string): string[] {
  const declared = record(config['transformers.js_config']).use_external_data_format;
  const name = graph.slice(graph.lastIndexOf('/') + 1);
  const value = declared !== null && typeof declared === 'object' ? record(declared)[name] ?? record(declared)[name.replace(/\.onnx$/, '')] : declared;
  const chunks = value === true ? 1 : typeof value === 'number' ? value : 0;
  return Array.from({ length: chunks }, (_, i) => `${graph}_data${i === 0 ? '' : `_${i}`}`);
}

/**
 * The ONNX files of `dtype` in `dir`, in whichever layout it ships (two towers, or one
 * combined graph with its weights in external data files), or undefined when a graph or a
 * declared data file is missing. Data files present but undeclared count too (ONNX Runtime
 * reads them from beside the graph).
 */
export async function modelFiles(dir: string, dtype: Dtype): Promise<ModelFiles | undefined> {
  const present = new Set((await readdir(join(dir, 'onnx')).catch(() => [] as string[])).map((name) => `onnx/${name}`));
  const layout = onnxLayoutOf(dtype, present);
  if (!layout) return undefined;
  const graphs = onnxGraphs(dtype, layout);
  const config = await readConfig(dir).catch(() => ({}));
  const data = graphs.flatMap((graph) => {
    const declared = declaredExternalData(config, graph);
    return [...new Set([...declared, ...externalDataFiles(graph, [...present])])];
  });
  if (!data.every((f) => present.has(f))) return undefined;
  return { layout, files: [...graphs, ...data] };
}

/** Size of a dtype's ONNX files (both towers, or the combined graph with its external data), bytes. */
export async function modelFileBytes(dir: string, dtype: Dtype): Promise<number> {
  const found = await modelFiles(dir, dtype);
  if (!found) throw new Error(`${dir} has no complete ${dtype} graphs`);
  const sizes = await Promise.all(found.files.map((f) => stat(join(dir, f)).then((s) => s.size)));
  return sizes.reduce((a, b) => a + b, 0);
}

/**
 * How the bench forges its q8 variant: hub-like, as transformers.js's quantize script makes the
 * `_quantized` files users download (uint8 weights in a graph with a Conv, int8 otherwise, per
 * tensor; src/forge/quantize.ts), so that q8 figures are about those files.
 */
export const BENCH_Q8_STYLE: Q8Style = 'hub-like';

/**
 * How a forged q8 graph was made, from the `tessera_forge_q8` entry of its metadata, or
 * undefined (not forged, or forged before the entry existed). The forge writes ModelProto's
 * own fields, metadata included, before the graph, so the head of the file holds it.
 */
export async function forgedQ8Style(path: string): Promise<string | undefined> {
  const file = await open(path, 'r');
  let head: Buffer;
  try {
    const { bytesRead, buffer } = await file.read(Buffer.alloc(1 << 16), 0, 1 << 16, 0);
    head = buffer.subarray(0, bytesRead);
  } finally {
    await file.close();
  }
  // StringStringEntryProto: field 1 (key), then field 2 (value), both length-delimited.
  const key = Buffer.from(Q8_STYLE_METADATA_KEY);
  const at = head.indexOf(key);
  if (at < 2 || head[at - 2] !== 0x0a || head[at - 1] !== key.length) return undefined;
  const v = at + key.length;
  if (head[v] !== 0x12 || v + 2 + head[v + 1]! > head.length) return undefined;
  return head.subarray(v + 2, v + 2 + head[v + 1]!).toString('utf8');
}

/**
 * A forged model folder with both dtypes, built on the first call (full: about 30 s, 1.2 GB;
 * v2-full: minutes, 3.5 GB). Complete means config, tokenizer and every graph of each dtype
 * with the external data it declares, in the layout the preset forges, and q8 graphs made as
 * BENCH_Q8_STYLE says (a folder forged when the bench's q8 was the forge's own is forged again).
 */
export async function forgedModelDir(preset: PresetName = 'full', seed = 0, log: (line: string) => void = () => {}): Promise<string> {
  const dir = join(cacheRoot(), 'forge', `${preset}-${seed}`);
  const dtypes: Dtype[] = ['fp32', 'q8'];
  const found = await Promise.all(dtypes.map((d) => modelFiles(dir, d)));
  const complete =
    (await exists(join(dir, 'config.json'))) &&
    (await exists(join(dir, 'tokenizer.json'))) &&
    (await exists(join(dir, 'preprocessor_config.json'))) &&
    found.every(Boolean);
  const q8Graphs = found[1]?.files.filter((f) => f.endsWith('.onnx')) ?? [];
  const styles = complete ? await Promise.all(q8Graphs.map((f) => forgedQ8Style(join(dir, f)))) : [];
  if (complete && styles.every((s) => s === BENCH_Q8_STYLE)) return dir;
  const why = complete ? `its q8 graphs are ${[...new Set(styles.map((s) => s ?? 'forge-style (unmarked)'))].join(', ')}, not ${BENCH_Q8_STYLE}` : 'not there or incomplete';
  log(`forging the ${preset} model (seed ${seed}) into ${dir} (${why}), with its ${BENCH_Q8_STYLE} q8 variant ...`);
  const summary = await forgeModel({ preset, outDir: dir, seed, quantized: true, q8Style: BENCH_Q8_STYLE });
  log(`  done in ${summary.seconds.toFixed(1)} s`);
  return dir;
}

export function isPresetName(name: string): name is PresetName {
  return (PRESET_NAMES as readonly string[]).includes(name);
}

export interface BenchModel {
  dir: string;
  /** The preset it was forged from, when it was. */
  preset?: PresetName;
  /** Removes what resolving made (the demo models live in a temporary folder). */
  cleanup?: () => Promise<void>;
}

/**
 * What `--model` names: a forge preset (forged into the cache on first use), a folder in
 * the hub layout, or what the engine resolves (`demo`, a hub id). A folder whose name is
 * also a preset's is reached with a path (`./full`).
 */
export async function benchModel(model = 'full', log: (line: string) => void = () => {}): Promise<BenchModel> {
  if (isPresetName(model)) return { dir: await forgedModelDir(model, 0, log), preset: model };
  if (!(await exists(model)) && !model.includes('/') && !model.startsWith('demo')) {
    throw invalidArgument('--model', `a forge preset (${PRESET_NAMES.join(', ')}), a model folder or a hub repository id`, model);
  }
  const resolved = await resolveModel(model, { progress: true });
  return { dir: resolved.dir, cleanup: resolved.cleanup };
}

export interface ModelDims {
  text: { hidden: number; layers: number; intermediate: number; geglu: boolean };
  vision: { width: number; layers: number; mlpHidden: number; imageSize: number; patchSize: number; headWidth: number; projectionDim: number };
}

/**
 * Backbones the hub's configs name instead of giving their sizes (text_config's
 * hf_model_name_or_path): jina-clip-v1's JinaBERT (GEGLU feed-forward) and jina-clip-v2's
 * jina-embeddings-v3 (XLM-RoBERTa, plain GELU feed-forward). Forged configs give the sizes.
 */
const BACKBONES: Readonly<Record<string, Json>> = {
  'jinaai/jina-bert-flash-implementation': { hidden_size: 768, num_hidden_layers: 12, intermediate_size: 3072, feed_forward_type: 'geglu' },
  'jinaai/jina-embeddings-v3': { hidden_size: 1024, num_hidden_layers: 24, intermediate_size: 4096 },
};

/**
 * The towers' sizes from config.json: jina-clip-v1 (text sizes in text_config, GEGLU) and
 * jina-clip-v2 (text sizes in text_config.hf_model_config_kwargs or implied by the backbone
 * it names, plain GELU; 512-px images in patches of 14, of which floor(512 / 14) = 36 fit a side).
 */
export async function readDims(dir: string): Promise<ModelDims> {
  const config = await readConfig(dir);
  const t = record(config.text_config);
  const kwargs = record(t.hf_model_config_kwargs);
  const backbone = BACKBONES[String(t.hf_model_name_or_path)] ?? {};
  const text = (key: string): unknown => t[key] ?? kwargs[key] ?? backbone[key];
  const v = record(config.vision_config);
  const width = Number(v.width);
  return {
    text: {
      hidden: Number(text('hidden_size')),
      layers: Number(text('num_hidden_layers')),
      intermediate: Number(text('intermediate_size')),
      geglu: text('feed_forward_type') === 'geglu',
    },
    vision: {
      width,
      layers: Number(v.layers),
      // EVA's Block: int(width * mlp_ratio), 2048 for 768 and 2730 for 1024.
      mlpHidden: Number(v.mlp_hidden_size ?? Math.trunc(width * Number(v.mlp_ratio))),
      imageSize: Number(v.image_size),
      patchSize: Number(v.patch_size),
      headWidth: Number(v.head_width ?? 64),
      projectionDim: Number(config.projection_dim ?? width),
    },
  };
}
