// Parity with transformers.js on the forged clip-tiny folder: its AutoTokenizer (CLIPTokenizer)
// for token ids, CLIPTextModelWithProjection and CLIPVisionModelWithProjection for the graphs
// (fed the same pixel tensors: transformers.js's image preprocessing is not the reference).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { AutoTokenizer, CLIPTextModelWithProjection, CLIPVisionModelWithProjection, Tensor, env } from '@huggingface/transformers';
import { Embedder } from '../../src/engine/embedder.ts';
import { forgeModel } from '../../src/forge/index.ts';
import { maxAbsDiff, tempDir } from '../helpers/models.ts';
import { assertPixelParity } from '../helpers/parity.ts';

env.allowRemoteModels = false;

const TEXTS = [
  'a photo of a red car',
  'Hello, World!',
  "It's the dog's bowl; they're here, we've gone, I'm sure you'll see, he'd know",
  'Ça coûte 12,50 € — déjà vu, naïve café. ÀÉÎÕÜ',
  'e\u0301 (combining) vs \u00e9 (precomposed): NFC makes them one',
  '日本語のテキスト 中文 한국어',
  'emoji 🙂👍🏽 and symbols #$%&* (tabs)\tand\nnewlines   and   spaces',
  'numbers 3.14159 and 2024-06-01, x2y3',
  '<|startoftext|> literal special tokens <|endoftext|>',
  'The quick brown fox jumps over the lazy dog. '.repeat(3),
  '',
];

for (const attentionMask of [false, true]) {
  describe(`clip-tiny parity with transformers.js, text graph ${attentionMask ? 'with' : 'without'} attention_mask`, () => {
    let dir: string;
    let embedder: Embedder;
    before(async () => {
      dir = await tempDir('tessera-clip-parity-');
      await forgeModel({ preset: 'clip-tiny', outDir: dir, attentionMask });
      embedder = await Embedder.load(dir);
    });
    after(() => embedder.close());

    test('tokenization gives the same ids', async () => {
      const tokenizer = await AutoTokenizer.from_pretrained(dir);
      for (const text of TEXTS) {
        const theirs = Array.from((tokenizer(text).input_ids as Tensor).data as BigInt64Array, Number);
        assert.deepEqual(embedder.tokenize(text).ids, theirs, `ids differ for ${JSON.stringify(text)}`);
      }
      // Truncated to 77: the same first 76 ids. transformers.js then cuts <|endoftext|> off with
      // the tail; Python's tokenizers (truncation=True) and tessera keep it, which CLIP's
      // pooling at the EOS needs.
      const long = 'a photo of a red car next to a blue house. '.repeat(12);
      const theirs = Array.from((tokenizer(long, { truncation: true }).input_ids as Tensor).data as BigInt64Array, Number);
      const ours = embedder.tokenize(long, true).ids;
      assert.equal(theirs.length, 77);
      assert.equal(ours.length, 77);
      assert.deepEqual(ours.slice(0, 76), theirs.slice(0, 76));
      assert.equal(ours[76], embedder.tokenize('').ids.at(-1));
    });

    test('text embeddings agree within 1e-5, batched with padding too', async () => {
      const tokenizer = await AutoTokenizer.from_pretrained(dir);
      const model = await CLIPTextModelWithProjection.from_pretrained(dir, { dtype: 'fp32' });
      const ours = await embedder.embedTexts(TEXTS, { normalize: false });
      for (const [i, text] of TEXTS.entries()) {
        const { text_embeds } = await model(tokenizer(text));
        const diff = maxAbsDiff(ours[i]!.embedding, (text_embeds as Tensor).data as Float32Array);
        assert.ok(diff <= 1e-5, `text ${i} differs by ${diff}`);
      }
      // transformers.js's own padded batch (pad id <|endoftext|>) against ours.
      const { text_embeds } = await model(tokenizer(TEXTS, { padding: true }));
      const theirs = (text_embeds as Tensor).data as Float32Array;
      const dim = ours[0]!.embedding.length;
      ours.forEach((r, i) => {
        const diff = maxAbsDiff(r.embedding, theirs.subarray(i * dim, (i + 1) * dim));
        assert.ok(diff <= 1e-5, `text ${i} in transformers.js's padded batch differs by ${diff}`);
      });
      await model.dispose();
    });

    test('image embeddings agree within 1e-5 on the same pixel tensors', async () => {
      const model = await CLIPVisionModelWithProjection.from_pretrained(dir, { dtype: 'fp32' });
      await assertPixelParity(embedder, (inputs) => model(inputs));
      await model.dispose();
    });
  });
}
