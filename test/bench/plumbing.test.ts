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
  // The q8 files as the bench forges its own: hub-like, what users download.
  await forgeModel({ preset: 'tiny', outDir: dir, quantized: true, q8Style: 'hub-like' });
  const report = await runBench({ model: dir, size: 'tiny', threads: 1, scenarios: ['ceiling', 'images', 'texts', 'q8'] });
  const get = (path: string): unknown => path.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown>)[k], report);
  for (const path of ['images.ratio', 'texts.ratio', 'images.ceiling_fraction', 'texts.ceiling_fraction', 'q8.speedup', 'q8.min_cosine', 'q8.peer_ratio', 'q8.peer_q8.images_per_s', 'ceiling.gflops']) {
    const value = get(path);
    assert.equal(typeof value, 'number', path);
    assert.ok(Number.isFinite(value) && (value as number) > 0, `${path} = ${String(value)}`);
  }
  // ONNX Runtime's profile of each tower before and after the rewrite, and what it fused.
  for (const tower of ['vision', 'text']) {
    const p = get(`rewrite.profile.${tower}`) as { fused: Record<string, number>; original: { by_op: Record<string, { ms: number }>; kernels_ms: number }; rewritten: { by_op: Record<string, unknown> } };
    assert.ok(p.fused.MultiHeadAttention! > 0, `${tower}: ${JSON.stringify(p.fused)}`);
    assert.ok(p.original.kernels_ms > 0 && 'MatMul' in p.original.by_op, tower);
    assert.ok('MultiHeadAttention' in p.rewritten.by_op && !('MultiHeadAttention' in p.original.by_op), tower);
  }
  // q8 against transformers.js on the same q8 files: the same pixels through the same graphs,
  // so the vectors agree closely; the ratio is tessera's q8 images/s over the peer's.
  const ratio = (get('q8.tessera.images_per_s') as number) / (get('q8.peer_q8.images_per_s') as number);
  assert.ok(Math.abs((get('q8.peer_ratio') as number) / ratio - 1) < 0.01, `peer_ratio ${String(get('q8.peer_ratio'))}, images/s ratio ${ratio}`);
  assert.ok((get('q8.min_cosine_to_peer') as number) > 0.99, String(get('q8.min_cosine_to_peer')));
  assert.ok((get('q8.min_cosine') as number) >= 0.99);
  assert.match(get('q8.peer_q8.name') as string, /transformers\.js.*q8/);
  assert.deepEqual(get('q8.q8_files'), { 'onnx/text_model_quantized.onnx': 'hub-like', 'onnx/vision_model_quantized.onnx': 'hub-like' });
  // Which int8 form tessera ran: the loader's report where it makes one, else the files as they are.
  const variant = get('q8.tessera.int8_variant') as { vision: string; text: string };
  for (const tower of ['vision', 'text'] as const) {
    const reported = get(`q8.tessera.int8`) as Record<string, { variant: string }> | null;
    assert.equal(variant[tower], reported?.[tower]?.variant ?? 'as-is', tower);
    // The q8 files profiled as shipped (what the peer runs) and as tessera runs them.
    const p = get(`q8.profile.${tower}`) as { int8_variant: string; shipped: { by_op: Record<string, unknown> }; tessera: { by_op: Record<string, unknown>; kernels_ms: number } };
    assert.equal(p.int8_variant, variant[tower]);
    assert.ok('MatMulInteger' in p.shipped.by_op && p.tessera.kernels_ms > 0, tower);
  }
  // Same token ids and the same graph: the text vectors agree with transformers.js.
  assert.ok((get('texts.min_cosine_to_peer') as number) > 0.9999);
  assert.match(formatTable(report), /images\/s, fp32 \(vs transformers\.js\)/);
  assert.match(formatTable(report), /q8 images\/s, same q8 files \(vs transformers\.js q8\)/);
  assert.match(formatTable(report), /q8 vision: ONNX Runtime kernels [\d.]+ ms as shipped \(MatMulInteger [\d.]+ ms\), [\d.]+ ms as tessera runs it/);
  assert.match(formatTable(report), /graph rewrite, vision: fused \d+ MultiHeadAttention.*kernels [\d.]+ ms before, [\d.]+ ms after/);
});

test('bench runs the server and index scenarios on the tiny model: every level answered, the server idle between levels, each scenario timed', async () => {
  const dir = await tempDir('tessera-bench-server-');
  process.env.TESSERA_CACHE = await tempDir('tessera-bench-cache-');
  await forgeModel({ preset: 'tiny', outDir: dir });
  const report = await runBench({ model: dir, size: 'tiny', threads: 1, scenarios: ['server', 'index'] });
  const server = report.server as { levels: { workload: string; clients: number; completed: number; errors: number }[]; offline_fraction: number };
  assert.deepEqual(server.levels.map((l) => `${l.workload}:${l.clients}`), ['text:1', 'text:4', 'image:1', 'image:4', 'mix:4']);
  for (const level of server.levels) {
    assert.ok(level.completed > 0, JSON.stringify(level));
    assert.equal(level.errors, 0, JSON.stringify(level));
  }
  assert.ok(server.offline_fraction > 0);
  const index = report.index as { docs_per_s: number; offline_fraction: number };
  assert.ok(index.docs_per_s > 0 && index.offline_fraction > 0, JSON.stringify(index));
  const timings = report.timings as Record<string, number>;
  assert.ok(timings.server_s! > 0 && timings.index_s! > 0, JSON.stringify(timings));
  assert.match(formatTable(report), /server, text items\/s/);
});
