import assert from 'node:assert/strict';
import { rm, writeFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, after, describe, test } from 'node:test';
import { Embedder } from '../../src/engine/embedder.ts';
import { TesseraError } from '../../src/errors.ts';
import { TextTokenizer } from '../../src/text/tokenizer.ts';
import { forged, forgedCopy, maxAbsDiff } from '../helpers/models.ts';
import { noiseImage } from '../helpers/images.ts';

const TEXTS = [
  'a photo of a cat',
  'The quick brown fox jumps over the lazy dog near the river bank on a sunny afternoon.',
  'Zwölf Boxkämpfer jagen Viktor quer über den großen Sylter Deich.',
  '日本語のテキストと English mixed together',
  'x',
  'Long passage. '.repeat(60),
  'a photo of a dog',
];

function assertBatchInvariant(alone: Float32Array[], together: Float32Array[]): void {
  assert.equal(alone.length, together.length);
  alone.forEach((v, i) => assert.ok(maxAbsDiff(v, together[i]!) <= 1e-5, `item ${i} differs by ${maxAbsDiff(v, together[i]!)}`));
}

for (const attentionMask of [true, false]) {
  describe(`text tower ${attentionMask ? 'with' : 'without'} attention_mask`, () => {
    let embedder: Embedder;
    before(async () => {
      embedder = await Embedder.load(await forged('tiny', attentionMask));
    });
    after(() => embedder.close());

    test('the loader reads the input names off the graph', () => {
      assert.equal(embedder.model.text.takesAttentionMask, attentionMask);
    });

    test('a text embedded alone equals the same text inside any batch', async () => {
      const alone = [];
      for (const text of TEXTS) alone.push((await embedder.embedTexts([text]))[0]!.embedding);
      const together = (await embedder.embedTexts(TEXTS)).map((r) => r.embedding);
      assertBatchInvariant(alone, together);
      const reversed = (await embedder.embedTexts([...TEXTS].reverse())).map((r) => r.embedding).reverse();
      assertBatchInvariant(alone, reversed);
    });

    test('token counts include the special tokens', async () => {
      const [r] = await embedder.embedTexts(['hello world']);
      assert.equal(r!.tokens, embedder.tokenize('hello world').ids.length);
      assert.ok(r!.tokens! >= 3);
    });
  });
}

describe('engine', () => {
  let embedder: Embedder;
  before(async () => {
    embedder = await Embedder.load(await forged('tiny'));
  });
  after(() => embedder.close());

  test('an image embedded alone equals the same image inside a batch', async () => {
    const images = await Promise.all([
      noiseImage(640, 480, 1, 'jpeg'),
      noiseImage(300, 900, 2, 'png'),
      noiseImage(224, 224, 3, 'webp'),
      noiseImage(50, 40, 4, 'png'),
    ]);
    const alone = [];
    for (const image of images) alone.push((await embedder.embedImages([image]))[0]!.embedding);
    const together = (await embedder.embedImages(images)).map((r) => r.embedding);
    assertBatchInvariant(alone, together);
  });

  test('a mix of texts and images comes back in input order, with sizes and token counts', async () => {
    const image = await noiseImage(500, 300, 7);
    const mixed = await embedder.embed([{ text: 'first' }, { image }, { text: 'third item here' }]);
    assert.equal(mixed.length, 3);
    assert.equal(mixed[1]!.width, 500);
    assert.equal(mixed[1]!.height, 300);
    assert.equal(mixed[0]!.tokens, embedder.tokenize('first').ids.length);
    const [first] = await embedder.embedTexts(['first']);
    assert.ok(maxAbsDiff(first!.embedding, mixed[0]!.embedding) <= 1e-6);
    const [img] = await embedder.embedImages([image]);
    assert.ok(maxAbsDiff(img!.embedding, mixed[1]!.embedding) <= 1e-6);
  });

  test('vectors are L2-normalised by default and raw on request', async () => {
    const [normal] = await embedder.embedTexts(['norm check']);
    const [raw] = await embedder.embedTexts(['norm check'], { normalize: false });
    const norm = (v: Float32Array) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
    assert.ok(Math.abs(norm(normal!.embedding) - 1) < 1e-5);
    assert.ok(Math.abs(norm(raw!.embedding) - 1) > 1e-3, 'raw vectors of the tiny model are not unit length');
    const scaled = raw!.embedding.map((x) => x / norm(raw!.embedding));
    assert.ok(maxAbsDiff(scaled, normal!.embedding) < 1e-6);
  });

  test('concurrent callers get the same vectors as sequential ones', async () => {
    const sequential = [];
    for (const text of TEXTS) sequential.push((await embedder.embedTexts([text]))[0]!.embedding);
    const concurrent = await Promise.all(TEXTS.map((t) => embedder.embedTexts([t]).then((r) => r[0]!.embedding)));
    assertBatchInvariant(sequential, concurrent);
  });

  test('undecodable and oversized images fail naming the item', async () => {
    await assert.rejects(embedder.embed([{ text: 'ok' }, { image: Buffer.from('definitely not an image') }]), (err: unknown) => {
      assert.ok(err instanceof TesseraError);
      assert.equal(err.code, 'IMAGE_UNDECODABLE');
      assert.equal(err.item, 1);
      assert.match(err.message, /^input\[1\]: /);
      return true;
    });
    const small = await Embedder.load(await forged('tiny'), { maxPixels: 1000 });
    try {
      await assert.rejects(small.embedImages([await noiseImage(20, 20, 1), await noiseImage(100, 100, 2)]), (err: unknown) => {
        assert.ok(err instanceof TesseraError);
        assert.equal(err.code, 'IMAGE_TOO_LARGE');
        assert.equal(err.item, 1);
        return true;
      });
    } finally {
      await small.close();
    }
  });

  test('an 8,192-token text embeds in one run, alone in its batch', async () => {
    const words = Array.from({ length: 9000 }, (_, i) => ['red', 'car', 'photo', 'dog'][i % 4]).join(' ');
    await assert.rejects(embedder.embedTexts(['short', words]), (err: unknown) => {
      assert.ok(err instanceof TesseraError);
      assert.equal(err.code, 'TEXT_TOO_LONG');
      assert.equal(err.item, 1);
      assert.match(err.message, /input\[1\]: text has \d+ tokens but the model accepts at most 8192/);
      return true;
    });
    const [long, short] = await embedder.embedTexts([words, 'short'], { truncate: true });
    assert.equal(long!.tokens, 8192);
    assert.ok(long!.embedding.every(Number.isFinite));
    const [shortAlone] = await embedder.embedTexts(['short']);
    assert.ok(maxAbsDiff(short!.embedding, shortAlone!.embedding) <= 1e-5);
  });
});

