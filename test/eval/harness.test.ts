// End to end on synthetic datasets in every format: the colour model (known right answers)
// against the tiny random model (no knowledge), through the same harness, in the same test.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { appendFileSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { before, describe, it } from 'node:test';
import sharp from 'sharp';
import { EmbeddingCache, itemKey } from '../../src/eval/cache.ts';
import { loadBeir, loadKarpathy, loadLabelled } from '../../src/eval/datasets.ts';
import type { Encoder } from '../../src/eval/embed.ts';
import type { ModelResult } from '../../src/eval/report.ts';
import { discoverSuite, runEvaluation, type EvalJob } from '../../src/eval/run.ts';
import { COLOURS } from '../../src/forge/colour.ts';
import { forged, tempDir } from '../helpers/models.ts';
import { writeBeir, writeCifar, writeClassFolders, writeKarpathy, writeSuite } from './synthetic.ts';

let colour: string;
let tiny: string;
let data: string;

before(async () => {
  [colour, tiny, data] = await Promise.all([forged('colour'), forged('tiny'), tempDir('tessera-eval-data-')]);
  await Promise.all([
    writeKarpathy(join(data, 'karpathy')),
    writeBeir(join(data, 'beir')),
    writeClassFolders(join(data, 'folders')),
    writeCifar(join(data, 'cifar')),
  ]);
});

/** Both models on one job; returns [colour result, tiny result]. */
async function both(job: EvalJob): Promise<[ModelResult, ModelResult]> {
  const report = await runEvaluation({ models: [colour, tiny], jobs: [job], dtype: 'fp32', cacheDir: await tempDir('tessera-eval-cache-') });
  assert.equal(report.results.length, 2);
  return [report.results[0]!, report.results[1]!];
}

describe('the harness tells a good model from a bad one', () => {
  it('cross-modal retrieval (Karpathy JSON + images/)', async () => {
    const [good, bad] = await both({ task: 'retrieval', data: join(data, 'karpathy') });
    assert.ok(good.task === 'retrieval' && bad.task === 'retrieval');
    assert.deepEqual(good.counts, { images: 9, captions: 27 }); // the train image is left out
    assert.equal(good.image_retrieval['recall@1'], 1);
    assert.equal(good.text_retrieval['recall@1'], 1);
    // Nine images: chance is 1/9 at k = 1 and 5/9 at k = 5.
    assert.ok(bad.image_retrieval['recall@1']! <= 0.34, `tiny image_retrieval R@1 ${bad.image_retrieval['recall@1']}`);
    assert.ok(bad.text_retrieval['recall@1']! <= 0.34, `tiny text_retrieval R@1 ${bad.text_retrieval['recall@1']}`);
    assert.ok(bad.image_retrieval['recall@5']! < 1 && bad.text_retrieval['recall@5']! < 1);
  });

  it('text retrieval (BEIR), with trec_eval tie order and graded qrels', async () => {
    const [good, bad] = await both({ task: 'text', data: join(data, 'beir') });
    assert.ok(good.task === 'text' && bad.task === 'text');
    assert.deepEqual(good.counts, { queries: 9, corpus: 36 }); // the unjudged query is left out
    // The colour model embeds a colour's four (identical) documents identically: trec_eval
    // order puts <c>-4, <c>-3, <c>-2 (relevance 1) before <c>-1 (relevance 2).
    const dcg = 1 + 1 / Math.log2(3) + 1 / Math.log2(4) + 2 / Math.log2(5);
    const idcg = 2 + 1 / Math.log2(3) + 1 / Math.log2(4) + 1 / Math.log2(5);
    assert.ok(Math.abs(good['ndcg@10'] - dcg / idcg) < 1e-9, `colour nDCG@10 ${good['ndcg@10']}`);
    assert.equal(good['recall@10'], 1);
    assert.equal(good['mrr@10'], 1);
    assert.ok(bad['ndcg@10'] < 0.4, `tiny nDCG@10 ${bad['ndcg@10']}`);
    assert.ok(bad['mrr@10'] < 0.5, `tiny MRR@10 ${bad['mrr@10']}`);
  });

  it('image-image retrieval (a folder per class)', async () => {
    const [good, bad] = await both({ task: 'image-image', data: join(data, 'folders') });
    assert.ok(good.task === 'image-image' && bad.task === 'image-image');
    assert.deepEqual(good.counts, { images: 36, classes: 9 });
    assert.match(good.protocol, /queries all the others \(itself excluded\)/);
    // Chance for precision@1 is 3/35 (three other members among 35 images).
    assert.ok(good.neighbours['precision@1']! >= 0.8, `colour P@1 ${good.neighbours['precision@1']}`);
    assert.equal(good.neighbours['hit@5'], 1);
    // A random image tower keeps the mean colour, so it is above chance on colour classes,
    // but clearly below the model that knows colours.
    assert.ok(good.neighbours['precision@1']! - bad.neighbours['precision@1']! >= 0.2, `tiny P@1 ${bad.neighbours['precision@1']}`);
  });

  it('zero-shot classification (CIFAR binary test.bin)', async () => {
    const [good, bad] = await both({ task: 'zeroshot', data: join(data, 'cifar') });
    assert.ok(good.task === 'zeroshot' && bad.task === 'zeroshot');
    assert.deepEqual(good.counts, { images: 27, classes: 9 });
    assert.equal(good.template, 'a photo of a {label}.');
    assert.equal(good['accuracy@1'], 1);
    assert.equal(good['accuracy@5'], 1);
    assert.ok(bad['accuracy@1'] <= 0.34, `tiny accuracy ${bad['accuracy@1']}`); // chance 1/9
  });

  it('image-image on the CIFAR binary and zero-shot on folders run too', async () => {
    const jobs: EvalJob[] = [{ task: 'image-image', data: join(data, 'cifar') }, { task: 'zeroshot', data: join(data, 'folders') }];
    const { results: [ii, zs] } = await runEvaluation({ models: [colour], jobs, dtype: 'fp32', cacheDir: await tempDir('tessera-eval-cache-') });
    assert.ok(ii!.task === 'image-image' && ii!.neighbours['precision@1']! >= 0.8);
    assert.ok(zs!.task === 'zeroshot' && zs!['accuracy@1'] >= 0.9);
  });
});

