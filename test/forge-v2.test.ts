// The jina-clip-v2 forge: the folder has the hub's layout with every weight in
// onnx/model.onnx_data, the combined graph computes what the architecture says (against a
// plain-JS reference), runs with the dummy inputs transformers.js feeds for one modality,
// and the same preset and seed always give the same bytes.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { main as forgeCli } from '../src/cli/forge.ts';
import { TesseraError } from '../src/errors.ts';
import { forgeModel, PRESET_NAMES, V2_OUTPUTS, V2_PRESETS } from '../src/forge/index.ts';
import { DataLocation, ModelProto } from '../src/forge/onnx-proto.ts';
import { randomWeights } from '../src/forge/random-weights.ts';
import { buildV2Graph } from '../src/forge/v2-graph.ts';
import { buildV2Vocab } from '../src/forge/v2-vocab.ts';
import { writeModelWithExternalData } from '../src/forge/writer.ts';
import type { Weights } from './forge-reference.ts';
import { l2normalise, referenceV2Text, referenceV2Vision } from './forge-v2-reference.ts';

const tiny = V2_PRESETS['v2-tiny'];
const S = tiny.vision.imageSize;
const IMAGE = 3 * S * S;
const P = tiny.projectionDim;
let root: string;
const dirs = { tiny: '', again: '', otherSeed: '', strong: '', q8: '' };

/**
 * With std 0.02 weights attention is nearly uniform, so a wrong rotary angle would hardly
 * show: the reference checks use the v2-tiny graph with std 0.5 weights, written through the
 * forge's own external-data writer.
 */
const strongWeights = randomWeights(5, 0.5);

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'tessera-forge-v2-'));
  Object.assign(dirs, {
    tiny: join(root, 'tiny'),
    again: join(root, 'again'),
    otherSeed: join(root, 'other-seed'),
    strong: join(root, 'strong'),
    q8: join(root, 'q8'),
  });
  await forgeModel({ preset: 'v2-tiny', outDir: dirs.tiny, seed: 7 });
  await forgeModel({ preset: 'v2-tiny', outDir: dirs.again, seed: 7 });
  await forgeModel({ preset: 'v2-tiny', outDir: dirs.otherSeed, seed: 8 });
  await forgeModel({ preset: 'v2-tiny', outDir: dirs.q8, seed: 7, quantized: true });
  await mkdir(join(dirs.strong, 'onnx'), { recursive: true });
  const info = { producerName: 'test', producerVersion: '0', docString: '', metadata: {}, opsetVersion: 17, irVersion: 8 };
  await writeModelWithExternalData(join(dirs.strong, 'onnx', 'model.onnx'), buildV2Graph(tiny), strongWeights, info);
});

after(async () => {
  await rm(root, { recursive: true, force: true });
});

const readJson = async (path: string): Promise<Record<string, unknown>> => JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;

function weightMap(source: (p: { name: string; dims: readonly number[]; init: 'weight' | 'bias' | 'scale' }) => Float32Array): Weights {
  return new Map(buildV2Graph(tiny).params.map((p) => [p.name, source(p)]));
}

function idsTensor(rows: readonly (readonly number[])[]): ort.Tensor {
  return new ort.Tensor('int64', BigInt64Array.from(rows.flat(), (v) => BigInt(v)), [rows.length, rows[0]!.length]);
}

function pixelTensor(images: readonly Float32Array[]): ort.Tensor {
  const data = new Float32Array(images.length * IMAGE);
  images.forEach((image, i) => data.set(image, i * IMAGE));
  return new ort.Tensor('float32', data, [images.length, 3, S, S]);
}

const noImages = (): ort.Tensor => new ort.Tensor('float32', new Float32Array(0), [0, 3, S, S]);

function rows(t: ort.Tensor): Float32Array[] {
  const [n, dim] = t.dims as [number, number];
  const data = t.data as Float32Array;
  return Array.from({ length: n }, (_, r) => data.slice(r * dim, (r + 1) * dim));
}

