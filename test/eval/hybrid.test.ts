// `tessera eval --task text --mode hybrid`: BM25 from the real store fused with the vector
// ranking. On the colour model the answers are known: a part number only words can find, a
// synonym ("grey" for "gray") only vectors can.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { before, test } from 'node:test';
import { runEvaluation } from '../../src/eval/run.ts';
import type { TextFigures } from '../../src/eval/tasks.ts';
import { forged, tempDir } from '../helpers/models.ts';

let data: string;
let colour: string;

before(async () => {
  colour = await forged('colour');
  data = join(await tempDir('tessera-eval-hybrid-'), 'parts');
  await mkdir(join(data, 'qrels'), { recursive: true });
  const corpus = [
    // The gasket's id sorts first, so trec_eval's tie order (id descending) puts it last
    // among equal vector scores: vectors alone never rank it into the top 10.
    { _id: 'd00', title: 'Gasket', text: 'part XK-2231, rubber' },
    ...Array.from({ length: 12 }, (_, i) => ({ _id: `d${String(i + 1).padStart(2, '0')}`, title: '', text: `a red thing number ${i + 1}` })),
    { _id: 'd20', title: '', text: 'a gray stone' },
  ];
  const queries = [
    { _id: 'q1', text: 'XK-2231' },
    { _id: 'q2', text: 'grey' },
  ];
  await writeFile(join(data, 'corpus.jsonl'), corpus.map((d) => JSON.stringify(d)).join('\n') + '\n');
  await writeFile(join(data, 'queries.jsonl'), queries.map((q) => JSON.stringify(q)).join('\n') + '\n');
  await writeFile(join(data, 'qrels', 'test.tsv'), 'query-id\tcorpus-id\tscore\nq1\td00\t1\nq2\td20\t1\n');
});

async function figures(mode: 'vector' | 'hybrid'): Promise<TextFigures> {
  const report = await runEvaluation({ models: [colour], jobs: [{ task: 'text', data }], dtype: 'fp32', cacheDir: await tempDir('tessera-eval-cache-'), textMode: mode });
  const result = report.results[0]!;
  assert.equal(result.task, 'text');
  assert.equal(report.settings.text_mode, mode);
  return result as unknown as TextFigures;
}

test('vector mode finds the synonym but not the part number; hybrid finds both', async () => {
  const vector = await figures('vector');
  assert.equal(vector.mode, 'vector');
  assert.equal(vector['recall@10'], 0.5);
  assert.equal(vector['mrr@10'], 0.5); // q2 at rank 1, q1 nowhere
  const hybrid = await figures('hybrid');
  assert.equal(hybrid.mode, 'hybrid');
  assert.equal(hybrid['recall@10'], 1);
  assert.equal(hybrid['mrr@10'], 1);
  assert.equal(hybrid['ndcg@10'], 1);
  assert.match(hybrid.protocol, /reciprocal rank fusion \(k = 60\)/);
});

test('the CLI takes --mode and refuses an unknown one', async () => {
  const run = promisify(execFile);
  const { stdout } = await run('./bin/tessera', ['eval', '--task', 'text', '--data', data, '--model', colour, '--mode', 'hybrid', '--cache', await tempDir(), '--no-progress']);
  assert.match(stdout, /parts/);
  await assert.rejects(run('./bin/tessera', ['eval', '--task', 'text', '--data', data, '--model', colour, '--mode', 'bm25', '--no-progress']), /--mode expects one of vector, hybrid/);
});
