import type { EmbeddingCache } from './cache.ts';
import type { BeirSet, CaptionedSet, LabelledSet } from './datasets.ts';
import { embedImagesCached, embedTextsCached, type EmbedRunOptions, type Encoder } from './embed.ts';
import { dot } from '../engine/vectors.ts';
import { reciprocalRankFusion, RRF_K } from '../search/fusion.ts';
import { HYBRID_DEPTH } from '../search/search.ts';
import { lexicalIndex, type LexicalIndex } from './hybrid.ts';
import { crossModalRecall, mean, mrrAt, ndcgAt, nearestNeighbours, neighbourFigures, recallAtK, topK, topKCorrect, trecOrder, type Scored } from './metrics.ts';

export type TaskName = 'retrieval' | 'text' | 'image-image' | 'zeroshot';
export const TASKS: readonly TaskName[] = ['retrieval', 'text', 'image-image', 'zeroshot'];

export interface RetrievalFigures {
  task: 'retrieval';
  dataset: string;
  protocol: string;
  counts: { images: number; captions: number };
  image_retrieval: Record<string, number>;
  text_retrieval: Record<string, number>;
}

/** Text retrieval by vectors alone, or fused with BM25 as `mode: "hybrid"` searches. */
export type TextMode = 'vector' | 'hybrid';
export const TEXT_MODES: readonly TextMode[] = ['vector', 'hybrid'];

export interface TextFigures {
  task: 'text';
  dataset: string;
  protocol: string;
  mode: TextMode;
  counts: { queries: number; corpus: number };
  'ndcg@10': number;
  'recall@10': number;
  'mrr@10': number;
}

export interface ImageImageFigures {
  task: 'image-image';
  dataset: string;
  protocol: string;
  counts: { images: number; classes: number };
  /** precision@k, recall@k (share of the class found) and hit@k (CLIP-benchmark recall@k) for k = 1, 5, 10. */
  neighbours: Record<string, number>;
}

export interface ZeroshotFigures {
  task: 'zeroshot';
  dataset: string;
  protocol: string;
  template: string;
  counts: { images: number; classes: number };
  'accuracy@1': number;
  'accuracy@5'?: number;
}

export type TaskFigures = RetrievalFigures | TextFigures | ImageImageFigures | ZeroshotFigures;

export interface TaskContext {
  encoder: Encoder;
  cache: EmbeddingCache;
  embed?: EmbedRunOptions;
  /**
   * The task text-retrieval queries are embedded for, when the model has instructions
   * (jina-clip-v2: retrieval.query, as its card embeds queries for text-to-text search).
   * Documents, captions and zero-shot prompts are embedded without one, as the card's
   * text-to-image example does.
   */
  queryTask?: string;
}

const RECALL_KS = [1, 5, 10];
export const NEIGHBOUR_KS = [1, 5, 10];
export const ZEROSHOT_TEMPLATE = 'a photo of a {label}.';

/** Cross-modal retrieval on a Karpathy test split, as CLIP-benchmark computes it. */
export async function runRetrieval(ctx: TaskContext, data: CaptionedSet): Promise<RetrievalFigures> {
  const images = await embedImagesCached(ctx.encoder, ctx.cache, data.images.map((i) => i.load), { ...ctx.embed, label: `${data.name} images` });
  const captions = await embedTextsCached(ctx.encoder, ctx.cache, data.captions, { ...ctx.embed, label: `${data.name} captions` });
  const figures = crossModalRecall((t, i) => dot(captions[t]!, images[i]!), data.imageOf, images.length, RECALL_KS);
  return {
    task: 'retrieval',
    dataset: data.name,
    protocol: 'CLIP-benchmark: image_retrieval ranks all images for each caption (hit: its image in the top k); text_retrieval ranks all captions for each image (hit: any of its captions in the top k); cosine similarity, ties by item order',
    counts: { images: images.length, captions: captions.length },
    ...figures,
  };
}

/**
 * BEIR text retrieval as MTEB scores it (pytrec_eval), exact search by cosine similarity;
 * in hybrid mode that ranking fused with the store's BM25 ranking by reciprocal rank fusion,
 * as hybrid search does.
 */
