import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ANONYMOUS } from '../api/auth.ts';
import { Classifiers, type ServedModel } from '../classifier/classifiers.ts';
import type { Example } from '../classifier/learn.ts';
import { Embedder, type EmbedItem } from '../engine/embedder.ts';
import { usageOf } from '../engine/usage.ts';
import { fetchImage } from '../image/fetch.ts';
import { modelRefOf } from '../search/collection.ts';
import { openStore } from '../store/open.ts';
import type { VectorStore } from '../store/store.ts';
import { DEFAULT_MODEL } from '../model/source.ts';
import { MODEL_OPTIONS, modelSettings, servedName } from './options.ts';

const HELP = `usage: tessera train (--model M | --classifier-id ID) --examples FILE.jsonl [--num-iters N] [--public]

Creates a few-shot classifier from labelled examples (--model), or trains one further
(--classifier-id), in the store; prints the classifier's id (what was trained goes to stderr).
The server (tessera serve on the same store) classifies with it: POST /v1/classify with
classifier_id, or tessera classify --classifier-id ID.

  --model M          the model to create it on (default ${DEFAULT_MODEL}; "demo" for the colour model)
  --classifier-id ID train this classifier (on its own model)
  --examples FILE    JSONL, one example a line: {"text": "...", "label": "..."} or
                     {"image": "PATH | http(s) URL | base64 | data URI", "label": "..."};
                     relative paths are relative to the file
  --num-iters N      passes over the examples (default 10)
  --public           any API key may classify with it (only its owner may train or delete it)
  --owner ID         the API key id it belongs to (default "${ANONYMOUS}": a server without keys)
  --store DIR|URL    the store: a folder or postgres://... (default: TESSERA_STORE, else
                     $XDG_DATA_HOME/tessera)
  --dtype D          fp32 | fp16 | q8 (creating only; default fp32)
  --threads N        ONNX Runtime intra-op threads per session (default: all cores)

Limits as the server's defaults: 16 classes per classifier, 16 classifiers per owner.`;

/** The server's defaults (classifier-max-classes, classifier-max-per-key). */
export const CLI_CLASSIFIER_LIMITS = { maxClasses: 16, maxPerOwner: 16 };

interface ExampleLine {
  item: EmbedItem;
  label: string;
}

async function readExamples(file: string): Promise<ExampleLine[]> {
  const text = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
    throw new Error(`--examples ${file}: cannot read it (${err.code ?? err.message})`);
  });
  const out: ExampleLine[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    const where = `${file} line ${i + 1}`;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      throw new Error(`${where}: not JSON`);
    }
    const example = value as { text?: unknown; image?: unknown; label?: unknown };
    if (typeof example !== 'object' || example === null) throw new Error(`${where}: expected an object with "label" and "text" or "image"`);
    if (typeof example.label !== 'string' || example.label.trim() === '') throw new Error(`${where}: "label" must be a non-empty string`);
    if (typeof example.text === 'string' && example.image === undefined) out.push({ item: { text: example.text }, label: example.label });
    else if (typeof example.image === 'string' && example.text === undefined) {
      const image = example.image;
      const local = !/^https?:\/\//i.test(image) && !image.startsWith('data:') && (image.includes('/') || /\.[a-z]{3,4}$/i.test(image));
      if (/^https?:\/\//i.test(image)) out.push({ item: { image: await fetchImage(image, { allowPrivate: true }) }, label: example.label });
      else out.push({ item: { image: local && !isAbsolute(image) ? resolve(dirname(file), image) : image }, label: example.label });
    } else throw new Error(`${where}: expected exactly one of "text" or "image" (a string)`);
  }
  if (out.length === 0) throw new Error(`--examples ${file}: holds no example`);
  return out;
}

/** The model a classifier is trained or used on, from the loaded embedder. */
export async function servedModelOf(embedder: Embedder, model: string, dtype: string): Promise<ServedModel> {
  const [probe] = await embedder.embedTexts(['dimensions']);
  return { ...modelRefOf(model, dtype), name: servedName(model), dimensions: probe!.embedding.length };
}

/** The classifier `id` as `owner` may use it, and the model it needs. */
export async function classifierModel(store: VectorStore, id: string, owner: string): Promise<{ model: string; dtype: string }> {
  const record = await new Classifiers(store.classifiers, CLI_CLASSIFIER_LIMITS).usable(id, owner);
  return { model: record.model, dtype: record.dtype };
}

export async function main(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      ...MODEL_OPTIONS,
      model: { type: 'string' },
      'classifier-id': { type: 'string' },
      examples: { type: 'string' },
      'num-iters': { type: 'string' },
      public: { type: 'boolean' },
      owner: { type: 'string', default: ANONYMOUS },
      store: { type: 'string' },
    },
  });
  if (values.help) return console.log(HELP);
  const id = values['classifier-id'];
  if (id !== undefined && values.model !== undefined) throw new Error('give --model (to create a classifier) or --classifier-id (to train one), not both');
  if (!values.examples) throw new Error('--examples FILE.jsonl is required');
  const numIters = values['num-iters'] === undefined ? 10 : Number(values['num-iters']);
  if (!Number.isInteger(numIters) || numIters < 1 || numIters > 1000) throw new Error(`--num-iters expects an integer from 1 to 1000, got ${values['num-iters']}`);
  const examples = await readExamples(values.examples);
  const owner = values.owner;

  const store = await openStore(values.store);
  try {
    const classifiers = new Classifiers(store.classifiers, CLI_CLASSIFIER_LIMITS);
    const { model, dtype } = id !== undefined ? await classifierModel(store, id, owner) : { model: values.model ?? DEFAULT_MODEL, dtype: values.dtype };
    const embedder = await Embedder.load(model, { ...modelSettings({ ...values, dtype }), progress: true });
    try {
      const served = await servedModelOf(embedder, model, dtype);
      if (id !== undefined) await classifiers.checkUpdate(id, owner, examples.map((e) => e.label), served);
      else await classifiers.checkCreate(owner, [...new Set(examples.map((e) => e.label))]);
      const results = await embedder.embed(examples.map((e) => e.item), { normalize: true });
      const learnt: Example[] = results.map((r, i) => ({ vector: r.embedding, label: examples[i]!.label }));
      const embedLabels = async (texts: string[]) => (await embedder.embedTexts(texts)).map((r) => r.embedding);
      const options = { owner, served, examples: learnt, numIters, embedLabels };
      const record = id !== undefined ? await classifiers.train(id, options) : await classifiers.create({ ...options, access: values.public ? 'public' : 'private' });
      // The id alone on stdout, for scripts (id=$(tessera train ...)); the rest for people.
      process.stdout.write(`${record.id}\n`);
      console.error(`tessera train: ${id === undefined ? 'created' : 'trained'} ${record.id} (version ${record.version}) on ${learnt.length} examples, ${numIters} passes, ${usageOf(results).total_tokens * numIters} tokens; labels: ${record.labels.join(', ')}`);
    } finally {
      await embedder.close();
    }
  } finally {
    await store.close();
  }
}
