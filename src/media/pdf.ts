/**
 * PDFs through Poppler's command-line tools (Debian's poppler-utils): pdfinfo for the page
 * count and info dictionary, pdftoppm to render a page as PNG, pdftotext for a page's text.
 *
 * Why separate processes and not a library in this process: a PDF is a program (nested
 * content streams, fonts, images) and a hostile one can make any renderer loop for hours or
 * crash. A child process can be SIGKILLed on a deadline and its crash is its own; the
 * service only sees an exit status. Every child here is spawned with an argument array (no
 * shell), stdin closed, stdout collected up to a byte cap, and is SIGKILLed and awaited (so
 * it is reaped, never left a zombie) when its deadline passes, the caller aborts, or it
 * prints more than the cap.
 *
 * Pages are produced one at a time, each by its own pdftoppm and pdftotext run on that page
 * alone, so a 10,000-page document costs no more memory than a 1-page one, and only the
 * pages asked for are ever rendered.
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { delimiter, join, resolve } from 'node:path';
import { TesseraError, invalidArgument } from '../errors.ts';
import type { Metadata } from '../store/store.ts';

export interface PopplerTools {
  pdfinfo: string;
  pdftoppm: string;
  pdftotext: string;
}

export const POPPLER_HINT = 'install Poppler (Debian/Ubuntu: apt-get install poppler-utils)';

/**
 * At most this many pages of one PDF are indexed unless the caller says otherwise. Each page
 * becomes a document with its own vector; 500 covers books and long reports while bounding
 * what one file costs: 500 pages is 15-45 s of Poppler time at the rates below, before any
 * embedding. Past that a PDF is usually a scan archive or a generated dump whose tail adds
 * little to search (and can be indexed with a higher limit on purpose).
 *
 * Measured by test/media/pdf.test.ts ('throughput'): 20 US Letter pages, each a colour fill
 * and a line of text, PNG + text per page, poppler 22.12, on "AMD EPYC" (as /proc/cpuinfo
 * names it; 2 cores at 2.45 GHz, shared with other jobs):
 *   size 224: 32.5 pages/s with the machine quiet, 11-19 pages/s at load average 5-7;
 *   size 512: 15.9 pages/s quiet, 8-14 pages/s loaded.
 * At 224 the start-up of the two Poppler children per page dominates; at 512, rasterising.
 * Pages with large images or many glyphs render slower.
 */
export const DEFAULT_PDF_MAX_PAGES = 500;

/**
 * Poppler time one PDF may take (all its children together; the time the consumer spends on
 * a page between pages does not count). About 2.5 times what DEFAULT_PDF_MAX_PAGES plain pages
 * take on the loaded machine above (500 / 10 pages/s = 50 s), so a long, honest document
 * finishes while a hostile one (nested forms that never finish rendering) is stopped within
 * two minutes. Callers that render fewer pages may pass a shorter deadline.
 */
export const DEFAULT_PDF_DEADLINE_MS = 120_000;

/** The longer side of a rendered page is at most this many pixels (or `size`, if larger). */
export const PDF_MAX_RENDER_SIDE = 4096;

/** A page's text is cut at this many UTF-8 bytes (a text embedding reads far fewer). */
export const PDF_MAX_PAGE_TEXT_BYTES = 1024 * 1024;

/** pdfinfo's output is bounded by the info dictionary; more than this is a hostile file. */
const MAX_INFO_BYTES = 4 * 1024 * 1024;
/** Kept of a child's stderr, for the reason in an error message. */
const MAX_STDERR_BYTES = 64 * 1024;
/** Title and author are cut to this many characters: they go into every page's metadata. */
const MAX_INFO_CHARS = 1000;

// --- Finding the tools ---------------------------------------------------------------------

let found: PopplerTools | undefined;

/**
 * pdfinfo, pdftoppm and pdftotext from PATH; undefined unless all three are there. A found
 * set is cached for the life of the process; a missing one is looked for again on the next
 * call (a few stat calls), so installing Poppler needs no restart.
 */
