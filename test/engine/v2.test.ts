// jina-clip-v2 in the engine, on the forged v2-tiny model (the hub layout of jinaai/jina-clip-v2:
// one combined onnx/model.onnx with external data, no attention_mask input): both towers through
// one session, task instructions from the config, Matryoshka dimensions, billing by 512 px tiles.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Embedder } from '../../src/engine/embedder.ts';
import { usageOf } from '../../src/engine/usage.ts';
import { TesseraError } from '../../src/errors.ts';
import { forged, maxAbsDiff } from '../helpers/models.ts';
import { noiseImage, solidImage } from '../helpers/images.ts';

const isError = (code: string, pattern?: RegExp) => (err: unknown) => {
  assert.ok(err instanceof TesseraError, `expected a TesseraError, got ${String(err)}`);
  assert.equal(err.code, code);
  if (pattern) assert.match(err.message, pattern);
  return true;
};

const norm = (v: Float32Array): number => Math.hypot(...v);

describe('jina-clip-v2 (forged v2-tiny)', () => {
  let dir: string;
  let v2: Embedder;
  let v1: Embedder;
  let config: { projection_dim: number; matryoshka_dimensions: number[]; text_config: { hf_model_config_kwargs: { task_instructions: Record<string, string> } } };
  before(async () => {
    dir = await forged('v2-tiny');
    config = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8'));
    [v2, v1] = await Promise.all([Embedder.load(dir), Embedder.load(await forged('tiny'))]);
  });
  after(() => Promise.all([v2.close(), v1.close()]));

  test('loads the combined graph: one session for both towers, facts from the config', () => {
    assert.equal(v2.model.layout, 'combined');
    assert.equal(v2.model.text.session, v2.model.vision.session);
    assert.equal(v2.model.text.output.name, 'text_embeddings');
    assert.equal(v2.model.vision.output.name, 'image_embeddings');
    assert.equal(v2.model.text.takesAttentionMask, false);
    assert.deepEqual(v2.info, {
      dimensions: config.projection_dim,
      maxTokens: 8192,
      imageSize: 512,
      matryoshkaDimensions: config.matryoshka_dimensions,
      tasks: ['retrieval.query'],
      dtype: 'fp32',
      int8: null,
    });
    assert.equal(v1.model.layout, 'towers');
    assert.deepEqual(v1.info.tasks, []);
  });

  test('texts alone, images alone and a mix give the same vectors', async () => {
    const image = await noiseImage(700, 520, 3);
    const [text] = await v2.embedTexts(['a photo of a cat']);
    const [picture] = await v2.embedImages([image]);
    const mixed = await v2.embed([{ image }, { text: 'a photo of a cat' }]);
    assert.equal(text!.embedding.length, config.projection_dim);
    assert.ok(maxAbsDiff(mixed[1]!.embedding, text!.embedding) <= 1e-6);
    assert.ok(maxAbsDiff(mixed[0]!.embedding, picture!.embedding) <= 1e-6);
    assert.ok(Math.abs(norm(text!.embedding) - 1) < 1e-5);
  });

  test('texts of different lengths never share a padded batch: a batch gives what each text gives alone', async () => {
    const texts = ['a', 'a photo of a cat on a mat', 'Привет, мир', '日本語のテキスト', 'the quick brown fox jumps over the lazy dog '.repeat(4)];
    const together = await v2.embedTexts(texts);
    for (const [i, text] of texts.entries()) {
      const [alone] = await v2.embedTexts([text]);
      assert.ok(maxAbsDiff(alone!.embedding, together[i]!.embedding) <= 1e-6, `text ${i} changed in a batch`);
    }
  });

  test('task retrieval.query puts the config\'s instruction before each text, and is billed as what the model saw', async () => {
    const instruction = config.text_config.hf_model_config_kwargs.task_instructions['retrieval.query']!;
    const [withTask] = await v2.embedTexts(['red roses'], { task: 'retrieval.query' });
    const [spelledOut] = await v2.embedTexts([`${instruction}red roses`]);
    const [plain] = await v2.embedTexts(['red roses']);
    assert.ok(maxAbsDiff(withTask!.embedding, spelledOut!.embedding) <= 1e-6);
    assert.ok(maxAbsDiff(withTask!.embedding, plain!.embedding) > 1e-3, 'the instruction changes the vector');
    assert.equal(withTask!.tokens, spelledOut!.tokens);
    // Images are not affected by the task.
    const image = await solidImage(64, 64, [200, 30, 30]);
    const [a] = await v2.embedImages([image], { task: 'retrieval.query' });
    const [b] = await v2.embedImages([image]);
    assert.ok(maxAbsDiff(a!.embedding, b!.embedding) <= 1e-6);
  });

  test('other tasks are TASK_UNSUPPORTED on v2, and ignored by v1, which has no instructions', async () => {
    await assert.rejects(v2.embedTexts(['x'], { task: 'retrieval.passage' }), isError('TASK_UNSUPPORTED', /"retrieval.passage".*"retrieval.query"/));
    const [ignored] = await v1.embedTexts(['x'], { task: 'retrieval.passage' });
    const [none] = await v1.embedTexts(['x']);
    assert.ok(maxAbsDiff(ignored!.embedding, none!.embedding) <= 1e-7);
  });

  test('dimensions on v2: the first values, normalised again, within the Matryoshka range', async () => {
    const full = config.projection_dim;
    const smallest = config.matryoshka_dimensions[0]!;
    const [whole] = await v2.embedTexts(['a red car'], { normalize: false });
    const [cut] = await v2.embedTexts(['a red car'], { dimensions: smallest });
    const [cutRaw] = await v2.embedTexts(['a red car'], { dimensions: smallest, normalize: false });
    assert.equal(cut!.embedding.length, smallest);
    assert.ok(Math.abs(norm(cut!.embedding) - 1) < 1e-5);
    assert.ok(maxAbsDiff(cutRaw!.embedding, whole!.embedding.subarray(0, smallest)) <= 1e-7);
    const [image] = await v2.embedImages([await solidImage(40, 40, [0, 0, 255])], { dimensions: smallest });
    assert.equal(image!.embedding.length, smallest);
    const [same] = await v2.embedTexts(['a red car'], { dimensions: full });
    assert.equal(same!.embedding.length, full);
    for (const bad of [smallest - 1, full + 1, 0]) {
      await assert.rejects(v2.embedTexts(['a red car'], { dimensions: bad }), isError('DIMENSIONS_INVALID', new RegExp(`from ${smallest} to ${full}|positive integer`)));
    }
  });

  test('dimensions on v1 keeps what tessera always did: any positive size, the full vector above its length', async () => {
    const [cut] = await v1.embedTexts(['a red car'], { dimensions: 5 });
    assert.equal(cut!.embedding.length, 5);
    assert.ok(Math.abs(norm(cut!.embedding) - 1) < 1e-5);
    const [whole] = await v1.embedTexts(['a red car'], { dimensions: 4096 });
    assert.equal(whole!.embedding.length, v1.info.dimensions);
  });

  test('images are billed by tiles of the model\'s own size: 4,000 per 512 px tile on v2, 1,000 per 224 px tile on v1', async () => {
    const image = await noiseImage(1000, 600, 9);
    const [onV2] = await v2.embedImages([image]);
    const [onV1] = await v1.embedImages([image]);
    assert.equal(onV2!.imageTokens, 2 * 2 * 4000);
    assert.equal(onV1!.imageTokens, 5 * 3 * 1000);
    assert.deepEqual(usageOf([onV2!]), { total_tokens: 16000, prompt_tokens: 16000, image_tokens: 16000 });
  });

  test('a text over 8,192 tokens is TEXT_TOO_LONG, or cut to 8,192 with truncate', async () => {
    const long = 'word '.repeat(9000);
    await assert.rejects(v2.embedTexts([long]), isError('TEXT_TOO_LONG', /at most 8192/));
    assert.equal(v2.tokenize(long, true).tokenCount, 8192);
  });
});
