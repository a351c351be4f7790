import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Embedder, QUERY_TASK, type EmbedderOptions } from '../engine/embedder.ts';
import type { LoadedModel } from '../model/load.ts';
import { EmbeddingCache } from './cache.ts';
import { loadBeir, loadKarpathy, loadLabelled } from './datasets.ts';
import type { Encoder } from './embed.ts';
import { summarize, type ModelResult, type Summary } from './report.ts';
import { runImageImage, runRetrieval, runText, runZeroshot, ZEROSHOT_TEMPLATE, type TaskFigures, type TaskName, type TextMode } from './tasks.ts';

/** One task on one dataset folder. */
export interface EvalJob {
  task: TaskName;
  data: string;
}

export interface EvalOptions {
  models: readonly string[];
  jobs: readonly EvalJob[];
  dtype: EmbedderOptions['dtype'];
  cacheDir: string;
  /** Model whose row the others are compared with (default: the last model). */
  baseline?: string;
  /** Use only the first N images / queries / labelled images of each dataset. */
  limit?: number;
  /** Items per engine call (default 64). */
  chunk?: number;
  /** The text task's search: vectors alone (default) or hybrid (BM25 fused by RRF). */
  textMode?: TextMode;
  progress?: boolean;
  intraOpThreads?: number;
  /** Test hook: wrap the loaded model (to count its calls). */
  wrap?: (encoder: Encoder) => Encoder;
  /** Called after each task (for a line of progress on stderr). */
  onResult?: (result: ModelResult) => void;
}

export interface EvalReport {
  tool: 'tessera eval';
  settings: Record<string, unknown>;
  results: ModelResult[];
  summary: Summary;
  /** Per model: what it is, and embeddings found in the cache and computed. */
  cache: ({ model: string; file: string; hits: number; computed: number } & ModelFacts)[];
}

/** What changes the vectors besides model and dtype; part of the cache key. */
const VECTOR_SETTINGS = { normalize: true, truncate: true };


/** A loaded model as the report describes it. */
export interface ModelFacts {
  model_type: string;
  /** `towers` (jina-clip-v1, CLIP) or `combined` (jina-clip-v2's one graph). */
  layout: string;
  dimensions: number;
  image_size: number;
  max_tokens: number;
  /** The task BEIR queries were embedded for; null on a model without task instructions. */
  query_task: string | null;
}

function modelFacts(model: LoadedModel): ModelFacts {
  return {
    model_type: model.modelType,
    layout: model.layout,
    dimensions: model.dimensions,
    image_size: model.image.size,
    max_tokens: model.tokenizer.maxTokens,
    query_task: QUERY_TASK in model.taskInstructions ? QUERY_TASK : null,
  };
}

/**
 * What the model folder holds, for the cache key: its configs and the names and sizes of the
 * ONNX files loaded (with external data), so a folder forged or downloaded again as another
 * model (v1 -> v2, another seed) gets a cache of its own rather than another model's vectors.
 */
function modelFingerprint(model: LoadedModel): string {
  const h = createHash('sha256');
  for (const name of ['config.json', 'preprocessor_config.json', 'tokenizer.json']) {
    const path = join(model.dir, name);
    if (existsSync(path)) h.update(`${name}\0`).update(readFileSync(path)).update('\0');
  }
  const graphs = [...new Set([model.text.file, model.vision.file])];
  for (const file of graphs.flatMap((f) => [f, `${f}_data`]).filter((f) => existsSync(f))) {
    h.update(`${file.slice(model.dir.length)}\0${statSync(file).size}\0`);
  }
  return h.digest('hex').slice(0, 16);
}

