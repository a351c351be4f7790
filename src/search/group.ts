/**
 * Shaping a search's candidates into results:
 *
 *   - grouping: a video is indexed as many frames (`PATH#t=SECONDS`, metadata `video`, `t`) and
 *     a PDF as many pages (`PATH#page=N` and `PATH#page=N&text`, metadata `pdf`, `page`); a
 *     search answers one result per video or PDF, its best frame or page, with up to
 *     MAX_LISTED other matching ones listed under it (`moments`, `pages`);
 *   - collapsing: near-identical documents (the same content hash, or stored vectors at least
 *     NEAR_IDENTICAL cosine-similar: the same photo as PNG and WebP, a resized copy) become one
 *     result, the others listed under it (`collapsed`).
 *
 * Both work on the ordered candidate list before paging, so `k` and `offset` count results.
 */
import { cosine } from '../engine/vectors.ts';
import type { Metadata, MetadataKind, Modality, SearchHit } from '../store/store.ts';

/** Metadata keys the indexer gives a video's frames and a PDF's pages. */
export const VIDEO_KEY = 'video';
export const PDF_KEY = 'pdf';

/** Other matching frames (pages) listed under a video's (PDF's) result. */
export const MAX_LISTED = 3;

/**
 * Cosine similarity of two documents' stored vectors from which they are near-identical: the
 * same picture re-encoded or resized, not merely a similar shot. Shared by collapsing and by
 * the duplicate kinds (duplicates.ts).
 *
 * Measured on images made with sharp (test/search/group.test.ts measures the same), a 320x240
 * photo of three noisy colour bands against its variants:
 *
 *   variant                                  demo (colour)   tiny (seeded weights)
 *   WebP q80, JPEG q60                       1.00000         0.99969 / 0.99972
 *   resized to 160x120 (PNG; JPEG q75)       1.00000/0.99999 0.99982 / 0.99907
 *   cropped to 81% of its width              0.95448         0.91518
 *   the bands in another order               0.94367         0.85543
 *   other proportions of the same colours    0.90228         0.91185
 *   another colour among the bands           0.76718         0.61697
 *
 * Re-encodes and resizes stay above 0.999, different pictures below 0.96: 0.98 sits in the
 * gap, leaving room for a real model's larger encoding noise (CLIP-like models move a JPEG
 * re-encode a little more than these small towers do) while a crop or a neighbouring shot of
 * a burst stays "similar".
 */
export const NEAR_IDENTICAL = 0.98;

export interface Moment {
  /** The frame's document id (`PATH#t=SECONDS`). */
  id: string;
  /** Seconds into the video; null when neither its metadata nor its id says. */
  t: number | null;
  score: number;
}

export interface PageMatch {
  /** The page's document id (`PATH#page=N`, or `PATH#page=N&text`). */
  id: string;
  /** 1-based; null when neither its metadata nor its id says. */
  page: number | null;
  score: number;
}

export interface CollapsedMatch {
  id: string;
  score: number;
}

/** A search result: a document, or a video's or a PDF's best part with others listed under it. */
export interface GroupedHit extends SearchHit {
  /** A video's result: up to MAX_LISTED other matching frames, best first. */
  moments?: Moment[];
  /** A PDF's result: up to MAX_LISTED other matching pages (each page once, not the result's own), best first. */
  pages?: PageMatch[];
  /** With collapsing: the near-identical documents this result stands for, in result order. */
  collapsed?: CollapsedMatch[];
}

/** Whether a collection holds frames or pages at all: without the fields, grouping is skipped and costs nothing. */
export function holdsFileParts(fields: ReadonlyMap<string, MetadataKind>): boolean {
  return fields.get(VIDEO_KEY) === 'string' || fields.get(PDF_KEY) === 'string';
}

/** The file a document is a part of: a frame of a video, a page (image or text) of a PDF. */
export interface FilePart {
  kind: 'video' | 'pdf';
  /** The video's or PDF's id (`clips/a.mp4`). */
  file: string;
}

export function filePartOf(metadata: Metadata): FilePart | undefined {
  const video = metadata[VIDEO_KEY];
  if (typeof video === 'string') return { kind: 'video', file: video };
  const pdf = metadata[PDF_KEY];
  if (typeof pdf === 'string') return { kind: 'pdf', file: pdf };
  return undefined;
}

/** One key per file (a video and a PDF of the same path stay apart). */
export const fileKey = (part: FilePart) => `${part.kind}\u0000${part.file}`;

/** A frame's time: its `t`, else the id's `#t=SECONDS`. */
export function frameTime(doc: { id: string; metadata: Metadata }): number | null {
  const t = doc.metadata.t;
  if (typeof t === 'number' && Number.isFinite(t)) return t;
  const match = /#t=(\d+(?:\.\d+)?)$/.exec(doc.id);
  return match ? Number(match[1]) : null;
}

/** A page's number: its `page`, else the id's `#page=N`. */
export function pageNumber(doc: { id: string; metadata: Metadata }): number | null {
  const page = doc.metadata.page;
  if (typeof page === 'number' && Number.isInteger(page)) return page;
  const match = /#page=(\d+)(?:&text)?$/.exec(doc.id);
  return match ? Number(match[1]) : null;
}