describe('embedding cache', () => {
  it('a second run makes no embedding calls and gives the same figures', async () => {
    const cacheDir = await tempDir('tessera-eval-cache-');
    let calls = 0;
    const counting = (e: Encoder): Encoder => ({
      embedTexts: (t, o) => (calls++, e.embedTexts(t, o)),
      embedImages: (i) => (calls++, e.embedImages(i)),
    });
    const jobs: EvalJob[] = [{ task: 'retrieval', data: join(data, 'karpathy') }, { task: 'zeroshot', data: join(data, 'cifar') }];
    const first = await runEvaluation({ models: [colour], jobs, dtype: 'fp32', cacheDir, wrap: counting, chunk: 8 });
    assert.ok(calls > 0);
    assert.equal(first.cache[0]!.computed, 9 + 27 + 9 + 27);
    calls = 0;
    const second = await runEvaluation({ models: [colour], jobs, dtype: 'fp32', cacheDir, wrap: counting, chunk: 8 });
    assert.equal(calls, 0);
    assert.equal(second.cache[0]!.computed, 0);
    assert.deepEqual(second.results, first.results);
    // Another model has its own file: it computes everything.
    const other = await runEvaluation({ models: [tiny], jobs: jobs.slice(0, 1), dtype: 'fp32', cacheDir });
    assert.equal(other.cache[0]!.computed, 36);
    assert.notEqual(other.cache[0]!.file, first.cache[0]!.file);
  });

  it('a run that dies part-way resumes where it stopped', async () => {
    const cacheDir = await tempDir('tessera-eval-cache-');
    const job: EvalJob = { task: 'retrieval', data: join(data, 'karpathy') };
    let calls = 0;
    const dying = (e: Encoder): Encoder => ({
      embedTexts: (t, o) => (++calls === 3 ? Promise.reject(new Error('killed')) : e.embedTexts(t, o)),
      embedImages: (i) => (++calls === 3 ? Promise.reject(new Error('killed')) : e.embedImages(i)),
    });
    // Chunks of 8: images 1-8 and 9 are stored, the first chunk of captions dies.
    await assert.rejects(runEvaluation({ models: [colour], jobs: [job], dtype: 'fp32', cacheDir, wrap: dying, chunk: 8 }), /captions, items 1-8 of 27: killed/);
    const resumed = await runEvaluation({ models: [colour], jobs: [job], dtype: 'fp32', cacheDir, chunk: 8 });
    assert.equal(resumed.cache[0]!.hits, 9);
    assert.equal(resumed.cache[0]!.computed, 27);
    const r = resumed.results[0]!;
    assert.ok(r.task === 'retrieval' && r.image_retrieval['recall@1'] === 1);
  });

  it('a torn last record is dropped, and appending goes on from there', async () => {
    const dir = await tempDir('tessera-eval-cache-');
    const id = { model: 'some/model', dtype: 'fp32' };
    const cache = new EmbeddingCache(dir, id);
    const a = itemKey({ text: 'a' });
    const b = itemKey({ image: new Uint8Array([1, 2, 3]) });
    cache.put(a, Float32Array.of(1, 2, 3));
    cache.put(b, Float32Array.of(4, 5, 6));
    cache.close();
    const whole = statSync(cache.path).size;
    appendFileSync(cache.path, Buffer.alloc(20, 7)); // half a record: killed mid-write
    const reopened = new EmbeddingCache(dir, id);
    assert.equal(reopened.size, 2);
    assert.equal(statSync(reopened.path).size, whole); // the torn tail is cut off
    assert.deepEqual([...reopened.get(b)!], [4, 5, 6]);
    reopened.put(itemKey({ text: 'c' }), Float32Array.of(7, 8, 9));
    reopened.close();
    const third = new EmbeddingCache(dir, id);
    assert.equal(third.size, 3);
    assert.deepEqual([...third.get(itemKey({ text: 'c' }))!], [7, 8, 9]);
    assert.equal(third.get(itemKey({ text: 'b' })), undefined); // texts and images hash apart
    assert.notEqual(new EmbeddingCache(dir, { model: 'some/model', dtype: 'q8' }).path, third.path);
  });
});

