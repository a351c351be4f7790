// Clients written for Jina's and OpenAI's hosted APIs work against tessera by changing the URL.
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import OpenAI from 'openai';
import { embedMany } from 'ai';
import { createJina } from 'jina-ai-provider';
import { maxAbsDiff } from '../helpers/models.ts';
import { noiseImage } from '../helpers/images.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

let api: TestServer;
const texts = ['a photo of a cat', 'a diagram of a transformer', 'Zwölf Boxkämpfer'];

before(async () => {
  api = await startServer();
});

async function plainFloats(input: unknown[]): Promise<Float32Array[]> {
  const response = await api.post('/v1/embeddings', { model: 'jina-clip-v1', input, encoding_type: 'float' });
  const body = (await response.json()) as { data: { embedding: number[] }[] };
  return body.data.map((d) => Float32Array.from(d.embedding));
}

test('the OpenAI Node SDK (base64 by default) gets the same vectors as a plain request', async () => {
  const client = new OpenAI({ baseURL: `${api.url}/v1`, apiKey: 'unused' });
  const expected = await plainFloats(texts);
  const viaBase64 = await client.embeddings.create({ model: 'jina-clip-v1', input: texts });
  assert.equal(viaBase64.data.length, texts.length);
  viaBase64.data.forEach((d, i) => assert.ok(maxAbsDiff(d.embedding, expected[i]!) <= 1e-6));
  assert.ok(viaBase64.usage.prompt_tokens > 0 && viaBase64.usage.total_tokens === viaBase64.usage.prompt_tokens);
  const viaFloat = await client.embeddings.create({ model: 'jina-clip-v1', input: 'a photo of a cat', encoding_format: 'float' });
  assert.ok(maxAbsDiff(viaFloat.data[0]!.embedding, expected[0]!) <= 1e-6);
});

test('the OpenAI SDK surfaces tessera\'s errors', async () => {
  const client = new OpenAI({ baseURL: `${api.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  await assert.rejects(client.embeddings.create({ model: 'text-embedding-3-small', input: 'x' }), (err: unknown) => {
    assert.ok(err instanceof OpenAI.BadRequestError);
    return true;
  });
});

test('the Vercel AI SDK Jina provider works unchanged but for its base URL', async () => {
  const jina = createJina({ baseURL: `${api.url}/v1`, apiKey: 'any' });
  const expected = await plainFloats(texts);
  const { embeddings, usage } = await embedMany({ model: jina.textEmbeddingModel('jina-clip-v1'), values: texts });
  embeddings.forEach((e, i) => assert.ok(maxAbsDiff(e, expected[i]!) <= 1e-6));
  assert.ok(usage.tokens > 0);

  const image = (await noiseImage(200, 120, 3)).toString('base64');
  const values = [{ text: 'a photo of a cat' }, { image }];
  const mixed = await embedMany({ model: jina.multiModalEmbeddingModel('jina-clip-v1'), values });
  const expectedMixed = await plainFloats(values);
  mixed.embeddings.forEach((e, i) => assert.ok(maxAbsDiff(e, expectedMixed[i]!) <= 1e-6));
});
