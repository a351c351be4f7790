// The loader reads output names off the graph: the same forged model, re-exported with the
// output names real exports use, gives the same vectors.
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { Embedder } from '../../src/engine/embedder.ts';
import { ModelProto, type Node, type ValueInfo } from '../../src/forge/onnx-proto.ts';
import { forged, forgedCopy, maxAbsDiff } from '../helpers/models.ts';
import { noiseImage } from '../helpers/images.ts';

interface Graph { node: Node[]; output: ValueInfo[] }
interface Model { graph: Graph }

/** Rewrites one ONNX file of a model folder in place. */
async function rewrite(file: string, change: (graph: Graph) => void): Promise<void> {
  const model = ModelProto.toObject(ModelProto.decode(await readFile(file)), { longs: Number, bytes: Buffer, defaults: false }) as Model;
  change(model.graph);
  await writeFile(file, ModelProto.encode(ModelProto.fromObject(model)).finish());
}

function floatOutput(name: string, dims: (string | number)[]): ValueInfo {
  return { name, type: { tensorType: { elemType: 1, shape: { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) } } } };
}

/** Renames what a graph outputs, by adding an Identity (or another op) behind it. */
function replaceOutput(graph: Graph, from: string, to: string, op = 'Identity', dims: (string | number)[] = ['batch_size', 32]): void {
  graph.node.push({ name: `rename_${to}`, opType: op, input: [from], output: [to], attribute: op === 'LpNormalization' ? [{ name: 'axis', type: 2, i: -1 }, { name: 'p', type: 2, i: 2 }] : [] });
  graph.output = [floatOutput(to, dims)];
}

const texts = ['a photo of a cat', 'a much longer sentence about a dog running in a park', 'x'];
let reference: { texts: Float32Array[]; images: Float32Array[] };
let images: Buffer[];

before(async () => {
  images = await Promise.all([noiseImage(320, 240, 1), noiseImage(100, 300, 2)]);
  const embedder = await Embedder.load(await forged('tiny'));
  reference = {
    texts: (await embedder.embedTexts(texts)).map((r) => r.embedding),
    images: (await embedder.embedImages(images)).map((r) => r.embedding),
  };
  await embedder.close();
});

async function assertSameVectors(dir: string, expectOutputs: { text: string; image: string }) {
  const embedder = await Embedder.load(dir);
  try {
    assert.equal(embedder.model.text.output.name, expectOutputs.text);
    assert.equal(embedder.model.vision.output.name, expectOutputs.image);
    const gotTexts = (await embedder.embedTexts(texts)).map((r) => r.embedding);
    const gotImages = (await embedder.embedImages(images)).map((r) => r.embedding);
    gotTexts.forEach((v, i) => assert.ok(maxAbsDiff(v, reference.texts[i]!) <= 1e-5, `text ${i}: ${maxAbsDiff(v, reference.texts[i]!)}`));
    gotImages.forEach((v, i) => assert.ok(maxAbsDiff(v, reference.images[i]!) <= 1e-5, `image ${i}: ${maxAbsDiff(v, reference.images[i]!)}`));
  } finally {
    await embedder.close();
  }
}

test('*_embeddings outputs', async () => {
  const dir = await forgedCopy('tiny');
  await rewrite(join(dir, 'onnx/text_model.onnx'), (g) => replaceOutput(g, 'text_embeds', 'text_embeddings'));
  await rewrite(join(dir, 'onnx/vision_model.onnx'), (g) => replaceOutput(g, 'image_embeds', 'image_embeddings'));
  await assertSameVectors(dir, { text: 'text_embeddings', image: 'image_embeddings' });
});

test('l2norm_* outputs are taken as already normalised', async () => {
  const dir = await forgedCopy('tiny');
  await rewrite(join(dir, 'onnx/text_model.onnx'), (g) => replaceOutput(g, 'text_embeds', 'l2norm_text_embeddings', 'LpNormalization'));
  await rewrite(join(dir, 'onnx/vision_model.onnx'), (g) => replaceOutput(g, 'image_embeds', 'l2norm_image_embeddings', 'LpNormalization'));
  await assertSameVectors(dir, { text: 'l2norm_text_embeddings', image: 'l2norm_image_embeddings' });
  const embedder = await Embedder.load(dir);
  assert.ok(embedder.model.text.output.normalized);
  await embedder.close();
});

test('a text graph that outputs last_hidden_state is mean-pooled over real tokens by tessera', async () => {
  for (const attentionMask of [true, false]) {
    const dir = await forgedCopy('tiny', attentionMask);
    await rewrite(join(dir, 'onnx/text_model.onnx'), (g) => {
      // The hidden state is what the graph's pooling reduces.
      const pool = g.node.find((n) => n.opType === (attentionMask ? 'Mul' : 'ReduceMean') && n.name.startsWith('/pooler/'))!;
      replaceOutput(g, pool.input[0]!, 'last_hidden_state', 'Identity', ['batch_size', 'sequence_length', 32]);
    });
    const embedder = await Embedder.load(dir);
    try {
      assert.equal(embedder.model.text.output.name, 'last_hidden_state');
      assert.equal(embedder.model.text.output.pooling, 'mean');
      const got = (await embedder.embedTexts(texts)).map((r) => r.embedding);
      got.forEach((v, i) => assert.ok(maxAbsDiff(v, reference.texts[i]!) <= 1e-5, `text ${i} (mask ${attentionMask})`));
    } finally {
      await embedder.close();
    }
  }
});

test('a graph without a usable output fails at load, naming the file and its outputs', async () => {
  const dir = await forgedCopy('tiny');
  await rewrite(join(dir, 'onnx/vision_model.onnx'), (g) => replaceOutput(g, 'image_embeds', 'logits'));
  await assert.rejects(Embedder.load(dir), /vision_model\.onnx: no embedding output among \[logits\]/);
});
