// The engine on an OpenAI CLIP model (forged clip-tiny, the hub layout of
// Xenova/clip-vit-base-patch16): loading, texts and images, batch invariance, the 77-token limit.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { Embedder } from '../../src/engine/embedder.ts';
import { TesseraError } from '../../src/errors.ts';
import { forgeModel } from '../../src/forge/index.ts';
import { noiseImage } from '../helpers/images.ts';
import { maxAbsDiff, tempDir } from '../helpers/models.ts';

const TEXTS = [
  'a photo of a cat',
  'The quick brown fox jumps over the lazy dog near the river bank on a sunny afternoon.',
  'Zwölf Boxkämpfer jagen Viktor quer über den großen Sylter Deich.',
  '日本語のテキストと English mixed together 🙂',
  'x',
  '',
  'a photo of a dog',
];
const LONG = Array.from({ length: 120 }, (_, i) => ['red', 'car', 'photo', 'dog'][i % 4]).join(' ');

async function forgeClip(attentionMask?: boolean): Promise<string> {
  const dir = await tempDir('tessera-clip-tiny-');
  await forgeModel({ preset: 'clip-tiny', outDir: dir, attentionMask });
  return dir;
}

for (const attentionMask of [false, true]) {
  describe(`clip-tiny, text graph ${attentionMask ? 'with' : 'without'} attention_mask`, () => {
    let dir: string;
    let embedder: Embedder;
    before(async () => {
      dir = await forgeClip(attentionMask);
      embedder = await Embedder.load(dir);
    });
    after(() => embedder.close());

    test('loads as model_type clip with the CLIP tokenizer and CLIPImageProcessor', () => {
      assert.equal(embedder.model.modelType, 'clip');
      assert.equal(embedder.model.text.takesAttentionMask, attentionMask);
      assert.equal(embedder.model.text.paddingInvariant, true);
      assert.equal(embedder.model.image.pipeline, 'clip_image_processor');
      assert.equal(embedder.maxTokens, 77);
      const { ids } = embedder.tokenize('a photo of a cat');
      const eos = ids.at(-1)!;
      assert.equal(ids[0], eos - 1, '<|startoftext|> comes just before <|endoftext|>');
      assert.equal(embedder.model.tokenizer.padId, eos, 'pads with <|endoftext|>');
      assert.equal(Math.max(...ids), eos, 'the EOS is the largest id (argmax pooling)');
    });

    test('embeds texts and images, normalised, 24 dimensions', async () => {
      const image = await noiseImage(300, 200, 7);
      const results = await embedder.embed([{ text: 'a photo of a cat' }, { image }]);
      assert.equal(results.length, 2);
      for (const r of results) {
        assert.equal(r.embedding.length, 24);
        const norm = Math.hypot(...r.embedding);
        assert.ok(Math.abs(norm - 1) < 1e-5, `norm ${norm}`);
      }
      assert.equal(results[0]!.tokens, embedder.tokenize('a photo of a cat').ids.length);
    });

    test('texts of varied lengths: alone or batched, the same vectors', async () => {
      const together = await embedder.embedTexts(TEXTS, { normalize: false });
      const alone = await Promise.all(TEXTS.map(async (t) => (await embedder.embedTexts([t], { normalize: false }))[0]!));
      alone.forEach((a, i) => {
        const diff = maxAbsDiff(a.embedding, together[i]!.embedding);
        assert.ok(diff <= 1e-5, `text ${i} differs by ${diff}`);
      });
    });

    test('padding with the pad id after the EOS changes nothing, straight through the graph', async () => {
      const session = embedder.model.text.session;
      const texts = ['a photo of a cat', 'x', LONG.slice(0, 120)];
      const encoded = texts.map((t) => embedder.tokenize(t, true).ids);
      const width = 77;
      const run = async (rows: number[][], pad: number): Promise<Float32Array> => {
        const ids = new BigInt64Array(rows.length * pad).fill(BigInt(embedder.model.tokenizer.padId));
        const mask = new BigInt64Array(rows.length * pad);
        rows.forEach((r, i) => r.forEach((id, j) => { ids[i * pad + j] = BigInt(id); mask[i * pad + j] = 1n; }));
        const feeds: Record<string, ort.Tensor> = { input_ids: new ort.Tensor('int64', ids, [rows.length, pad]) };
        if (attentionMask) feeds.attention_mask = new ort.Tensor('int64', mask, [rows.length, pad]);
        const out = await session.run(feeds);
        return out.text_embeds!.data as Float32Array;
      };
      const padded = await run(encoded, width);
      for (const [i, ids] of encoded.entries()) {
        const alone = await run([ids], ids.length);
        const diff = maxAbsDiff(alone, padded.subarray(i * 24, (i + 1) * 24));
        assert.ok(diff <= 1e-5, `text ${i} padded to ${width} differs by ${diff}`);
      }
    });

    test('images: alone or batched, the same vectors', async () => {
      const images = await Promise.all([[224, 224, 1], [640, 427, 2], [100, 300, 3]].map(([w, h, s]) => noiseImage(w!, h!, s!)));
      const together = await embedder.embedImages(images, { normalize: false });
      for (const [i, image] of images.entries()) {
        const [alone] = await embedder.embedImages([image], { normalize: false });
        const diff = maxAbsDiff(alone!.embedding, together[i]!.embedding);
        assert.ok(diff <= 1e-5, `image ${i} differs by ${diff}`);
      }
    });

    test('over 77 tokens: an error naming the item and the count, or the tail dropped keeping <|endoftext|>', async () => {
      const count = embedder.tokenize(LONG, true).ids.length;
      assert.equal(count, 77);
      await assert.rejects(embedder.embedTexts(['short', LONG]), (err: unknown) => {
        assert.ok(err instanceof TesseraError);
        assert.equal(err.code, 'TEXT_TOO_LONG');
        assert.equal(err.item, 1);
        const counted = /^input\[1\]: text has (\d+) tokens but the model accepts at most 77;/.exec(err.message);
        assert.ok(counted && Number(counted[1]) > 77, err.message);
        return true;
      });
      const truncated = embedder.tokenize(LONG, true);
      const eos = embedder.tokenize('').ids.at(-1)!;
      assert.ok(truncated.truncated);
      assert.equal(truncated.ids.at(-1), eos);
      assert.equal(truncated.ids.indexOf(eos), 76, 'exactly one <|endoftext|>, at the end');
      const [long, short] = await embedder.embedTexts([LONG, 'short'], { truncate: true });
      assert.equal(long!.tokens, 77);
      assert.ok(long!.embedding.every(Number.isFinite));
      const [shortAlone] = await embedder.embedTexts(['short']);
      assert.ok(maxAbsDiff(short!.embedding, shortAlone!.embedding) <= 1e-5);
    });
  });
}
