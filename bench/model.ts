/**
 * The model a benchmark runs on: the forged `full` preset (jina-clip-v1's dimensions) built
 * once into a cache outside the repository, with its q8 variant; or a folder given by --model.
 */
import { readFile, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { forgeModel, type PresetName } from '../src/forge/index.ts';
import { onnxFiles, type Dtype } from '../src/model/dtype.ts';

export function cacheRoot(): string {
  return process.env.TESSERA_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'tessera');
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(() => true, () => false);
}

/** A forged model folder with both dtypes, built on the first call (full: about 30 s, 1.2 GB). */
export async function forgedModelDir(preset: PresetName = 'full', seed = 0, log: (line: string) => void = () => {}): Promise<string> {
  const dir = join(cacheRoot(), 'forge', `${preset}-${seed}`);
  const needed = ['config.json', 'tokenizer.json', ...Object.values(onnxFiles('fp32')), ...Object.values(onnxFiles('q8'))];
  const present = await Promise.all(needed.map((f) => exists(join(dir, f))));
  if (present.every(Boolean)) return dir;
  log(`forging the ${preset} model (seed ${seed}) into ${dir} ...`);
  const summary = await forgeModel({ preset, outDir: dir, seed, quantized: true });
  log(`  done in ${summary.seconds.toFixed(1)} s`);
  return dir;
}

export interface ModelDims {
  text: { hidden: number; layers: number; intermediate: number; geglu: boolean };
  vision: { width: number; layers: number; mlpHidden: number; imageSize: number; patchSize: number; headWidth: number; projectionDim: number };
}

export async function readDims(dir: string): Promise<ModelDims> {
  const config = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as Record<string, Record<string, unknown>>;
  const t = config.text_config ?? {};
  const v = config.vision_config ?? {};
  const width = Number(v.width);
  return {
    text: {
      hidden: Number(t.hidden_size),
      layers: Number(t.num_hidden_layers),
      intermediate: Number(t.intermediate_size),
      geglu: t.feed_forward_type === 'geglu',
    },
    vision: {
      width,
      layers: Number(v.layers),
      mlpHidden: Number(v.mlp_hidden_size ?? Math.round(width * Number(v.mlp_ratio))),
      imageSize: Number(v.image_size),
      patchSize: Number(v.patch_size),
      headWidth: Number(v.head_width ?? 64),
      projectionDim: Number(config.projection_dim ?? width),
    },
  };
}

/** Size of the two ONNX files of a dtype, bytes. */
export async function modelFileBytes(dir: string, dtype: Dtype): Promise<number> {
  const files = onnxFiles(dtype);
  const sizes = await Promise.all([files.text, files.vision].map((f) => stat(join(dir, f)).then((s) => s.size)));
  return sizes[0]! + sizes[1]!;
}
