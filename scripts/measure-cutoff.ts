/**
 * Measures the relevance cut-offs (auto, relative 0.9 / 0.8) against the best single
 * min_score on the colour model's labelled sets (bench/cutoff.ts) and writes
 * docs/measurements/cutoff.json. Usage: node --import tsx scripts/measure-cutoff.ts
 */
import { writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { measureCutoffs } from '../bench/cutoff.ts';
import { Embedder } from '../src/engine/embedder.ts';

const embedder = await Embedder.load('demo', { intraOpThreads: 1 });
try {
  const report = await measureCutoffs(embedder);
  for (const m of report.methods) console.log(`${m.method.padEnd(44)} precision ${m.precision.toFixed(3)}  recall ${m.recall.toFixed(3)}  F1 ${m.f1.toFixed(3)}`);
  const out = { cpu: cpus()[0]?.model, date: new Date().toISOString().slice(0, 10), model: 'demo', ...report };
  await writeFile(new URL('../docs/measurements/cutoff.json', import.meta.url), JSON.stringify(out, null, 2) + '\n');
} finally {
  await embedder.close();
}
