// The forged v2 folder as transformers.js 4.3.2 reads the hub's jinaai/jina-clip-v2:
// JinaCLIPModel.from_pretrained loads onnx/model.onnx with its external data and gives
// what ONNX Runtime gives on the same inputs; AutoTokenizer and @huggingface/tokenizers
// (what tessera uses) give the same ids on text of many scripts.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { AutoTokenizer, env, JinaCLIPModel, Tensor } from '@huggingface/transformers';
import { Tokenizer } from '@huggingface/tokenizers';
import * as ort from 'onnxruntime-node';
import { forgeModel, V2_PRESETS, V2_SPECIAL_TOKENS } from '../src/forge/index.ts';

const S = V2_PRESETS['v2-tiny'].vision.imageSize;
const IMAGE = 3 * S * S;
let root: string;
let dir: string;

before(async () => {
  env.allowRemoteModels = false;
  root = await mkdtemp(join(tmpdir(), 'tessera-forge-v2-tjs-'));
  dir = join(root, 'v2-tiny');
  await forgeModel({ preset: 'v2-tiny', outDir: dir, seed: 3 });
});

after(async () => {
  await rm(root, { recursive: true, force: true });
});

/** Covered scripts only (their characters are pieces): no <unk> may come out of these. */
const COVERED = [
  'A red car parked near the house',
  'Représentez la requête : une voiture rouge, très élégante à Noël',
  'Die Straße ist grün und weiß; Grüße aus München!',
  '¿Dónde está el niño? ¡Mañana!',
  'Красная машина стоит у дома, ёлка зелёная',
  '赤い車が家の前に止まっています。',
  '红色的汽车停在房子前面',
  'سيارة حمراء أمام البيت',
  '안녕하세요 한국어',
  'I love 🍕 and 👍🏽 ❤️!',
  '',
  '   leading and    inner   spaces   ',
  'ＦＵＬＬＷＩＤＴＨ ｔｅｘｔ and ﬁ ligature', // NFKC folds both
  Array.from({ length: 60 }, (_, i) => ['photo', 'Foto', 'фото', '写真', 'صورة'][i % 5]).join(' '),
];
/** Not covered: whatever comes out, both libraries must agree. */
const OTHER = ['ℌ𝔢𝔩𝔩𝔬 ᚠᚢᚦ ꦲꦏ꧀ꦱꦫ', 'tab\tand\nnewline', 'mixed 日本 and עברית'];

test('AutoTokenizer and @huggingface/tokenizers give the same ids on text of many scripts', async () => {
  const tokenizer = new Tokenizer(JSON.parse(await readFile(join(dir, 'tokenizer.json'), 'utf8')), JSON.parse(await readFile(join(dir, 'tokenizer_config.json'), 'utf8')));
  const auto = await AutoTokenizer.from_pretrained(dir);
  assert.equal(auto.constructor.name, 'XLMRobertaTokenizer');
  for (const text of [...COVERED, ...OTHER]) {
    const ours = tokenizer.encode(text).ids;
    const theirs = auto.encode(text);
    assert.deepEqual(theirs, ours, JSON.stringify(text));
    assert.equal(ours[0], V2_SPECIAL_TOKENS.bos.id);
    assert.equal(ours.at(-1), V2_SPECIAL_TOKENS.eos.id);
    if (COVERED.includes(text)) assert.ok(!ours.includes(V2_SPECIAL_TOKENS.unk.id), `<unk> in ${JSON.stringify(text)}: ${tokenizer.encode(text).tokens.join(' ')}`);
  }
  // Words are pieces, not letters: the ids mean something.
  assert.deepEqual(tokenizer.encode('une voiture rouge', { add_special_tokens: false }).tokens, ['▁une', '▁voiture', '▁rouge']);
  assert.deepEqual(tokenizer.encode('красная машина', { add_special_tokens: false }).tokens, ['▁красная', '▁машина']);
});

test('JinaCLIPModel.from_pretrained loads the folder and equals ONNX Runtime on text-only and image-only calls', async () => {
  const auto = await AutoTokenizer.from_pretrained(dir);
  const model = await JinaCLIPModel.from_pretrained(dir, { dtype: 'fp32' });
  const session = await ort.InferenceSession.create(join(dir, 'onnx', 'model.onnx'));
  try {
    const texts = COVERED.slice(0, 6);
    const inputs = auto(texts, { padding: true, truncation: true });
    const theirs = await model(inputs);
    assert.deepEqual(Object.keys(theirs).sort(), ['l2norm_text_embeddings', 'text_embeddings']);

    const ids = inputs.input_ids as Tensor;
    const ours = await session.run({
      input_ids: new ort.Tensor('int64', ids.data as BigInt64Array, ids.dims),
      pixel_values: new ort.Tensor('float32', new Float32Array(0), [0, 3, S, S]),
    });
    for (const name of ['text_embeddings', 'l2norm_text_embeddings']) {
      assert.deepEqual(theirs[name].dims, ours[name]!.dims);
      assertClose(theirs[name].data as Float32Array, ours[name]!.data as Float32Array, name);
    }

    const pixels = Float32Array.from({ length: 2 * IMAGE }, (_, i) => 1.2 * Math.sin(i * 0.0071) * Math.cos(i * 0.00013));
    const images = await model({ pixel_values: new Tensor('float32', pixels, [2, 3, S, S]) });
    assert.deepEqual(Object.keys(images).sort(), ['image_embeddings', 'l2norm_image_embeddings']);
    const oursImages = await session.run({
      input_ids: new ort.Tensor('int64', BigInt64Array.from([1n, 1n]), [2, 1]),
      pixel_values: new ort.Tensor('float32', pixels, [2, 3, S, S]),
    });
    for (const name of ['image_embeddings', 'l2norm_image_embeddings']) {
      assert.deepEqual(images[name].dims, oursImages[name]!.dims);
      assertClose(images[name].data as Float32Array, oursImages[name]!.data as Float32Array, name);
    }
  } finally {
    await Promise.all([model.dispose(), session.release()]);
  }
});

function assertClose(a: Float32Array, b: Float32Array, what: string): void {
  assert.equal(a.length, b.length, what);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  assert.ok(worst <= 1e-5, `${what}: max |diff| ${worst}`);
}
