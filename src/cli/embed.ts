import { parseArgs } from 'node:util';
import { Embedder, type EmbedItem } from '../engine/embedder.ts';
import { usageOf } from '../engine/usage.ts';
import { MODEL_HELP, MODEL_OPTIONS, modelSettings, servedName } from './options.ts';

const HELP = `usage: tessera embed [--model M] [--text T]... [--image PATH]... [options]

Prints the embeddings as JSON in the shape of a Jina API response, in input order.

${MODEL_HELP}
  --text T         a text to embed (repeatable)
  --image PATH     an image file, base64 string or data URI (repeatable)
  --no-normalize   return raw vectors instead of L2-normalised ones
  --truncate       drop the tail of texts over the model's limit instead of failing
  --exif M         apply | ignore the EXIF orientation of photos (default apply)`;

export async function main(args: string[]): Promise<void> {
  const { values, tokens } = parseArgs({
    args,
    tokens: true,
    options: {
      ...MODEL_OPTIONS,
      text: { type: 'string', multiple: true },
      image: { type: 'string', multiple: true },
      'no-normalize': { type: 'boolean' },
      truncate: { type: 'boolean' },
      exif: { type: 'string', default: 'apply' },
    },
  });
  if (values.help) return console.log(HELP);
  // Keep texts and images in the order they were given on the command line.
  const items: EmbedItem[] = [];
  for (const token of tokens) {
    if (token.kind !== 'option' || token.value === undefined) continue;
    if (token.name === 'text') items.push({ text: token.value });
    if (token.name === 'image') items.push({ image: token.value });
  }
  if (items.length === 0) throw new Error('nothing to embed: give at least one --text or --image');
  if (values.exif !== 'apply' && values.exif !== 'ignore') throw new Error(`--exif expects apply or ignore, got ${values.exif}`);

  const embedder = await Embedder.load(values.model, {
    ...modelSettings(values),
    exifOrientation: values.exif,
    progress: true,
  });
  try {
    const results = await embedder.embed(items, { normalize: !values['no-normalize'], truncate: values.truncate ?? false });
    const response = {
      model: servedName(values.model),
      object: 'list',
      usage: usageOf(results),
      data: results.map((r, index) => ({ object: 'embedding', index, embedding: Array.from(r.embedding) })),
    };
    process.stdout.write(JSON.stringify(response) + '\n');
  } finally {
    await embedder.close();
  }
}
