/**
 * The search path both the HTTP API and the CLI take: query terms -> one vector (the
 * normalised weighted sum of their embeddings) -> the store's vector search, or in hybrid
 * mode that fused with full-text (BM25) results by reciprocal rank fusion.
 */
import type { Embedder, EmbedItem, Embedding } from '../engine/embedder.ts';
import { TesseraError } from '../errors.ts';
import type { ModelRef, SearchHit, SearchOptions, VectorStore } from '../store/store.ts';
import { requireCollection } from './collection.ts';
import { applyCutoff, MAX_CANDIDATES } from './cutoff.ts';
import { reciprocalRankFusion } from './fusion.ts';
import { MAX_K, type SearchParameters } from './params.ts';
import type { QueryTerm } from './query.ts';
import { sortByMetadata } from './sort.ts';

export interface SearchDeps {
  store: VectorStore;
  /** The loaded model; it must be `model`. Queries of document ids alone need none. */
  embedder?: Embedder;
  model: ModelRef;
  /** Downloads `{kind: 'url'}` terms (the server's SSRF-safe fetcher); without it URLs are refused. */
  fetchImage?: (url: string, signal?: AbortSignal) => Promise<Uint8Array>;
}

export interface SearchInput extends SearchParameters {
  terms: readonly QueryTerm[];
}

export interface SearchOutcome {
  /** Best first. Vector mode: cosine similarity; hybrid: the fused RRF score. */
  hits: SearchHit[];
  /** What the model embedded for the query: usage and timings come from these. */
  embeddings: Embedding[];
}

/** Candidates each side of a hybrid search contributes at least, so fusion sees past the page. */
export const HYBRID_DEPTH = 100;

const fieldOf = (term: QueryTerm, index: number) => term.field ?? `query[${index}]`;

/** The query's vector: the normalised weighted sum of each term's unit vector; undefined when that sum is zero. */
export async function queryVector(
  deps: SearchDeps,
  collection: string,
  terms: readonly QueryTerm[],
  signal?: AbortSignal,
): Promise<{ vector: Float32Array | undefined; embeddings: Embedding[] }> {
  if (terms.length === 0) throw new TesseraError('QUERY_INVALID', 'the query is empty: give a text, an image or a document id');
  const vectors = new Array<Float32Array>(terms.length);

  const ids = terms.flatMap((t, i) => (t.kind === 'id' ? [{ id: t.id, i }] : []));
  if (ids.length > 0) {
    const found = await deps.store.get(collection, ids.map((x) => x.id), { vectors: true });
    const byId = new Map(found.map((d) => [d.id, d.vector]));
    for (const { id, i } of ids) {
      const vector = byId.get(id);
      if (!vector) throw new TesseraError('QUERY_DOCUMENT_NOT_FOUND', `${fieldOf(terms[i]!, i)}: collection ${JSON.stringify(collection)} holds no document ${JSON.stringify(id)}`);
      vectors[i] = vector;
    }
  }

  const toEmbed: { i: number; item: EmbedItem }[] = [];
  for (const [i, term] of terms.entries()) {
    if (term.kind === 'text') toEmbed.push({ i, item: { text: term.text } });
    else if (term.kind === 'image') toEmbed.push({ i, item: { image: term.image } });
    else if (term.kind === 'url') {
      if (!deps.fetchImage) throw new TesseraError('QUERY_INVALID', `${fieldOf(term, i)}: image URLs are not accepted here`);
      try {
        toEmbed.push({ i, item: { image: await deps.fetchImage(term.url, signal) } });
      } catch (err) {
        throw err instanceof TesseraError ? renamed(err, fieldOf(term, i)) : err;
      }
    }
  }
  let embeddings: Embedding[] = [];
  if (toEmbed.length > 0) {
    if (!deps.embedder) throw new TesseraError('NOT_READY', 'this query needs the model, and none is loaded');
    try {
      // Text terms are queries: a model with a query instruction (jina-clip-v2) gets it, as
      // its model card embeds queries for both text and image search; images are unaffected.
      embeddings = await deps.embedder.embed(toEmbed.map((e) => e.item), { truncate: false, signal, task: deps.embedder.queryTask });
    } catch (err) {
      if (err instanceof TesseraError && err.item !== undefined && toEmbed[err.item]) {
        const { i } = toEmbed[err.item]!;
        throw renamed(err, fieldOf(terms[i]!, i));
      }
      throw err;
    }
    embeddings.forEach((e, k) => (vectors[toEmbed[k]!.i] = e.embedding));
  }

  const dimensions = vectors[0]!.length;
  const sum = new Float32Array(dimensions);
  terms.forEach((term, i) => {
    const v = vectors[i]!;
    for (let d = 0; d < dimensions; d++) sum[d]! += term.weight * v[d]!;
  });
  let norm = 0;
  for (let d = 0; d < dimensions; d++) norm += sum[d]! * sum[d]!;
  norm = Math.sqrt(norm);
  // Zero: the weights cancel out, or the model reads nothing in the text (the forged colour
  // model does that to words that are not colours). The caller decides what that means.
  if (!(norm > 1e-6)) return { vector: undefined, embeddings };
  for (let d = 0; d < dimensions; d++) sum[d]! /= norm;
  return { vector: sum, embeddings };
}

