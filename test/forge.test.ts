import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Tokenizer } from '@huggingface/tokenizers';
import * as ort from 'onnxruntime-node';
import { main as forgeCli } from '../src/cli/forge.ts';
import { TesseraError } from '../src/errors.ts';
import { COLOURS, forgeModel, normalisePixel, PRESETS } from '../src/forge/index.ts';
import type { GraphBuilder } from '../src/forge/graph.ts';
import { randomWeights } from '../src/forge/random-weights.ts';
import { buildTextGraph } from '../src/forge/text-tower.ts';
import { buildVisionGraph } from '../src/forge/vision-tower.ts';
import { writeModel } from '../src/forge/writer.ts';
import { referenceText, referenceVision, type Weights } from './forge-reference.ts';

const tiny = PRESETS.tiny;
const IMAGE = 224 * 224;
let root: string;
const dirs = { tiny: '', noMask: '', colour: '', strong: '' };

/**
 * With std 0.02 weights attention is nearly uniform, so a wrong rotary angle or ALiBi slope
 * would hardly show. The reference checks use the tiny graphs with std 0.5 weights instead,
 * written through the forge's own writer.
 */
const STRONG = { seed: 3, std: 0.5 };
const strongWeights = randomWeights(STRONG.seed, STRONG.std);
const strongGraphs = (): Record<string, GraphBuilder> => ({
  text: buildTextGraph(tiny.text, { attentionMask: true }),
  text_no_mask: buildTextGraph(tiny.text, { attentionMask: false }),
  vision: buildVisionGraph(tiny.vision, tiny.projectionDim),
});

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'tessera-forge-test-'));
  dirs.tiny = join(root, 'tiny');
  dirs.noMask = join(root, 'tiny-no-mask');
  dirs.colour = join(root, 'colour');
  await forgeModel({ preset: 'tiny', outDir: dirs.tiny, seed: 7 });
  await forgeModel({ preset: 'tiny', outDir: dirs.noMask, seed: 7, attentionMask: false });
  await forgeModel({ preset: 'colour', outDir: dirs.colour });
  dirs.strong = join(root, 'strong');
  await mkdir(join(dirs.strong, 'onnx'), { recursive: true });
  for (const [name, graph] of Object.entries(strongGraphs())) {
    const info = { producerName: 'test', producerVersion: '0', docString: '', metadata: {}, opsetVersion: 17, irVersion: 8 };
    await writeModel(join(dirs.strong, 'onnx', `${name}_model.onnx`), graph, strongWeights, info);
  }
});

after(async () => {
  await rm(root, { recursive: true, force: true });
});

const readJson = async (path: string): Promise<Record<string, unknown>> => JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;

async function session(dir: string, tower: 'text' | 'text_no_mask' | 'vision'): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(join(dir, 'onnx', `${tower}_model.onnx`));
}

function int64(rows: readonly (readonly number[])[]): ort.Tensor {
  return new ort.Tensor('int64', BigInt64Array.from(rows.flat(), (v) => BigInt(v)), [rows.length, rows[0]!.length]);
}

async function textEmbeds(s: ort.InferenceSession, ids: number[][], mask?: number[][]): Promise<Float32Array[]> {
  const feeds: Record<string, ort.Tensor> = { input_ids: int64(ids) };
  if (mask) feeds.attention_mask = int64(mask);
  const out = (await s.run(feeds)).text_embeds!;
  const dim = out.dims[1]!;
  const data = out.data as Float32Array;
  return ids.map((_, r) => data.slice(r * dim, (r + 1) * dim));
}

async function imageEmbeds(s: ort.InferenceSession, images: Float32Array[]): Promise<Float32Array[]> {
  const pixels = new Float32Array(images.length * 3 * IMAGE);
  images.forEach((image, i) => pixels.set(image, i * 3 * IMAGE));
  const out = (await s.run({ pixel_values: new ort.Tensor('float32', pixels, [images.length, 3, 224, 224]) })).image_embeds!;
  const dim = out.dims[1]!;
  const data = out.data as Float32Array;
  return images.map((_, r) => data.slice(r * dim, (r + 1) * dim));
}

function solidImage(channels: readonly number[]): Float32Array {
  const image = new Float32Array(3 * IMAGE);
  for (let c = 0; c < 3; c++) image.fill(channels[c]!, c * IMAGE, (c + 1) * IMAGE);
  return image;
}

