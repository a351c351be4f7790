// The rewrite at session creation: cached beside the model and reused, redone when the model
// changes, kept apart per set of passes, written to the cache folder when asked (external data
// still found), turned off by the setting, and never in the way: a rewrite ONNX Runtime refuses
// falls back to the original, and a graph with nothing to fuse says so once.
import assert from 'node:assert/strict';
import { copyFile, mkdir, readdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { GraphBuilder } from '../../src/forge/graph.ts';
import { forgeModel } from '../../src/forge/index.ts';
import { DataType, ModelProto } from '../../src/forge/onnx-proto.ts';
import { randomWeights } from '../../src/forge/random-weights.ts';
import { writeModel } from '../../src/forge/writer.ts';
import { TesseraError } from '../../src/errors.ts';
import { PASSES, prepareModel } from '../../src/model/rewrite/index.ts';
import { OnnxModel } from '../../src/model/rewrite/model.ts';
import { createSession, graphRewritePasses, terminateInferenceThread, type Session } from '../../src/model/session.ts';
import { tempDir } from '../helpers/models.ts';
import { assertSameOutputs, runGraph } from './harness.ts';

const pixels = (size: number, batch = 1): ort.Tensor =>
  new ort.Tensor('float32', Float32Array.from({ length: batch * 3 * size * size }, (_, i) => Math.sin(i * 0.37)), [batch, 3, size, size]);

async function run(session: Session, feeds: Record<string, ort.Tensor>): Promise<Float32Array> {
  const out = await session.run(Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, { type: t.type, data: t.data, dims: t.dims }])));
  return out[session.outputNames[0]!]!.data as Float32Array;
}

test('createSession rewrites with the default passes, caches beside the model, and reuses the cache', async () => {
  const dir = await tempDir('tessera-rewrite-cache-');
  await forgeModel({ preset: 'tiny', outDir: dir });
  const file = join(dir, 'onnx/vision_model.onnx');
  const first = await createSession(file, { intraOpThreads: 1 });
  assert.deepEqual(first.rewrite?.fused, { MultiHeadAttention: 2, QuickGelu: 2 });
  assert.deepEqual(first.rewrite?.passes, ['attention', 'gelu', 'quick-gelu']);
  const rewritten = first.rewrite!.rewritten!;
  assert.equal(basename(rewritten).startsWith('vision_model.rewrite-v1-'), true);
  const files = await readdir(join(dir, 'onnx'));
  assert.ok(files.some((f) => /^vision_model\.onnx\.rewrite-[0-9a-f]{6}\.json$/.test(f)), `a stamp among ${files}`);
  const made = (await stat(rewritten)).mtimeMs;

  const second = await createSession(file, { intraOpThreads: 1 });
  assert.equal(second.rewrite!.rewritten, rewritten);
  assert.equal((await stat(rewritten)).mtimeMs, made, 'the cached rewrite was used, not made again');
  const off = await createSession(file, { intraOpThreads: 1, graphRewrite: false });
  assert.equal(off.rewrite, undefined);
  const feeds = { pixel_values: pixels(224, 2) };
  const [a, b] = [await run(second, feeds), await run(off, feeds)];
  assert.ok(a.every((v, i) => Math.abs(v - b[i]!) < 1e-4));

  // The inference thread restarts with the rewritten graph.
  await terminateInferenceThread();
  assert.deepEqual([...(await run(second, feeds))], [...a]);

  // Another set of passes is another file, and leaves this one alone.
  const all = await createSession(file, { intraOpThreads: 1, graphRewrite: PASSES.map((p) => p.name) });
  assert.deepEqual(all.rewrite?.fused, { MergedMatMul: 4, MultiHeadAttention: 2, SkipLayerNormalization: 4, QuickGelu: 2 });
  assert.notEqual(all.rewrite!.rewritten, rewritten);
  await stat(rewritten);

  // A changed model is rewritten again and its old rewrite removed.
  const other = await tempDir('tessera-rewrite-other-');
  await forgeModel({ preset: 'tiny', outDir: other, seed: 7 });
  await copyFile(join(other, 'onnx/vision_model.onnx'), file);
  const changed = await prepareModel(file);
  assert.notEqual(changed.rewritten, rewritten);
  await assert.rejects(stat(rewritten), /ENOENT/);
  for (const s of [first, second, off, all]) await s.release();
});

