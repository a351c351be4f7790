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
import { COLLAPSE_LOOKAHEAD, collapseHits, groupHits, holdsFileParts, type CollapseFacts, type GroupedHit } from './group.ts';
import { MAX_K, MAX_OFFSET, type SearchParameters } from './params.ts';
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
  /**
   * Best first (or in the sort's order). Vector mode: cosine similarity; hybrid: the fused RRF
   * score. A video's or a PDF's result carries its other matching frames or pages, a collapsed
   * one the near-identical documents it stands for (group.ts).
   */
  hits: GroupedHit[];
  /** What the model embedded for the query: usage and timings come from these. */
  embeddings: Embedding[];
}

/** Candidates each side of a hybrid search contributes at least, so fusion sees past the page. */
export const HYBRID_DEPTH = 100;

/**
 * Grouping and collapsing make fewer results of more candidates: they start from this many
 * candidates per result wanted (offset + k, at least MAX_CANDIDATES), and take this many times
 * more while the results come short and more candidates exist, up to MAX_SHAPED_CANDIDATES
 * (or offset + k, if more). A cut-off of "auto" or a sort keeps to its best MAX_CANDIDATES.
 */
export const SHAPING_FACTOR = 4;
export const MAX_SHAPED_CANDIDATES = 10 * MAX_CANDIDATES;

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

/** The first `n` results of a paged search (from `start`), in pages the store accepts (k <= 1000, offset <= 10,000). */
async function firstResults(n: number, page: (k: number, offset: number) => Promise<SearchHit[]>, start = 0): Promise<SearchHit[]> {
  const out: SearchHit[] = [];
  while (out.length < n && start + out.length <= MAX_OFFSET) {
    const k = Math.min(MAX_K, n - out.length);
    const hits = await page(k, start + out.length);
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
  // Grouping costs nothing where nothing can be grouped: no frames, no pages.
  const grouping = input.group !== false && holdsFileParts(info.fields);
  const collapsing = input.collapse === true;

  if (input.mode === 'vector' && vector && !cutoff && !sort && !grouping && !collapsing) {
    const hits = await deps.store.search(collection, { ...common, vector, k: input.k, offset: input.offset, minScore: input.minScore });
    return { hits, embeddings };
  }

  // Cut-offs and sorts work on one fixed set of candidates, the same for every page: the best
  // MAX_CANDIDATES (auto and sorts look at the whole curve), or the page's depth for a relative
  // cut-off in relevance order (it only needs the best hit). Grouping and collapsing start
  // deeper, and go deeper while their results come short (see SHAPING_FACTOR).
  const wanted = input.offset + input.k;
  const whole = cutoff?.kind === 'auto' || sort !== undefined;
  const shaping = grouping || collapsing;
  // (Collapsing also looks past the page's last result: COLLAPSE_LOOKAHEAD candidates more.)
  let depth = whole ? MAX_CANDIDATES : shaping ? Math.max(wanted, Math.min(MAX_CANDIDATES, wanted * SHAPING_FACTOR + (collapsing ? COLLAPSE_LOOKAHEAD : 0))) : wanted;
  const limit = shaping && !whole ? Math.max(depth, MAX_SHAPED_CANDIDATES) : depth;

  // Vector mode reads further down the same ranking; hybrid fuses anew at each depth.
  let semantic: SearchHit[] = [];
  const vectorPage = (k: number, offset: number) => deps.store.search(collection, { ...common, vector: vector!, k, offset, minScore: input.minScore });
  async function candidates(n: number): Promise<SearchHit[]> {
    if (input.mode === 'vector' && vector) {
      if (semantic.length < n) semantic = [...semantic, ...(await firstResults(n - semantic.length, vectorPage, semantic.length))];
      return semantic.slice(0, n);
    }
    const sideDepth = Math.max(n, HYBRID_DEPTH);
    // A zero query vector ranks nothing: hybrid then rests on the words alone.
    const [byVector, words] = await Promise.all([
      vector ? firstResults(sideDepth, vectorPage) : [],
      firstResults(sideDepth, (k, offset) => deps.store.fullTextSearch(collection, { ...common, text: lexical, k, offset })),
    ]);
    const docs = new Map<string, SearchHit>();
    for (const hit of [...words, ...byVector]) docs.set(hit.id, hit);
    const fused = reciprocalRankFusion([byVector.map((h) => h.id), words.map((h) => h.id)]);
    return fused.slice(0, n).map(({ id, score }) => ({ ...docs.get(id)!, score }));
  }

  // Collapsing reads the hashes and vectors of the candidates it walks, each once.
  const facts = new Map<string, CollapseFacts>();
  async function lookup(ids: readonly string[]): Promise<Map<string, CollapseFacts>> {
    const missing = ids.filter((id) => !facts.has(id));
    if (missing.length > 0) {
      for (const doc of await deps.store.get(collection, missing, { vectors: true })) facts.set(doc.id, { hash: doc.hash, vector: doc.vector });
    }
    return new Map(ids.flatMap((id) => (facts.has(id) ? [[id, facts.get(id)!] as const] : [])));
  }

  for (;;) {
    signal?.throwIfAborted();
    const found = await candidates(depth);
    let ranked: GroupedHit[] = cutoff ? applyCutoff(found, cutoff) : found;
    // Deeper candidates can add results only while the store had as many as asked and the
    // cut-off took none of them (it cuts a tail: what lies further down would not pass).
    const deeper = found.length >= depth && ranked.length === found.length && depth < limit;
    // Groups are formed in relevance order (a video's result is its best frame), then sorted by
    // that result's key; collapsing walks the final order.
    if (grouping) ranked = groupHits(ranked);
    if (sort) ranked = sortByMetadata(ranked, sort);
    if (collapsing) ranked = await collapseHits(ranked, wanted, lookup);
    if (ranked.length < wanted && deeper) {
      depth = Math.min(limit, depth * SHAPING_FACTOR);
      continue;
    }
    return { hits: ranked.slice(input.offset, wanted), embeddings };
  }
}
