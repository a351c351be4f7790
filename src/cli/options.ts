import { parseDtype, type Dtype } from '../model/dtype.ts';
import { DEFAULT_MODEL } from '../model/source.ts';

/** Options every command that loads a model shares, as parseArgs declarations. */
export const MODEL_OPTIONS = {
  model: { type: 'string', default: DEFAULT_MODEL },
  dtype: { type: 'string', default: 'fp32' },
  threads: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export const MODEL_HELP = `  --model M      hub repository id (default ${DEFAULT_MODEL}), a local folder in the hub layout, or "demo"
  --dtype D      fp32 | fp16 | q8 (hub files "", "_fp16", "_quantized"); default fp32
  --threads N    ONNX Runtime intra-op threads per session (default: all cores)`;

export function modelSettings(values: { dtype?: string; threads?: string }): { dtype: Dtype; intraOpThreads?: number } {
  const threads = values.threads === undefined ? undefined : Number(values.threads);
  if (threads !== undefined && !(Number.isInteger(threads) && threads > 0)) {
    throw new Error(`--threads expects a positive integer, got ${values.threads}`);
  }
  return { dtype: parseDtype(values.dtype ?? 'fp32'), intraOpThreads: threads };
}

/** The name responses carry for a model: the hub repository's name, or the folder's. */
export function servedName(model: string): string {
  return model.replace(/[\\/]+$/, '').split(/[\\/]/).at(-1) ?? model;
}
