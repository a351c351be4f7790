/**
 * The tools that only run the model: embed and classify. They take the fields of POST
 * /v1/embeddings and POST /v1/classify, checked by the same parsers (api/request.ts,
 * api/classifier-request.ts), so a bad value gets the error it gets over HTTP.
 */
import * as z from 'zod';
import { estimateTokens } from '../api/admission.ts';
import { parseClassifyByIdRequest } from '../api/classifier-request.ts';
import { parseClassifyRequest, parseEmbeddingsRequest, type RequestItem } from '../api/request.ts';
import { mapConcurrent } from '../concurrency.ts';
import { classify } from '../engine/classify.ts';
import type { EmbedItem } from '../engine/embedder.ts';
import { TesseraError } from '../errors.ts';
import { fetchImage } from '../image/fetch.ts';
import type { McpHost } from './host.ts';
import { arg } from './schema.ts';
import { jsonResult, type ToolArgs, type ToolCall, type ToolDef } from './tools.ts';

/**
 * The parsers want a model name, which tools may leave out (the host's default model is then
 * used): this stands in for it while parsing only.
 */
const UNNAMED = '(default)';
const withModel = (args: ToolArgs) => ({ ...args, model: args.model ?? UNNAMED });
const requested = (args: ToolArgs) => (args.model === undefined || args.model === null ? undefined : String(args.model));

/** Request items as engine items, image URLs downloaded (a bounded number at once) with the host's policy. */
async function engineItems(host: McpHost, items: readonly RequestItem[], signal?: AbortSignal): Promise<EmbedItem[]> {
  return mapConcurrent(items, host.fetchConcurrency, async (item, index, inner) => {
    if (item.kind === 'text') return { text: item.text };
    if (item.kind === 'image') return { image: item.data };
    try {
      return { image: await fetchImage(item.url, host.fetchPolicy, inner) };
    } catch (err) {
      throw err instanceof TesseraError ? err.forItem(index) : err;
    }
  }, signal);
}

/** float32 values in the fewest digits that give them back exactly (9), not float64's 17. */
const compact = (vector: Float32Array) => Array.from(vector, (v) => Number(v.toPrecision(9)));

export function modelTools(host: McpHost): ToolDef[] {
  const imageForms = host.local ? 'base64, a data URI, an http(s) URL or a path to an image file' : 'base64, a data URI or an http(s) URL';
  const item = z.union([z.string(), z.object({ text: z.string() }), z.object({ image: z.string() })]);
  const input = arg(z.union([item, z.array(item).min(1)]), `What to embed or classify: a text, {"text": "..."}, {"image": "..."} (${imageForms}), or a list of them.`);
  const model = arg(z.string(), 'The model, by the name answers give it (default: the default model).');
  const tools: ToolDef[] = [
    {
      name: 'embed',
      title: 'Embed texts and images',
      description: 'Embeds texts and images with the multimodal model into one vector space (as the Jina Embeddings API): texts and images about the same thing get close vectors. Answers the vectors as JSON.',
      args: {
        input,
        model,
        dimensions: arg(z.number().int().min(1), 'Keep the first N values of each vector (models trained for it: jina-clip-v2).'),
        normalized: arg(z.boolean(), 'Unit-length vectors (default true).'),
        task: arg(z.string(), 'What the texts are for, e.g. "retrieval.query" (models with task instructions: jina-clip-v2).'),
        truncate: arg(z.boolean(), 'Cut texts over the model\'s limit instead of failing (default false).'),
      },
      required: ['input'],
      annotations: { readOnlyHint: true, openWorldHint: false },
      async run(args, call) {
        const body = parseEmbeddingsRequest(withModel(args), host.limits);
        await call.caller.admit(estimateTokens(body.items));
        const handle = await host.model(requested(args));
        const results = await handle.engine.embed(await engineItems(host, body.items, call.signal), {
          normalize: body.normalized,
          truncate: body.truncate,
          task: body.task,
          dimensions: body.dimensions,
          signal: call.signal,
        });
        const usage = call.caller.bill(results);
        return jsonResult({ model: handle.name, usage, data: results.map((r, index) => ({ index, embedding: compact(r.embedding) })) });
      },
    },
  ];
  tools.push({
    name: 'classify',
    title: 'Classify texts and images',
    description:
      'Classifies texts and images: zero-shot against labels you give (e.g. ["a cat", "a dog", "a bird"]: descriptive labels work best), ' +
      'or with a few-shot classifier trained on examples (classifier_id, from tessera train or POST /v1/train). Answers each item\'s best label and every label\'s score.',
    args: {
      input,
      labels: arg(z.array(z.string()).min(2), 'Zero-shot: the labels to choose from (at least two).'),
      classifier_id: arg(z.string(), 'Few-shot: a classifier\'s id, instead of labels and model.'),
      model,
    },
    required: ['input'],
    annotations: { readOnlyHint: true, openWorldHint: false },
    async run(args, call) {
      const byId = parseClassifyByIdRequest(args, host.limits);
      if (byId) return classifyById(host, call, byId.classifierId, byId.items);
      const body = parseClassifyRequest(withModel(args), host.limits);
      await call.caller.admit(estimateTokens(body.items) + estimateTokens(body.labels.map((text) => ({ kind: 'text', text }))));
      const handle = await host.model(requested(args));
      const labels = await handle.engine.embedTexts(body.labels, { signal: call.signal });
      const results = await handle.engine.embed(await engineItems(host, body.items, call.signal), { normalize: true, truncate: false, signal: call.signal });
      const usage = call.caller.bill([...results, ...labels]);
      const vectors = labels.map((l) => l.embedding);
      return jsonResult({ model: handle.name, usage, data: results.map((r, index) => ({ index, ...classify(r.embedding, vectors, body.labels) })) });
    },
  });
  return tools;
}

async function classifyById(host: McpHost, call: ToolCall, id: string, items: RequestItem[]) {
  if (!host.classifiers) throw new TesseraError('CLASSIFIER_NOT_FOUND', `no classifier ${JSON.stringify(id)}: there is no store, so no classifiers`);
  await call.caller.admit(estimateTokens(items));
  const record = await host.classifiers.usable(id, call.caller.owner);
  const handle = await host.classifierModel(record);
  const results = await handle.engine.embed(await engineItems(host, items, call.signal), { normalize: true, truncate: false, signal: call.signal });
  const classified = await host.classifiers.classify(record, results.map((r) => r.embedding));
  const usage = call.caller.bill(results);
  return jsonResult({ model: handle.name, usage, data: classified.map((c, index) => ({ index, ...c })) });
}