test('external data: the rewrite references it, and a rewrite in the cache folder still finds it', async () => {
  const dir = await tempDir('tessera-rewrite-v2-');
  await forgeModel({ preset: 'v2-tiny', outDir: dir });
  const file = join(dir, 'onnx/model.onnx');
  const cacheRoot = await tempDir('tessera-rewrite-root-');
  const report = await prepareModel(file, { passes: PASSES.map((p) => p.name), cacheRoot, forceCacheRoot: true });
  assert.ok(report.rewritten!.startsWith(cacheRoot), report.rewritten!);
  const model = new OnnxModel(report.rewritten!);
  try {
    const locations = new Set([...model.initializers.values()].flatMap((t) => (t.external ? [t.external.location] : [])));
    // The original's weights where they were (its inline tables are referenced in model.onnx), the merged ones in the rewrite's own file.
    assert.deepEqual([...locations].sort(), ['model.onnx', 'model.onnx_data', `${basename(report.rewritten!)}_data`].sort());
  } finally {
    model.close();
  }
  const feeds = { input_ids: new ort.Tensor('int64', BigInt64Array.from([5n, 9n, 33n, 1n]), [1, 4]), pixel_values: pixels(512) };
  assertSameOutputs(await runGraph(file, feeds), await runGraph(report.rewritten!, feeds), 'v2-tiny from the cache folder');
  // Nothing was written beside the model.
  assert.deepEqual((await readdir(join(dir, 'onnx'))).sort(), ['model.onnx', 'model.onnx_data']);
});

test('a Hugging Face cache snapshot (symlinks into blobs/): the rewrite goes beside the blobs and names them', async () => {
  const forged = await tempDir('tessera-rewrite-hf-src-');
  await forgeModel({ preset: 'v2-tiny', outDir: forged });
  const repo = await tempDir('tessera-rewrite-hf-');
  await mkdir(join(repo, 'blobs'));
  await mkdir(join(repo, 'snapshots/abc/onnx'), { recursive: true });
  for (const [name, blob] of [['model.onnx', 'aaaa'], ['model.onnx_data', 'bbbb']]) {
    await copyFile(join(forged, 'onnx', name), join(repo, 'blobs', blob));
    await symlink(`../../../blobs/${blob}`, join(repo, 'snapshots/abc/onnx', name));
  }
  const file = join(repo, 'snapshots/abc/onnx/model.onnx');
  const session = await createSession(file, { intraOpThreads: 1, log: (l) => assert.fail(l) });
  assert.ok(session.rewrite!.rewritten!.startsWith(join(repo, 'blobs', 'aaaa.rewrite-v1-')), session.rewrite!.rewritten!);
  assert.deepEqual((await readdir(join(repo, 'snapshots/abc/onnx'))).sort(), ['model.onnx', 'model.onnx_data']);
  const feeds = { input_ids: new ort.Tensor('int64', BigInt64Array.from([5n, 9n, 33n, 1n]), [1, 4]), pixel_values: pixels(512) };
  const expected = (await runGraph(file, feeds)).text_embeddings!.data as Float32Array;
  const out = await session.run(Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, { type: t.type, data: t.data, dims: t.dims }])));
  const got = out.text_embeddings!.data as Float32Array;
  assert.ok(got.every((v, i) => Math.abs(v - expected[i]!) < 1e-4));
  await session.release();
});

test('a rewrite ONNX Runtime refuses: the original runs, it is said once, and not tried again', async () => {
  const dir = await tempDir('tessera-rewrite-refused-');
  await forgeModel({ preset: 'tiny', outDir: dir });
  const file = join(dir, 'onnx/vision_model.onnx');
  const report = await prepareModel(file);
  await writeFile(report.rewritten!, 'not a model');
  const lines: string[] = [];
  const session = await createSession(file, { intraOpThreads: 1, log: (l) => lines.push(l) });
  assert.equal(session.rewrite?.rewritten, null);
  assert.equal(lines.length, 1);
  assert.match(lines[0]!, /refused the rewritten graph/);
  const again = await prepareModel(file);
  assert.equal(again.rewritten, null);
  assert.match(again.note!, /refused/);
  assert.ok((await run(session, { pixel_values: pixels(224) })).length > 0);
  await session.release();
});

