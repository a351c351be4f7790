// `tessera bench` on jina-clip-v2's layout (one combined graph with external data): a preset
// name forges into the bench cache, FLOPs follow v2's config, and both sides (tessera and
// transformers.js's JinaCLIPModel) produce images/s, texts/s and ceiling fractions. No timing
// assertions: this machine is shared.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { test } from 'node:test';
import { imageFlops, patchesPerSide, textFlops } from '../../bench/flops.ts';
import { modelFileBytes, modelFiles, readDims } from '../../bench/model.ts';
import { forgeModel } from '../../src/forge/index.ts';
import { isRewriteCache } from '../helpers/hub-server.ts';
import { tempDir } from '../helpers/models.ts';

test('v2 dimensions: text sizes from hf_model_config_kwargs (or the backbone named), GELU, 36 patches a side', async () => {
  const dir = await tempDir('tessera-bench-v2-dims-');
  await forgeModel({ preset: 'v2-tiny', outDir: dir });
  const dims = await readDims(dir);
  assert.deepEqual(dims.text, { hidden: 32, layers: 2, intermediate: 64, geglu: false });
  assert.equal(dims.vision.imageSize, 512);
  assert.equal(patchesPerSide(dims), 36);
  assert.ok(imageFlops(dims) > 0 && textFlops(dims, 16) > 0);

  // The hub's own config names jina-embeddings-v3 and leaves its sizes to that repository.
  const config = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8'));
  for (const key of ['hidden_size', 'num_hidden_layers', 'num_attention_heads', 'intermediate_size', 'vocab_size']) delete config.text_config.hf_model_config_kwargs[key];
  await writeFile(join(dir, 'config.json'), JSON.stringify(config));
  assert.deepEqual((await readDims(dir)).text, { hidden: 1024, layers: 24, intermediate: 4096, geglu: false });

  // jina-clip-v2 itself: EVA02-L/14 on 1297 tokens is about 0.96 TFLOP an image, 27x v1's;
  // its XLM-RoBERTa (plain GELU, no projection) about 0.6 GFLOP a token.
  const v2 = {
    text: { hidden: 1024, layers: 24, intermediate: 4096, geglu: false },
    vision: { width: 1024, layers: 24, mlpHidden: 2730, imageSize: 512, patchSize: 14, headWidth: 64, projectionDim: 1024 },
  };
  assert.ok(Math.abs(imageFlops(v2) / 1e9 - 958.3) < 1, `${imageFlops(v2) / 1e9} GFLOP`);
  const perToken = 24 * (2 * 4 * 1024 ** 2 + 2 * 2 * 1024 * 4096);
  assert.ok(Math.abs(textFlops(v2, 1) - 24 * 2 * 2 * 1024 - perToken) < 1);
});

test('the combined graph counts with its external data; a half-written forge is not complete', async () => {
  const dir = await tempDir('tessera-bench-v2-files-');
  await forgeModel({ preset: 'v2-tiny', outDir: dir, quantized: true });
  assert.deepEqual(await modelFiles(dir, 'fp32'), { layout: 'combined', files: ['onnx/model.onnx', 'onnx/model.onnx_data'] });
  assert.deepEqual(await modelFiles(dir, 'q8'), { layout: 'combined', files: ['onnx/model_quantized.onnx'] });
  const sizes = await Promise.all(['model.onnx', 'model.onnx_data'].map((f) => stat(join(dir, 'onnx', f)).then((s) => s.size)));
  assert.equal(await modelFileBytes(dir, 'fp32'), sizes[0]! + sizes[1]!);
  assert.ok(sizes[1]! > 0, 'the weights are in the data file');
  // config.json declares model.onnx's external data: without the file the dtype is incomplete.
  await rm(join(dir, 'onnx', 'model.onnx_data'));
  assert.equal(await modelFiles(dir, 'fp32'), undefined);
});

test('tessera bench --model v2-tiny --size tiny: forged into the cache, images and texts against JinaCLIPModel', async () => {
  const cache = await tempDir('tessera-bench-v2-cache-');
  const out = join(await tempDir('tessera-bench-v2-out-'), 'report.json');
  const { stdout } = await promisify(execFile)(
    './bin/tessera',
    ['bench', '--model', 'v2-tiny', '--size', 'tiny', '--threads', '1', '--only', 'ceiling,images,texts', '--json', out],
    { env: { ...process.env, TESSERA_CACHE: cache }, maxBuffer: 1 << 22 },
  );
  // Forged once, in the layout the preset has (the q8 variant beside it).
  // (Beside them, the graph rewrite's cache of the graphs the bench loaded.)
  const files = (await readdir(join(cache, 'forge', 'v2-tiny-0', 'onnx'))).filter((f) => !isRewriteCache(f));
  assert.deepEqual(files.sort(), ['model.onnx', 'model.onnx_data', 'model_quantized.onnx']);

  const report = JSON.parse(await readFile(out, 'utf8')) as Record<string, unknown>;
  const get = (path: string): unknown => path.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], report);
  assert.equal(get('model'), join(cache, 'forge', 'v2-tiny-0'));
  for (const path of ['images.tessera.images_per_s', 'images.peer.images_per_s', 'texts.tessera.texts_per_s', 'texts.peer.texts_per_s', 'images.ratio', 'texts.ratio', 'ceiling.gflops']) {
    const value = get(path);
    assert.ok(typeof value === 'number' && Number.isFinite(value) && value > 0, `${path} = ${String(value)}`);
  }
  // A fraction of the machine's ceiling: above nothing, below the ceiling (with room for noise).
  for (const path of ['images.tessera.ceiling_fraction', 'images.peer.ceiling_fraction', 'texts.tessera.ceiling_fraction', 'texts.peer.ceiling_fraction']) {
    const value = get(path);
    assert.ok(typeof value === 'number' && value > 0 && value < 1.5, `${path} = ${String(value)}`);
  }
  assert.equal(get('images.peer.name'), 'transformers.js (AutoProcessor + JinaCLIPModel)');
  assert.equal(get('texts.peer.name'), 'transformers.js (AutoTokenizer + JinaCLIPModel, padded batches)');
  // v2's per-image FLOPs from its config: 36 x 36 patches + CLS at 512 px.
  const dims = await readDims(join(cache, 'forge', 'v2-tiny-0'));
  assert.equal(get('flops.per_image'), imageFlops(dims));
  // Same token ids and the same graph (which masks pads itself): the text vectors agree.
  assert.ok((get('texts.min_cosine_to_peer') as number) > 0.9999, `texts cosine ${String(get('texts.min_cosine_to_peer'))}`);
  assert.ok((get('images.min_cosine_to_peer') as number) > 0.5, `images cosine ${String(get('images.min_cosine_to_peer'))}`);
  assert.match(stdout, /images\/s, fp32 \(vs transformers\.js\)/);
  assert.match(stdout, /texts\/s, fp32 \(vs transformers\.js\)/);
});
