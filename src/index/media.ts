/**
 * Files that are many documents: a video is its frames (`PATH#t=SECONDS`), a PDF its pages
 * (`PATH#page=N`, and `PATH#page=N&text` for a page with text). A container file is read by
 * FFmpeg or Poppler, its parts embedded, and the whole written in one atomic upsert that also
 * removes the parts it no longer has: after a crash it is wholly indexed (old or new) or absent.
 *
 * A page is two documents, not one with two vectors: the store holds one vector per document,
 * hybrid search's full text reads text documents, and grouping by `pdf` gathers both halves
 * of a page into one result anyway.
 */
import { TesseraError } from '../errors.ts';
import type { Embedder } from '../engine/embedder.ts';
import { findFfmpeg, FFMPEG_HINT, type FfmpegTools } from '../media/ffmpeg.ts';
import { pdfInfo, pdfPages, findPoppler, POPPLER_HINT, DEFAULT_PDF_DEADLINE_MS, DEFAULT_PDF_MAX_PAGES, type PopplerTools } from '../media/pdf.ts';
import { probeVideo, videoFrames, DEFAULT_VIDEO_DEADLINE_MS, DEFAULT_VIDEO_INTERVAL, DEFAULT_VIDEO_MAX_FRAMES } from '../media/video.ts';
import type { Metadata } from '../store/store.ts';
import { contentHash, type LoadedDocument } from './document.ts';
import type { FileCandidate } from './sources.ts';

/** Metadata keys a container gives its parts (besides the walk's and the photo keys of a video). */
export const CONTAINER_KEYS = ['video', 't', 'duration', 'pdf', 'page', 'page_count', 'title', 'author'] as const;

export interface MediaOptions {
  /** Folder holding ffmpeg and ffprobe (--ffmpeg, TESSERA_FFMPEG); default: PATH. */
  ffmpegDir?: string;
  /** Seconds between frames at least (besides scene changes). */
  videoInterval?: number;
  videoMaxFrames?: number;
  videoDeadlineMs?: number;
  pdfMaxPages?: number;
  pdfDeadlineMs?: number;
}

/** The part of a container's document id after its file's id. */
export const frameId = (file: string, t: number) => `${file}#t=${t.toFixed(3)}`;
export const pageId = (file: string, page: number, text = false) => `${file}#page=${page}${text ? '&text' : ''}`;

/** The container a part belongs to (its `video` or `pdf` key), from its stored metadata. */
export function ownerOf(metadata: Metadata): string | undefined {
  const owner = metadata.video ?? metadata.pdf;
  return typeof owner === 'string' ? owner : undefined;
}

/** Tools found once per run: undefined when missing (the run notes it once and passes the files over). */
export class MediaTools {
  #ffmpeg?: Promise<FfmpegTools | undefined>;
  #poppler?: Promise<PopplerTools | undefined>;
  /** Files passed over for want of a tool, by the hint naming it. */
  readonly missing = new Map<string, number>();

  constructor(readonly options: MediaOptions = {}) {}

