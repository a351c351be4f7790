/**
 * The tools that read collections: list_collections, search, find_similar, get_document. A
 * search takes what POST /v1/collections/{name}/search takes, checked by the same parsers
 * (search/query.ts, search/params.ts), and runs the same search (search/search.ts).
 */
import * as z from 'zod';
import { estimateTextTokens, IMAGE_TOKEN_ESTIMATE } from '../api/admission.ts';
import { TesseraError } from '../errors.ts';
import { fetchImage } from '../image/fetch.ts';
import { publicModel } from '../model/source.ts';
import { MAX_K, MAX_OFFSET, parseSearchParameters, type RawSearchParameters } from '../search/params.ts';
import { parseQuery, type QueryTerm } from '../search/query.ts';
import { searchCollection } from '../search/search.ts';
import type { VectorStore } from '../store/store.ts';
import { validateDocumentId } from '../store/validate.ts';
import type { McpHost } from './host.ts';
import { documentJson, hitsContent, picture, pictured } from './results.ts';
import { arg } from './schema.ts';
import { collectionArg, collectionOf, collectionRequired, jsonResult, optionalBoolean, optionalInteger, type ToolArgs, type ToolCall, type ToolDef } from './tools.ts';

/** Results that come with their picture at most, and by default. */
export const MAX_THUMBNAILS = 50;
export const DEFAULT_THUMBNAILS = 10;

const FILTER_HELP =
  'Metadata filter, as the search API takes it: {"field": value} for equality, {"field": {"$gte": 2020, "$lt": 2024}} ' +
  '($eq $ne $gt $gte $lt $lte $in), fields ANDed; photos: {"taken_at": {"$gte": "2021-06-01"}}, ' +
  '{"$near": {"lat": 38.72, "lon": -9.14, "km": 25}}, {"$within": {"south": 36, "west": -10, "north": 42, "east": -6}}.';

/** The knobs search and find_similar share, as the search API names them. */
const searchKnobs = {
  k: arg(z.number().int().min(1).max(MAX_K), 'How many results (default 10).'),
  offset: arg(z.number().int().min(0).max(MAX_OFFSET), 'Skip this many results first (paging; default 0).'),
  min_score: arg(z.number().min(-1).max(1), 'Only results at least this similar (cosine similarity, -1 to 1).'),
  filter: arg(z.record(z.string(), z.unknown()), FILTER_HELP),
  modality: arg(z.enum(['text', 'image']), 'Only text documents or only image documents (video frames and PDF page pictures are images).'),
  sort: arg(z.string(), 'Order of the results: "score" (default, best first) or a metadata key, with "-" in front for descending ("-taken_at": newest photos first). Use it with cutoff.'),
  cutoff: arg(z.union([z.literal('auto'), z.object({ relative: z.number().gt(0).max(1) })]), 'Keep only the results that stand out: "auto" (where the scores drop) or {"relative": r} (at least r times the best score).'),
  group: arg(z.boolean(), 'true (default): one result per video (its best moment, other moments listed) and per PDF (its best page); false: every frame and page a result of its own.'),
  collapse: arg(z.boolean(), 'true: near-identical documents (the same photo re-encoded or resized) as one result, the others listed under it (default false).'),
  thumbnails: arg(z.number().int().min(0).max(MAX_THUMBNAILS), `How many of the results come with their picture (a thumbnail of at most 256 px) as image content (default ${DEFAULT_THUMBNAILS}).`),
};

const knobsOf = (args: ToolArgs): RawSearchParameters => ({
  k: args.k,
  offset: args.offset,
  min_score: args.min_score,
  filter: args.filter,
  modality: args.modality,
  mode: args.mode,
  sort: args.sort,
  cutoff: args.cutoff,
  group: args.group,
  collapse: args.collapse,
});

/** Rate-limit estimate of a query before it is embedded (ids cost nothing: no model runs). */
const queryTokens = (terms: readonly QueryTerm[]) =>
  terms.reduce((sum, t) => sum + (t.kind === 'text' ? estimateTextTokens(t.text) : t.kind === 'id' ? 0 : IMAGE_TOKEN_ESTIMATE), 0);

/** Runs a search and answers with its hits and their pictures. */
async function searchAnswer(store: VectorStore, args: ToolArgs, call: ToolCall, terms: QueryTerm[], what: string) {
  const { host, caller } = call;
  const params = parseSearchParameters(knobsOf(args));
  const thumbnails = optionalInteger(args, 'thumbnails', 0, MAX_THUMBNAILS, DEFAULT_THUMBNAILS);
  const info = await collectionOf(store, args, host);
  // Documents alone ("more like this") need no model: their vectors are stored.
  const model = terms.some((t) => t.kind !== 'id') ? await host.collectionModel(info) : undefined;
  await caller.admit(queryTokens(terms));
  const outcome = await searchCollection(
    {
      store,
      embedder: model?.engine,
      model: { model: info.model, dtype: info.dtype },
      fetchImage: (url, signal) => fetchImage(url, host.fetchPolicy, signal),
    },
    info.name,
    { ...params, terms },
    call.signal,
  );
  caller.bill(outcome.embeddings);
  const n = outcome.hits.length;
  const summary = n === 0
    ? `No results in collection "${info.name}" for ${what}.`
    : `${n} result${n === 1 ? '' : 's'} in collection "${info.name}" for ${what}, best first${params.sort ? ` (sorted by ${args.sort})` : ''}:`;
  return { content: await hitsContent(host, info.name, outcome.hits, { pictures: thumbnails, summary, signal: call.signal }) };
}

