import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';
import { defaultCacheDir } from '../eval/cache.ts';
import { markdownReport, svgChart } from '../eval/report.ts';
import { discoverSuite, runEvaluation, type EvalJob } from '../eval/run.ts';
import { TASKS, TEXT_MODES, type TaskName, type TextMode } from '../eval/tasks.ts';
import { parseDtype } from '../model/dtype.ts';
import { DEFAULT_MODEL } from '../model/source.ts';

const HELP = `usage: tessera eval --task <retrieval|text|image-image|zeroshot> --data PATH --model M [--model M2 ...] [options]
       tessera eval --suite seed --data-root DIR --model M [--model M2 ...] [options]

Evaluates models on local copies of public benchmarks and prints a Markdown table in the
layout of jina-clip-v1's published table (rows = models; text-text, text-to-image,
image-to-text, image-image; "% change vs baseline"), per-dataset detail underneath.
Datasets and their layouts: docs/evaluation.md.

  --task T        retrieval (Karpathy JSON + images/: Flickr8k/30k, MSCOCO 5k test),
                  text (BEIR: corpus.jsonl, queries.jsonl, qrels/test.tsv),
                  image-image, zeroshot (CIFAR's test.bin, or a folder per class)
  --data PATH     the dataset folder for --task
  --suite seed    every task on every dataset under --data-root
  --data-root DIR flickr8k/, flickr30k/, mscoco/, cifar100/, beir/<name>/, labelled/<name>/
  --model M       hub repository id, local folder in the hub layout (either layout: v1's two
                  towers or v2's combined graph), "demo" or "demo-v2" (repeatable; default
                  ${DEFAULT_MODEL}); on a model with task instructions (jina-clip-v2) BEIR
                  queries are embedded for retrieval.query, everything else without a task
  --baseline M    the model the "% change" row compares with (default: the last --model)
  --dtype D       fp32 | fp16 | q8 (default fp32)
  --json FILE     write every figure and the exact settings as JSON
  --chart FILE    write an SVG bar chart of the headline columns
  --cache DIR     embedding cache (default ${defaultCacheDir()})
  --limit N       only the first N images / queries / labelled images of each dataset
  --chunk N       items per engine call (default 64)
  --mode M        the text task's search: vector (default) or hybrid (BM25 and vector rankings
                  fused by reciprocal rank fusion, as search's mode "hybrid")
  --threads N     ONNX Runtime intra-op threads per session (default: all cores)
  --no-progress   no progress bars on stderr`;

function positiveInt(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name} expects a positive integer, got ${value}`);
  return n;
}

export async function main(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      task: { type: 'string' },
      data: { type: 'string' },
      suite: { type: 'string' },
      'data-root': { type: 'string' },
      model: { type: 'string', multiple: true },
      baseline: { type: 'string' },
      dtype: { type: 'string', default: 'fp32' },
      json: { type: 'string' },
      chart: { type: 'string' },
      cache: { type: 'string' },
      limit: { type: 'string' },
      chunk: { type: 'string' },
      mode: { type: 'string' },
      threads: { type: 'string' },
      'no-progress': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return console.log(HELP);

  let jobs: EvalJob[];
  if (values.suite !== undefined) {
    if (values.suite !== 'seed') throw new Error(`--suite expects "seed", got ${values.suite}`);
    if (values.task !== undefined || values.data !== undefined) throw new Error('--suite runs every task: give --data-root, not --task/--data');
    if (!values['data-root']) throw new Error('--suite seed needs --data-root DIR');
    jobs = discoverSuite(values['data-root']);
  } else {
    if (!values.task) throw new Error(`give --task (${TASKS.join(', ')}) with --data, or --suite seed with --data-root; see tessera eval --help`);
    if (!(TASKS as readonly string[]).includes(values.task)) throw new Error(`--task expects one of ${TASKS.join(', ')}, got ${values.task}`);
    if (!values.data) throw new Error(`--task ${values.task} needs --data PATH`);
    jobs = [{ task: values.task as TaskName, data: values.data }];
  }

  if (values.mode !== undefined && !(TEXT_MODES as readonly string[]).includes(values.mode)) {
    throw new Error(`--mode expects one of ${TEXT_MODES.join(', ')}, got ${values.mode}`);
  }
  const models = values.model && values.model.length > 0 ? values.model : [DEFAULT_MODEL];
  const progress = !values['no-progress'];
  const report = await runEvaluation({
    models,
    jobs,
    dtype: parseDtype(values.dtype ?? 'fp32'),
    cacheDir: values.cache ?? defaultCacheDir(),
    baseline: values.baseline,
    limit: positiveInt('limit', values.limit),
    chunk: positiveInt('chunk', values.chunk),
    textMode: values.mode as TextMode | undefined,
    intraOpThreads: positiveInt('threads', values.threads),
    progress,
    onResult: (r) => progress && process.stderr.write(`tessera eval: ${r.model} ${r.task} ${r.dataset} done\n`),
  });
  process.stdout.write(markdownReport(report.results, report.summary));
  if (values.json) write(values.json, JSON.stringify(report, null, 2) + '\n');
  if (values.chart) write(values.chart, svgChart(report.summary));
}

function write(path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, text);
}
