import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, isAbsolute, join, resolve } from 'node:path';
import { TesseraError } from '../errors.ts';
import { forgeModel } from '../forge/index.ts';
import type { Dtype } from './dtype.ts';
import { downloadModel } from './hub.ts';

export const DEFAULT_MODEL = 'jinaai/jina-clip-v1';
export const DEMO_MODEL = 'demo';

/**
 * The built-in colour models, forged on the spot (no network): `demo` has jina-clip-v1's
 * architecture, `demo-v2` jina-clip-v2's and knows its colour words in several languages.
 */
export const DEMO_MODELS = { [DEMO_MODEL]: 'colour', 'demo-v2': 'v2-colour' } as const;

/**
 * A model as API answers show it: a hub id or a demo name as it is, a local folder by its
 * name only (its full path would tell clients where the server keeps its files).
 */
export function publicModel(model: string): string {
  return isAbsolute(model) ? basename(model) : model;
}

export function isDemoModel(model: string): model is keyof typeof DEMO_MODELS {
  return Object.hasOwn(DEMO_MODELS, model);
}

export interface ResolveOptions {
  dtype?: Dtype;
  /** Hub revision (branch, tag or commit); default main. */
  revision?: string;
  /** Show a download progress bar on stderr. */
  progress?: boolean;
}

export interface ResolvedModel {
  dir: string;
  dtype: Dtype;
  /** Removes what resolving created (the demo model is built in a temporary folder). */
  cleanup?: () => Promise<void>;
}

const HUB_ID = /^[\w.-]+\/[\w.-]+$/;

/**
 * Finds a model's folder: `demo` and `demo-v2` are forged on the spot (the colour models, no network),
 * an existing folder is used as it is, and `owner/name` comes from the hub cache,
 * downloading what is missing.
 */
export async function resolveModel(model: string, options: ResolveOptions = {}): Promise<ResolvedModel> {
  const dtype = options.dtype ?? 'fp32';
  if (isDemoModel(model)) {
    if (dtype !== 'fp32') throw new TesseraError('MODEL_FILE_MISSING', `the ${model} model exists only in fp32, not ${dtype}`);
    const dir = await mkdtemp(join(tmpdir(), `tessera-${model}-`));
    await forgeModel({ preset: DEMO_MODELS[model], outDir: dir });
    return { dir, dtype, cleanup: () => rm(dir, { recursive: true, force: true }) };
  }
  const local = await stat(model).then((s) => s.isDirectory(), () => false);
  if (local) return { dir: resolve(model), dtype };
  if (HUB_ID.test(model) && !model.startsWith('.')) {
    return { dir: await downloadModel(model, { dtype, revision: options.revision, progress: options.progress }), dtype };
  }
  throw new TesseraError('MODEL_NOT_FOUND', `${JSON.stringify(model)} is neither a folder nor a hub repository id (owner/name); use --model demo (or demo-v2) for the built-in colour model`);
}
