/**
 * The evaluation metrics, as pure functions over scores. Each documents its tie rule: the
 * cross-modal and image-image rankings break ties by item order (lower index first, what a
 * stable sort gives; CLIP-benchmark's torch.topk leaves tie order unspecified), the BEIR
 * rankings by document id the way trec_eval / pytrec_eval do.
 */

import { dot } from '../engine/vectors.ts';

/**
 * 1-based rank of the best-placed item of `positives` when `scores` is sorted by score
 * descending, ties by index ascending. Infinity when `positives` is empty. O(n), no sort.
 */
export function bestRank(scores: ArrayLike<number>, positives: readonly number[]): number {
  if (positives.length === 0) return Infinity;
  let best = positives[0]!;
  for (const p of positives) {
    if (scores[p]! > scores[best]! || (scores[p] === scores[best] && p < best)) best = p;
  }
  const s = scores[best]!;
  let before = 0;
  for (let i = 0; i < scores.length; i++) {
    if (scores[i]! > s || (scores[i] === s && i < best)) before++;
  }
  return before + 1;
}

/** Fraction of queries whose best-placed positive is within the top k (CLIP-benchmark's recall@k). */
export function recallFromRanks(ranks: readonly number[], k: number): number {
  if (ranks.length === 0) return 0;
  return ranks.filter((r) => r <= k).length / ranks.length;
}

/**
 * Cross-modal retrieval as CLIP-benchmark computes it. `score(t, i)` is the similarity of
 * caption t and image i; `imageOf[t]` the image caption t describes. Image retrieval ranks
 * all images for each caption; text retrieval ranks all captions for each image, a hit when
 * any of its captions is in the top k. Rows are built one at a time: no full score matrix.
 */
export function crossModalRecall(
  score: (caption: number, image: number) => number,
  imageOf: readonly number[],
  imageCount: number,
  ks: readonly number[] = [1, 5, 10],
): { image_retrieval: Record<string, number>; text_retrieval: Record<string, number> } {
  // Each image's best-placed caption first (a few scores per image), so one pass over all
  // (caption, image) pairs gives both directions' ranks.
  const bestCaption = new Int32Array(imageCount).fill(-1);
  const bestScore = new Float64Array(imageCount).fill(-Infinity);
  imageOf.forEach((i, t) => {
    const s = score(t, i);
    if (bestCaption[i] === -1 || s > bestScore[i]!) {
      bestCaption[i] = t;
      bestScore[i] = s;
    }
  });
  const textBefore = new Int32Array(imageCount);
  const row = new Float64Array(imageCount);
  const imageRanks = imageOf.map((own, t) => {
    for (let i = 0; i < imageCount; i++) {
      const s = (row[i] = score(t, i));
      if (s > bestScore[i]! || (s === bestScore[i] && t < bestCaption[i]!)) textBefore[i]!++;
    }
    return bestRank(row, [own]);
  });
  const textRanks = Array.from(textBefore, (before, i) => (bestCaption[i] === -1 ? Infinity : before + 1));
  return { image_retrieval: recallAt(imageRanks, ks), text_retrieval: recallAt(textRanks, ks) };
}

export function recallAt(ranks: readonly number[], ks: readonly number[]): Record<string, number> {
  return Object.fromEntries(ks.map((k) => [`recall@${k}`, recallFromRanks(ranks, k)]));
}

/** One query's graded judgements: document id -> relevance (0 or less: not relevant). */
export type Qrels = ReadonlyMap<string, number>;

/** A retrieved document and its score. */
export interface Scored {
  id: string;
  score: number;
}

/**
 * trec_eval's ranking (form_res_rels.c, comp_sim_docno): score descending, ties by document
 * id in *descending* strcmp order. pytrec_eval, which BEIR and MTEB use, is trec_eval's code.
 */
export function trecOrder(a: Scored, b: Scored): number {
  if (a.score !== b.score) return b.score - a.score;
  return compareBytes(b.id, a.id);
}

function compareBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/**
 * nDCG@k as trec_eval's ndcg_cut: gain = the relevance value (linear, not 2^rel - 1),
 * discount log2(rank + 1) for 1-based rank, the ideal ordering built from all judged
 * documents with positive relevance; 0 when the query has none.
 */
