/**
 * Measures few-shot classification on the colour model ("demo"): labels the model has no words
 * for, "warm" (red, orange, yellow) and "cool" (blue, green, purple), texts and images
 * (src/eval/warm-cool.ts). For 1, 2, 4 and 8 training examples per class, taken in the order
 * red, orange, yellow, red, ... (so one example a class has seen one of its three colours):
 *
 *   zero-shot       POST /v1/classify with labels ["warm", "cool"] (the engine's classify)
 *   few-shot        a classifier as POST /v1/train makes it (src/classifier/learn.ts), num_iters 10
 *   nearest centroid  cosine to the mean embedding of each class's examples: the baseline
 *
 * accuracy on 60 held-out items (other texts, other shades and sizes), averaged over 5 draws
 * of training items. Ties (equal scores: an item of a colour no example showed, whose embedding
 * is orthogonal to all seen) count as half right, the expected accuracy of a random tie-break.
 *
 *   node --import tsx scripts/measure-classifier.ts [--out docs/measurements/classifier.json]
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';
import { emptyModel, labelsOf, predict, startsZeroShot, train, withLabels, type Example } from '../src/classifier/learn.ts';
import { classify } from '../src/engine/classify.ts';
import { Embedder } from '../src/engine/embedder.ts';
import { firstPerLabel, warmCoolItems, type LabelledItem } from '../src/eval/warm-cool.ts';

const { values } = parseArgs({ options: { out: { type: 'string', default: 'docs/measurements/classifier.json' } } });
const SHOTS = [1, 2, 4, 8];
const DRAWS = 5;
const NUM_ITERS = 10;
const LABELS = ['warm', 'cool'];

const embedder = await Embedder.load('demo', { allowPaths: false });
const embed = async (items: readonly LabelledItem[]) =>
  (await embedder.embed(items.map((x) => (x.text !== undefined ? { text: x.text } : { image: x.image! })), { normalize: true })).map((r) => r.embedding);

/** 1 when right, 0.5 when tied with the other label, 0 when wrong. */
function credit(scores: readonly number[], truth: number): number {
  const best = Math.max(...scores);
  const tops = scores.flatMap((s, i) => (s === best ? [i] : []));
  return tops.includes(truth) ? 1 / tops.length : 0;
}

const held = await warmCoolItems(99, 10, 'heldOut');
const heldVectors = await embed(held);
const truths = held.map((x) => LABELS.indexOf(x.label));
const accuracy = (score: (v: Float32Array) => number[], only?: 'text' | 'image') => {
  const chosen = heldVectors.flatMap((v, i) => (!only || (only === 'text') === (held[i]!.text !== undefined) ? [i] : []));
  return chosen.reduce((s, i) => s + credit(score(heldVectors[i]!), truths[i]!), 0) / chosen.length;
};

const labelVectors = (await embedder.embedTexts(LABELS)).map((r) => r.embedding);
const zeroShot = accuracy((v) => classify(v, labelVectors, LABELS).predictions.map((p) => p.score));

const rows: { examplesPerClass: number; zeroShot: number; fewShot: number; nearestCentroid: number; fewShotTexts: number; fewShotImages: number }[] = [];
for (const n of SHOTS) {
  let few = 0;
  let centroid = 0;
  let fewTexts = 0;
  let fewImages = 0;
  for (let draw = 0; draw < DRAWS; draw++) {
    const pool = await warmCoolItems(1 + draw, 8);
    const chosen = firstPerLabel(pool, n);
    const vectors = await embed(chosen);
    const examples: Example[] = chosen.map((x, i) => ({ vector: vectors[i]!, label: x.label }));
    const labels = labelsOf(examples);
    const start = startsZeroShot(labels) ? new Map(labels.map((l) => [l, labelVectors[LABELS.indexOf(l)]!])) : undefined;
    const model = train(withLabels(emptyModel(vectors[0]!.length), labels, start), examples, NUM_ITERS);
    const fewScore = (v: Float32Array) => LABELS.map((l) => predict(model, v).predictions.find((p) => p.label === l)!.score);
    few += accuracy(fewScore);
    fewTexts += accuracy(fewScore, 'text');
    fewImages += accuracy(fewScore, 'image');
    const means = LABELS.map((l) => {
      const mine = examples.filter((e) => e.label === l);
      const m = new Float64Array(vectors[0]!.length);
      for (const e of mine) e.vector.forEach((x, k) => (m[k]! += x / mine.length));
      return m;
    });
    centroid += accuracy((v) => means.map((m) => {
      const norm = Math.hypot(...m) || 1;
      return v.reduce((s, x, k) => s + (x * m[k]!) / norm, 0);
    }));
  }
  rows.push({ examplesPerClass: n, zeroShot, fewShot: few / DRAWS, nearestCentroid: centroid / DRAWS, fewShotTexts: fewTexts / DRAWS, fewShotImages: fewImages / DRAWS });
}
await embedder.close();

let cpu = cpus()[0]?.model ?? 'unknown';
try {
  cpu = /Model name:\s*(.+)/.exec(execFileSync('lscpu', { encoding: 'utf8' }))?.[1]?.trim() ?? cpu;
} catch {}
const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
console.log(`warm/cool on the colour model, ${held.length} held-out items, ${DRAWS} draws, num_iters ${NUM_ITERS} (${cpu})`);
console.log('| examples per class | zero-shot | few-shot (/v1/train) | nearest centroid | few-shot: texts / images |');
console.log('|---:|---:|---:|---:|---:|');
for (const r of rows) console.log(`| ${r.examplesPerClass} | ${pct(r.zeroShot)} | ${pct(r.fewShot)} | ${pct(r.nearestCentroid)} | ${pct(r.fewShotTexts)} / ${pct(r.fewShotImages)} |`);
mkdirSync(dirname(values.out!), { recursive: true });
writeFileSync(
  values.out!,
  JSON.stringify({ task: 'warm (red, orange, yellow) vs cool (blue, green, purple), texts and images, colour model', heldOut: held.length, draws: DRAWS, numIters: NUM_ITERS, tiesCountHalf: true, cpu, date: new Date().toISOString(), rows }, null, 2) + '\n',
);
console.log(`wrote ${values.out}`);
