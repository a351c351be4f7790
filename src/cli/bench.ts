import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { runBench, SCENARIOS, type Scenario } from '../../bench/run.ts';
import { formatTable } from '../../bench/table.ts';
import { invalidArgument } from '../errors.ts';
import { PRESET_NAMES } from '../forge/index.ts';
import type { GraphOptimizationLevel } from '../model/session.ts';

const HELP = `usage: tessera bench [--quick] [--json FILE] [--model M] [--threads N] [--only a,b] [--graph-opt L]

Measures tessera against transformers.js on the same model files and against the machine's
MatMul ceiling: images, texts, the server under load, q8 against fp32, start-up and memory.
Prints a table; --json writes every figure.

  --quick          smaller sets and shorter runs (about 8 minutes on 2 cores for jina-clip-v1; a
                   model with costlier images runs fewer of them); the JSON has each scenario's
                   seconds (timings)
  --json FILE      write the full report as JSON
  --model M        a forge preset, forged on first use into ~/.cache/tessera/forge/<preset>-0: full
                   (default; jina-clip-v1's dimensions), v2-full (jina-clip-v2's), ${PRESET_NAMES.filter((p) => p !== 'full' && p !== 'v2-full').join(', ')};
                   or a model folder in the hub layout (./NAME for a folder named like a preset),
                   or a hub repository id
  --threads N      ONNX Runtime threads for both sides (default: all cores)
  --only LIST      scenarios to run, of ${SCENARIOS.join(', ')} (default: all but
                   watch and media, which take minutes of their own: watch needs no --model
                   (it runs the forged tiny model, measuring the watcher); media indexes a
                   video, a PDF and an hour-long video with FFmpeg and Poppler)
  --graph-opt L    tessera's graph optimisation level: disabled | basic | extended | all`;

export async function main(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      quick: { type: 'boolean' },
      json: { type: 'string' },
      model: { type: 'string' },
      threads: { type: 'string' },
      only: { type: 'string' },
      'graph-opt': { type: 'string' },
      size: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return console.log(HELP);
  const threads = values.threads === undefined ? undefined : Number(values.threads);
  if (threads !== undefined && !(Number.isInteger(threads) && threads > 0)) throw invalidArgument('--threads', 'a positive integer', values.threads);
  const only = values.only?.split(',').map((s) => s.trim());
  for (const s of only ?? []) if (!(SCENARIOS as readonly string[]).includes(s)) throw invalidArgument('--only', SCENARIOS.join(', '), s);
  const level = values['graph-opt'];
  if (level !== undefined && !['disabled', 'basic', 'extended', 'all'].includes(level)) throw invalidArgument('--graph-opt', 'disabled | basic | extended | all', level);
  // --size tiny is for plumbing tests on a tiny model.
  const size = values.size === 'tiny' ? 'tiny' : values.quick ? 'quick' : 'full';

  const started = performance.now();
  const report = await runBench({
    model: values.model,
    size,
    threads,
    scenarios: only as Scenario[] | undefined,
    graphOptimizationLevel: level as GraphOptimizationLevel | undefined,
    log: (line) => process.stderr.write(`bench: ${line}\n`),
  });
  report.command = `tessera bench ${args.join(' ')}`.trim();
  report.seconds = Math.round((performance.now() - started) / 1000);
  if (values.json) await writeFile(values.json, `${JSON.stringify(report, null, 2)}\n`);
  console.log(formatTable(report));
  console.log(`\n(${report.seconds} s${values.json ? `; JSON in ${values.json}` : ''})`);
}
