import { parseArgs } from 'node:util';
import { classify } from '../engine/classify.ts';
import { Embedder, type EmbedItem } from '../engine/embedder.ts';
import { usageOf } from '../engine/usage.ts';
import { MODEL_HELP, MODEL_OPTIONS, modelSettings, servedName } from './options.ts';

const HELP = `usage: tessera classify --labels a,b,c [--model M] [--image PATH]... [--text T]...

Zero-shot classification, printed as JSON in the shape of Jina's Classifier API.

${MODEL_HELP}
  --labels L     comma-separated labels (at least two)
  --text T       a text to classify (repeatable)
  --image PATH   an image file, base64 string or data URI (repeatable)`;

export async function main(args: string[]): Promise<void> {
  const { values, tokens } = parseArgs({
    args,
    tokens: true,
    options: { ...MODEL_OPTIONS, labels: { type: 'string' }, text: { type: 'string', multiple: true }, image: { type: 'string', multiple: true } },
  });
  if (values.help) return console.log(HELP);
  const labels = (values.labels ?? '').split(',').map((l) => l.trim()).filter(Boolean);
  if (labels.length < 2) throw new Error('--labels needs at least two comma-separated labels');
  const items: EmbedItem[] = [];
  for (const token of tokens) {
    if (token.kind !== 'option' || token.value === undefined) continue;
    if (token.name === 'text') items.push({ text: token.value });
    if (token.name === 'image') items.push({ image: token.value });
  }
  if (items.length === 0) throw new Error('nothing to classify: give at least one --image or --text');

  const embedder = await Embedder.load(values.model, { ...modelSettings(values), progress: true });
  try {
    const [labelResults, results] = await Promise.all([embedder.embedTexts(labels), embedder.embed(items)]);
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
