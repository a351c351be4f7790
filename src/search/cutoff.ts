/**
 * Relevance cut-offs that adapt to the query. A fixed `min_score` fails on CLIP-like models
 * because the score of a relevant hit depends on the query (0.91 relevant for one, 0.88 for
 * another: Immich #5996), so these look at the shape of the query's own score curve.
 *
 * - relative: keep hits scoring at least `ratio` x the best hit's score.
 * - auto: keep the hits above the largest drop of the score curve near its top (see `autoCut`
 *   for the method, docs/measurements/cutoff.json for how it compares with fixed thresholds).
 */
export type Cutoff = { kind: 'auto' } | { kind: 'relative'; ratio: number };

/** At most this many candidates are looked at by a cut-off or a sort (Immich pages at 1000). */
export const MAX_CANDIDATES = 1000;

/** The automatic cut-off looks for its drop among the hits scoring at least this share of the best. */
export const AUTO_WINDOW = 0.5;

/**
 * How many of `scores` (best first) pass the automatic cut-off: the cut falls at the largest
 * gap between neighbouring scores among the hits that score at least AUTO_WINDOW x the best.
 * The window keeps the search for the drop near the top: below it lies the long tail of
 * unrelated documents, where the widest gaps are between kinds of irrelevance (measured on
 * the labelled set in docs/measurements/cutoff.json, where the largest gap over all
 * candidates cut far too low for the queries whose relevant scores sit lower).
 */
export function autoCut(scores: readonly number[]): number {
  const n = scores.length;
  if (n <= 1) return n;
  const top = scores[0]!;
  // A best score at or below zero has nothing similar above it to separate.
  if (!(top > 0)) return 1;
  const floor = AUTO_WINDOW * top;
  let cut = 1;
  let widest = -1;
  for (let i = 0; i < n - 1 && scores[i + 1]! >= floor; i++) {
    const gap = scores[i]! - scores[i + 1]!;
    if (gap > widest) {
      widest = gap;
      cut = i + 1;
    }
  }
  // Everything in the window without a drop below it: the window's edge is the drop.
  const inWindow = scores.findIndex((s) => s < floor);
  const windowEdge = inWindow === -1 ? n : inWindow;
  if (windowEdge < n && scores[windowEdge - 1]! - scores[windowEdge]! > widest) return windowEdge;
  return cut;
}

/** The hits (best first) that pass `cutoff`. */
export function applyCutoff<T extends { score: number }>(hits: readonly T[], cutoff: Cutoff): T[] {
  if (hits.length === 0) return [];
  if (cutoff.kind === 'relative') {
    const top = hits[0]!.score;
    // A negative best score (everything dissimilar) keeps only what ties with it.
    const floor = top >= 0 ? cutoff.ratio * top : top;
    return hits.filter((h) => h.score >= floor);
  }
  return hits.slice(0, autoCut(hits.map((h) => h.score)));
}