/** Smooth pseudo-random pixels in roughly the normalised range. */
function patternImage(seed: number): Float32Array {
  return Float32Array.from({ length: IMAGE }, (_, i) => 1.5 * Math.sin(i * 0.0137 * (seed + 1) + seed) * Math.cos(i * 0.00091));
}

/** Compares with a tolerance relative to the largest expected magnitude. */
function assertNear(actual: ArrayLike<number>, expected: ArrayLike<number>, tolerance: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  const scale = Math.max(1, ...Array.from(expected, Math.abs));
  let worst = 0;
  for (let i = 0; i < actual.length; i++) worst = Math.max(worst, Math.abs(actual[i]! - expected[i]!));
  assert.ok(worst <= tolerance * scale, `${what}: max |diff| ${worst} > ${tolerance * scale}`);
}

/** Token id sequences: short, long enough for rotary angles to wrap many times, and a padded batch. */
const pad = tiny.text.padId;
const longIds = [0, ...Array.from({ length: 70 }, (_, i) => 5 + ((i * 37) % 4000)), 2];
const shortIds = [0, 17, 400, 2];
const paddedBatch = [
  [0, 11, 12, 13, 14, 15, 2],
  [0, 300, 2, pad, pad, pad, pad],
  [0, 2, pad, pad, pad, pad, pad],
];