/** Smooth pseudo-random pixels in roughly the normalised range. */
function patternImage(seed: number): Float32Array {
  return Float32Array.from({ length: 3 * IMAGE }, (_, i) => 1.5 * Math.sin(i * 0.0137 * (seed + 1) + seed) * Math.cos(i * 0.00091));
}

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tolerance: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  let worst = 0;
  for (let i = 0; i < actual.length; i++) worst = Math.max(worst, Math.abs(actual[i]! - expected[i]!));
  assert.ok(worst <= tolerance, `${what}: max |diff| ${worst} > ${tolerance}`);
}

function strongWeightMap(): Weights {
  const params = Object.values(strongGraphs()).flatMap((g) => g.params);
  return new Map(params.map((p) => [p.name, strongWeights(p)]));
}

/** Compares with a tolerance relative to the largest expected magnitude. */
function assertNear(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string): void {
  const scale = Math.max(1, ...Array.from(expected, Math.abs));
  assertClose(actual, expected, 2e-5 * scale, what);
}

const cosine = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! ** 2;
    nb += b[i]! ** 2;
  }
  return dot / Math.sqrt(na * nb);
};

const argmax = (values: readonly number[]): number => values.indexOf(Math.max(...values));

describe('forged folder', () => {
  test('has the hub layout and jina-clip-v1 configs', async () => {
    assert.deepEqual((await readdir(dirs.tiny)).sort(), [
      'config.json',
      'onnx',
      'preprocessor_config.json',
      'special_tokens_map.json',
      'tokenizer.json',
      'tokenizer_config.json',
      'vocab.txt',
    ]);
    assert.deepEqual((await readdir(join(dirs.tiny, 'onnx'))).sort(), ['text_model.onnx', 'vision_model.onnx']);

    const config = await readJson(join(dirs.tiny, 'config.json'));
    assert.equal(config.model_type, 'jina_clip');
    assert.deepEqual(config.architectures, ['JinaCLIPModel']);
    assert.equal(config.projection_dim, 32);
    assert.deepEqual(config.tessera_forge, { preset: 'tiny', seed: 7, attention_mask: true });
    const text = config.text_config as Record<string, unknown>;
    assert.equal(text.hidden_size, 32);
    assert.equal(text.vocab_size, 1000);
    assert.equal(text.max_position_embeddings, 8192);
    assert.equal(text.pooling, 'mean');
    const vision = config.vision_config as Record<string, unknown>;
    assert.equal(vision.image_size, 224);
    assert.equal(vision.patch_size, 16);
    assert.equal(vision.pooling, 'mean');
    assert.equal((await readJson(join(dirs.noMask, 'config.json'))).tessera_forge instanceof Object, true);

    assert.deepEqual(await readJson(join(dirs.tiny, 'preprocessor_config.json')), {
      image_processor_type: 'JinaCLIPImageProcessor',
      processor_class: 'JinaCLIPProcessor',
      size: 224,
      resize_mode: 'shortest',
      interpolation: 'bicubic',
      fill_color: 0,
      mean: [0.48145466, 0.4578275, 0.40821073],
      std: [0.26862954, 0.26130258, 0.27577711],
    });

    const tokenizerConfig = await readJson(join(dirs.tiny, 'tokenizer_config.json'));
    assert.equal(tokenizerConfig.tokenizer_class, 'BertTokenizer');
    assert.equal(tokenizerConfig.model_max_length, 8192);
    assert.equal(tokenizerConfig.do_lower_case, true);
    const vocab = (await readFile(join(dirs.tiny, 'vocab.txt'), 'utf8')).split('\n').slice(0, -1);
    assert.equal(vocab.length, 1000);
    assert.deepEqual([0, 100, 101, 102, 103].map((id) => vocab[id]), ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']);
  });

  test('the same seed gives the same bytes, another seed other weights', async () => {
    const again = join(root, 'tiny-again');
    const other = join(root, 'tiny-other');
    await forgeModel({ preset: 'tiny', outDir: again, seed: 7 });
    await forgeModel({ preset: 'tiny', outDir: other, seed: 8 });
    for (const file of ['onnx/text_model.onnx', 'onnx/vision_model.onnx', 'tokenizer.json']) {
      assert.ok((await readFile(join(again, file))).equals(await readFile(join(dirs.tiny, file))), file);
    }
    assert.ok(!(await readFile(join(other, 'onnx/text_model.onnx'))).equals(await readFile(join(dirs.tiny, 'onnx/text_model.onnx'))));
    assert.ok((await readFile(join(other, 'tokenizer.json'))).equals(await readFile(join(dirs.tiny, 'tokenizer.json'))));
  });

  test('rejects bad options naming the option', async () => {
    const out = join(root, 'never');
    await assert.rejects(forgeModel({ preset: 'huge' as 'tiny', outDir: out }), (err: unknown) => {
      assert.ok(err instanceof TesseraError);
      assert.equal(err.code, 'INVALID_ARGUMENT');
      assert.equal(err.message, 'expected tiny | full | colour | clip-tiny | v2-tiny | v2-full | v2-colour for preset but received "huge"');
      return true;
    });
    await assert.rejects(forgeModel({ preset: 'tiny', outDir: out, seed: -1 }), /seed/);
    await assert.rejects(forgeModel({ preset: 'tiny', outDir: out, seed: 1.5 }), /seed/);
  });
});

describe('tessera forge (CLI)', () => {
  test('writes the folder its flags describe', async (t) => {
    const printed: string[] = [];
    t.mock.method(console, 'log', (line: string) => printed.push(line));
    t.mock.method(process.stderr, 'write', () => true);
    const out = join(root, 'cli');
    await forgeCli(['--preset', 'tiny', '--out', out, '--no-attention-mask', '--seed', '5']);
    assert.deepEqual((await readJson(join(out, 'config.json'))).tessera_forge, { preset: 'tiny', seed: 5, attention_mask: false });
    assert.match(printed.join('\n'), /^forged tiny \(seed 5, attention mask off\) into /);
  });

  test('says which flag is wrong', async () => {
    await assert.rejects(forgeCli(['--out', 'x']), { message: 'expected tiny | full | colour | clip-tiny | v2-tiny | v2-full | v2-colour for --preset but received undefined' });
    await assert.rejects(forgeCli(['--preset', 'small', '--out', 'x']), { message: 'expected tiny | full | colour | clip-tiny | v2-tiny | v2-full | v2-colour for --preset but received "small"' });
    await assert.rejects(forgeCli(['--preset', 'tiny']), { message: 'expected a directory for --out but received undefined' });
    await assert.rejects(forgeCli(['--preset', 'tiny', '--out', 'x', '--seed', '1e3']), /--seed/);
  });
});

describe('tokenizer files', () => {
  test('load with @huggingface/tokenizers as BERT uncased WordPiece', async () => {
    const tokenizer = new Tokenizer(await readJson(join(dirs.tiny, 'tokenizer.json')), await readJson(join(dirs.tiny, 'tokenizer_config.json')));
    const hello = tokenizer.encode('Hello world');
    assert.deepEqual(hello.tokens, ['[CLS]', 'hello', 'world', '[SEP]']);
    assert.equal(hello.ids[0], 101);
    assert.equal(hello.ids.at(-1), 102);
    // Lower-cased, accents stripped, punctuation split, CJK characters one token each.
    assert.deepEqual(tokenizer.encode('Café, NAÏVE 中国').tokens, ['[CLS]', 'cafe', ',', 'naive', '中', '国', '[SEP]']);
    // Words outside the vocabulary fall into ## pieces.
    const pieces = tokenizer.encode('reds').tokens;
    assert.deepEqual(pieces, ['[CLS]', 'red', '##s', '[SEP]']);
  });

  test('load with transformers.js AutoTokenizer and give the same ids', async () => {
    const { AutoTokenizer, env } = await import('@huggingface/transformers');
    env.allowRemoteModels = false;
    env.localModelPath = dirname(dirs.tiny);
    const tokenizer = await AutoTokenizer.from_pretrained(basename(dirs.tiny));
    const reference = new Tokenizer(await readJson(join(dirs.tiny, 'tokenizer.json')), await readJson(join(dirs.tiny, 'tokenizer_config.json')));
    for (const text of ['Hello world', 'A photo of a RED car, near the sea.', 'Café 中国 zzzqx']) {
      assert.deepEqual(tokenizer.encode(text), reference.encode(text).ids, text);
    }
    assert.equal(tokenizer.model_max_length, 8192);
  });
});

describe('tiny text graph', () => {
  test('has input_ids (+ attention_mask) and text_embeds with symbolic dims', async () => {
    const masked = await session(dirs.tiny, 'text');
    assert.deepEqual(masked.inputNames, ['input_ids', 'attention_mask']);
    assert.deepEqual(masked.outputNames, ['text_embeds']);
    for (const input of masked.inputMetadata) {
      assert.ok(input.isTensor);
      assert.equal(input.type, 'int64');
      assert.deepEqual(input.shape, ['batch_size', 'sequence_length']);
    }
    const output = masked.outputMetadata[0]!;
    assert.ok(output.isTensor);
    assert.equal(output.type, 'float32');
    assert.deepEqual(output.shape, ['batch_size', 32]);

    const unmasked = await session(dirs.noMask, 'text');
    assert.deepEqual(unmasked.inputNames, ['input_ids']);
    assert.deepEqual(unmasked.outputNames, ['text_embeds']);
  });

  test('computes JinaBERT: a batch matches a plain-JS forward pass', async () => {
    const weights = strongWeightMap();
    const ids = [
      [101, 250, 317, 42, 999, 250, 17, 102],
      [101, 600, 601, 102, 0, 0, 0, 0],
    ];
    const mask = ids.map((row, r) => row.map((_, t) => (r === 1 && t > 3 ? 0 : 1)));
    const embeds = await textEmbeds(await session(dirs.strong, 'text'), ids, mask);
    assert.deepEqual(embeds.map((e) => e.length), [32, 32]);
    embeds.forEach((e, r) => assertNear(e, referenceText(tiny.text, weights, ids[r]!, mask[r]!), `row ${r}`));

    const plain = await textEmbeds(await session(dirs.strong, 'text_no_mask'), [ids[0]!]);
    assertNear(plain[0]!, referenceText(tiny.text, weights, ids[0]!, null), 'no-mask graph');
  });

  test('attention_mask: padding with [PAD] and mask 0 changes nothing', async () => {
    const s = await session(dirs.tiny, 'text');
    const ids = [101, 300, 301, 302, 102];
    const [alone] = await textEmbeds(s, [ids], [ids.map(() => 1)]);
    const padded = [...ids, 0, 0, 0, 0];
    const [withPadding] = await textEmbeds(s, [padded], [padded.map((_, t) => (t < ids.length ? 1 : 0))]);
    assertClose(withPadding!, alone!, 1e-5, 'padded');
    // And in a batch beside a longer text.
    const long = [101, 400, 401, 402, 403, 404, 405, 406, 102];
    const [, inBatch] = await textEmbeds(s, [long, padded], [long.map(() => 1), padded.map((_, t) => (t < ids.length ? 1 : 0))]);
    assertClose(inBatch!, alone!, 1e-5, 'batched');
    // Without the mask the padding would count: the test above is not vacuous.
    const [unmasked] = await textEmbeds(s, [padded], [padded.map(() => 1)]);
    assert.ok(Math.max(...unmasked!.map((v, i) => Math.abs(v - alone![i]!))) > 1e-3);
  });

  test('the graph without a mask input equals an all-ones mask', async () => {
    const ids = [[101, 500, 501, 502, 102], [101, 700, 701, 702, 102]];
    const masked = await textEmbeds(await session(dirs.tiny, 'text'), ids, ids.map((r) => r.map(() => 1)));
    const unmasked = await textEmbeds(await session(dirs.noMask, 'text'), ids);
    masked.forEach((e, r) => assertClose(unmasked[r]!, e, 1e-5, `row ${r}`));
  });

  test('handles a long input (ALiBi bias built from the sequence length)', async () => {
    const ids = Array.from({ length: 1024 }, (_, t) => (t === 0 ? 101 : t === 1023 ? 102 : 200 + (t % 700)));
    const [e] = await textEmbeds(await session(dirs.tiny, 'text'), [ids], [ids.map(() => 1)]);
    assert.ok(e!.every(Number.isFinite));
  });
});

describe('tiny vision graph', () => {
  test('has pixel_values and image_embeds', async () => {
    const s = await session(dirs.tiny, 'vision');
    assert.deepEqual(s.inputNames, ['pixel_values']);
    assert.deepEqual(s.outputNames, ['image_embeds']);
    const input = s.inputMetadata[0]!;
    assert.ok(input.isTensor);
    assert.equal(input.type, 'float32');
    assert.deepEqual(input.shape, ['batch_size', 3, 224, 224]);
    const output = s.outputMetadata[0]!;
    assert.ok(output.isTensor);
    assert.deepEqual(output.shape, ['batch_size', 32]);
  });

  test('computes EVA-02: a batch matches a plain-JS forward pass and single runs', async () => {
    const weights = strongWeightMap();
    const s = await session(dirs.strong, 'vision');
    const images = [patternImage(1), patternImage(2)];
    const batch = await imageEmbeds(s, images);
    for (const [i, image] of images.entries()) {
      assertNear(batch[i]!, referenceVision(tiny.vision, tiny.projectionDim, weights, image), `image ${i}`);
      assertClose((await imageEmbeds(s, [image]))[0]!, batch[i]!, 1e-5, `image ${i} alone`);
    }
  });
});

describe('colour model (ONNX level)', () => {
  const texts = COLOURS.map((c) => `a photo of a ${c.words[0]} car`);

  async function colourTextEmbeds(list: readonly string[]): Promise<Float32Array[]> {
    const tokenizer = new Tokenizer(await readJson(join(dirs.colour, 'tokenizer.json')), await readJson(join(dirs.colour, 'tokenizer_config.json')));
    const encoded = list.map((t) => tokenizer.encode(t).ids);
    const length = Math.max(...encoded.map((ids) => ids.length));
    const ids = encoded.map((row) => [...row, ...Array<number>(length - row.length).fill(0)]);
    const mask = encoded.map((row) => Array.from({ length }, (_, t) => (t < row.length ? 1 : 0)));
    return textEmbeds(await session(dirs.colour, 'text'), ids, mask);
  }

  async function colourImageEmbeds(pixel: (rgb: readonly number[]) => readonly number[]): Promise<Float32Array[]> {
    return imageEmbeds(await session(dirs.colour, 'vision'), COLOURS.map((c) => solidImage(pixel(c.rgb))));
  }

  /** For each colour: the colour of the nearest image to its text, and of the nearest text to its image. */
  function topOne(textVecs: Float32Array[], imageVecs: Float32Array[]): { textToImage: string[]; imageToText: string[] } {
    const sims = textVecs.map((t) => imageVecs.map((i) => cosine(t, i)));
    return {
      textToImage: sims.map((row) => COLOURS[argmax(row)]!.name),
      imageToText: imageVecs.map((_, i) => COLOURS[argmax(sims.map((row) => row[i]!))]!.name),
    };
  }

  test('solid colours and colour-word texts find each other, both ways', async () => {
    const names = COLOURS.map((c) => c.name);
    assert.ok(names.length >= 8);
    const result = topOne(await colourTextEmbeds(texts), await colourImageEmbeds(normalisePixel));
    assert.deepEqual(result.textToImage, names);
    assert.deepEqual(result.imageToText, names);
    // Synonyms and capitals name the same colour.
    const [grey, gray, red] = await colourTextEmbeds(['a GREY sky', 'gray', 'Red!']);
    assert.ok(cosine(grey!, gray!) > 0.999);
    assert.ok(cosine(red!, (await colourTextEmbeds(['red']))[0]!) > 0.999);
  });

  test('a text that names no colour embeds to zero', async () => {
    const [none] = await colourTextEmbeds(['a photo of a car parked near the house']);
    assert.ok(Math.max(...none!.map(Math.abs)) < 1e-6);
  });

  test('swapped R/B channels or unnormalised pixels get colours wrong', async () => {
    const textVecs = await colourTextEmbeds(texts);
    const names = COLOURS.map((c) => c.name);
    const swapped = topOne(textVecs, await colourImageEmbeds((rgb) => normalisePixel([rgb[2]!, rgb[1]!, rgb[0]!])));
    assert.notDeepEqual(swapped.imageToText, names);
    const raw = topOne(textVecs, await colourImageEmbeds((rgb) => rgb.map((v) => v / 255)));
    assert.notDeepEqual(raw.imageToText, names);
  });

  test('an image mostly of one colour is nearest to that colour', async () => {
    const textVecs = await colourTextEmbeds(texts);
    // 70% blue, 30% yellow (whole rows of patches), and a little noise.
    const blue = normalisePixel([20, 30, 230]);
    const yellow = normalisePixel([250, 240, 10]);
    const image = new Float32Array(3 * IMAGE);
    for (let c = 0; c < 3; c++) {
      for (let p = 0; p < IMAGE; p++) {
        const row = Math.floor(p / 224);
        image[c * IMAGE + p] = (row < 157 ? blue[c]! : yellow[c]!) + 0.05 * Math.sin(p * 0.37 + c);
      }
    }
    const [vec] = await imageEmbeds(await session(dirs.colour, 'vision'), [image]);
    const sims = textVecs.map((t) => cosine(t, vec!));
    assert.equal(COLOURS[argmax(sims)]!.name, 'blue');
    assert.ok(sims[COLOURS.findIndex((c) => c.name === 'yellow')]! > 0.1, 'the minority colour shows too');
  });
});