test('a graph with nothing to fuse loads as it is and says so once', async () => {
  const dir = await tempDir('tessera-rewrite-plain-');
  const g = new GraphBuilder('plain');
  const x = g.input('x', DataType.FLOAT, ['batch', 8]);
  g.node('Relu', [g.node('MatMul', [x, g.param('w', [8, 8], 'weight')])], {}, 'y');
  g.output('y', DataType.FLOAT, ['batch', 8]);
  const file = join(dir, 'plain.onnx');
  await writeModel(file, g, randomWeights(1), { producerName: 't', producerVersion: '1', docString: '', metadata: {}, opsetVersion: 17, irVersion: 8 });
  const lines: string[] = [];
  const a = await createSession(file, { intraOpThreads: 1, log: (l) => lines.push(l) });
  const b = await createSession(file, { intraOpThreads: 1, log: (l) => lines.push(l) });
  assert.equal(a.rewrite?.rewritten, null);
  assert.equal(lines.length, 1, lines.join('\n'));
  assert.match(lines[0]!, /left the graph as it is: no pattern/);
  const stamp = (await readdir(dir)).find((f) => f.endsWith('.json'))!;
  assert.equal(JSON.parse(await readFile(join(dir, stamp), 'utf8')).report.rewritten, null);
  await a.release();
  await b.release();
});

test('the setting and TESSERA_GRAPH_REWRITE choose the passes', () => {
  assert.deepEqual(graphRewritePasses(undefined, {}), ['attention', 'gelu', 'quick-gelu']);
  assert.equal(graphRewritePasses(false, { TESSERA_GRAPH_REWRITE: 'all' }), undefined);
  assert.equal(graphRewritePasses(undefined, { TESSERA_GRAPH_REWRITE: '0' }), undefined);
  assert.equal(graphRewritePasses(undefined, { TESSERA_GRAPH_REWRITE: 'off' }), undefined);
  assert.deepEqual(graphRewritePasses(undefined, { TESSERA_GRAPH_REWRITE: 'all' }), PASSES.map((p) => p.name));
  assert.deepEqual(graphRewritePasses(undefined, { TESSERA_GRAPH_REWRITE: 'gelu, attention' }), ['attention', 'gelu']);
  assert.deepEqual(graphRewritePasses(['skip-layernorm'], {}), ['skip-layernorm']);
  assert.throws(() => graphRewritePasses(undefined, { TESSERA_GRAPH_REWRITE: 'fast' }), (e: unknown) => e instanceof TesseraError && e.code === 'INVALID_ARGUMENT' && /skip-layernorm/.test(e.message));
});

test('the rewrite keeps what it does not change: model metadata, graph inputs and outputs; it adds the com.microsoft opset', async () => {
  const dir = await tempDir('tessera-rewrite-fields-');
  await forgeModel({ preset: 'tiny', outDir: dir });
  const file = join(dir, 'onnx/text_model.onnx');
  const report = await prepareModel(file);
  const decode = async (path: string): Promise<Record<string, unknown>> => {
    // The graph's weights are references now: decoding the whole message stays small.
    const model = ModelProto.toObject(ModelProto.decode(await readFile(path)), { longs: Number }) as Record<string, unknown> & { graph: Record<string, unknown> };
    return { ir: model.irVersion, producer: model.producerName, doc: model.docString, metadata: model.metadataProps, opsets: model.opsetImport, inputs: model.graph.input, outputs: model.graph.output, name: model.graph.name };
  };
  const [before, after] = [await decode(file), await decode(report.rewritten!)];
  assert.deepEqual({ ...after, opsets: undefined }, { ...before, opsets: undefined });
  assert.deepEqual(after.opsets, [...(before.opsets as unknown[]), { domain: 'com.microsoft', version: 1 }]);
  assert.ok((await stat(report.rewritten!)).size < (await stat(file)).size / 10, 'weights are referenced, not copied');
});