describe('forged v2 folder', () => {
  test('has the hub layout and jina-clip-v2 configs', async () => {
    assert.deepEqual((await readdir(dirs.tiny)).sort(), ['config.json', 'onnx', 'preprocessor_config.json', 'special_tokens_map.json', 'tokenizer.json', 'tokenizer_config.json']);
    assert.deepEqual((await readdir(join(dirs.tiny, 'onnx'))).sort(), ['model.onnx', 'model.onnx_data']);
    assert.deepEqual((await readdir(join(dirs.q8, 'onnx'))).sort(), ['model.onnx', 'model.onnx_data', 'model_quantized.onnx']);

    const config = await readJson(join(dirs.tiny, 'config.json'));
    assert.equal(config.model_type, 'jina_clip');
    assert.deepEqual(config.architectures, ['JinaCLIPModel']);
    assert.equal(config.add_projections, false);
    assert.equal(config.projection_dim, P);
    assert.equal(config.truncate_dim, null);
    assert.deepEqual(config.matryoshka_dimensions, [8, 16, 32]);
    assert.deepEqual(config['transformers.js_config'], { use_external_data_format: { 'model.onnx': true } });
    assert.deepEqual(config.tessera_forge, { preset: 'v2-tiny', seed: 7 });
    const text = config.text_config as Record<string, unknown>;
    assert.equal(text.model_type, 'jina_clip_text');
    assert.equal(text.embed_dim, P);
    assert.equal(text.pooler_type, 'mean_pooler');
    assert.equal(text.proj_type, null);
    assert.equal(text.default_lora_task, 'retrieval.query');
    assert.equal(text.hf_model_name_or_path, 'jinaai/jina-embeddings-v3');
    const kwargs = text.hf_model_config_kwargs as Record<string, unknown>;
    assert.deepEqual(kwargs.task_instructions, { 'retrieval.query': 'Represent the query for retrieving evidence documents: ' });
    assert.deepEqual(
      [kwargs.hidden_size, kwargs.num_hidden_layers, kwargs.num_attention_heads, kwargs.intermediate_size, kwargs.vocab_size],
      [32, 2, 4, 64, tiny.text.vocabSize],
    );
    assert.deepEqual([kwargs.max_position_embeddings, kwargs.rotary_emb_base, kwargs.pad_token_id, kwargs.type_vocab_size], [8194, 20000, 1, 1]);
    const vision = config.vision_config as Record<string, unknown>;
    assert.deepEqual(
      [vision.model_type, vision.image_size, vision.patch_size, vision.width, vision.layers, vision.head_width, vision.pt_hw_seq_len, vision.embed_dim],
      ['jina_clip_vision', 512, 14, 32, 2, 8, 16, P],
    );
    assert.equal(vision.proj_type, null);

    assert.deepEqual(await readJson(join(dirs.tiny, 'preprocessor_config.json')), {
      fill_color: 0,
      image_processor_type: 'JinaCLIPImageProcessor',
      interpolation: 'bicubic',
      max_size: null,
      mean: [0.48145466, 0.4578275, 0.40821073],
      processor_class: 'JinaCLIPProcessor',
      resize_mode: 'shortest',
      size: 512,
      std: [0.26862954, 0.26130258, 0.27577711],
    });
    const tokenizerConfig = await readJson(join(dirs.tiny, 'tokenizer_config.json'));
    assert.equal(tokenizerConfig.tokenizer_class, 'XLMRobertaTokenizer');
    assert.equal(tokenizerConfig.model_max_length, 8194);
    const tokenizer = (await readJson(join(dirs.tiny, 'tokenizer.json'))) as { model: { type: string; vocab: [string, number][] } };
    assert.equal(tokenizer.model.type, 'Unigram');
    const pieces = tokenizer.model.vocab.map(([piece]) => piece);
    assert.equal(pieces.length, tiny.text.vocabSize);
    assert.deepEqual(pieces.slice(0, 4), ['<s>', '<pad>', '</s>', '<unk>']);
    assert.equal(pieces.at(-1), '<mask>');
  });

  test('every weight is external data in onnx/model.onnx_data; only small constants stay inline', async () => {
    const modelBytes = await readFile(join(dirs.tiny, 'onnx', 'model.onnx'));
    const dataBytes = (await stat(join(dirs.tiny, 'onnx', 'model.onnx_data'))).size;
    const model = ModelProto.decode(modelBytes) as unknown as {
      graph: { initializer: { name: string; dims: number[]; dataLocation?: number; externalData?: { key: string; value: string }[]; rawData?: Uint8Array }[] };
    };
    const params = new Set(buildV2Graph(tiny).params.map((p) => p.name));
    let external = 0;
    for (const tensor of model.graph.initializer) {
      if (!params.has(tensor.name)) {
        assert.ok((tensor.rawData?.length ?? 0) <= 1 << 20, `constant ${tensor.name} is inline and small`);
        continue;
      }
      external++;
      assert.equal(tensor.dataLocation, DataLocation.EXTERNAL, tensor.name);
      assert.equal(tensor.rawData?.length ?? 0, 0, tensor.name);
      const entries = Object.fromEntries((tensor.externalData ?? []).map(({ key, value }) => [key, value]));
      assert.equal(entries.location, 'model.onnx_data');
      const offset = Number(entries.offset);
      const length = Number(entries.length);
      assert.equal(length, tensor.dims.reduce((a, b) => a * Number(b), 1) * 4, tensor.name);
      assert.ok(offset % 64 === 0 && offset + length <= dataBytes, `${tensor.name} lies inside the data file, aligned`);
    }
    assert.equal(external, params.size);
    assert.ok(modelBytes.length < dataBytes / 4, 'the graph file holds no weights');
  });

  test('the v2-full preset has the hub model sizes: 250,002 pieces, about 865M params', () => {
    const full = V2_PRESETS['v2-full'];
    const params = buildV2Graph(full).params;
    const count = params.reduce((sum, p) => sum + p.dims.reduce((a, b) => a * b, 1), 0);
    const text = params.filter((p) => p.name.startsWith('text_model.')).reduce((sum, p) => sum + p.dims.reduce((a, b) => a * b, 1), 0);
    // The hub's card: 865M in all, 561M text (its LoRA adapters included) + 304M vision.
    assert.ok(count > 850e6 && count < 870e6, `${count} params`);
    assert.ok(text > 550e6 && text < 565e6, `${text} text params`);
    assert.deepEqual(params.find((p) => p.name === 'vision_model.blocks.0.mlp.w1.weight')?.dims, [1024, 2730]);
    assert.deepEqual(params.find((p) => p.name === 'vision_model.pos_embed')?.dims, [1, 36 * 36 + 1, 1024]);
    const vocab = buildV2Vocab(full.text.vocabSize, full.text.scripts);
    assert.equal(vocab.length, 250_002);
    assert.equal(new Set(vocab.map(([piece]) => piece)).size, 250_002);
    assert.deepEqual([vocab[0]![0], vocab[1]![0], vocab[2]![0], vocab[3]![0], vocab[250_001]![0]], ['<s>', '<pad>', '</s>', '<unk>', '<mask>']);
    for (const c of ['中', '龥', '한', '😀', 'ж', 'ب']) assert.ok(vocab.some(([piece]) => piece === c), `${c} is a piece`);
  });

  test('same preset and seed give the same bytes; another seed other weights, the same tokenizer', async () => {
    for (const file of ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'preprocessor_config.json', 'onnx/model.onnx', 'onnx/model.onnx_data']) {
      assert.ok((await readFile(join(dirs.tiny, file))).equals(await readFile(join(dirs.again, file))), `${file} differs between two forges`);
    }
    assert.ok((await readFile(join(dirs.tiny, 'tokenizer.json'))).equals(await readFile(join(dirs.otherSeed, 'tokenizer.json'))));
    assert.ok(!(await readFile(join(dirs.tiny, 'onnx/model.onnx_data'))).equals(await readFile(join(dirs.otherSeed, 'onnx/model.onnx_data'))));
  });
});

