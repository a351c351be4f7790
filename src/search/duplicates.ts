/**
 * Near-duplicates: documents whose embeddings are at least `threshold` cosine-similar, in
 * groups. Each document's nearest neighbours come from the store's own search (exact or
 * ANN, as the collection is indexed); pairs above the threshold are joined by union-find,
 * so a group is a connected component of the "near-duplicate of" relation.
 *
 * A scan costs one neighbour search per document: the server runs it as a background job
 * (duplicate-jobs.ts) and `tessera duplicates` in its own process, never inside a request.
 */
import { mapConcurrent } from '../concurrency.ts';
import { TesseraError } from '../errors.ts';
import type { Modality, VectorStore } from '../store/store.ts';
import { requireCollection } from './collection.ts';

export const DEFAULT_DUPLICATE_THRESHOLD = 0.95;
/** Neighbours looked at per document: a group larger than this still joins up through its members. */
export const DUPLICATE_NEIGHBOURS = 16;
/** Groups per page of a job's results (GET .../duplicates/{job}?offset&limit). */
export const DEFAULT_DUPLICATE_GROUPS_PAGE = 100;
export const MAX_DUPLICATE_GROUPS_PAGE = 1000;
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
  /** After each page of documents. */
  onProgress?: (progress: DuplicateProgress) => void;
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

/** How far a scan has got: documents read of the collection's count when it began. */
export interface DuplicateProgress {
  scanned: number;
  /** The collection's documents when the scan began (at least `scanned`: writes meanwhile add to it). */
  total: number;
}

/**
 * One scan of a collection, whose groups can be read at any moment: while it runs they are
 * the groups found so far (each part of a final group), once it is done the final ones.
 * Memory: the documents that have a near-duplicate, not the collection.
 */
export class DuplicateScan {
  readonly threshold: number;
  readonly modality: Modality | undefined;
  #scanned = 0;
  #total = 0;
  readonly #neighbours: number;
  readonly #sets = new UnionFind();
  /** Each member's strongest link: what a group's score is made of. */
  readonly #best = new Map<string, number>();
  #cache: DuplicateGroup[] | undefined;

  constructor(
    private readonly store: VectorStore,
    readonly collection: string,
    options: Omit<DuplicateOptions, 'signal'> = {},
  ) {
    this.threshold = options.threshold ?? DEFAULT_DUPLICATE_THRESHOLD;
    this.modality = options.modality;
    this.#neighbours = options.neighbours ?? DUPLICATE_NEIGHBOURS;
  }

  get progress(): DuplicateProgress {
    return { scanned: this.#scanned, total: Math.max(this.#total, this.#scanned) };
  }

  /** Reads every document once and looks up its neighbours; COLLECTION_NOT_FOUND. */
  async run(signal?: AbortSignal, onProgress?: (progress: DuplicateProgress) => void): Promise<DuplicateGroup[]> {
    await requireCollection(this.store, this.collection);
    this.#total = await this.store.count(this.collection);
    for await (const page of this.store.scan(this.collection)) {
      signal?.throwIfAborted();
      const docs = this.modality ? page.filter((d) => d.modality === this.modality) : page;
      await mapConcurrent(docs, CONCURRENCY, async (doc) => {
        const hits = await this.store.search(this.collection, {
          vector: doc.vector,
          k: this.#neighbours,
          minScore: this.threshold,
          modality: this.modality,
          excludeIds: [doc.id],
        });
        for (const hit of hits) this.#link(doc.id, hit.id, hit.score);
      }, signal);
      this.#scanned += page.length;
      onProgress?.(this.progress);
    }
    return this.groups();
  }

  #link(a: string, b: string, score: number): void {
    this.#sets.union(a, b);
    this.#best.set(a, Math.max(this.#best.get(a) ?? -Infinity, score));
    this.#best.set(b, Math.max(this.#best.get(b) ?? -Infinity, score));
    this.#cache = undefined;
  }

  /** Groups of near-duplicates found so far, largest first (then most similar). */
  groups(): DuplicateGroup[] {
    if (this.#cache) return this.#cache;
    const groups = new Map<string, string[]>();
    for (const id of this.#sets.members()) {
      const root = this.#sets.find(id);
      const members = groups.get(root);
      if (members) members.push(id);
      else groups.set(root, [id]);
    }
    // A group's score: the weakest of its strongest links, i.e. the lowest similarity at which
    // a member joined it (each member's best edge within the group).
    this.#cache = [...groups.values()]
      .filter((ids) => ids.length > 1)
      .map((ids) => ({ ids: ids.sort(), score: ids.reduce((low, id) => Math.min(low, this.#best.get(id) ?? 1), 1) }))
      .sort((x, y) => y.ids.length - x.ids.length || y.score - x.score || (x.ids[0]! < y.ids[0]! ? -1 : 1));
    return this.#cache;
  }
}

/** Groups of near-duplicate documents, largest first (then most similar); COLLECTION_NOT_FOUND. */
export function findDuplicates(store: VectorStore, collection: string, options: DuplicateOptions = {}): Promise<DuplicateGroup[]> {
  return new DuplicateScan(store, collection, options).run(options.signal, options.onProgress);
}
