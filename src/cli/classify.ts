import { parseArgs } from 'node:util';
import { classify } from '../engine/classify.ts';
import { Embedder } from '../engine/embedder.ts';
import { usageOf } from '../engine/usage.ts';
import { ITEM_HELP, ITEM_OPTIONS, MODEL_HELP, MODEL_OPTIONS, itemsFromTokens, modelSettings, servedName } from './options.ts';

const HELP = `usage: tessera classify --labels a,b,c [--model M] [--image PATH]... [--text T]... [--text-file P]... [--truncate]

Zero-shot classification, printed as JSON in the shape of Jina's Classifier API.

${MODEL_HELP}
  --labels L     comma-separated labels (at least two)
  --truncate     drop the tail of texts over the model's limit instead of failing
${ITEM_HELP}`;

export async function main(args: string[]): Promise<void> {
  const { values, tokens } = parseArgs({
    args,
    tokens: true,
    options: { ...MODEL_OPTIONS, ...ITEM_OPTIONS, labels: { type: 'string' }, truncate: { type: 'boolean' } },
  });
  if (values.help) return console.log(HELP);
  const labels = (values.labels ?? '').split(',').map((l) => l.trim()).filter(Boolean);
  if (labels.length < 2) throw new Error('--labels needs at least two comma-separated labels');
  const items = await itemsFromTokens(tokens);
  if (items.length === 0) throw new Error('nothing to classify: give at least one --image, --text or --text-file');

  const embedder = await Embedder.load(values.model, { ...modelSettings(values), progress: true });
  try {
    const [labelResults, results] = await Promise.all([embedder.embedTexts(labels), embedder.embed(items, { truncate: values.truncate ?? false })]);
    const labelVectors = labelResults.map((r) => r.embedding);
    const response = {
      model: servedName(values.model),
      object: 'list',
      usage: usageOf([...results, ...labelResults]),
      data: results.map((r, index) => ({ object: 'classification', index, ...classify(r.embedding, labelVectors, labels) })),
    };
    process.stdout.write(JSON.stringify(response, null, 2) + '\n');
  } finally {
    await embedder.close();
  }
}