/** What a query is, for the answer's first line. */
function describeQuery(terms: readonly QueryTerm[]): string {
  return terms
    .map((t) => (t.kind === 'text' ? JSON.stringify(t.text.length > 80 ? `${t.text.slice(0, 80)}…` : t.text) : t.kind === 'id' ? `documents like ${JSON.stringify(t.id)}` : 'the image'))
    .join(' + ');
}

export function readTools(host: McpHost, store: VectorStore): ToolDef[] {
  const collection = collectionArg(host);
  const imageForms = host.local ? 'base64, a data URI, an http(s) URL or a path to an image file' : 'base64, a data URI or an http(s) URL';
  const term = z.union([z.string(), z.object({ text: z.string() }), z.object({ image: z.string() }), z.object({ id: z.string() })]);
  const weighted = z.union([z.string(), z.object({ text: z.string(), weight: z.number().optional() }), z.object({ image: z.string(), weight: z.number().optional() }), z.object({ id: z.string(), weight: z.number().optional() })]);

  return [
    {
      name: 'list_collections',
      title: 'List collections',
      description: 'Lists the collections of the store that search can look in: name, model, number of documents.',
      args: {},
      annotations: { readOnlyHint: true, openWorldHint: false },
      async run() {
        const collections = await store.listCollections();
        return jsonResult(collections.map((c) => ({ name: c.name, model: publicModel(c.model), dtype: c.dtype, dimensions: c.dimensions, count: c.count })));
      },
    },
    {
      name: 'search',
      title: 'Search a collection',
      description:
        'Searches a collection of images, video frames, PDF pages and texts by meaning, with a multimodal (CLIP) model: ' +
        'by a text description ("a red car at night"), by an image, or by an example document. Answers the best results ' +
        'first, each with its id, score and metadata, and a thumbnail of the first ones as an image. A video is one result ' +
        '(its best moment; metadata video and t, other matching moments listed), a PDF one result (its best page; metadata pdf and page).',
      args: {
        collection,
        query: arg(
          z.union([term, z.array(weighted).min(1).max(32)]),
          `What to search for: a text; {"text": "..."}; {"image": "..."} with the image as ${imageForms}; {"id": "..."} for documents like that ` +
            'document of the collection (itself left out); or a list of these, each with an optional "weight" (negative: away from it), e.g. ' +
            '[{"text": "beach"}, {"text": "people", "weight": -0.5}].',
        ),
        mode: arg(z.enum(['vector', 'hybrid']), '"vector" (default): by meaning; "hybrid": meaning and full-text (BM25) matches of the query\'s words fused (needs a text).'),
        ...searchKnobs,
      },
      required: [...collectionRequired(host), 'query'],
      annotations: { readOnlyHint: true, openWorldHint: false },
      run(args, call) {
        const terms = parseQuery(args.query, 'query', host.limits.maxTextChars);
        return searchAnswer(store, args, call, terms, describeQuery(terms));
      },
    },
    {
      name: 'find_similar',
      title: 'Find similar documents',
      description: 'Finds the documents of a collection most like one of its documents (by its id; itself left out): near-duplicates, other photos of the same scene, related pages. Answers as search does.',
      args: { collection, id: arg(z.string(), 'The id of the example document, as search or get_document gives it.'), ...searchKnobs },
      required: [...collectionRequired(host), 'id'],
      annotations: { readOnlyHint: true, openWorldHint: false },
      run(args, call) {
        const id = validateDocumentId(args.id, 'id');
        return searchAnswer(store, args, call, [{ kind: 'id', id, weight: 1, field: 'id' }], `documents like ${JSON.stringify(id)}`);
      },
    },
    {
      name: 'get_document',
      title: 'Get a document',
      description: 'One document of a collection by its id: its whole text, or its image (where it is, and its picture as image content), its metadata and content hash.',
      args: { collection, id: arg(z.string(), 'The document\'s id, as search gives it.'), thumbnail: arg(z.boolean(), 'Whether an image document comes with its picture (default true).') },
      required: [...collectionRequired(host), 'id'],
      annotations: { readOnlyHint: true, openWorldHint: false },
      async run(args, call) {
        const id = validateDocumentId(args.id, 'id');
        const withPicture = optionalBoolean(args, 'thumbnail', true);
        const info = await collectionOf(store, args, host);
        const [doc] = await store.get(info.name, [id]);
        if (!doc) throw new TesseraError('DOCUMENT_NOT_FOUND', `collection ${JSON.stringify(info.name)} holds no document ${JSON.stringify(id)}`);
        const answer = jsonResult(documentJson(host, doc));
        if (withPicture && pictured(doc)) {
          try {
            answer.content.push(await picture(host, info.name, doc, call.signal));
          } catch (err) {
            answer.content.push({ type: 'text', text: `(no picture: ${err instanceof Error ? err.message : String(err)})` });
          }
        }
        return answer;
      },
    },
  ];
}
