/**
 * Near-duplicates: documents whose embeddings are at least `threshold` cosine-similar, in
 * groups. Each document's nearest neighbours come from the store's own search (exact or
 * ANN, as the collection is indexed); pairs above the threshold are joined by union-find,
 * so a group is a connected component of the "near-duplicate of" relation.
 */
import { mapConcurrent } from '../concurrency.ts';
import { TesseraError } from '../errors.ts';
import type { Modality, VectorStore } from '../store/store.ts';
import { requireCollection } from './collection.ts';

export const DEFAULT_DUPLICATE_THRESHOLD = 0.95;
/** Neighbours looked at per document: a group larger than this still joins up through its members. */
export const DUPLICATE_NEIGHBOURS = 16;
/** Neighbour searches in flight at once. */
const CONCURRENCY = 4;

export interface DuplicateGroup {
  /** Members, sorted. */
  ids: string[];
  /** The weakest link that joined the group: every member is this similar to another member, or more. */
  score: number;
}

export interface DuplicateOptions {
  threshold?: number;
  /** Only documents of this kind. */
  modality?: Modality;
  neighbours?: number;
  signal?: AbortSignal;
}

/** A threshold in (0, 1]: SEARCH_PARAMETER_INVALID naming `field` otherwise. */
export function parseThreshold(value: unknown, field = 'threshold'): number {
  if (value === undefined || value === null || value === '') return DEFAULT_DUPLICATE_THRESHOLD;
  const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isFinite(n) || n <= 0 || n > 1) {
    throw new TesseraError('SEARCH_PARAMETER_INVALID', `${field}: expected a cosine similarity above 0 and at most 1 but received ${JSON.stringify(value)}`);
  }
  return n;
}

class UnionFind {
  private readonly parent = new Map<string, string>();

  find(x: string): string {
    let root = x;
    while (this.parent.has(root) && this.parent.get(root) !== root) root = this.parent.get(root)!;
    // Path compression: later finds are near constant time.
    let node = x;
    while (node !== root) {
      const next = this.parent.get(node)!;
      this.parent.set(node, root);
      node = next;
    }
    if (!this.parent.has(root)) this.parent.set(root, root);
    return root;
  }

  union(a: string, b: string): void {
    const ra = this.find(a);
    const rb = this.find(b);
    if (ra !== rb) this.parent.set(ra < rb ? rb : ra, ra < rb ? ra : rb);
  }

  members(): string[] {
    return [...this.parent.keys()];
  }
}

/** Groups of near-duplicate documents, largest first (then most similar); COLLECTION_NOT_FOUND. */
export async function findDuplicates(store: VectorStore, collection: string, options: DuplicateOptions = {}): Promise<DuplicateGroup[]> {
  await requireCollection(store, collection);
  const threshold = options.threshold ?? DEFAULT_DUPLICATE_THRESHOLD;
  const neighbours = options.neighbours ?? DUPLICATE_NEIGHBOURS;
  const sets = new UnionFind();
  const edges: { a: string; b: string; score: number }[] = [];

  for await (const page of store.scan(collection)) {
    const docs = options.modality ? page.filter((d) => d.modality === options.modality) : page;
    await mapConcurrent(docs, CONCURRENCY, async (doc) => {
      const hits = await store.search(collection, {
        vector: doc.vector,
        k: neighbours,
        minScore: threshold,
        modality: options.modality,
        excludeIds: [doc.id],
      });
      for (const hit of hits) {
        sets.union(doc.id, hit.id);
        edges.push({ a: doc.id, b: hit.id, score: hit.score });
      }
    }, options.signal);
  }

  const groups = new Map<string, { ids: Set<string>; score: number }>();
  for (const id of sets.members()) {
    const root = sets.find(id);
    const group = groups.get(root) ?? { ids: new Set<string>(), score: 1 };
    group.ids.add(id);
    groups.set(root, group);
  }
  // A group's score: the weakest of its strongest links, i.e. the lowest similarity at which
  // a member joined it (each member's best edge within the group).
  const best = new Map<string, number>();
  for (const { a, b, score } of edges) {
    best.set(a, Math.max(best.get(a) ?? -Infinity, score));
    best.set(b, Math.max(best.get(b) ?? -Infinity, score));
  }
  for (const group of groups.values()) group.score = Math.min(...[...group.ids].map((id) => best.get(id) ?? 1));
  return [...groups.values()]
    .filter((g) => g.ids.size > 1)
    .map((g) => ({ ids: [...g.ids].sort(), score: Math.min(1, g.score) }))
    .sort((x, y) => y.ids.length - x.ids.length || y.score - x.score || (x.ids[0]! < y.ids[0]! ? -1 : 1));
}