export async function runText(ctx: TaskContext, data: BeirSet, mode: TextMode = 'vector'): Promise<TextFigures> {
  const k = 10;
  const docs = await embedTextsCached(ctx.encoder, ctx.cache, data.corpus.map((d) => d.text), { ...ctx.embed, label: `${data.name} corpus` });
  const queries = await embedTextsCached(ctx.encoder, ctx.cache, data.queries.map((q) => q.text), { ...ctx.embed, label: `${data.name} queries`, task: ctx.queryTask });
  const lexical: LexicalIndex | undefined = mode === 'hybrid' ? await lexicalIndex(data.corpus, docs) : undefined;
  const ndcg: number[] = [];
  const recall: number[] = [];
  const mrr: number[] = [];
  try {
    for (const [n, q] of data.queries.entries()) {
      const qv = queries[n]!;
      // BEIR/MTEB drop a document whose id equals the query id (ignore_identical_ids).
      const skip = (d: number) => data.corpus[d]!.id === q.id;
      const scores = docs.map((dv) => dot(qv, dv));
      const depth = lexical ? Math.max(k, HYBRID_DEPTH) : k;
      const best = topK(docs.length, depth, (d) => scores[d]!, skip);
      const cutoff = best.at(-1)?.score ?? -Infinity;
      // Everything tied with the last score, so trec_eval's id order decides who is in.
      let ranked: Scored[] = [];
      scores.forEach((score, d) => {
        if (!skip(d) && score >= cutoff) ranked.push({ id: data.corpus[d]!.id, score });
      });
      ranked.sort(trecOrder);
      if (lexical) {
        const words = await lexical.search(q.text, depth, q.id);
        ranked = reciprocalRankFusion([ranked.slice(0, depth).map((r) => r.id), words]).sort(trecOrder);
      }
      const top = ranked.slice(0, k);
      const judged = data.qrels.get(q.id)!;
      ndcg.push(ndcgAt(top, judged, k));
      recall.push(recallAtK(top, judged, k));
      mrr.push(mrrAt(top, judged, k));
    }
  } finally {
    await lexical?.close();
  }
  const search = mode === 'hybrid'
    ? `hybrid: the top ${HYBRID_DEPTH} by exact cosine and the top ${HYBRID_DEPTH} by the store's BM25 (LanceDB full text) fused by reciprocal rank fusion (k = ${RRF_K}), as mode "hybrid" searches`
    : 'exact cosine search over the corpus';
  return {
    task: 'text',
    dataset: data.name,
    protocol: `MTEB/BEIR: ${search} (document = title + " " + text${ctx.queryTask ? `; queries embedded for task ${ctx.queryTask}, documents without a task` : ''}), trec_eval ranking (score descending, ties by document id descending), ndcg_cut_${k} with linear graded gain, recall_${k} (relevance >= 1), MRR@${k}; documents whose id equals the query id ignored; mean over the ${data.queries.length} judged queries`,
    mode,
    counts: { queries: data.queries.length, corpus: data.corpus.length },
    'ndcg@10': mean(ndcg),
    'recall@10': mean(recall),
    'mrr@10': mean(mrr),
  };
}

/** Each image queries all the others; figures of same-class neighbours among the k nearest. */
export async function runImageImage(ctx: TaskContext, data: LabelledSet): Promise<ImageImageFigures> {
  const vectors = await embedImagesCached(ctx.encoder, ctx.cache, data.images.map((i) => i.load), { ...ctx.embed, label: `${data.name} images` });
  const labels = data.images.map((i) => i.label);
  const classSize = new Map<number, number>();
  for (const l of labels) classSize.set(l, (classSize.get(l) ?? 0) + 1);
  const kMax = Math.max(...NEIGHBOUR_KS);
  const sums: Record<string, number> = {};
  for (const k of NEIGHBOUR_KS) for (const m of ['precision', 'recall', 'hit']) sums[`${m}@${k}`] = 0;
  nearestNeighbours(vectors, kMax).forEach((nearest, q) => {
    const neighbours = nearest.map((n) => labels[n.index]!);
    for (const k of NEIGHBOUR_KS) {
      const f = neighbourFigures(neighbours, labels[q]!, classSize.get(labels[q]!)!, k);
      sums[`precision@${k}`]! += f.precision;
      sums[`recall@${k}`]! += f.recall;
      sums[`hit@${k}`]! += f.hit;
    }
  });
  const n = Math.max(1, vectors.length);
  return {
    task: 'image-image',
    dataset: data.name,
    protocol: `each of the ${vectors.length} images queries all the others (itself excluded) by cosine similarity, ties by item order; over its k nearest (k = ${NEIGHBOUR_KS.join(', ')}): precision@k = same-class / k, recall@k = same-class / (class size - 1), hit@k = 1 if any is same-class (CLIP-benchmark's recall@k); means over queries`,
    counts: { images: vectors.length, classes: data.classes.length },
    neighbours: Object.fromEntries(Object.entries(sums).map(([key, s]) => [key, s / n])),
  };
}

/** Class name as a prompt word: CIFAR's "maple_tree" -> "maple tree". */
export function promptLabel(name: string): string {
  return name.replace(/_/g, ' ');
}

/** Zero-shot classification: each image against "a photo of a {label}." for every class. */
export async function runZeroshot(ctx: TaskContext, data: LabelledSet, template = ZEROSHOT_TEMPLATE): Promise<ZeroshotFigures> {
  const prompts = data.classes.map((c) => template.replace('{label}', promptLabel(c)));
  const classVectors = await embedTextsCached(ctx.encoder, ctx.cache, prompts, { ...ctx.embed, label: `${data.name} prompts` });
  const vectors = await embedImagesCached(ctx.encoder, ctx.cache, data.images.map((i) => i.load), { ...ctx.embed, label: `${data.name} images` });
  let top1 = 0;
  let top5 = 0;
  const scores = new Float64Array(classVectors.length);
  vectors.forEach((v, n) => {
    classVectors.forEach((c, k) => (scores[k] = dot(v, c)));
    const label = data.images[n]!.label;
    if (topKCorrect(scores, label, 1)) top1++;
    if (topKCorrect(scores, label, 5)) top5++;
  });
  const count = Math.max(1, vectors.length);
  const figures: ZeroshotFigures = {
    task: 'zeroshot',
    dataset: data.name,
    protocol: `one prompt per class ("${template}", underscores in class names read as spaces); an image is classified by the most similar prompt (cosine, ties by class order); top-5 reported when there are more than 5 classes`,
    template,
    counts: { images: vectors.length, classes: data.classes.length },
    'accuracy@1': top1 / count,
  };
  if (data.classes.length > 5) figures['accuracy@5'] = top5 / count;
  return figures;
}