describe('dataset readers', () => {
  it('CIFAR test.bin: planar records decode to the right pixels and fine labels', async () => {
    const set = loadLabelled(join(data, 'cifar'));
    assert.equal(set.format, 'cifar-binary');
    assert.deepEqual(set.classes, COLOURS.map((c) => c.name));
    assert.deepEqual(set.images.slice(0, 9).map((i) => i.label), [0, 1, 2, 3, 4, 5, 6, 7, 8]);
    const { data: px, info } = await sharp(await set.images[2]!.load()).raw().toBuffer({ resolveWithObject: true });
    assert.deepEqual([info.width, info.height, info.channels], [32, 32, 3]);
    // Image 2 is blue with its patch in the top-left quarter: the bottom-right pixel is blue.
    assert.deepEqual([...px.subarray(px.length - 3)], [...COLOURS[2]!.rgb]);
    assert.equal(loadLabelled(join(data, 'cifar'), 5).images.length, 5);
  });

  it('Karpathy: the test split, every caption, --limit in images', () => {
    const set = loadKarpathy(join(data, 'karpathy'));
    assert.equal(set.images.length, 9);
    assert.equal(set.captions[0], 'a red square');
    assert.deepEqual(set.imageOf.slice(0, 6), [0, 0, 0, 1, 1, 1]);
    assert.equal(loadKarpathy(join(data, 'karpathy'), 'test', 2).captions.length, 6);
    assert.throws(() => loadKarpathy(join(data, 'beir')), /no Karpathy JSON/);
  });

  it('BEIR: title + " " + text, header skipped, graded qrels', () => {
    const set = loadBeir(join(data, 'beir'));
    assert.equal(set.corpus.length, 36);
    assert.match(set.corpus[0]!.text, /^\S.* red \S/);
    assert.equal(set.qrels.get('q-red')!.get('red-1'), 2);
    assert.equal(set.qrels.get('q-red')!.get('red-2'), 1);
    assert.ok(!set.queries.some((q) => q.id === 'q-unjudged'));
  });
});

describe('the seed suite', () => {
  it('finds every dataset and prints the published layout, JSON and SVG (CLI)', async () => {
    const root = await tempDir('tessera-eval-suite-');
    await writeSuite(root);
    const jobs = discoverSuite(root);
    assert.deepEqual(jobs.map((j) => `${j.task}:${j.data.slice(root.length + 1)}`), [
      'text:beir/colours',
      'image-image:cifar100',
      'zeroshot:cifar100',
      'retrieval:flickr8k',
      'image-image:labelled/colour-folders',
      'zeroshot:labelled/colour-folders',
    ]);
    const out = await tempDir('tessera-eval-out-');
    const { stdout } = await promisify(execFile)('./bin/tessera', [
      'eval', '--suite', 'seed', '--data-root', root, '--model', colour, '--model', tiny,
      '--cache', join(out, 'cache'), '--json', join(out, 'report.json'), '--chart', join(out, 'chart.svg'), '--no-progress',
    ]);
    const lines = stdout.split('\n');
    assert.equal(lines[0], '| model | text-text | text-to-image | image-to-text | image-image |');
    assert.match(lines[2]!, /^\| .*colour.* \| 0\.840 \| 1\.000 \| 1\.000 \| 1\.000 \|$/);
    assert.match(lines[3]!, /\(baseline\)/);
    assert.match(lines[4]!, /^\| % change vs baseline \| \+\d/);
    assert.match(stdout, /### Cross-modal retrieval/);
    assert.match(stdout, /### Zero-shot classification/);
    const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
    assert.equal(report.settings.baseline, tiny);
    const retrieval = report.results.find((r: ModelResult) => r.task === 'retrieval' && r.model === colour);
    assert.deepEqual(Object.keys(retrieval.image_retrieval), ['recall@1', 'recall@5', 'recall@10']);
    assert.equal(retrieval.dtype, 'fp32');
    assert.equal(retrieval.dataset, 'flickr8k');
    assert.equal(report.summary.rows.length, 2);
    const svg = readFileSync(join(out, 'chart.svg'), 'utf8');
    assert.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    assert.equal((svg.match(/<rect x=/g) ?? []).length, 2 * 4 + 2); // 4 columns x 2 models + legend
  });
});
