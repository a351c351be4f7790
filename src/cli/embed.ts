import { parseArgs } from 'node:util';
import { Embedder } from '../engine/embedder.ts';
import { usageOf } from '../engine/usage.ts';
import { ITEM_HELP, ITEM_OPTIONS, MODEL_HELP, MODEL_OPTIONS, itemsFromTokens, modelSettings, servedName } from './options.ts';

const HELP = `usage: tessera embed [--model M] [--text T]... [--text-file P]... [--image PATH]... [options]

Prints the embeddings as JSON in the shape of a Jina API response, in input order.

${MODEL_HELP}
${ITEM_HELP}
  --no-normalize   return raw vectors instead of L2-normalised ones
  --truncate       drop the tail of texts over the model's limit instead of failing
  --task T         what the texts are for, e.g. retrieval.query (jina-clip-v2 puts its
                   instruction before each text; v1 ignores it)
  --dimensions N   keep the first N values of each vector (Matryoshka; v2: 64 to 1024)
  --exif M         apply | ignore the EXIF orientation of photos (default apply)`;

export async function main(args: string[]): Promise<void> {
  const { values, tokens } = parseArgs({
    args,
    tokens: true,
    options: {
      ...MODEL_OPTIONS,
      ...ITEM_OPTIONS,
      'no-normalize': { type: 'boolean' },
      truncate: { type: 'boolean' },
      exif: { type: 'string', default: 'apply' },
      task: { type: 'string' },
      dimensions: { type: 'string' },
    },
  });
  if (values.help) return console.log(HELP);
  const items = await itemsFromTokens(tokens);
  if (items.length === 0) throw new Error('nothing to embed: give at least one --text, --text-file or --image');
  if (values.exif !== 'apply' && values.exif !== 'ignore') throw new Error(`--exif expects apply or ignore, got ${values.exif}`);
  const dimensions = values.dimensions === undefined ? undefined : Number(values.dimensions);
  if (dimensions !== undefined && !(Number.isInteger(dimensions) && dimensions > 0)) throw new Error(`--dimensions expects a positive integer, got ${values.dimensions}`);

  const embedder = await Embedder.load(values.model, {
    ...modelSettings(values),
    exifOrientation: values.exif,
    progress: true,
  });
  try {
    const results = await embedder.embed(items, { normalize: !values['no-normalize'], truncate: values.truncate ?? false, task: values.task, dimensions });
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
