// The whole path a user takes: Embedder.load('owner/name') downloads a forged model from a
// stand-in hub (HF_ENDPOINT), embeds, and loads again offline from the cache.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Embedder } from '../../src/engine/embedder.ts';
import { TesseraError } from '../../src/errors.ts';
import { useStandInHub } from '../helpers/hub-server.ts';
import { forged, maxAbsDiff, tempDir } from '../helpers/models.ts';

const stub = useStandInHub(async () => [{ id: 'forge/tiny-clip', dir: await forged('tiny') }], () => tempDir('tessera-hf-cache-'));

test('a hub model downloads once, embeds, and loads again offline', async () => {
  const local = await Embedder.load(await forged('tiny'));
  const [expected] = await local.embedTexts(['a photo of a cat']);
  await local.close();

  const online = await Embedder.load('forge/tiny-clip');
  const [first] = await online.embedTexts(['a photo of a cat']);
  await online.close();
  assert.ok(maxAbsDiff(first!.embedding, expected!.embedding) <= 1e-6);
  assert.ok(stub().fileRequests('onnx/text_model.onnx').length > 0);

  await stub().close();
  process.env.HF_HUB_OFFLINE = '1';
  const offline = await Embedder.load('forge/tiny-clip');
  const [again] = await offline.embedTexts(['a photo of a cat']);
  await offline.close();
  assert.ok(maxAbsDiff(again!.embedding, expected!.embedding) <= 1e-6);

  await assert.rejects(Embedder.load('forge/never-downloaded'), (err: unknown) => {
    assert.ok(err instanceof TesseraError);
    assert.equal(err.code, 'HUB_OFFLINE');
    assert.match(err.message, /--model demo/);
    return true;
  });
});
