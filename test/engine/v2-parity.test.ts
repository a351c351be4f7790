// Parity with transformers.js on the forged v2-tiny folder (jina-clip-v2's hub layout): its
// AutoTokenizer (XLM-RoBERTa Unigram) for token ids, and JinaCLIPModel, the combined graph it
// runs with the same placeholder inputs, for text and image embeddings (fed the same pixel
// tensors: transformers.js's image preprocessing is not the reference).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { AutoTokenizer, JinaCLIPModel, Tensor, env } from '@huggingface/transformers';
import { Embedder } from '../../src/engine/embedder.ts';
import { forged, maxAbsDiff } from '../helpers/models.ts';
import { assertPixelParity } from '../helpers/parity.ts';

env.allowRemoteModels = false;

const TEXTS = [
  'a photo of a red car',
  'Ça coûte 12,50 € — déjà vu, naïve café. Größe, Straße, señor',
  'Привет, мир! Красная машина',
  '日本語のテキスト 中文 한국어',
  'مرحبا بالعالم، سيارة حمراء',
  'emoji 🙂👍🏽 and symbols #$%&* (tabs)\tand\nnewlines   and   spaces',
  'Represent the query for retrieving evidence documents: red roses',
  'The quick brown fox jumps over the lazy dog. '.repeat(30),
  '',
];

describe('jina-clip-v2 parity with transformers.js (forged v2-tiny)', () => {
  let dir: string;
  let embedder: Embedder;
  before(async () => {
    dir = await forged('v2-tiny');
    embedder = await Embedder.load(dir);
  });
  after(() => embedder.close());

  test('tokenization gives the same ids on Latin, Cyrillic, CJK, Arabic and emoji', async () => {
    const tokenizer = await AutoTokenizer.from_pretrained(dir);
    for (const text of TEXTS) {
      const theirs = Array.from((tokenizer(text).input_ids as Tensor).data as BigInt64Array, Number);
      assert.deepEqual(embedder.tokenize(text).ids, theirs, `ids differ for ${JSON.stringify(text)}`);
    }
  });

  test('text embeddings agree within 1e-5, one text at a time and batched by tessera', async () => {
    const tokenizer = await AutoTokenizer.from_pretrained(dir);
    const model = await JinaCLIPModel.from_pretrained(dir, { dtype: 'fp32' });
    const ours = await embedder.embedTexts(TEXTS, { normalize: false });
    for (const [i, text] of TEXTS.entries()) {
      const { text_embeddings } = await model(tokenizer(text));
      const diff = maxAbsDiff(ours[i]!.embedding, (text_embeddings as Tensor).data as Float32Array);
      assert.ok(diff <= 1e-5, `text ${i} differs by ${diff}`);
    }
    await model.dispose();
  });

  test('image embeddings agree within 1e-5 on the same 512 px pixel tensors', async () => {
    const model = await JinaCLIPModel.from_pretrained(dir, { dtype: 'fp32' });
    await assertPixelParity(embedder, (inputs) => model(inputs), 'image_embeddings');
    await model.dispose();
  });
});
