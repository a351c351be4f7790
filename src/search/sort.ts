/**
 * Ordering results by a metadata key ("newest photos of dogs": the relevant set in date order).
 * ISO 8601 UTC dates (taken_at) sort as text; numbers as numbers; documents without the key
 * come last whichever the direction; ties keep their relevance order.
 */
import type { Metadata } from '../store/store.ts';

export interface SortOrder {
  /** "score" (relevance, best first: the default) or a metadata key. */
  key: string;
  descending: boolean;
}

export const BY_SCORE: SortOrder = { key: 'score', descending: true };

export function sortByMetadata<T extends { metadata: Metadata }>(hits: readonly T[], order: SortOrder): T[] {
  if (order.key === 'score') return [...hits];
  const sign = order.descending ? -1 : 1;
  const ranked = hits.map((hit, rank) => ({ hit, rank, value: hit.metadata[order.key] }));
  ranked.sort((a, b) => {
    if (a.value === undefined || b.value === undefined) {
      return a.value === b.value ? a.rank - b.rank : a.value === undefined ? 1 : -1;
    }
    const c = a.value < b.value ? -1 : a.value > b.value ? 1 : 0;
    return c === 0 ? a.rank - b.rank : sign * c;
  });
  return ranked.map((r) => r.hit);
}