export async function runEvaluation(options: EvalOptions): Promise<EvalReport> {
  if (options.models.length === 0) throw new Error('give at least one --model');
  if (options.jobs.length === 0) throw new Error('no dataset to evaluate');
  const dtype = options.dtype ?? 'fp32';
  const results: ModelResult[] = [];
  const cacheStats: EvalReport['cache'] = [];
  for (const model of options.models) {
    const embedder = await Embedder.load(model, { dtype, progress: options.progress, intraOpThreads: options.intraOpThreads });
    const facts = modelFacts(embedder.model);
    const settings = { ...VECTOR_SETTINGS, modelType: facts.model_type, files: modelFingerprint(embedder.model) };
    const cache = new EmbeddingCache(options.cacheDir, { model, dtype, settings });
    try {
      const encoder = options.wrap ? options.wrap(embedder) : embedder;
      const ctx = { encoder, cache, embed: { progress: options.progress, chunk: options.chunk }, queryTask: facts.query_task ?? undefined };
      for (const job of options.jobs) {
        const figures = await runJob(ctx, job, options.limit, options.textMode);
        const result = { model, dtype, ...figures } as ModelResult;
        results.push(result);
        options.onResult?.(result);
      }
    } finally {
      cache.close();
      await embedder.close();
    }
    cacheStats.push({ model, ...facts, file: cache.path, hits: cache.stats.hits, computed: cache.stats.stored });
  }
  const baseline = options.baseline ?? options.models.at(-1)!;
  if (!options.models.includes(baseline)) throw new Error(`--baseline ${baseline} is not one of the --model values`);
  return {
    tool: 'tessera eval',
    settings: {
      models: options.models,
      dtype,
      baseline,
      jobs: options.jobs,
      limit: options.limit ?? null,
      chunk: options.chunk ?? 64,
      text_mode: options.textMode ?? 'vector',
      split: 'test',
      similarity: 'cosine (unit vectors, dot product)',
      ...VECTOR_SETTINGS,
      query_task: `${QUERY_TASK} for BEIR queries on models with task instructions (jina-clip-v2); documents, captions and prompts without a task`,
      zeroshot_template: ZEROSHOT_TEMPLATE,
      cache_dir: options.cacheDir,
    },
    results,
    summary: summarize(results, options.models, baseline),
    cache: cacheStats,
  };
}

async function runJob(ctx: Parameters<typeof runRetrieval>[0], job: EvalJob, limit?: number, textMode: TextMode = 'vector'): Promise<TaskFigures> {
  switch (job.task) {
    case 'retrieval':
      return runRetrieval(ctx, loadKarpathy(job.data, 'test', limit));
    case 'text':
      return runText(ctx, loadBeir(job.data, 'test', limit), textMode);
    case 'image-image':
      return runImageImage(ctx, loadLabelled(job.data, limit));
    case 'zeroshot':
      return runZeroshot(ctx, loadLabelled(job.data, limit));
  }
}

function isDir(p: string): boolean {
  return existsSync(p) && statSync(p).isDirectory();
}

function subdirs(dir: string): string[] {
  return readdirSync(dir).sort().filter((d) => isDir(join(dir, d)));
}

/**
 * The "seed" suite: every dataset found under `root`, one folder each:
 * - a folder with a Karpathy dataset_*.json (flickr8k/, flickr30k/, mscoco/): retrieval;
 * - beir/<name>/ with corpus.jsonl (MTEB retrieval tasks): text;
 * - a folder with CIFAR's test.bin (cifar100/), or labelled/<name>/ with one folder per
 *   class: image-image and zeroshot.
 */
export function discoverSuite(root: string): EvalJob[] {
  if (!isDir(root)) throw new Error(`--data-root ${root} is not a folder`);
  const jobs: EvalJob[] = [];
  for (const name of subdirs(root)) {
    const dir = join(root, name);
    if (name === 'beir') {
      for (const sub of subdirs(dir)) if (existsSync(join(dir, sub, 'corpus.jsonl'))) jobs.push({ task: 'text', data: join(dir, sub) });
    } else if (name === 'labelled') {
      for (const sub of subdirs(dir)) jobs.push({ task: 'image-image', data: join(dir, sub) }, { task: 'zeroshot', data: join(dir, sub) });
    } else if (readdirSync(dir).some((f) => /^dataset_.*\.json$/.test(f))) {
      jobs.push({ task: 'retrieval', data: dir });
    } else if (existsSync(join(dir, 'test.bin'))) {
      jobs.push({ task: 'image-image', data: dir }, { task: 'zeroshot', data: dir });
    } else if (existsSync(join(dir, 'corpus.jsonl'))) {
      jobs.push({ task: 'text', data: dir });
    }
  }
  if (jobs.length === 0) throw new Error(`no dataset found under ${root}: expected flickr8k/, flickr30k/, mscoco/ (Karpathy JSON + images/), beir/<name>/ (BEIR), cifar100/ (test.bin) or labelled/<name>/ (a folder per class); see docs/evaluation.md`);
  return jobs;
}
