import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { TesseraError } from '../errors.ts';
import { forgeModel } from '../forge/index.ts';
import type { Dtype } from './dtype.ts';
import { downloadModel } from './hub.ts';

export const DEFAULT_MODEL = 'jinaai/jina-clip-v1';
export const DEMO_MODEL = 'demo';

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
 * Finds a model's folder: `demo` is forged on the spot (the colour model, no network),
 * an existing folder is used as it is, and `owner/name` comes from the hub cache,
 * downloading what is missing.
 */
export async function resolveModel(model: string, options: ResolveOptions = {}): Promise<ResolvedModel> {
  const dtype = options.dtype ?? 'fp32';
  if (model === DEMO_MODEL) {
    if (dtype !== 'fp32') throw new TesseraError('MODEL_FILE_MISSING', `the demo model exists only in fp32, not ${dtype}`);
    const dir = await mkdtemp(join(tmpdir(), 'tessera-demo-'));
    await forgeModel({ preset: 'colour', outDir: dir });
    return { dir, dtype, cleanup: () => rm(dir, { recursive: true, force: true }) };
  }
  const local = await stat(model).then((s) => s.isDirectory(), () => false);
  if (local) return { dir: resolve(model), dtype };
  if (HUB_ID.test(model) && !model.startsWith('.')) {
    return { dir: await downloadModel(model, { dtype, revision: options.revision, progress: options.progress }), dtype };
  }
  throw new TesseraError('MODEL_NOT_FOUND', `${JSON.stringify(model)} is neither a folder nor a hub repository id (owner/name); use --model demo for the built-in colour model`);
}
