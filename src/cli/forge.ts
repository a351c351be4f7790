import { parseArgs } from 'node:util';
import { invalidArgument } from '../errors.ts';
import { DEFAULT_SEED, forgeModel, PRESET_NAMES, type PresetName } from '../forge/index.ts';

const HELP = `usage: tessera forge --preset P --out DIR [--no-attention-mask] [--seed N] [--q8 [--hub-like]]

Builds a model folder in the Hugging Face hub layout. jina-clip-v1 presets: config.json,
preprocessor_config.json, tokenizer files, onnx/text_model.onnx and onnx/vision_model.onnx.
jina-clip-v2 presets (v2-*), as jinaai/jina-clip-v2: one graph for both towers,
onnx/model.onnx with its weights in onnx/model.onnx_data.

  --preset P            tiny (seeded random, small), full (seeded random, jina-clip-v1's
                        dimensions, about 900 MB), colour (small, hand-set weights that
                        know colour words and image colours; what --model demo uses),
                        clip-tiny (seeded random, small, OpenAI CLIP's architecture and
                        byte-level BPE tokenizer, as Xenova/clip-vit-base-patch16),
                        v2-tiny (seeded random, small, jina-clip-v2's architecture and
                        XLM-RoBERTa Unigram tokenizer), v2-full (seeded random,
                        jina-clip-v2's dimensions, about 3.5 GB), v2-colour (small,
                        hand-set, knows colour words in eight languages; --model demo-v2)
  --out DIR             the folder to write (created if missing; files are replaced)
  --no-attention-mask   build the text graph without an attention_mask input (clip-tiny
                        and the v2 presets are built without one anyway, as the hub's
                        exports)
  --seed N              seed of the random weights (default ${DEFAULT_SEED})
  --q8                  also write the int8 variant (onnx/*_quantized.onnx, --dtype q8)
  --hub-like            make that variant (implies --q8) the way the hub's _quantized files
                        are made, by transformers.js's quantize script: uint8 weights in a
                        graph with a Conv (the vision towers; v2's one combined graph
                        throughout), int8 in the text towers, per tensor, Conv and
                        embedding tables included (every preset)`;

export async function main(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      preset: { type: 'string' },
      out: { type: 'string' },
      'no-attention-mask': { type: 'boolean' },
      seed: { type: 'string' },
      q8: { type: 'boolean' },
      'hub-like': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return console.log(HELP);
  if (values.preset === undefined) throw invalidArgument('--preset', PRESET_NAMES.join(' | '), undefined);
  if (!(PRESET_NAMES as readonly string[]).includes(values.preset)) {
    throw invalidArgument('--preset', PRESET_NAMES.join(' | '), values.preset);
  }
  if (values.out === undefined || values.out === '') throw invalidArgument('--out', 'a directory', values.out);
  if (values.seed !== undefined && !(/^\d+$/.test(values.seed) && Number(values.seed) <= 0xffffffff)) {
    throw invalidArgument('--seed', 'an integer from 0 to 4294967295', values.seed);
  }
  const seed = values.seed === undefined ? DEFAULT_SEED : Number(values.seed);

  const summary = await forgeModel({
    preset: values.preset as PresetName,
    outDir: values.out,
    // Unset: each preset's default (jina-clip-v1 presets with attention_mask, clip-tiny and v2-* without).
    attentionMask: values['no-attention-mask'] ? false : undefined,
    seed,
    quantized: values.q8 === true || values['hub-like'] === true,
    ...(values['hub-like'] ? { q8Style: 'hub-like' as const } : {}),
    onFile: (file) => process.stderr.write(`  ${file.path.padEnd(26)} ${formatBytes(file.bytes).padStart(9)}\n`),
  });
  const total = summary.files.reduce((sum, f) => sum + f.bytes, 0);
  console.log(
    `forged ${summary.preset} (seed ${summary.seed}, attention mask ${summary.attentionMask ? 'on' : 'off'}) ` +
      `into ${summary.outDir}: ${formatBytes(total)} in ${summary.seconds.toFixed(1)} s`,
  );
}

function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 ** 2) return `${(bytes / 1024).toFixed(1)} KiB`;
  if (bytes < 1024 ** 3) return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
  return `${(bytes / 1024 ** 3).toFixed(2)} GiB`;
}