/** The same error, its message naming `field` instead of the engine's "input[n]". */
function renamed(err: TesseraError, field: string): TesseraError {
  const message = err.message.replace(/^input\[\d+\]: /, '');
  return new TesseraError(err.code, `${field}: ${message}`, { cause: err.cause, headers: err.headers });
}

/** The first `n` results of a paged search, in pages the store accepts (k <= 1000). */
async function firstResults(n: number, page: (k: number, offset: number) => Promise<SearchHit[]>): Promise<SearchHit[]> {
  const out: SearchHit[] = [];
  while (out.length < n) {
    const k = Math.min(MAX_K, n - out.length);
    const hits = await page(k, out.length);
    out.push(...hits);
    if (hits.length < k) break;
  }
  return out;
}

/** Searches `collection`: COLLECTION_NOT_FOUND, COLLECTION_MODEL_MISMATCH, QUERY_*, SEARCH_PARAMETER_INVALID. */
export async function searchCollection(deps: SearchDeps, collection: string, input: SearchInput, signal?: AbortSignal): Promise<SearchOutcome> {
  const info = await requireCollection(deps.store, collection, deps.model);
  // Full text reads words, so hybrid needs words to read: the query's texts that pull towards.
  const lexical = input.terms.flatMap((t) => (t.kind === 'text' && t.weight > 0 ? [t.text] : [])).join(' ');
  if (input.mode === 'hybrid' && lexical === '') {
    throw new TesseraError('SEARCH_PARAMETER_INVALID', 'mode: "hybrid" needs a text in the query (full-text search reads words); use "vector" for image or document queries');
  }
  const { vector, embeddings } = await queryVector(deps, collection, input.terms, signal);
  if (!vector && input.mode === 'vector') {
    throw new TesseraError('QUERY_INVALID', 'query: its embedding is the zero vector (the weighted terms cancel out, or the model reads nothing in them); change the weights or the words');
  }
  if (vector && vector.length !== info.dimensions) {
    throw new TesseraError('COLLECTION_MODEL_MISMATCH', `the query vector has ${vector.length} dimensions but collection ${JSON.stringify(collection)} holds ${info.dimensions}`);
  }
  const excludeIds = input.terms.flatMap((t) => (t.kind === 'id' ? [t.id] : []));
  const common: Omit<SearchOptions, 'k' | 'offset'> = { filter: input.filter, modality: input.modality, excludeIds };
  const { cutoff, sort } = input;

  if (input.mode === 'vector' && vector && !cutoff && !sort) {
    const hits = await deps.store.search(collection, { ...common, vector, k: input.k, offset: input.offset, minScore: input.minScore });
    return { hits, embeddings };
  }

  // Cut-offs and sorts work on one fixed set of candidates, the same for every page: the best
  // MAX_CANDIDATES (auto and sorts look at the whole curve), or the page's depth for a relative
  // cut-off in relevance order (it only needs the best hit).
  const depth = cutoff?.kind === 'auto' || sort ? MAX_CANDIDATES : input.offset + input.k;
  let ranked: SearchHit[];
  if (input.mode === 'vector' && vector) {
    ranked = await firstResults(depth, (k, offset) => deps.store.search(collection, { ...common, vector, k, offset, minScore: input.minScore }));
  } else {
    const sideDepth = Math.max(depth, HYBRID_DEPTH);
    // A zero query vector ranks nothing: hybrid then rests on the words alone.
    const [semantic, words] = await Promise.all([
      vector ? firstResults(sideDepth, (k, offset) => deps.store.search(collection, { ...common, vector, k, offset, minScore: input.minScore })) : [],
      firstResults(sideDepth, (k, offset) => deps.store.fullTextSearch(collection, { ...common, text: lexical, k, offset })),
    ]);
    const docs = new Map<string, SearchHit>();
    for (const hit of [...words, ...semantic]) docs.set(hit.id, hit);
    const fused = reciprocalRankFusion([semantic.map((h) => h.id), words.map((h) => h.id)]);
    ranked = fused.slice(0, depth).map(({ id, score }) => ({ ...docs.get(id)!, score }));
  }
  if (cutoff) ranked = applyCutoff(ranked, cutoff);
  if (sort) ranked = sortByMetadata(ranked, sort);
  return { hits: ranked.slice(input.offset, input.offset + input.k), embeddings };
}
