/**
 * Reciprocal rank fusion (Cormack, Clarke and Büttcher, 2009): each ranking gives a document
 * 1 / (k + rank), rank counted from 1; the sums order the fused list. It needs no score
 * calibration between BM25 and cosine similarity, which is why hybrid search uses it.
 */
export const RRF_K = 60;

/** Fuses rankings of ids (best first) into one, best first, with each id's fused score. */
export function reciprocalRankFusion(rankings: readonly (readonly string[])[], k = RRF_K): { id: string; score: number }[] {
  const scores = new Map<string, number>();
  for (const ranking of rankings) {
    ranking.forEach((id, index) => scores.set(id, (scores.get(id) ?? 0) + 1 / (k + index + 1)));
  }
  // Ties (equal fused scores) keep first-seen order: vector side first, then lexical.
  return [...scores].map(([id, score]) => ({ id, score })).sort((a, b) => b.score - a.score);
}