  ffmpeg(): Promise<FfmpegTools | undefined> {
    return (this.#ffmpeg ??= findFfmpeg(this.options.ffmpegDir ?? process.env.TESSERA_FFMPEG));
  }

  poppler(): Promise<PopplerTools | undefined> {
    return (this.#poppler ??= findPoppler());
  }

  passOver(kind: 'video' | 'pdf'): void {
    const hint = kind === 'video' ? `video file(s): FFmpeg not found; ${FFMPEG_HINT}` : `PDF file(s): Poppler not found; ${POPPLER_HINT}`;
    this.missing.set(hint, (this.missing.get(hint) ?? 0) + 1);
  }
}

/** One document of a container, read, not yet embedded. */
export type Part = LoadedDocument;

/**
 * The parts of a video or PDF file, as they are read. `undefined` when the tool it needs is
 * missing (noted by `tools`). Item errors (VIDEO_*, PDF_*) are about the file.
 */
export async function containerParts(c: FileCandidate, tools: MediaTools, imageSize: number, signal?: AbortSignal): Promise<AsyncIterable<Part> | undefined> {
  const o = tools.options;
  if (c.kind === 'video') {
    const ffmpeg = await tools.ffmpeg();
    if (!ffmpeg) return tools.passOver('video'), undefined;
    const limits = { deadlineMs: o.videoDeadlineMs ?? DEFAULT_VIDEO_DEADLINE_MS, signal };
    const info = await probeVideo(ffmpeg, c.path, limits);
    const frames = videoFrames(ffmpeg, c.path, info, { ...limits, interval: o.videoInterval ?? DEFAULT_VIDEO_INTERVAL, maxFrames: o.videoMaxFrames ?? DEFAULT_VIDEO_MAX_FRAMES, size: imageSize });
    const base: Metadata = { ...info.metadata, ...c.metadata, video: c.id, duration: round3(info.duration) };
    return (async function* () {
      for await (const frame of frames) {
        const id = frameId(c.id, frame.t);
        yield imagePart(c, id, frame.image, frame.hash, { ...base, t: round3(frame.t) });
      }
    })();
  }
  if (c.kind === 'pdf') {
    const poppler = await tools.poppler();
    if (!poppler) return tools.passOver('pdf'), undefined;
    const limits = { deadlineMs: o.pdfDeadlineMs ?? DEFAULT_PDF_DEADLINE_MS, signal };
    const info = await pdfInfo(poppler, c.path, limits);
    const pages = pdfPages(poppler, c.path, info, { ...limits, size: imageSize, maxPages: o.pdfMaxPages ?? DEFAULT_PDF_MAX_PAGES });
    const base: Metadata = { ...info.metadata, ...c.metadata, pdf: c.id, page_count: info.pages };
    return (async function* () {
      for await (const page of pages) {
        const metadata = { ...base, page: page.page };
        yield imagePart(c, pageId(c.id, page.page), page.image, contentHash(page.image), metadata);
        if (page.text.trim() !== '') {
          const id = pageId(c.id, page.page, true);
          yield { input: { id, text: page.text, metadata }, modality: 'text', item: { text: page.text }, hash: contentHash(page.text) };
        }
      }
    })();
  }
  throw new TesseraError('INVALID_ARGUMENT', `${c.path} is not a video or a PDF`);
}

function imagePart(c: FileCandidate, id: string, image: Buffer, hash: string, metadata: Metadata): Part {
  return { input: { id, image: c.path, metadata, root: c.source.path }, modality: 'image', item: { image }, hash, location: c.path, root: c.source.path };
}

const round3 = (x: number) => Math.round(x * 1000) / 1000;

/** Embeds `parts` with at most `inFlight` at once (so that frames decoded ahead stay few), in order. */
export async function embedParts(embedder: Embedder, parts: AsyncIterable<Part>, reuse: (part: Part) => boolean, inFlight = 8): Promise<{ part: Part; vector?: Float32Array }[]> {
  const out: { part: Part; vector?: Float32Array }[] = [];
  const running = new Set<Promise<void>>();
  let failed: unknown;
  for await (const part of parts) {
    if (failed !== undefined) break;
    const slot = out.length;
    out.push({ part });
    if (reuse(part)) continue;
    // Every part's text is cut to the model's limit: a page is long, and a cut page still finds it.
    const task = embedder
      .embed([part.item], { truncate: true })
      .then(([e]) => {
        out[slot]!.vector = e!.embedding;
        // The image bytes are not needed once embedded.
        out[slot]!.part = { ...part, item: { text: '' } };
      })
      .catch((err: unknown) => {
        failed ??= err;
      })
      .finally(() => running.delete(task));
    running.add(task);
    while (running.size >= inFlight) await Promise.race(running);
  }
  await Promise.all(running);
  if (failed !== undefined) throw failed;
  return out;
}

/** At most `n` container files read at once: each runs a child process using a core. */
export class Gate {
  #free: number;
  #waiting: (() => void)[] = [];

  constructor(n: number) {
    this.#free = n;
  }

  async run<T>(work: () => Promise<T>): Promise<T> {
    if (this.#free > 0) this.#free--;
    else await new Promise<void>((resolve) => this.#waiting.push(resolve));
    try {
      return await work();
    } finally {
      const next = this.#waiting.shift();
      if (next) next();
      else this.#free++;
    }
  }
}