/**
 * One result per video and per PDF, in the order of each one's best part (`hits` best first),
 * which is the result: its id, score and metadata. Documents of their own pass through.
 * A PDF page's image and text documents are one page: listed once, and never the result's own.
 */
export function groupHits(hits: readonly SearchHit[]): GroupedHit[] {
  const out: GroupedHit[] = [];
  const heads = new Map<string, { hit: GroupedHit; pages: Set<number | string> }>();
  for (const hit of hits) {
    const part = filePartOf(hit.metadata);
    if (!part) {
      out.push(hit);
      continue;
    }
    const key = fileKey(part);
    const head = heads.get(key);
    if (part.kind === 'video') {
      if (!head) {
        const grouped: GroupedHit = { ...hit, moments: [] };
        heads.set(key, { hit: grouped, pages: new Set() });
        out.push(grouped);
      } else if (head.hit.moments!.length < MAX_LISTED) {
        head.hit.moments!.push({ id: hit.id, t: frameTime(hit), score: hit.score });
      }
      continue;
    }
    // A page without a number is a page of its own (its id stands for it).
    const page = pageNumber(hit) ?? hit.id;
    if (!head) {
      const grouped: GroupedHit = { ...hit, pages: [] };
      heads.set(key, { hit: grouped, pages: new Set([page]) });
      out.push(grouped);
      continue;
    }
    if (head.pages.has(page)) continue;
    head.pages.add(page);
    if (head.hit.pages!.length < MAX_LISTED) head.hit.pages!.push({ id: hit.id, page: typeof page === 'number' ? page : null, score: hit.score });
  }
  return out;
}

/** What collapsing needs of a document: its content hash and stored vector (store.get with vectors). */
export interface CollapseFacts {
  hash: string;
  vector?: Float32Array;
}

/** Candidates past the page's last result still looked at for near-identical copies of the page's results. */
export const COLLAPSE_LOOKAHEAD = 20;
/** At most this many candidates are collapsed (their vectors read); past it they pass through. */
export const MAX_COLLAPSE_WINDOW = 2000;

/**
 * Near-identical documents as one result: walking `hits` in order, a hit of the same modality
 * as an earlier result, with the same content hash or vectors at least NEAR_IDENTICAL
 * cosine-similar to it, is listed under that result instead of being one. Frames and pages
 * collapse only with parts of their own file: two videos (PDFs) are not near-identical because
 * one frame (page) each is (duplicates.ts compares files as a whole).
 *
 * Looks at the candidates up to the `wanted`-th result and COLLAPSE_LOOKAHEAD more, reading
 * their hashes and vectors through `lookup` (in batches, as far as the walk goes), and
 * answers the results up to there: at least `wanted` of them when the candidates allow.
 * Candidates past MAX_COLLAPSE_WINDOW pass through uncollapsed.
 */
export async function collapseHits(
  hits: readonly GroupedHit[],
  wanted: number,
  lookup: (ids: readonly string[]) => Promise<Map<string, CollapseFacts>>,
): Promise<GroupedHit[]> {
  const window = Math.min(hits.length, MAX_COLLAPSE_WINDOW);
  const facts = new Map<string, CollapseFacts>();
  let fetched = 0;
  const kept: { hit: GroupedHit; modality: Modality; file: string; facts: CollapseFacts | undefined }[] = [];
  const byHash = new Map<string, number>();
  let lookahead = COLLAPSE_LOOKAHEAD;
  let i = 0;
  for (; i < window; i++) {
    if (kept.length >= wanted && lookahead-- <= 0) break;
    if (i >= fetched) {
      // What the walk needs at least from here: up to the wanted-th result and the look-ahead.
      const to = Math.min(window, kept.length >= wanted ? i + 1 + lookahead : i + (wanted - kept.length) + COLLAPSE_LOOKAHEAD);
      for (const [id, f] of await lookup(hits.slice(fetched, to).map((h) => h.id))) facts.set(id, f);
      fetched = to;
    }
    const hit = hits[i]!;
    const part = filePartOf(hit.metadata);
    const file = part ? fileKey(part) : '';
    const mine = facts.get(hit.id);
    const hashKey = mine ? `${hit.modality}\u0000${file}\u0000${mine.hash}` : undefined;
    let into = hashKey !== undefined ? byHash.get(hashKey) : undefined;
    if (into === undefined && mine?.vector) {
      into = kept.findIndex((k) => k.modality === hit.modality && k.file === file && k.facts?.vector !== undefined && cosine(k.facts.vector, mine.vector!) >= NEAR_IDENTICAL);
      if (into === -1) into = undefined;
    }
    if (into !== undefined) {
      (kept[into]!.hit.collapsed ??= []).push({ id: hit.id, score: hit.score });
      continue;
    }
    // Past the page: a result of a later page, looked at only for what it might collapse.
    if (kept.length >= wanted) continue;
    kept.push({ hit: { ...hit }, modality: hit.modality, file, facts: mine });
    if (hashKey !== undefined && !byHash.has(hashKey)) byHash.set(hashKey, kept.length - 1);
  }
  const out = kept.map((k) => k.hit);
  // The walk ended short of `wanted` at the window's edge: the rest as they are.
  if (out.length < wanted && i >= window) out.push(...hits.slice(window, window + wanted - out.length));
  return out;
}
