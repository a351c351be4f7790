/**
 * Relevance cut-offs that adapt to the query. A fixed `min_score` fails on CLIP-like models
 * because the score of a relevant hit depends on the query (0.91 relevant for one, 0.88 for
 * another: Immich #5996), so these look at the shape of the query's own score curve.
 *
 * - relative: keep hits scoring at least `ratio` x the best hit's score.
 * - auto: keep the hits above the largest drop of the score curve among the top candidates
 *   (scores best first). See `autoCut` for the method and docs/measurements/cutoff.json for why.
 */
export type Cutoff = { kind: 'auto' } | { kind: 'relative'; ratio: number };

/** At most this many candidates are looked at by a cut-off or a sort (Immich pages at 1000). */
export const MAX_CANDIDATES = 1000;

/**
 * How many of `scores` (best first) pass the automatic cut-off: the cut falls at the largest
 * gap between neighbouring scores. A gap counts for more near the top: the drop is divided by
 * the spread left below it, so that the long, gently sloping tail of distractors (many small
 * steps) never outweighs the one clear drop after the relevant hits.
 */
export function autoCut(scores: readonly number[]): number {
  const n = scores.length;
  if (n <= 1) return n;
  const last = scores[n - 1]!;
  let best = 0;
  let cut = n;
  for (let i = 0; i < n - 1; i++) {
    const gap = scores[i]! - scores[i + 1]!;
    const spread = scores[i]! - last;
    if (spread <= 0) break;
    const strength = gap / spread;
    if (strength > best) {
      best = strength;
      cut = i + 1;
    }
  }
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
