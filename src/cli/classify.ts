import { parseArgs } from 'node:util';
import { ANONYMOUS } from '../api/auth.ts';
import { Classifiers } from '../classifier/classifiers.ts';
import { classify } from '../engine/classify.ts';
import { Embedder } from '../engine/embedder.ts';
import { usageOf } from '../engine/usage.ts';
import { openStore } from '../store/open.ts';
import { ITEM_HELP, ITEM_OPTIONS, MODEL_HELP, MODEL_OPTIONS, itemsFromTokens, modelSettings, servedName } from './options.ts';
import { CLI_CLASSIFIER_LIMITS, servedModelOf } from './train.ts';

const HELP = `usage: tessera classify --labels a,b,c [--model M] [--image PATH]... [--text T]... [--text-file P]... [--truncate]
       tessera classify --classifier-id ID [--store DIR] [--image PATH]... [--text T]...

Zero-shot classification against labels, or few-shot with a classifier made by tessera train
(or POST /v1/train), printed as JSON in the shape of Jina's Classifier API.

${MODEL_HELP}
  --labels L        comma-separated labels (at least two)
  --classifier-id ID  a classifier in the store (instead of --labels and --model)
  --store DIR|URL   the store holding it: a folder or postgres://... (default: TESSERA_STORE,
                    else $XDG_DATA_HOME/tessera)
  --owner ID        the API key id to use it as (default "${ANONYMOUS}")
  --truncate        drop the tail of texts over the model's limit instead of failing
${ITEM_HELP}`;

export async function main(args: string[]): Promise<void> {
  const { values, tokens } = parseArgs({
    args,
    tokens: true,
    options: {
      ...MODEL_OPTIONS,
      ...ITEM_OPTIONS,
      labels: { type: 'string' },
      truncate: { type: 'boolean' },
      'classifier-id': { type: 'string' },
      store: { type: 'string' },
      owner: { type: 'string', default: ANONYMOUS },
    },
  });
  if (values.help) return console.log(HELP);
  const id = values['classifier-id'];
  const labels = (values.labels ?? '').split(',').map((l) => l.trim()).filter(Boolean);
  if (id !== undefined && values.labels !== undefined) throw new Error('give --labels (zero-shot) or --classifier-id (few-shot), not both');
  if (id === undefined && labels.length < 2) throw new Error('--labels needs at least two comma-separated labels (or give --classifier-id)');
  const items = await itemsFromTokens(tokens);
  if (items.length === 0) throw new Error('nothing to classify: give at least one --image, --text or --text-file');
  if (id !== undefined) return classifyById(id, values.store, values.owner, items, values);

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

async function classifyById(
  id: string,
  storeDir: string | undefined,
  owner: string,
  items: Awaited<ReturnType<typeof itemsFromTokens>>,
  values: { threads?: string; truncate?: boolean },
): Promise<void> {
  const store = await openStore(storeDir);
  try {
    const classifiers = new Classifiers(store.classifiers, CLI_CLASSIFIER_LIMITS);
    const record = await classifiers.usable(id, owner);
    const embedder = await Embedder.load(record.model, { ...modelSettings({ dtype: record.dtype, threads: values.threads }), progress: true });
    try {
      classifiers.checkModel(record, await servedModelOf(embedder, record.model, record.dtype));
      const results = await embedder.embed(items, { normalize: true, truncate: values.truncate ?? false });
      const classified = await classifiers.classify(record, results.map((r) => r.embedding));
      const response = { model: record.modelName, object: 'list', usage: usageOf(results), data: classified.map((c, index) => ({ object: 'classification', index, ...c })) };
      process.stdout.write(JSON.stringify(response, null, 2) + '\n');
    } finally {
      await embedder.close();
    }
  } finally {
    await store.close();
  }
}