export function ndcgAt(ranked: readonly Scored[], qrels: Qrels, k: number): number {
  const sorted = [...ranked].sort(trecOrder).slice(0, k);
  let dcg = 0;
  sorted.forEach((d, i) => {
    const rel = qrels.get(d.id) ?? 0;
    if (rel > 0) dcg += rel / Math.log2(i + 2);
  });
  const ideal = [...qrels.values()].filter((r) => r > 0).sort((a, b) => b - a).slice(0, k);
  let idcg = 0;
  ideal.forEach((rel, i) => (idcg += rel / Math.log2(i + 2)));
  return idcg > 0 ? dcg / idcg : 0;
}

/** trec_eval's recall_k: relevant documents (relevance >= 1) in the top k over all relevant ones; 0 when none. */
export function recallAtK(ranked: readonly Scored[], qrels: Qrels, k: number): number {
  const relevant = [...qrels.values()].filter((r) => r >= 1).length;
  if (relevant === 0) return 0;
  const found = [...ranked].sort(trecOrder).slice(0, k).filter((d) => (qrels.get(d.id) ?? 0) >= 1).length;
  return found / relevant;
}

/** MRR@k (as MTEB's mrr_at_k): 1 / rank of the first relevant document in the top k, else 0. */
export function mrrAt(ranked: readonly Scored[], qrels: Qrels, k: number): number {
  const top = [...ranked].sort(trecOrder).slice(0, k);
  const i = top.findIndex((d) => (qrels.get(d.id) ?? 0) > 0);
  return i < 0 ? 0 : 1 / (i + 1);
}

/** The k best candidates offered so far, best first; offered in index order, ties keep the earlier. */
export class TopK {
  readonly items: { index: number; score: number }[] = [];
  constructor(readonly k: number) {}

  offer(index: number, score: number): void {
    const top = this.items;
    const k = this.k;
    if (top.length === k && !(score > top[k - 1]!.score)) return;
    let j = top.length < k ? top.length : k - 1;
    while (j > 0 && score > top[j - 1]!.score) j--;
    top.splice(j, 0, { index, score });
    if (top.length > k) top.pop();
  }
}

/**
 * The k best of `count` items by `scoreOf`, best first, ties by index ascending; items for
 * which `skip` is true are left out. O(count * k) with a small sorted buffer.
 */
export function topK(count: number, k: number, scoreOf: (i: number) => number, skip?: (i: number) => boolean): { index: number; score: number }[] {
  const top = new TopK(k);
  for (let i = 0; i < count; i++) if (!skip?.(i)) top.offer(i, scoreOf(i));
  return top.items;
}

/**
 * Each vector's k nearest others (itself excluded) by dot product, ties by index. Each pair
 * is scored once and offered to both sides; candidates still arrive in index order.
 */
export function nearestNeighbours(vectors: readonly Float32Array[], k: number): { index: number; score: number }[][] {
  const tops = vectors.map(() => new TopK(k));
  for (let i = 0; i < vectors.length; i++) {
    const vi = vectors[i]!;
    const ti = tops[i]!;
    for (let j = i + 1; j < vectors.length; j++) {
      const s = dot(vi, vectors[j]!);
      ti.offer(j, s);
      tops[j]!.offer(i, s);
    }
  }
  return tops.map((t) => t.items);
}

/**
 * Same-class neighbour figures for one query: of its k nearest neighbours (itself excluded),
 * precision = same-class / k, recall = same-class / (other members of its class),
 * hit = 1 when at least one is same-class (CLIP-benchmark's recall@k).
 */
export function neighbourFigures(neighbourLabels: readonly number[], label: number, classSize: number, k: number): { precision: number; recall: number; hit: number } {
  const same = neighbourLabels.slice(0, k).filter((l) => l === label).length;
  const others = classSize - 1;
  return { precision: same / k, recall: others > 0 ? same / others : 0, hit: same > 0 ? 1 : 0 };
}

/** Top-k accuracy: the true label is among the k highest-scoring labels (ties by label order). */
export function topKCorrect(scores: ArrayLike<number>, label: number, k: number): boolean {
  return bestRank(scores, [label]) <= k;
}

export function mean(xs: readonly number[]): number {
  return xs.length === 0 ? 0 : xs.reduce((a, b) => a + b, 0) / xs.length;
}
