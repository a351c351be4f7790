// The path a user of the OpenAI CLIP baseline takes: `--model Xenova/clip-vit-base-patch16`
// downloads from the hub (here a stand-in serving the forged clip-tiny under that name), then
// the server answers the Jina API with it, limits included.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { parseServerConfig } from '../../src/api/config.ts';
import { createServer, type TesseraServer } from '../../src/api/server.ts';
import { servedName } from '../../src/cli/options.ts';
import { Embedder } from '../../src/engine/embedder.ts';
import { forgeModel } from '../../src/forge/index.ts';
import { useStandInHub } from '../helpers/hub-server.ts';
import { noiseImage } from '../helpers/images.ts';
import { maxAbsDiff, tempDir } from '../helpers/models.ts';

const REPO = 'Xenova/clip-vit-base-patch16';
let dir: string;
let embedder: Embedder | undefined;
let server: TesseraServer | undefined;

useStandInHub(async () => {
  dir = await tempDir('tessera-clip-hub-model-');
  await forgeModel({ preset: 'clip-tiny', outDir: dir });
  return [{ id: REPO, dir }];
}, () => tempDir('tessera-hf-cache-'));
after(async () => {
  await server?.app.close();
  await embedder?.close();
});

test(`${REPO} downloads, embeds as the local folder does, and is served over HTTP`, async () => {
  const local = await Embedder.load(dir);
  const [expected] = await local.embedTexts(['a photo of a cat']);
  await local.close();

  embedder = await Embedder.load(REPO);
  assert.equal(embedder.model.modelType, 'clip');
  const [downloaded] = await embedder.embedTexts(['a photo of a cat']);
  assert.ok(maxAbsDiff(downloaded!.embedding, expected!.embedding) <= 1e-6);

  const name = servedName(REPO);
  assert.equal(name, 'clip-vit-base-patch16');
  const config = parseServerConfig(['--port', '0'], {});
  server = createServer({ config, servedName: name, aliases: [REPO], apiKeys: null });
  await server.attach(embedder);
  const url = await server.app.listen({ host: '127.0.0.1', port: 0 });
  const post = (body: unknown) => fetch(`${url}/v1/embeddings`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

  const image = (await noiseImage(448, 300, 4, 'jpeg')).toString('base64');
  const ok = await post({ model: name, input: ['a photo of a cat', { image }] });
  assert.equal(ok.status, 200, await ok.clone().text());
  const body = (await ok.json()) as { model: string; usage: { image_tokens: number }; data: { embedding: number[] }[] };
  assert.equal(body.model, name);
  assert.equal(body.data.length, 2);
  assert.equal(body.data[0]!.embedding.length, 24);
  assert.ok(maxAbsDiff(body.data[0]!.embedding, downloaded!.embedding) <= 1e-6);
  assert.equal(body.usage.image_tokens, 2 * 2 * 1000);

  const long = 'a photo of a red car next to a blue house. '.repeat(12);
  const refused = await post({ model: REPO, input: ['short', long] });
  assert.equal(refused.status, 422);
  const error = (await refused.json()) as { code: string; detail: string };
  assert.equal(error.code, 'TEXT_TOO_LONG');
  assert.match(error.detail, /^input\[1\]: text has \d+ tokens but the model accepts at most 77/);

  const truncated = await post({ model: name, input: [long], truncate: true });
  assert.equal(truncated.status, 200);
  assert.equal(((await truncated.json()) as { usage: { total_tokens: number } }).usage.total_tokens, 77);
});
