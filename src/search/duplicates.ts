/**
 * Near-duplicates: documents whose embeddings are at least `threshold` cosine-similar, in
 * groups. Each document's nearest neighbours come from the store's own search (exact or
 * ANN, as the collection is indexed); pairs above the threshold are joined by union-find,
 * so a group is a connected component of the "near-duplicate of" relation.
 *
 * Each group says what kind of duplicates it holds:
 *   - `exact`: copies, every member with the same content hash;
 *   - `near_identical`: the same picture re-encoded or resized, every member joined to the
 *     others by links at least NEAR_IDENTICAL similar (group.ts: where it comes from);
 *   - `similar`: anything else above the threshold (a neighbouring shot, a crop).
 *
 * Videos and PDFs are files of many documents (frames, pages), and duplicates are about
 * files: the frames of one video, or the pages of one PDF, are never paired with each other,
 * nor with documents of their own (a photo is not a copy of a video because it looks like a
 * frame of it). Two videos (PDFs) are compared as wholes: they are duplicates only when their
 * frames (pages) match in bulk, i.e. at least FILE_COVERAGE of the shorter one's frames
 * (pages), and at least MIN_MATCHED_PARTS of them, have a match above the threshold in the
 * other. One shared frame (a title card, a black fade: the indexer skips uniform frames, but
 * not every common shot) or one shared page (a licence, a cover) is not enough. Such a group
 * lists the videos (PDFs) in `videos` (`pdfs`), and in `ids` each one's best matching frame
 * (page), whose thumbnail stands for it. It is `exact` when every frame of both is matched by
 * one with the same content hash, `near_identical` when at least NEAR_FILE_COVERAGE of each
 * one's frames are matched, all at NEAR_IDENTICAL or more (a re-encode, a resized copy), and
 * otherwise `similar` (a clip cut from a longer video, another take).
 *
 * A scan costs one neighbour search per document: the server runs it as a background job
 * (duplicate-jobs.ts) and `tessera duplicates` in its own process, never inside a request.
 */
import { mapConcurrent } from '../concurrency.ts';
import { TesseraError } from '../errors.ts';
import { parseFilter } from '../store/filter.ts';
import type { Metadata, Modality, SearchHit, StoredDocument, VectorStore } from '../store/store.ts';
import { requireCollection } from './collection.ts';
import { filePartOf, fileKey, holdsFileParts, NEAR_IDENTICAL, pageNumber, PDF_KEY, VIDEO_KEY, type FilePart } from './group.ts';

export const DEFAULT_DUPLICATE_THRESHOLD = 0.95;
/** Neighbours looked at per document: a group larger than this still joins up through its members. */
export const DUPLICATE_NEIGHBOURS = 16;
/** Groups per page of a job's results (GET .../duplicates/{job}?offset&limit). */
export const DEFAULT_DUPLICATE_GROUPS_PAGE = 100;
export const MAX_DUPLICATE_GROUPS_PAGE = 1000;
/** Neighbour searches in flight at once. */
const CONCURRENCY = 4;
/** Two videos (PDFs) are duplicates when at least this share of the shorter one's frames (pages) match the other... */
export const FILE_COVERAGE = 0.5;
/** ...and at least this many of them (or all, when it has fewer). */
export const MIN_MATCHED_PARTS = 2;
/** Near-identical videos (PDFs): at least this share of each one's frames (pages) matched, every match near-identical. */
export const NEAR_FILE_COVERAGE = 0.9;
/** A document's neighbours crowded out by frames or pages (which it is not compared with) are looked up this many times deeper, once. */
const CROWDED_FACTOR = 4;

export const DUPLICATE_KINDS = ['exact', 'near_identical', 'similar'] as const;
export type DuplicateKind = (typeof DUPLICATE_KINDS)[number];