describe('truncation', () => {
  test('truncate drops the tail and keeps the closing special token', async () => {
    const dir = await forgedCopy('tiny');
    const configPath = join(dir, 'tokenizer_config.json');
    const config = JSON.parse(await readFile(configPath, 'utf8'));
    await writeFile(configPath, JSON.stringify({ ...config, model_max_length: 8 }));
    const embedder = await Embedder.load(dir);
    try {
      const text = 'one two three four five six seven eight nine ten';
      const full = embedder.tokenize(text, true);
      assert.equal(full.ids.length, 8);
      assert.ok(full.truncated);
      const untruncated = (await TextTokenizer.load(await forged('tiny'))).encode(text, false);
      assert.deepEqual(full.ids.slice(0, 7), untruncated.ids.slice(0, 7));
      assert.equal(full.ids[7], untruncated.ids.at(-1));
      assert.throws(() => embedder.tokenize(text), /text has \d+ tokens but the model accepts at most 8/);
      const [r] = await embedder.embedTexts([text], { truncate: true });
      assert.equal(r!.tokens, 8);
    } finally {
      await embedder.close();
    }
  });
});

describe('broken model folders fail at load, naming the file', () => {
  const cases: [string, (dir: string) => Promise<void>, string, RegExp][] = [
    ['missing tokenizer.json', (d) => rm(join(d, 'tokenizer.json')), 'MODEL_FILE_MISSING', /tokenizer\.json is missing/],
    ['missing vision graph', (d) => rm(join(d, 'onnx/vision_model.onnx')), 'MODEL_FILE_MISSING', /vision_model\.onnx is missing/],
    ['corrupt text graph', (d) => writeFile(join(d, 'onnx/text_model.onnx'), 'garbage'), 'MODEL_FILE_INVALID', /text_model\.onnx: ONNX Runtime cannot load it/],
    ['bad config.json', (d) => writeFile(join(d, 'config.json'), '{ nope'), 'MODEL_FILE_INVALID', /config\.json is not valid JSON/],
    ['unknown model type', (d) => writeFile(join(d, 'config.json'), '{"model_type": "bert"}'), 'MODEL_FILE_INVALID', /model_type "bert" is not supported/],
    ['bad preprocessor config', (d) => writeFile(join(d, 'preprocessor_config.json'), '{"size": "big"}'), 'MODEL_FILE_INVALID', /preprocessor_config\.json/],
  ];
  for (const [name, breakIt, code, message] of cases) {
    test(name, async () => {
      const dir = await forgedCopy('tiny');
      await breakIt(dir);
      await assert.rejects(Embedder.load(dir), (err: unknown) => {
        assert.ok(err instanceof TesseraError, String(err));
        assert.equal(err.code, code);
        assert.match(err.message, message);
        return true;
      });
    });
  }

  test('a folder without config.json, or a name that is neither folder nor repo id', async () => {
    const dir = await forgedCopy('tiny');
    await rm(join(dir, 'config.json'));
    await assert.rejects(Embedder.load(dir), /config\.json is missing/);
    await assert.rejects(Embedder.load('not a model'), /neither a folder nor a hub repository id/);
  });
});
