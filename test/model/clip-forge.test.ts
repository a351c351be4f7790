// The forged clip-tiny: its files in the hub's shape, and its ONNX graphs against a plain-JS
// forward pass of Hugging Face CLIP (clip-reference.ts), so the graphs are CLIP and not just
// self-consistent.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { Tokenizer } from '@huggingface/tokenizers';
import * as ort from 'onnxruntime-node';
import { buildClipTextGraph } from '../../src/forge/clip-text-tower.ts';
import { buildClipBpe } from '../../src/forge/clip-tokenizer.ts';
import { buildClipVisionGraph } from '../../src/forge/clip-vision-tower.ts';
import { CLIP_PRESETS, forgeModel } from '../../src/forge/index.ts';
import { randomWeights } from '../../src/forge/random-weights.ts';
import { parsePreprocessorConfig } from '../../src/image/config.ts';
import { maxAbsDiff, tempDir } from '../helpers/models.ts';
import { referenceClipText, referenceClipVision, type Weights } from './clip-reference.ts';

const preset = CLIP_PRESETS['clip-tiny'];
const SEED = 3;

async function readJson(path: string): Promise<Record<string, unknown>> {
  return JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
}

describe('forge --preset clip-tiny', () => {
  let dir: string;
  let weights: Weights;
  let vocabSize: number;
  before(async () => {
    dir = await tempDir('tessera-clip-forge-');
    const summary = await forgeModel({ preset: 'clip-tiny', outDir: dir, seed: SEED });
    assert.equal(summary.attentionMask, false);
    vocabSize = buildClipBpe(preset.text.merges).vocab.length;
    const source = randomWeights(SEED);
    weights = new Map();
    for (const g of [buildClipTextGraph(preset.text, vocabSize, preset.projectionDim, { attentionMask: false }), buildClipVisionGraph(preset.vision, preset.projectionDim)]) {
      for (const p of g.params) weights.set(p.name, source(p));
    }
  });

  test('writes the hub layout of Xenova/clip-vit-base-patch16', async () => {
    const config = await readJson(join(dir, 'config.json'));
    assert.equal(config.model_type, 'clip');
    assert.equal(config.projection_dim, preset.projectionDim);
    const text = config.text_config as Record<string, unknown>;
    assert.equal(text.max_position_embeddings, 77);
    assert.equal(text.hidden_act, 'quick_gelu');
    assert.equal(text.vocab_size, vocabSize);
    assert.equal((config.vision_config as Record<string, unknown>).image_size, 224);
    const preprocessor = await readJson(join(dir, 'preprocessor_config.json'));
    assert.equal(parsePreprocessorConfig(preprocessor, 'preprocessor_config.json').pipeline, 'clip_image_processor');
    const tokenizerConfig = await readJson(join(dir, 'tokenizer_config.json'));
    assert.equal(tokenizerConfig.tokenizer_class, 'CLIPTokenizer');
    assert.equal(tokenizerConfig.model_max_length, 77);
    assert.equal(tokenizerConfig.pad_token, '<|endoftext|>');
    const vocab = await readJson(join(dir, 'vocab.json'));
    assert.equal(vocab['<|startoftext|>'], vocabSize - 2);
    assert.equal(vocab['<|endoftext|>'], vocabSize - 1);
    const merges = (await readFile(join(dir, 'merges.txt'), 'utf8')).trim().split('\n');
    assert.equal(merges[0], '#version: 0.2');
    assert.equal(merges.length - 1, preset.text.merges);
  });

  test('the tokenizer is byte-level BPE with </w> word ends, lower-cased, NFC', async () => {
    const tokenizer = new Tokenizer(await readJson(join(dir, 'tokenizer.json')), await readJson(join(dir, 'tokenizer_config.json')));
    const encoded = tokenizer.encode('A  Photo\tof the café 🙂');
    assert.equal(encoded.tokens[0], '<|startoftext|>');
    assert.equal(encoded.tokens.at(-1), '<|endoftext|>');
    assert.ok(encoded.tokens.includes('to</w>'), encoded.tokens.join(' ')); // 'photo' -> p ho to</w>
    assert.deepEqual(tokenizer.encode('Cafe\u0301').ids, tokenizer.encode('café').ids);
    assert.equal(tokenizer.decode(encoded.ids, { skip_special_tokens: true }).trim(), 'a photo of the café 🙂');
  });

  test('the text graph computes CLIPTextModelWithProjection', async () => {
    const session = await ort.InferenceSession.create(join(dir, 'onnx/text_model.onnx'));
    assert.deepEqual(session.inputNames, ['input_ids']);
    const tokenizer = new Tokenizer(await readJson(join(dir, 'tokenizer.json')), await readJson(join(dir, 'tokenizer_config.json')));
    for (const text of ['a photo of a red car', 'x', 'the quick brown fox jumps over the lazy dog '.repeat(3)]) {
      const ids = tokenizer.encode(text).ids;
      const out = await session.run({ input_ids: new ort.Tensor('int64', BigInt64Array.from(ids, BigInt), [1, ids.length]) });
      const expected = referenceClipText(preset.text, preset.projectionDim, weights, ids);
      const diff = maxAbsDiff(out.text_embeds!.data as Float32Array, expected);
      assert.ok(diff <= 1e-5, `${JSON.stringify(text)} differs from the reference by ${diff}`);
    }
    await session.release();
  });

  test('the vision graph computes CLIPVisionModelWithProjection', async () => {
    const session = await ort.InferenceSession.create(join(dir, 'onnx/vision_model.onnx'));
    const pixels = new Float32Array(3 * 224 * 224);
    let state = 99;
    for (let i = 0; i < pixels.length; i++) {
      state = (state * 1103515245 + 12345) % 2 ** 31;
      pixels[i] = (state / 2 ** 31) * 4 - 2;
    }
    const out = await session.run({ pixel_values: new ort.Tensor('float32', pixels, [1, 3, 224, 224]) });
    const expected = referenceClipVision(preset.vision, preset.projectionDim, weights, pixels);
    const diff = maxAbsDiff(out.image_embeds!.data as Float32Array, expected);
    assert.ok(diff <= 1e-5, `differs from the reference by ${diff}`);
    await session.release();
  });
});
