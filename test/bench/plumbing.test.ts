// `tessera bench` plumbing on the tiny model with a tiny budget: every figure the issue asks
// for is produced and the table prints. No timing assertions: this machine is shared.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runBench } from '../../bench/run.ts';
import { formatTable } from '../../bench/table.ts';
import { imageFlops, textFlops } from '../../bench/flops.ts';
import { readDims } from '../../bench/model.ts';
import { forgeModel } from '../../src/forge/index.ts';
import { tempDir } from '../helpers/models.ts';

test('FLOPs per item follow the full model\'s dimensions', async () => {
  const dir = await tempDir('tessera-bench-dims-');
  await forgeModel({ preset: 'tiny', outDir: dir });
  const dims = await readDims(dir);
  assert.ok(imageFlops(dims) > 0);
  // Linear in tokens plus a quadratic attention term.
  const [a, b] = [textFlops(dims, 100), textFlops(dims, 200)];
  assert.ok(b > 2 * a);
  // jina-clip-v1's vision tower: about 35 GFLOP per image (86M weights x 197 tokens x 2, plus attention).
  const full = { text: { hidden: 768, layers: 12, intermediate: 3072, geglu: true }, vision: { width: 768, layers: 12, mlpHidden: 2048, imageSize: 224, patchSize: 16, headWidth: 64, projectionDim: 768 } };
  assert.ok(Math.abs(imageFlops(full) / 1e9 - 35.4) < 1, `${imageFlops(full) / 1e9} GFLOP`);
});

test('bench runs images, texts, q8 and the ceiling on the tiny model and reports every ratio', async () => {
  const dir = await tempDir('tessera-bench-');
  process.env.TESSERA_CACHE = await tempDir('tessera-bench-cache-');
  await forgeModel({ preset: 'tiny', outDir: dir, quantized: true });
  const report = await runBench({ model: dir, size: 'tiny', threads: 1, scenarios: ['ceiling', 'images', 'texts', 'q8'] });
  const get = (path: string): unknown => path.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown>)[k], report);
  for (const path of ['images.ratio', 'texts.ratio', 'images.ceiling_fraction', 'texts.ceiling_fraction', 'q8.speedup', 'q8.min_cosine', 'ceiling.gflops']) {
    const value = get(path);
    assert.equal(typeof value, 'number', path);
    assert.ok(Number.isFinite(value) && (value as number) > 0, `${path} = ${String(value)}`);
  }
  // Same token ids and the same graph: the text vectors agree with transformers.js.
  assert.ok((get('texts.min_cosine_to_peer') as number) > 0.9999);
  assert.match(formatTable(report), /images\/s, fp32 \(vs transformers\.js\)/);
});
