// Parity with transformers.js on the same forged model folder: it is an independent
// implementation of tokenization and of running the graphs (REFERENCE section 1).
import assert from 'node:assert/strict';
import { before, after, describe, test } from 'node:test';
import { AutoTokenizer, JinaCLIPTextModel, JinaCLIPVisionModel, Tensor, env } from '@huggingface/transformers';
import { Embedder } from '../../src/engine/embedder.ts';
import { forged, maxAbsDiff } from '../helpers/models.ts';
import { assertPixelParity } from '../helpers/parity.ts';

env.allowRemoteModels = false;

const TEXTS = [
  'a photo of a red car',
  'Hello, World!',
  'Ça coûte 12,50 € — déjà vu, naïve café.',
  '日本語のテキスト 中文 한국어',
  'emoji 🙂 and symbols #$%&* (tabs)\tand\nnewlines',
  'The quick brown fox jumps over the lazy dog. '.repeat(40),
  '',
];

for (const attentionMask of [true, false]) {
  describe(`parity with transformers.js, text graph ${attentionMask ? 'with' : 'without'} attention_mask`, () => {
    let dir: string;
    let embedder: Embedder;
    before(async () => {
      dir = await forged('tiny', attentionMask);
      embedder = await Embedder.load(dir);
    });
    after(() => embedder.close());

    test('tokenization gives the same ids', async () => {
      const tokenizer = await AutoTokenizer.from_pretrained(dir);
      for (const text of TEXTS) {
        const theirs = Array.from((tokenizer(text).input_ids as Tensor).data as BigInt64Array, Number);
        assert.deepEqual(embedder.tokenize(text).ids, theirs, `ids differ for ${JSON.stringify(text)}`);
      }
    });

    test('text embeddings agree within 1e-5', async () => {
      const tokenizer = await AutoTokenizer.from_pretrained(dir);
      const model = await JinaCLIPTextModel.from_pretrained(dir, { dtype: 'fp32' });
      const ours = await embedder.embedTexts(TEXTS, { normalize: false });
      for (const [i, text] of TEXTS.entries()) {
        const { text_embeds } = await model(tokenizer(text));
        const diff = maxAbsDiff(ours[i]!.embedding, (text_embeds as Tensor).data as Float32Array);
        assert.ok(diff <= 1e-5, `text ${i} differs by ${diff}`);
      }
      await model.dispose();
    });

    test('image embeddings agree within 1e-5 on the same pixel tensors', async () => {
      const model = await JinaCLIPVisionModel.from_pretrained(dir, { dtype: 'fp32' });
      await assertPixelParity(embedder, (inputs) => model(inputs));
      await model.dispose();
    });
  });
}
