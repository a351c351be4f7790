import { readFile } from 'node:fs/promises';
import { text as readStream } from 'node:stream/consumers';
import type { EmbedItem } from '../engine/embedder.ts';
import { parseDtype, type Dtype } from '../model/dtype.ts';
import { int8Setting, type Int8Setting } from '../model/int8/prepare.ts';
import { DEFAULT_MODEL } from '../model/source.ts';

/** Options every command that loads a model shares, as parseArgs declarations. */
export const MODEL_OPTIONS = {
  model: { type: 'string', default: DEFAULT_MODEL },
  dtype: { type: 'string', default: 'fp32' },
  threads: { type: 'string' },
  'no-graph-rewrite': { type: 'boolean' },
  int8: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export const MODEL_HELP = `  --model M      hub repository id (default ${DEFAULT_MODEL}), a local folder in the hub layout, "demo" or "demo-v2"
  --dtype D      fp32 | fp16 | q8 (hub files "", "_fp16", "_quantized"); default fp32
  --threads N    ONNX Runtime intra-op threads per session (default: all cores)
  --no-graph-rewrite  run the model's graph as it is, without the load-time fusions
                 (attention, residual + LayerNorm, GELU; also TESSERA_GRAPH_REWRITE=0)
  --int8 F       q8 only: auto | as-is | signed | unsigned | signed-7bit, the form of the int8
                 weights to run (default TESSERA_INT8, else auto: chosen for this CPU)`;

export function modelSettings(values: { dtype?: string; threads?: string; 'no-graph-rewrite'?: boolean; int8?: string }): { dtype: Dtype; intraOpThreads?: number; graphRewrite?: boolean; int8?: Int8Setting } {
  const threads = values.threads === undefined ? undefined : Number(values.threads);
  if (threads !== undefined && !(Number.isInteger(threads) && threads > 0)) {
    throw new Error(`--threads expects a positive integer, got ${values.threads}`);
  }
  return {
    dtype: parseDtype(values.dtype ?? 'fp32'),
    intraOpThreads: threads,
    ...(values['no-graph-rewrite'] ? { graphRewrite: false } : {}),
    // Not given: the loader reads TESSERA_INT8 (int8Setting), as the rewrite reads TESSERA_GRAPH_REWRITE.
    ...(values.int8 !== undefined ? { int8: int8Setting(values.int8) } : {}),
  };
}

/** The name responses carry for a model (one home: the server's models, api/models.ts). */
export { servedName } from '../api/models.ts';

/** Options naming what to embed or classify, as parseArgs declarations. */
export const ITEM_OPTIONS = {
  text: { type: 'string', multiple: true },
  'text-file': { type: 'string', multiple: true },
  image: { type: 'string', multiple: true },
} as const;

export const ITEM_HELP = `  --text T         a text (repeatable); "-" reads one text from standard input
  --text-file P    a file whose whole content (UTF-8) is one text (repeatable); command
                   lines have OS limits (about 128 KiB per argument), files do not
  --image PATH     an image file, base64 string or data URI (repeatable)`;

type OptionToken = { kind: string; name?: string; value?: string };

/** The items in the order they were given on the command line, texts read from files and stdin. */
export async function itemsFromTokens(tokens: readonly OptionToken[], stdin: NodeJS.ReadableStream = process.stdin): Promise<EmbedItem[]> {
  const items: EmbedItem[] = [];
  let stdinRead = false;
  for (const token of tokens) {
    if (token.kind !== 'option' || token.value === undefined) continue;
    if (token.name === 'text' && token.value === '-') {
      if (stdinRead) throw new Error('--text - may be given once: standard input holds one text');
      stdinRead = true;
      items.push({ text: await readStream(stdin) });
    } else if (token.name === 'text') {
      items.push({ text: token.value });
    } else if (token.name === 'text-file') {
      const text = await readFile(token.value, 'utf8').catch((err: NodeJS.ErrnoException) => {
        throw new Error(`--text-file ${token.value}: cannot read it (${err.code ?? err.message})`);
      });
      items.push({ text });
    } else if (token.name === 'image') {
      items.push({ image: token.value });
    }
  }
  return items;
}