export interface DuplicateGroup {
  /** Members, sorted: documents; for videos and PDFs each one's best matching frame or page, in the order of `videos` / `pdfs`. */
  ids: string[];
  /**
   * The weakest link that joined the group: every member is this similar to another member, or
   * more (videos, PDFs: every matched frame or page of each is this similar to one of another).
   */
  score: number;
  /** Copies (one content hash), near-identical (re-encoded, resized) or similar. */
  kind: DuplicateKind;
  /** A group of videos: their ids (`clips/a.mp4`), sorted. */
  videos?: string[];
  /** A group of PDFs: their ids, sorted. */
  pdfs?: string[];
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

  /** Whether every one of `ids` is in one set (each unknown id is a set of its own). */
  together(ids: readonly string[]): boolean {
    const root = this.parent.has(ids[0]!) ? this.find(ids[0]!) : ids[0];
    return ids.every((id) => (this.parent.has(id) ? this.find(id) : id) === root);
  }
}

/** One frame's (page's) best match in the other file of a pair. */
interface PartMatch {
  /** The frame's (page's) document id. */
  id: string;
  score: number;
  /** Some match has the same content hash. */
  exact: boolean;
}

/** What two videos (PDFs) have in common: each one's matched frames (pages). */
interface FilePair {
  kind: FilePart['kind'];
  /** File keys, sorted. */
  keys: [string, string];
  files: [string, string];
  /** Per file: frame id (page number) -> its best match in the other. */
  matched: [Map<string, PartMatch>, Map<string, PartMatch>];
}

/** A neighbour found for a scanned document. */
interface Link {
  id: string;
  metadata: Metadata | undefined;
  hit: SearchHit;
}

