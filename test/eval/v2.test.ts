// tessera eval on jina-clip-v2's layout (one combined graph, 512-px images, task
// instructions, Matryoshka dimensions): the forged v2 colour model against the random v2
// model on the synthetic seed suite, printed in the published layout; BEIR queries embedded
// for retrieval.query and cached apart; a folder forged again as another model gets its own cache.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { before, describe, it } from 'node:test';
import { itemKey } from '../../src/eval/cache.ts';
import type { Encoder } from '../../src/eval/embed.ts';
import type { ModelResult } from '../../src/eval/report.ts';
import { runEvaluation } from '../../src/eval/run.ts';
import { forgeModel } from '../../src/forge/index.ts';
import { tempDir } from '../helpers/models.ts';
import { writeBeir, writeKarpathy, writeSuite } from './synthetic.ts';

let colour: string;
let tiny: string;
let data: string;

before(async () => {
  [colour, tiny, data] = await Promise.all([tempDir('tessera-eval-v2-colour-'), tempDir('tessera-eval-v2-tiny-'), tempDir('tessera-eval-v2-data-')]);
  await Promise.all([
    forgeModel({ preset: 'v2-colour', outDir: colour }),
    forgeModel({ preset: 'v2-tiny', outDir: tiny }),
    writeSuite(join(data, 'suite')),
    writeBeir(join(data, 'beir')),
    writeKarpathy(join(data, 'karpathy')),
  ]);
});

describe('tessera eval on jina-clip-v2 models', () => {
  it('runs the seed suite and prints the published layout (CLI)', async () => {
    const out = await tempDir('tessera-eval-v2-out-');
    const { stdout } = await promisify(execFile)('./bin/tessera', [
      'eval', '--suite', 'seed', '--data-root', join(data, 'suite'), '--model', colour, '--model', tiny,
      '--cache', join(out, 'cache'), '--json', join(out, 'report.json'), '--no-progress',
    ]);
    const lines = stdout.split('\n');
    assert.equal(lines[0], '| model | text-text | text-to-image | image-to-text | image-image |');
    // The colour model knows its colours in v2's architecture as in v1's (same figures as v1's demo).
    assert.match(lines[2]!, /^\| .*v2-colour.* \| 0\.840 \| 1\.000 \| 1\.000 \| 1\.000 \|$/);
    assert.match(lines[3]!, /v2-tiny.*\(baseline\)/);
    assert.match(lines[4]!, /^\| % change vs baseline \| \+\d/);
    assert.match(stdout, /### Cross-modal retrieval/);
    assert.match(stdout, /### Text retrieval \(BEIR\)/);
    assert.match(stdout, /### Zero-shot classification/);

    const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
    for (const [k, model] of [colour, tiny].entries()) {
      const facts = report.cache[k];
      assert.equal(facts.model, model);
      assert.equal(facts.model_type, 'jina_clip');
      assert.equal(facts.layout, 'combined');
      assert.equal(facts.dimensions, 32);
      assert.equal(facts.image_size, 512);
      assert.equal(facts.query_task, 'retrieval.query');
    }
    const text = report.results.find((r: ModelResult) => r.task === 'text' && r.model === colour);
    assert.match(text.protocol, /queries embedded for task retrieval\.query, documents without a task/);
  });

  it('embeds BEIR queries for retrieval.query, everything else without a task, and caches them apart', async () => {
    const cacheDir = await tempDir('tessera-eval-v2-cache-');
    const seen: { count: number; task: string | undefined }[] = [];
    const watching = (e: Encoder): Encoder => ({
      embedTexts: (t, o) => (seen.push({ count: t.length, task: o?.task }), e.embedTexts(t, o)),
      embedImages: (i) => e.embedImages(i),
    });
    const jobs = [{ task: 'text' as const, data: join(data, 'beir') }, { task: 'retrieval' as const, data: join(data, 'karpathy') }];
    const first = await runEvaluation({ models: [tiny], jobs, dtype: 'fp32', cacheDir, wrap: watching });
    // BEIR: 9 distinct documents (four copies each), then 9 queries; Karpathy: 27 captions.
    assert.deepEqual(seen, [{ count: 9, task: undefined }, { count: 9, task: 'retrieval.query' }, { count: 27, task: undefined }]);
    assert.equal(first.cache[0]!.computed, 9 + 9 + 9 + 27);
    assert.notDeepEqual(itemKey({ text: 'red', task: 'retrieval.query' }), itemKey({ text: 'red' }));
    assert.deepEqual(itemKey({ text: 'red', task: undefined }), itemKey({ text: 'red' }));
    const again = await runEvaluation({ models: [tiny], jobs, dtype: 'fp32', cacheDir });
    assert.equal(again.cache[0]!.computed, 0);
    assert.deepEqual(again.results, first.results);
  });

  it('a folder forged again as another model (v1 -> v2) gets its own cache, not the old vectors', async () => {
    const cacheDir = await tempDir('tessera-eval-v2-cache-');
    const dir = await tempDir('tessera-eval-reforged-');
    const jobs = [{ task: 'retrieval' as const, data: join(data, 'karpathy') }];
    await forgeModel({ preset: 'tiny', outDir: dir });
    const v1 = await runEvaluation({ models: [dir], jobs, dtype: 'fp32', cacheDir });
    assert.equal(v1.cache[0]!.layout, 'towers');
    await rm(join(dir, 'onnx'), { recursive: true });
    await forgeModel({ preset: 'v2-tiny', outDir: dir });
    const v2 = await runEvaluation({ models: [dir], jobs, dtype: 'fp32', cacheDir });
    assert.equal(v2.cache[0]!.layout, 'combined');
    assert.equal(v2.cache[0]!.hits, 0);
    assert.equal(v2.cache[0]!.computed, 9 + 27);
    assert.notEqual(v2.cache[0]!.file, v1.cache[0]!.file);
  });
});