describe('the forged v2 graph', () => {
  test('computes the reference forward pass: texts (rotary, padding) and images (CLS pooling)', async () => {
    const weights = weightMap(strongWeights);
    const session = await ort.InferenceSession.create(join(dirs.strong, 'onnx', 'model.onnx'));
    try {
      assert.deepEqual(session.inputNames, ['input_ids', 'pixel_values']);
      assert.deepEqual(session.outputNames, Object.values(V2_OUTPUTS));
      const images = [patternImage(1), patternImage(2)];
      for (const batch of [[shortIds], [longIds], paddedBatch]) {
        const out = await session.run({ input_ids: idsTensor(batch), pixel_values: batch === paddedBatch ? pixelTensor(images) : noImages() });
        rows(out.text_embeddings!).forEach((got, r) => {
          const expected = referenceV2Text(tiny.text, weights, batch[r]!);
          assertNear(got, expected, 1e-4, `text ${batch[r]!.length} tokens, row ${r}`);
          assertNear(rows(out.l2norm_text_embeddings!)[r]!, l2normalise(expected), 1e-4, `l2norm text row ${r}`);
        });
        if (batch === paddedBatch) {
          rows(out.image_embeddings!).forEach((got, r) => {
            const expected = referenceV2Vision(tiny, weights, images[r]!);
            assertNear(got, expected, 1e-4, `image ${r}`);
            assertNear(rows(out.l2norm_image_embeddings!)[r]!, l2normalise(expected), 1e-4, `l2norm image ${r}`);
          });
        }
      }
      // Rotary position matters: the same tokens in another order embed differently.
      const [a, b] = rows((await session.run({ input_ids: idsTensor([[0, 11, 12, 13, 2], [0, 13, 12, 11, 2]]), pixel_values: noImages() })).text_embeddings!);
      assert.ok(Math.max(...a!.map((v, i) => Math.abs(v - b![i]!))) > 1e-2, 'word order changes nothing: no position information');
    } finally {
      await session.release();
    }
  });

  test('the forged v2-tiny holds the seeded weights the reference expects', async () => {
    const weights = weightMap(randomWeights(7));
    const session = await ort.InferenceSession.create(join(dirs.tiny, 'onnx', 'model.onnx'));
    try {
      const image = patternImage(3);
      const out = await session.run({ input_ids: idsTensor([longIds]), pixel_values: pixelTensor([image]) });
      assertNear(rows(out.text_embeddings!)[0]!, referenceV2Text(tiny.text, weights, longIds), 1e-4, 'text');
      assertNear(rows(out.image_embeddings!)[0]!, referenceV2Vision(tiny, weights, image), 1e-4, 'image');
    } finally {
      await session.release();
    }
  });

  test("runs text-only with an empty image batch and image-only with [B, 1] ones, as transformers.js's JinaCLIPModel feeds it", async () => {
    const session = await ort.InferenceSession.create(join(dirs.tiny, 'onnx', 'model.onnx'));
    try {
      const images = [patternImage(4), patternImage(5)];
      const both = await session.run({ input_ids: idsTensor(paddedBatch), pixel_values: pixelTensor(images) });
      const textOnly = await session.run({ input_ids: idsTensor(paddedBatch), pixel_values: noImages() });
      assert.deepEqual(textOnly.image_embeddings!.dims, [0, P]);
      assert.deepEqual(textOnly.l2norm_image_embeddings!.dims, [0, P]);
      assert.deepEqual(textOnly.text_embeddings!.dims, [3, P]);
      assert.deepEqual(Array.from(textOnly.l2norm_text_embeddings!.data as Float32Array), Array.from(both.l2norm_text_embeddings!.data as Float32Array));

      const imageOnly = await session.run({ input_ids: idsTensor([[1], [1]]), pixel_values: pixelTensor(images) });
      assert.deepEqual(imageOnly.image_embeddings!.dims, [2, P]);
      assert.deepEqual(Array.from(imageOnly.l2norm_image_embeddings!.data as Float32Array), Array.from(both.l2norm_image_embeddings!.data as Float32Array));
      // An all-pad text row pools to zeros, not NaN, and normalises to zeros.
      for (const name of ['text_embeddings', 'l2norm_text_embeddings']) {
        assert.ok((imageOnly[name]!.data as Float32Array).every((v) => v === 0), `${name} of the dummy text`);
      }
    } finally {
      await session.release();
    }
  });

  test('the q8 variant (onnx/model_quantized.onnx) is self-contained, handles both dummies and stays close to fp32', async () => {
    const fp32 = await ort.InferenceSession.create(join(dirs.q8, 'onnx', 'model.onnx'));
    const q8 = await ort.InferenceSession.create(join(dirs.q8, 'onnx', 'model_quantized.onnx'));
    try {
      const images = [patternImage(6)];
      const textFeeds = { input_ids: idsTensor(paddedBatch), pixel_values: noImages() };
      const imageFeeds = { input_ids: idsTensor([[1]]), pixel_values: pixelTensor(images) };
      const [a, b] = [await fp32.run(textFeeds), await q8.run(textFeeds)];
      const [c, d] = [await fp32.run(imageFeeds), await q8.run(imageFeeds)];
      const cos = (x: Float32Array, y: Float32Array): number => x.reduce((s, v, i) => s + v * y[i]!, 0);
      const pairs = [
        ...rows(a.l2norm_text_embeddings!).map((r, i) => [r, rows(b.l2norm_text_embeddings!)[i]!] as const),
        [rows(c.l2norm_image_embeddings!)[0]!, rows(d.l2norm_image_embeddings!)[0]!] as const,
      ];
      for (const [x, y] of pairs) assert.ok(cos(x, y) > 0.95, `cosine ${cos(x, y)} between q8 and fp32`);
      assert.ok(pairs.some(([x, y]) => cos(x, y) < 1 - 1e-7), 'q8 gave exactly the fp32 vectors');
    } finally {
      await Promise.all([fp32.release(), q8.release()]);
    }
  });
});

describe('forge options and CLI for v2', () => {
  test('v2 presets take no attention mask, and the help lists them', async () => {
    for (const preset of ['v2-tiny', 'v2-full', 'v2-colour'] as const) assert.ok(PRESET_NAMES.includes(preset));
    await assert.rejects(forgeModel({ preset: 'v2-tiny', outDir: join(root, 'never'), attentionMask: true }), (err: unknown) => {
      assert.ok(err instanceof TesseraError);
      assert.match(err.message, /attentionMask/);
      return true;
    });
    const lines: string[] = [];
    const log = console.log;
    console.log = (line: string) => lines.push(line);
    try {
      await forgeCli(['--help']);
    } finally {
      console.log = log;
    }
    for (const preset of ['v2-tiny', 'v2-full', 'v2-colour']) assert.match(lines.join('\n'), new RegExp(preset));
  });
});