export async function findPoppler(): Promise<PopplerTools | undefined> {
  if (found) return found;
  const [pdfinfo, pdftoppm, pdftotext] = await Promise.all(['pdfinfo', 'pdftoppm', 'pdftotext'].map(onPath));
  if (!pdfinfo || !pdftoppm || !pdftotext) return undefined;
  found = { pdfinfo, pdftoppm, pdftotext };
  return found;
}

async function onPath(name: string): Promise<string | undefined> {
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    if (!dir) continue;
    const file = join(dir, name);
    try {
      await access(file, constants.X_OK);
      return file;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

// --- Sniffing --------------------------------------------------------------------------------

const HEADER = Buffer.from('%PDF-');
/** Poppler (PDFDoc::checkHeader) and Acrobat look for the header this far into the file. */
const HEADER_SEARCH_BYTES = 1024;

/**
 * Whether `head` (the first bytes of a file; 1 KiB is enough) looks like a PDF: "%PDF-"
 * within its first 1024 bytes. Not only at offset 0, because Acrobat (PDF Reference 1.7,
 * appendix H) and Poppler both accept junk before the header (mail and MacBinary leftovers), and
 * what Poppler opens should be indexed. The price: a text file that mentions "%PDF-" in its
 * first KiB is taken for a PDF and fails as PDF_UNREADABLE, so sniff only files that are not
 * recognised otherwise (or have a .pdf name).
 */
export function isPdf(head: Uint8Array): boolean {
  const window = Buffer.from(head.buffer, head.byteOffset, Math.min(head.byteLength, HEADER_SEARCH_BYTES));
  return window.indexOf(HEADER) !== -1;
}

// --- Running a Poppler child -----------------------------------------------------------------

export interface PdfLimits {
  /**
   * Milliseconds of Poppler time the call may use, all its children together. For pdfPages
   * that is the whole document: the time the consumer holds a page does not count.
   */
  deadlineMs: number;
  /** Aborting kills the running child: REQUEST_CANCELLED (or the reason, if a TesseraError). */
  signal?: AbortSignal;
}

/** What one call has left of its deadline: each step's children get the rest, and spend from it. */
class Budget {
  private spent = 0;
  constructor(
    readonly file: string,
    readonly limits: PdfLimits,
  ) {
    if (!(Number.isFinite(limits.deadlineMs) && limits.deadlineMs > 0)) {
      throw invalidArgument('deadlineMs', 'a positive number of milliseconds', limits.deadlineMs);
    }
  }
  get left(): number {
    return this.limits.deadlineMs - this.spent;
  }
  /**
   * Runs `work` (one step: children started together) with what is left, and charges its
   * wall time. However the step ends, every child it started has exited before this returns:
   * when one child fails, its siblings are killed and awaited too.
   */
  async spend<T>(work: (step: Step) => Promise<T>): Promise<T> {
    this.checkAborted();
    if (this.left <= 0) throw this.timeout();
    const started = performance.now();
    const step = new Step(this.left, this.limits.signal);
    try {
      return await work(step);
    } catch (err) {
      await step.stop();
      if (step.expired) throw this.timeout();
      if (step.aborted) throw cancelled(this.limits.signal?.reason, this.file);
      throw err;
    } finally {
      step.dispose();
      this.spent += performance.now() - started;
    }
  }
  checkAborted(): void {
    if (this.limits.signal?.aborted) throw cancelled(this.limits.signal.reason, this.file);
  }
  private timeout(): TesseraError {
    return new TesseraError(
      'PDF_TIMEOUT',
      `${show(this.file)}: Poppler took longer than the ${this.limits.deadlineMs} ms deadline and was stopped`,
    );
  }
}

/**
 * One step's children: a timer and the caller's signal feed one AbortSignal that kills them
 * all, and each child's exit is kept so the step can wait for every one of them.
 */
class Step {
  private readonly controller = new AbortController();
  private readonly timer: NodeJS.Timeout;
  private readonly exits: Promise<unknown>[] = [];
  expired = false;
  aborted = false;
  private readonly onAbort = () => {
    this.aborted = true;
    this.controller.abort();
  };
  constructor(
    ms: number,
    private readonly caller?: AbortSignal,
  ) {
    // setTimeout fires at once for delays past 2^31 - 1 ms (24.8 days): clamp, not overflow.
    this.timer = setTimeout(() => {
      this.expired = true;
      this.controller.abort();
    }, Math.min(ms, 2 ** 31 - 1));
    caller?.addEventListener('abort', this.onAbort, { once: true });
  }
  get signal(): AbortSignal {
    return this.controller.signal;
  }
  /** Runs a child in this step (see run). */
  run(bin: string, args: readonly string[], options: RunOptions): Promise<RunResult> {
    const result = run(bin, args, { ...options, signal: this.controller.signal });
    this.exits.push(result.catch(() => undefined));
    return result;
  }
  /** Kills whatever still runs and waits until every child has exited. */
  async stop(): Promise<void> {
    this.controller.abort();
    await Promise.all(this.exits);
  }
  dispose(): void {
    clearTimeout(this.timer);
    this.caller?.removeEventListener('abort', this.onAbort);
  }
}

interface RunResult {
  code: number | null;
  stdout: Buffer;
  stderr: string;
  /** stdout reached the cap and the child was killed (only with overflow 'truncate'). */
  truncated: boolean;
}

interface RunOptions {
  maxBytes: number;
  /** 'fail': more output than maxBytes is PDF_UNREADABLE; 'truncate': keep maxBytes, stop the child. */
  overflow: 'fail' | 'truncate';
  file: string;
}

/**
 * Runs `bin args` and collects its stdout. Settles only once the child has exited (so it is
 * reaped). Rejects when `signal` aborts (the child is SIGKILLed first; the step maps this to
 * PDF_TIMEOUT or REQUEST_CANCELLED), when the binary cannot be started (POPPLER_MISSING),
 * or when stdout overflows with 'fail'. A non-zero exit is the caller's to judge: it resolves.
 */
function run(bin: string, args: readonly string[], options: RunOptions & { signal: AbortSignal }): Promise<RunResult> {
  return new Promise((resolvePromise, reject) => {
    if (options.signal.aborted) return reject(new Error('aborted'));
    const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    let bytes = 0;
    let stderr = '';
    let truncated = false;
    let failure: unknown;
    const stop = (why: unknown) => {
      failure ??= why;
      child.kill('SIGKILL');
    };
    const onAbort = () => stop(new Error('aborted'));
    options.signal.addEventListener('abort', onAbort, { once: true });

    child.stdout.on('data', (chunk: Buffer) => {
      if (truncated || failure) return;
      const room = options.maxBytes - bytes;
      if (chunk.length <= room) {
        chunks.push(chunk);
        bytes += chunk.length;
        return;
      }
      if (options.overflow === 'truncate') {
        chunks.push(chunk.subarray(0, room));
        bytes += room;
        truncated = true;
        child.kill('SIGKILL');
      } else {
        stop(new TesseraError('PDF_UNREADABLE', `${show(options.file)}: ${basename(bin)} printed more than ${options.maxBytes} bytes`));
      }
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      if (stderr.length < MAX_STDERR_BYTES) stderr += chunk.slice(0, MAX_STDERR_BYTES - stderr.length);
    });
    child.on('error', (err: NodeJS.ErrnoException) => {
      // spawn failed (ENOENT, EACCES): there is no process, and 'close' still follows.
      failure ??=
        err.code === 'ENOENT' || err.code === 'EACCES'
          ? new TesseraError('POPPLER_MISSING', `${bin} cannot be run (${err.code}); ${POPPLER_HINT}`, { cause: err })
          : err;
    });
    // 'close' comes after the child has exited (and been reaped) and its pipes are drained.
    child.on('close', (code) => {
      options.signal.removeEventListener('abort', onAbort);
      if (failure) reject(failure);
      else resolvePromise({ code, stdout: Buffer.concat(chunks, bytes), stderr, truncated });
    });
  });
}

// --- pdfinfo ---------------------------------------------------------------------------------

export interface PdfInfo {
  pages: number;
  /** `title` and `author` from the info dictionary when present and not blank: trimmed, whitespace runs as one space. */
  metadata: Metadata;
  /**
   * Encrypted with an owner password only (restrictions on copying or printing): readers
   * open it without asking, and so does Poppler, so it is indexed. A user password makes
   * pdfInfo throw PDF_ENCRYPTED instead.
   */
  encrypted: boolean;
}

/**
 * The page count, title, author and encryption of the PDF at `path`. PDF_ENCRYPTED when it
 * needs a password to open; PDF_UNREADABLE (with Poppler's reason) when it is corrupt,
 * truncated, not a PDF, missing, or has no pages; PDF_TIMEOUT; POPPLER_MISSING.
 */
export async function pdfInfo(tools: PopplerTools, path: string, limits: PdfLimits): Promise<PdfInfo> {
  const budget = new Budget(path, limits);
  const out = await budget.spend((step) => info(tools, path, [], step));
  const fields = parseInfo(out);
  const pages = Number(fields.get('Pages')?.trim());
  if (!Number.isInteger(pages) || pages < 0) throw unreadable(path, 'pdfinfo did not say how many pages it has');
  if (pages === 0) throw unreadable(path, 'it has no pages');
  const metadata: Metadata = {};
  for (const [key, field] of [['title', 'Title'], ['author', 'Author']] as const) {
    const value = clean(fields.get(field) ?? '').slice(0, MAX_INFO_CHARS).trim();
    if (value) metadata[key] = value;
  }
  return { pages, metadata, encrypted: /^yes/.test(fields.get('Encrypted')?.trim() ?? '') };
}

/** The labels pdfinfo prints (poppler 22); the string fields among them may span lines. */
const INFO_LABEL = /^(Title|Subject|Keywords|Author|Creator|Producer|CreationDate|ModDate|Custom Metadata|Metadata Stream|Tagged|UserProperties|Suspects|Form|JavaScript|Pages|Encrypted|Page size|Page rot|File size|Optimized|PDF version|Page +\d+ [a-z]+):\s?(.*)$/;
const INFO_STRINGS = new Set(['Title', 'Subject', 'Keywords', 'Author', 'Creator', 'Producer']);

/**
 * pdfinfo's "Label: value" lines as a map. pdfinfo prints a title's newlines as they are, so
 * a line without a known label continues the string field before it. A title can still fake
 * a "Pages:" line of its own; the strings come first, so the last Pages and Encrypted win
 * (and the first Title and Author).
 */
function parseInfo(out: string): Map<string, string> {
  const fields = new Map<string, string>();
  let current: string | undefined;
  for (const line of out.split('\n')) {
    const m = INFO_LABEL.exec(line);
    if (!m) {
      if (current && INFO_STRINGS.has(current)) fields.set(current, `${fields.get(current)}\n${line}`);
      continue;
    }
    const label = m[1]!;
    current = INFO_STRINGS.has(label) && fields.has(label) ? undefined : label;
    if (current) fields.set(label, m[2]!);
  }
  return fields;
}

/** pdfinfo's stdout for `path` (absolute, so a name starting with "-" is not an option). */
async function info(tools: PopplerTools, path: string, extra: readonly string[], step: Step): Promise<string> {
  const result = await step.run(tools.pdfinfo, ['-enc', 'UTF-8', ...extra, resolve(path)], {
    maxBytes: MAX_INFO_BYTES,
    overflow: 'fail',
    file: path,
  });
  if (result.code !== 0) throw failed(path, 'pdfinfo', result);
  return result.stdout.toString('utf8');
}

/**
 * Width and height in points of pages 1..last, unrotated: pdfinfo prints the crop box (the
 * box pdftoppm -cropbox renders) before /Rotate, and pdftoppm applies -scale-to-x/-y to that
 * unrotated box and turns the result afterwards (unless -scale-dimension-before-rotation).
 * Fitting the shorter side does not care which side is which, so rotation needs nothing here.
 */
async function pageSizes(tools: PopplerTools, path: string, last: number, step: Step): Promise<Map<number, [number, number]>> {
  const out = await info(tools, path, ['-f', '1', '-l', String(last)], step);
  const sizes = new Map<number, [number, number]>();
  for (const line of out.split('\n')) {
    const size = /^Page\s+(\d+)\s+size:\s+([\d.]+) x ([\d.]+) pts/.exec(line);
    if (size) sizes.set(Number(size[1]), [Number(size[2]), Number(size[3])]);
  }
  return sizes;
}

// --- Pages -----------------------------------------------------------------------------------

export interface PdfPage {
  /** 1-based. */
  page: number;
  /**
   * PNG of the page (its crop box, as a viewer shows it), scaled so its shorter side is
   * `size` px, unless that would make the longer side exceed max(PDF_MAX_RENDER_SIDE, size):
   * then the longer side is that cap (only pages more elongated than 4096:size, 18:1 at 224).
   * The scale comes from the page's size, so a 14400 x 14400 pt page costs what a letter
   * page does.
   */
  image: Buffer;
  /** The page's text in reading order, whitespace runs as one space, trimmed; '' when none. */
  text: string;
}

export interface PageOptions extends PdfLimits {
  /** The model's input size: the shorter side of each rendered page. */
  size: number;
  maxPages: number;
}

/**
 * Pages 1..min(info.pages, maxPages) of the PDF at `path`, one at a time: each page's PNG
 * and text come from a pdftoppm and a pdftotext run on that page alone (started together),
 * so nothing holds more than one page. No child runs while the consumer holds a page, so an
 * early return (break in for await) leaves nothing behind. PDF_TIMEOUT when the Poppler time
 * passes `deadlineMs`, REQUEST_CANCELLED on abort, PDF_UNREADABLE when a page fails.
 */
export async function* pdfPages(tools: PopplerTools, path: string, info: PdfInfo, options: PageOptions): AsyncGenerator<PdfPage> {
  checkSize(options.size);
  if (!(Number.isInteger(options.maxPages) && options.maxPages > 0)) throw invalidArgument('maxPages', 'a positive integer', options.maxPages);
  const budget = new Budget(path, options);
  const last = Math.min(info.pages, options.maxPages);
  const sizes = await budget.spend((step) => pageSizes(tools, path, last, step));
  const cap = Math.max(PDF_MAX_RENDER_SIDE, options.size);
  for (let page = 1; page <= last; page++) {
    const box = sizes.get(page);
    const scale = box ? fitShorter(box, options.size, cap) : undefined;
    // Without a size from pdfinfo (a broken page), fit the longer side: bounded either way.
    const scaleArgs = scale ? ['-scale-to-x', String(scale[0]), '-scale-to-y', String(scale[1])] : ['-scale-to', String(options.size)];
    const [image, text] = await budget.spend((step) =>
      Promise.all([render(tools, path, page, scaleArgs, scale, step), pageText(tools, path, page, step)]),
    );
    yield { page, image, text };
    budget.checkAborted();
  }
}

/**
 * One page as a PNG whose longer side is `size` px (pdftoppm -scale-to; small pages are
 * scaled up), for thumbnails. PNG because the caller re-encodes it (WebP thumbnails), and
 * a lossless source does not compound JPEG artefacts.
 */
export async function renderPage(tools: PopplerTools, path: string, page: number, size: number, limits: PdfLimits): Promise<Buffer> {
  checkSize(size);
  if (!(Number.isInteger(page) && page > 0)) throw invalidArgument('page', 'a positive integer', page);
  const budget = new Budget(path, limits);
  return budget.spend((step) => render(tools, path, page, ['-scale-to', String(size)], [size, size], step));
}

function checkSize(size: number): void {
  if (!(Number.isInteger(size) && size > 0 && size <= 16384)) throw invalidArgument('size', 'an integer from 1 to 16384', size);
}

/** Pixel width and height for a `[w, h]` pt page: shorter side `size`, longer at most `cap`. */
function fitShorter([w, h]: [number, number], size: number, cap: number): [number, number] {
  if (!(w > 0 && h > 0)) return [size, size];
  let scale = size / Math.min(w, h);
  if (Math.max(w, h) * scale > cap) scale = cap / Math.max(w, h);
  return [Math.max(1, Math.round(w * scale)), Math.max(1, Math.round(h * scale))];
}

/**
 * pdftoppm of one page to stdout (poppler 22 writes there when no output root is given;
 * -singlefile drops the page-number suffix). Its stdout cap follows from the pixel size:
 * an incompressible RGB PNG is barely larger than its raw pixels.
 */
async function render(
  tools: PopplerTools,
  path: string,
  page: number,
  scaleArgs: readonly string[],
  pixels: [number, number] | undefined,
  step: Step,
): Promise<Buffer> {
  const [w, h] = pixels ?? [PDF_MAX_RENDER_SIDE, PDF_MAX_RENDER_SIDE];
  const result = await step.run(
    tools.pdftoppm,
    ['-f', String(page), '-l', String(page), '-singlefile', '-cropbox', '-png', ...scaleArgs, resolve(path)],
    { maxBytes: Math.ceil(w * h * 3 * 1.1) + 1024 * 1024, overflow: 'fail', file: path },
  );
  if (result.code !== 0) throw failed(path, `pdftoppm (page ${page})`, result);
  if (result.stdout.length < 8 || result.stdout.readUInt32BE(0) !== 0x89504e47) {
    throw unreadable(path, `pdftoppm printed no PNG for page ${page}`);
  }
  return result.stdout;
}

/**
 * pdftotext of one page in its default mode, reading order: it finds columns and orders
 * text blocks as a reader would, where -layout pads with spaces to keep positions (and
 * interleaves columns line by line) and -raw keeps content-stream order (often scrambled).
 * For an embedding, what matters is that sentences stay whole.
 */
async function pageText(tools: PopplerTools, path: string, page: number, step: Step): Promise<string> {
  const result = await step.run(
    tools.pdftotext,
    ['-f', String(page), '-l', String(page), '-enc', 'UTF-8', '-nopgbrk', resolve(path), '-'],
    { maxBytes: PDF_MAX_PAGE_TEXT_BYTES, overflow: 'truncate', file: path },
  );
  // A killed child (truncated output) exits by signal: the text kept is still good.
  if (result.code !== 0 && !result.truncated) throw failed(path, `pdftotext (page ${page})`, result);
  return clean(result.stdout.toString('utf8').replace(/\uFFFD$/, ''));
}

/**
 * NFKC first: typeset PDFs are full of ligatures (U+FB01 "ﬁ") and compatibility forms that
 * a tokenizer would split oddly; then whitespace runs (newlines, form feeds) as one space.
 */
function clean(text: string): string {
  return text.normalize('NFKC').replace(/\s+/g, ' ').trim();
}

// --- Errors ----------------------------------------------------------------------------------

/** A non-zero exit: PDF_ENCRYPTED when Poppler asked for a password, else PDF_UNREADABLE. */
function failed(path: string, tool: string, result: RunResult): TesseraError {
  if (/Incorrect password/i.test(result.stderr)) {
    return new TesseraError('PDF_ENCRYPTED', `${show(path)} is encrypted with a password; tessera cannot open it`);
  }
  return unreadable(path, `${tool} failed (${reason(result)})`);
}

/** The most telling line of Poppler's stderr: the last error, without "Syntax Error (123): ". */
function reason(result: RunResult): string {
  const lines = result.stderr
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean);
  const errors = lines.filter((line) => /error/i.test(line));
  const last = (errors.length ? errors : lines).at(-1);
  if (!last) return result.code === null ? 'killed' : `exit status ${result.code}`;
  const text = last.replace(/^[\w/ ]*Error( \(\d+\))?:\s*/, '').replace(/\.$/, '');
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}

function unreadable(path: string, why: string): TesseraError {
  return new TesseraError('PDF_UNREADABLE', `${show(path)} is not a readable PDF: ${why}`);
}

function cancelled(reason: unknown, path: string): TesseraError {
  if (reason instanceof TesseraError) return reason;
  return new TesseraError('REQUEST_CANCELLED', `reading ${show(path)} was cancelled`, { cause: reason });
}

const show = (path: string) => JSON.stringify(path);
const basename = (bin: string) => bin.slice(bin.lastIndexOf('/') + 1);