const partUnit = (part: FilePart, doc: { id: string; metadata: Metadata }) => {
  if (part.kind === 'video') return doc.id;
  const page = pageNumber(doc);
  return page === null ? doc.id : `page ${page}`;
};

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
  /** The same documents joined by near-identical links only: a group is near-identical when they join it whole. */
  readonly #nearSets = new UnionFind();
  /** Each member's strongest link: what a group's score is made of. */
  readonly #best = new Map<string, number>();
  /** Content hashes of the documents that have a link (what `exact` compares). */
  readonly #hash = new Map<string, string>();
  /** The collection holds frames or pages. */
  #parts = false;
  /** Videos (PDFs) with frames (pages) in common, by their two file keys. */
  readonly #pairs = new Map<string, FilePair>();
  /** File key -> its frames (pages) in the collection. */
  readonly #partCounts = new Map<string, number>();
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
    const info = await requireCollection(this.store, this.collection);
    // Without frames or pages in the collection, nothing more than the neighbour searches.
    this.#parts = holdsFileParts(info.fields);
    this.#total = await this.store.count(this.collection);
    for await (const page of this.store.scan(this.collection)) {
      signal?.throwIfAborted();
      const docs = this.modality ? page.filter((d) => d.modality === this.modality) : page;
      // A frame or page is searched among other files' only: its metadata first says whose it is.
      const stored = this.#parts && docs.length > 0 ? new Map((await this.store.get(this.collection, docs.map((d) => d.id))).map((d) => [d.id, d])) : undefined;
      const links: Link[] = [];
      await mapConcurrent(docs, CONCURRENCY, async (doc) => {
        const metadata = stored?.get(doc.id)?.metadata;
        if (stored && !metadata) return; // deleted since the scan read it
        const part = metadata ? filePartOf(metadata) : undefined;
        for (const hit of await this.#neighboursOf(doc, part)) links.push({ id: doc.id, metadata, hit });
      }, signal);
      await this.#learnHashes(links, stored);
      for (const link of links) await this.#fold(link);
      this.#scanned += page.length;
      onProgress?.(this.progress);
    }
    return this.groups();
  }

  async #neighboursOf(doc: { id: string; vector: Float32Array }, part: FilePart | undefined): Promise<SearchHit[]> {
    const query = { vector: doc.vector, k: this.#neighbours, minScore: this.threshold, modality: this.modality, excludeIds: [doc.id] };
    if (part) {
      // Frames of other videos only (pages of other PDFs): a document without the key, or of
      // this very file, fails the `$ne`.
      const filter = parseFilter({ [part.kind === 'video' ? VIDEO_KEY : PDF_KEY]: { $ne: part.file } });
      const hits = await this.store.search(this.collection, { ...query, filter });
      return hits.filter((h) => filePartOf(h.metadata)?.kind === part.kind);
    }
    const hits = await this.store.search(this.collection, query);
    if (!this.#parts) return hits;
    const own = hits.filter((h) => !filePartOf(h.metadata));
    if (own.length === hits.length || hits.length < query.k) return own;
    // Frames or pages took neighbours' places (a photo among the frames of a video of it): deeper, once.
    return (await this.store.search(this.collection, { ...query, k: query.k * CROWDED_FACTOR })).filter((h) => !filePartOf(h.metadata));
  }

  /** The content hashes of what `links` join, for the kinds: kept for linked documents only. */
  async #learnHashes(links: readonly Link[], stored: Map<string, StoredDocument> | undefined): Promise<void> {
    const missing = new Set<string>();
    for (const { id, hit } of links) {
      for (const x of [id, hit.id]) {
        if (this.#hash.has(x)) continue;
        const known = stored?.get(x);
        if (known) this.#hash.set(x, known.hash);
        else missing.add(x);
      }
    }
    if (missing.size === 0) return;
    for (const doc of await this.store.get(this.collection, [...missing])) this.#hash.set(doc.id, doc.hash);
  }

  async #fold({ id, metadata, hit }: Link): Promise<void> {
    const a = metadata ? filePartOf(metadata) : undefined;
    const b = filePartOf(hit.metadata);
    if (!a && !b) return this.#link(id, hit.id, hit.score);
    // A part with a document of its own, parts of different kinds or of one file: never a pair.
    if (!a || !b || a.kind !== b.kind || a.file === b.file) return;
    const keys = [fileKey(a), fileKey(b)] as const;
    const first = keys[0] < keys[1] ? 0 : 1;
    const pairKey = `${keys[first]}\u0001${keys[1 - first]}`;
    let pair = this.#pairs.get(pairKey);
    if (!pair) {
      const files: [string, string] = first === 0 ? [a.file, b.file] : [b.file, a.file];
      pair = { kind: a.kind, keys: [keys[first]!, keys[1 - first]!], files, matched: [new Map(), new Map()] };
      this.#pairs.set(pairKey, pair);
      await this.#countParts(a, metadata!);
      await this.#countParts(b, hit.metadata);
    }
    const exact = this.#hash.get(id) !== undefined && this.#hash.get(id) === this.#hash.get(hit.id);
    const note = (side: Map<string, PartMatch>, unit: string, doc: string) => {
      const known = side.get(unit);
      if (!known) side.set(unit, { id: doc, score: hit.score, exact });
      else {
        if (hit.score > known.score) Object.assign(known, { id: doc, score: hit.score });
        known.exact ||= exact;
      }
    };
    note(pair.matched[first]!, partUnit(a, { id, metadata: metadata! }), id);
    note(pair.matched[1 - first]!, partUnit(b, hit), hit.id);
    this.#cache = undefined;
  }

  /** How many frames a video has in the collection (counted), or pages a PDF (its page_count). */
  async #countParts(part: FilePart, metadata: Metadata): Promise<void> {
    const key = fileKey(part);
    if (this.#partCounts.has(key)) return;
    const pages = metadata.page_count;
    const n = part.kind === 'pdf' && typeof pages === 'number' && pages > 0
      ? pages
      : await this.store.count(this.collection, parseFilter({ [part.kind === 'video' ? VIDEO_KEY : PDF_KEY]: part.file }));
    this.#partCounts.set(key, Math.max(1, n));
  }

  #link(a: string, b: string, score: number): void {
    this.#sets.union(a, b);
    if (score >= NEAR_IDENTICAL) this.#nearSets.union(a, b);
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
    const documents = [...groups.values()]
      .filter((ids) => ids.length > 1)
      .map((ids): DuplicateGroup => {
        ids.sort();
        const hash = this.#hash.get(ids[0]!);
        const kind = hash !== undefined && ids.every((id) => this.#hash.get(id) === hash) ? 'exact' : this.#nearSets.together(ids) ? 'near_identical' : 'similar';
        return { ids, score: ids.reduce((low, id) => Math.min(low, this.#best.get(id) ?? 1), 1), kind };
      });
    this.#cache = [...documents, ...this.#fileGroups()]
      .sort((x, y) => y.ids.length - x.ids.length || y.score - x.score || (x.ids[0]! < y.ids[0]! ? -1 : 1));
    return this.#cache;
  }

  /** Videos (PDFs) whose frames (pages) match in bulk, grouped: see the rule at the top. */
  #fileGroups(): DuplicateGroup[] {
    const sets = new UnionFind();
    const exactSets = new UnionFind();
    const nearSets = new UnionFind();
    /** Per file: its best pair's score, and its frame (page) in that pair's best match. */
    const best = new Map<string, { score: number; id: string; file: string; kind: FilePart['kind'] }>();
    for (const pair of this.#pairs.values()) {
      const counts = pair.keys.map((k) => this.#partCounts.get(k) ?? Infinity);
      const sizes = pair.matched.map((m) => m.size);
      const coverage = sizes.map((m, i) => Math.min(1, m / counts[i]!));
      const shorter = counts[0]! <= counts[1]! ? 0 : 1;
      if (sizes[shorter]! < Math.min(MIN_MATCHED_PARTS, counts[shorter]!) || coverage[shorter]! < FILE_COVERAGE) continue;
      const matches = [...pair.matched[0].values(), ...pair.matched[1].values()];
      // Every matched frame (page) of either is at least this similar to one of the other.
      const score = matches.reduce((low, m) => Math.min(low, m.score), 1);
      sets.union(pair.keys[0], pair.keys[1]);
      if (coverage.every((c) => c >= 1) && matches.every((m) => m.exact)) {
        exactSets.union(pair.keys[0], pair.keys[1]);
        nearSets.union(pair.keys[0], pair.keys[1]);
      } else if (coverage.every((c) => c >= NEAR_FILE_COVERAGE) && matches.every((m) => m.score >= NEAR_IDENTICAL)) {
        nearSets.union(pair.keys[0], pair.keys[1]);
      }
      for (const side of [0, 1] as const) {
        // Ties go to the smaller id (a page's picture before its text), whatever order the scan met them in.
        const top = [...pair.matched[side].values()].reduce((x, y) => (y.score > x.score || (y.score === x.score && y.id < x.id) ? y : x));
        const known = best.get(pair.keys[side]);
        if (!known || score > known.score) best.set(pair.keys[side], { score, id: top.id, file: pair.files[side], kind: pair.kind });
      }
    }
    const components = new Map<string, string[]>();
    for (const key of sets.members()) {
      const root = sets.find(key);
      components.set(root, [...(components.get(root) ?? []), key]);
    }
    return [...components.values()].map((keys): DuplicateGroup => {
      const members = keys.map((k) => best.get(k)!).sort((x, y) => (x.file < y.file ? -1 : x.file > y.file ? 1 : 0));
      const kind = exactSets.together(keys) ? 'exact' : nearSets.together(keys) ? 'near_identical' : 'similar';
      const files = members.map((m) => m.file);
      return {
        ids: members.map((m) => m.id),
        score: members.reduce((low, m) => Math.min(low, m.score), 1),
        kind,
        ...(members[0]!.kind === 'video' ? { videos: files } : { pdfs: files }),
      };
    });
  }
}

/** Groups of near-duplicate documents, largest first (then most similar); COLLECTION_NOT_FOUND. */
export function findDuplicates(store: VectorStore, collection: string, options: DuplicateOptions = {}): Promise<DuplicateGroup[]> {
  return new DuplicateScan(store, collection, options).run(options.signal, options.onProgress);
}
