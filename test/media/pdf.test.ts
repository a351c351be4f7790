import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import sharp from 'sharp';
import {
  DEFAULT_PDF_DEADLINE_MS,
  DEFAULT_PDF_MAX_PAGES,
  PDF_MAX_RENDER_SIDE,
  POPPLER_HINT,
  type PdfPage,
  type PopplerTools,
  findPoppler,
  isPdf,
  pdfInfo,
  pdfPages,
  renderPage,
} from '../../src/media/pdf.ts';
import { rejectsWith } from '../helpers/errors.ts';
import { type Rgb, makeBlankPdf, makeEncryptedPdf, makeNestedFormsPdf, makePdf, pdfBytes } from '../helpers/pdf.ts';

const dir = mkdtempSync(join(tmpdir(), 'tessera-pdf-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let tools: PopplerTools;
before(async () => {
  const found = await findPoppler();
  // Poppler is a test dependency (.ci/run installs poppler-utils): missing is a failure, not a skip.
  assert.ok(found, `Poppler not found on PATH; ${POPPLER_HINT}`);
  tools = found;
});

const LIMITS = { deadlineMs: 30_000 };
const RED: Rgb = [255, 0, 0];
const BLUE: Rgb = [0, 0, 255];
const GREEN: Rgb = [0, 255, 0];

async function collect(pages: AsyncIterable<PdfPage>): Promise<PdfPage[]> {
  const out: PdfPage[] = [];
  for await (const page of pages) out.push(page);
  return out;
}

/** Poppler processes whose parent is this process, zombies included (/proc/PID/stat). */
function popplerChildren(): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      continue; // exited meanwhile
    }
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split at the last ")".
    const close = stat.lastIndexOf(')');
    const comm = stat.slice(stat.indexOf('(') + 1, close);
    const [state, ppid] = stat.slice(close + 2).split(' ');
    if (Number(ppid) === process.pid && /^pdf(info|toppm|totext)$/.test(comm)) found.push(`${pid} ${comm} ${state}`);
  }
  return found;
}

async function meanColour(png: Buffer): Promise<number[]> {
  const stats = await sharp(png).stats();
  return stats.channels.slice(0, 3).map((c) => Math.round(c.mean));
}

function assertColour(actual: number[], expected: Rgb, label: string): void {
  for (let i = 0; i < 3; i++) assert.ok(Math.abs(actual[i]! - expected[i]!) <= 25, `${label}: mean colour ${actual} is not near ${expected}`);
}

test('findPoppler finds the three tools on PATH and caches them', async () => {
  assert.match(tools.pdfinfo, /\/pdfinfo$/);
  assert.match(tools.pdftoppm, /\/pdftoppm$/);
  assert.match(tools.pdftotext, /\/pdftotext$/);
  assert.equal(await findPoppler(), tools);
  assert.match(POPPLER_HINT, /apt-get install poppler-utils/);
  assert.ok(DEFAULT_PDF_MAX_PAGES > 0 && DEFAULT_PDF_DEADLINE_MS > 0);
});

test('isPdf: "%PDF-" within the first 1024 bytes, as Poppler accepts', async () => {
  const pdf = await pdfBytes([{}]);
  assert.equal(isPdf(pdf), true);
  assert.equal(isPdf(pdf.subarray(0, 5)), true);
  assert.equal(isPdf(Buffer.concat([Buffer.alloc(1000, 'x'), pdf])), true);
  assert.equal(isPdf(Buffer.concat([Buffer.alloc(1020, 'x'), pdf])), false, 'header starts at 1020: its 5 bytes end past 1024');
  assert.equal(isPdf(Buffer.concat([Buffer.alloc(2000, 'x'), pdf])), false);
  assert.equal(isPdf(await sharp({ create: { width: 2, height: 2, channels: 3, background: 'red' } }).png().toBuffer()), false);
  assert.equal(isPdf(new Uint8Array(0)), false);
  assert.equal(isPdf(Buffer.from('%PDF')), false);
  // A view into a larger buffer counts from the view's start.
  const big = Buffer.concat([Buffer.from('%PDF-1.7'), Buffer.alloc(3000)]);
  assert.equal(isPdf(big.subarray(2000)), false);
});

test('three coloured pages: count, title and author, colour, size and text of each page', async () => {
  const path = join(dir, 'colours.pdf');
  await makePdf(
    path,
    [
      { colour: RED, text: 'a red page about apples' },
      { colour: BLUE, text: 'a blue page about the sea', width: 792, height: 612 },
      { colour: GREEN, text: 'a green page about forests' },
      { colour: [255, 255, 255] },
    ],
    { title: '  Colours of\nthe World ', author: 'Ann Author' },
  );
  const info = await pdfInfo(tools, path, LIMITS);
  assert.deepEqual(info, { pages: 4, metadata: { title: 'Colours of the World', author: 'Ann Author' }, encrypted: false });

  for (const size of [224, 512]) {
    const pages = await collect(pdfPages(tools, path, info, { ...LIMITS, size, maxPages: 10 }));
    assert.deepEqual(pages.map((p) => p.page), [1, 2, 3, 4]);
    const expected: Array<[Rgb, string[], 'portrait' | 'landscape']> = [
      [RED, ['red', 'apples'], 'portrait'],
      [BLUE, ['blue', 'sea'], 'landscape'],
      [GREEN, ['green', 'forests'], 'portrait'],
      [[255, 255, 255], [], 'portrait'],
    ];
    for (const [i, page] of pages.entries()) {
      const [colour, words, orientation] = expected[i]!;
      const meta = await sharp(page.image).metadata();
      assert.equal(meta.format, 'png');
      const { width = 0, height = 0 } = meta;
      assert.equal(Math.min(width, height), size, `page ${page.page} at ${size}: ${width}x${height}`);
      // US Letter is 612 x 792: the longer side follows the aspect ratio.
      assert.equal(Math.max(width, height), Math.round((size * 792) / 612));
      assert.equal(width > height ? 'landscape' : 'portrait', orientation);
      assertColour(await meanColour(page.image), colour, `page ${page.page}`);
      for (const word of words) assert.match(page.text, new RegExp(`\\b${word}\\b`), `page ${page.page}: ${JSON.stringify(page.text)}`);
    }
    assert.equal(pages[0]!.text, 'a red page about apples');
    assert.equal(pages[3]!.text, '', 'a page without text');
  }
});

test('maxPages caps the pages produced; metadata is only what the info dictionary holds', async () => {
  const path = join(dir, 'five.pdf');
  await makePdf(path, Array.from({ length: 5 }, (_, i) => ({ text: `page number ${i + 1}` })));
  const info = await pdfInfo(tools, path, LIMITS);
  assert.equal(info.pages, 5);
  assert.deepEqual(info.metadata, {});
  // A title whose second line looks like pdfinfo's own "Pages:" line does not fake the page
  // count (the real line comes last); the title ends where the fake line starts.
  const faking = join(dir, 'faking.pdf');
  await makePdf(faking, [{}, {}], { title: 'Report\nPages: 99999', author: '   ' });
  assert.deepEqual(await pdfInfo(tools, faking, LIMITS), { pages: 2, metadata: { title: 'Report' }, encrypted: false });
  const pages = await collect(pdfPages(tools, path, info, { ...LIMITS, size: 64, maxPages: 2 }));
  assert.deepEqual(pages.map((p) => [p.page, p.text]), [[1, 'page number 1'], [2, 'page number 2']]);
});

test('huge and elongated pages render small and fast; renderPage fits the longer side', async () => {
  const path = join(dir, 'huge.pdf');
  await makePdf(path, [
    { colour: BLUE, width: 14400, height: 14400, text: 'the largest page PDF allows' },
    { colour: RED, width: 14400, height: 100 },
  ]);
  const info = await pdfInfo(tools, path, LIMITS);
  const started = performance.now();
  const pages = await collect(pdfPages(tools, path, info, { ...LIMITS, size: 224, maxPages: 10 }));
  const ms = performance.now() - started;
  assert.ok(ms < 5000, `two huge pages took ${Math.round(ms)} ms`);
  const [square, strip] = await Promise.all(pages.map((p) => sharp(p.image).metadata()));
  assert.deepEqual([square!.width, square!.height], [224, 224]);
  assertColour(await meanColour(pages[0]!.image), BLUE, 'huge page');
  assert.match(pages[0]!.text, /largest page/);
  // 144:1 would need 32256 x 224 px: the longer side is capped instead.
  assert.deepEqual([strip!.width, strip!.height], [PDF_MAX_RENDER_SIDE, Math.round((PDF_MAX_RENDER_SIDE * 100) / 14400)]);
  assert.ok(pages.every((p) => p.image.length < 200_000), `PNG sizes ${pages.map((p) => p.image.length)}`);

  const thumb = await sharp(await renderPage(tools, path, 1, 128, LIMITS)).metadata();
  assert.deepEqual([thumb.format, thumb.width, thumb.height], ['png', 128, 128]);
  const letter = join(dir, 'letter.pdf');
  await makePdf(letter, [{ colour: GREEN }, { colour: RED, width: 792, height: 612 }]);
  const portrait = await sharp(await renderPage(tools, letter, 1, 256, LIMITS)).metadata();
  assert.deepEqual([portrait.width, portrait.height], [Math.round((256 * 612) / 792), 256]);
  const landscape = await renderPage(tools, letter, 2, 256, LIMITS);
  assert.deepEqual([(await sharp(landscape).metadata()).width, (await sharp(landscape).metadata()).height], [256, Math.round((256 * 612) / 792)]);
  assertColour(await meanColour(landscape), RED, 'thumbnail');
});

test('pages render as a viewer shows them: crop box, rotation', async () => {
  const path = join(dir, 'boxes.pdf');
  // Red left half is all the crop box shows of a 600 x 400 page painted blue on the right.
  const bytes = await pdfBytes([{ colour: BLUE, width: 600, height: 400 }, { colour: GREEN, width: 612, height: 792, rotate: 90, text: 'turned' }]);
  const { PDFDocument, rgb } = await import('pdf-lib');
  const doc = await PDFDocument.load(bytes);
  doc.getPage(0).drawRectangle({ x: 0, y: 0, width: 300, height: 400, color: rgb(1, 0, 0) });
  doc.getPage(0).setCropBox(0, 0, 300, 400);
  writeFileSync(path, await doc.save());
  const info = await pdfInfo(tools, path, LIMITS);
  const [cropped, turned] = await collect(pdfPages(tools, path, info, { ...LIMITS, size: 100, maxPages: 2 }));
  const a = await sharp(cropped!.image).metadata();
  assert.deepEqual([a.width, a.height], [100, 133]);
  assertColour(await meanColour(cropped!.image), RED, 'crop box');
  const b = await sharp(turned!.image).metadata();
  assert.deepEqual([b.width, b.height], [Math.round((100 * 792) / 612), 100], 'a portrait page turned 90 degrees is landscape');
  assert.equal(turned!.text, 'turned');
});

test('10,000 pages: pdfinfo counts them, only maxPages are rendered, memory stays bounded', async () => {
  const path = join(dir, 'many.pdf');
  await makeBlankPdf(path, 10_000);
  const info = await pdfInfo(tools, path, LIMITS);
  assert.equal(info.pages, 10_000);
  const before = process.memoryUsage().rss;
  let count = 0;
  let last = 0;
  for await (const page of pdfPages(tools, path, info, { ...LIMITS, size: 224, maxPages: 12 })) {
    count++;
    last = page.page;
    assert.equal(page.text, '');
    assert.ok(page.image.length < 50_000);
  }
  assert.deepEqual([count, last], [12, 12]);
  const grown = process.memoryUsage().rss - before;
  assert.ok(grown < 64 * 1024 * 1024, `RSS grew by ${Math.round(grown / 1048576)} MiB`);
  assert.deepEqual(popplerChildren(), []);
});

test('corrupt, truncated, missing and non-PDF files are PDF_UNREADABLE, quickly', async () => {
  const random = join(dir, 'random.pdf');
  const noise = Buffer.alloc(64 * 1024);
  for (let i = 0; i < noise.length; i++) noise[i] = (i * 2654435761) >>> 24; // fixed bytes that are no PDF syntax
  writeFileSync(random, Buffer.concat([Buffer.from('%PDF-1.7\n'), noise]));
  const whole = await pdfBytes([{ colour: RED, text: 'cut short' }, { colour: BLUE }], { title: 'Truncated' });
  const truncated = join(dir, 'truncated.pdf');
  writeFileSync(truncated, whole.subarray(0, Math.floor(whole.length / 3)));
  const png = join(dir, 'image.pdf');
  writeFileSync(png, await sharp({ create: { width: 8, height: 8, channels: 3, background: 'red' } }).png().toBuffer());
  const empty = join(dir, 'empty.pdf');
  writeFileSync(empty, '');

  for (const [path, reason] of [
    [random, /not a readable PDF: pdfinfo failed \(.*(xref|trailer)/i],
    [truncated, /not a readable PDF: pdfinfo failed/],
    [png, /not a readable PDF/],
    [empty, /not a readable PDF/],
    [join(dir, 'absent.pdf'), /Couldn't open file/],
  ] as const) {
    const started = performance.now();
    await assert.rejects(pdfInfo(tools, path, LIMITS), rejectsWith('PDF_UNREADABLE', reason), path);
    assert.ok(performance.now() - started < 3000, `${path} took ${Math.round(performance.now() - started)} ms`);
    await assert.rejects(renderPage(tools, path, 1, 64, LIMITS), rejectsWith('PDF_UNREADABLE'), path);
  }
  // The file name (quoted) is in the message, so a log line says which file failed.
  await assert.rejects(pdfInfo(tools, random, LIMITS), (err: Error) => err.message.includes(JSON.stringify(random)));
  // A page past the end: pdftoppm fails rather than printing nothing.
  await assert.rejects(renderPage(tools, join(dir, 'colours.pdf'), 99, 64, LIMITS), rejectsWith('PDF_UNREADABLE', /pdftoppm/));
  assert.deepEqual(popplerChildren(), []);
});

test('a user password is PDF_ENCRYPTED; an owner password alone is indexed', async () => {
  const locked = join(dir, 'user-password.pdf');
  await makeEncryptedPdf(locked, { userPassword: 'open sesame', ownerPassword: 'boss', text: 'hidden words' });
  await assert.rejects(pdfInfo(tools, locked, LIMITS), rejectsWith('PDF_ENCRYPTED', /user-password\.pdf.*encrypted with a password/));
  await assert.rejects(renderPage(tools, locked, 1, 64, LIMITS), rejectsWith('PDF_ENCRYPTED'));

  const restricted = join(dir, 'owner-password.pdf');
  await makeEncryptedPdf(restricted, { ownerPassword: 'boss', text: 'copying is not allowed here', title: 'Restricted' });
  const info = await pdfInfo(tools, restricted, LIMITS);
  assert.deepEqual(info, { pages: 1, metadata: { title: 'Restricted' }, encrypted: true });
  const [page] = await collect(pdfPages(tools, restricted, info, { ...LIMITS, size: 64, maxPages: 5 }));
  assert.equal(page!.text, 'copying is not allowed here');
  assert.equal(Math.min((await sharp(page!.image).metadata()).width!, (await sharp(page!.image).metadata()).height!), 64);
});

test('a page that never finishes rendering: PDF_TIMEOUT at the deadline, naming the file, no child left', async () => {
  const path = join(dir, 'nested-forms.pdf');
  await makeNestedFormsPdf(path);
  const info = await pdfInfo(tools, path, LIMITS); // pdfinfo does not render: it opens at once
  assert.equal(info.pages, 1);
  for (const deadlineMs of [1, 400]) {
    const started = performance.now();
    await assert.rejects(
      collect(pdfPages(tools, path, info, { deadlineMs, size: 224, maxPages: 1 })),
      rejectsWith('PDF_TIMEOUT', new RegExp(`nested-forms\\.pdf.*${deadlineMs} ms deadline`)),
    );
    const ms = performance.now() - started;
    assert.ok(ms < deadlineMs + 2000, `stopped after ${Math.round(ms)} ms`);
    assert.deepEqual(popplerChildren(), []);
  }
  await assert.rejects(renderPage(tools, path, 1, 64, { deadlineMs: 300 }), rejectsWith('PDF_TIMEOUT'));
  assert.deepEqual(popplerChildren(), []);
});

test('the deadline counts Poppler time only, not the time the consumer holds a page', async () => {
  const path = join(dir, 'slow-consumer.pdf');
  await makePdf(path, [{ text: 'one' }, { text: 'two' }, { text: 'three' }]);
  const info = await pdfInfo(tools, path, LIMITS);
  const seen: number[] = [];
  for await (const page of pdfPages(tools, path, info, { deadlineMs: 2000, size: 32, maxPages: 3 })) {
    seen.push(page.page);
    await new Promise((resolve) => setTimeout(resolve, 900)); // 2.7 s in all, past the 2 s deadline
  }
  assert.deepEqual(seen, [1, 2, 3]);
});

test('aborting kills the running child: REQUEST_CANCELLED (or the reason), no child left', async () => {
  const path = join(dir, 'nested-forms-abort.pdf');
  await makeNestedFormsPdf(path);
  const info = await pdfInfo(tools, path, LIMITS);
  const controller = new AbortController();
  setTimeout(() => controller.abort(), 300);
  const started = performance.now();
  await assert.rejects(collect(pdfPages(tools, path, info, { ...LIMITS, signal: controller.signal, size: 224, maxPages: 1 })), rejectsWith('REQUEST_CANCELLED', /cancelled/));
  assert.ok(performance.now() - started < 3000);
  assert.deepEqual(popplerChildren(), []);
  // Already aborted: nothing starts.
  await assert.rejects(pdfInfo(tools, path, { ...LIMITS, signal: AbortSignal.abort() }), rejectsWith('REQUEST_CANCELLED'));
  const { TesseraError } = await import('../../src/errors.ts');
  const reason = new TesseraError('SHUTTING_DOWN', 'stopping');
  await assert.rejects(renderPage(tools, path, 1, 64, { ...LIMITS, signal: AbortSignal.abort(reason) }), (err) => err === reason);
});

test('an early return from the consumer ends the generator with no child left', async () => {
  const path = join(dir, 'early.pdf');
  await makeBlankPdf(path, 50);
  const info = await pdfInfo(tools, path, LIMITS);
  const pages = pdfPages(tools, path, info, { ...LIMITS, size: 32, maxPages: 50 });
  for await (const page of pages) {
    assert.equal(page.page, 1);
    break;
  }
  assert.deepEqual(popplerChildren(), []);
  assert.deepEqual(await pages.next(), { done: true, value: undefined });
});

test('missing tools are POPPLER_MISSING; bad arguments are INVALID_ARGUMENT', async () => {
  const path = join(dir, 'colours.pdf');
  const gone = { ...tools, pdfinfo: join(dir, 'no-such-pdfinfo') };
  await assert.rejects(pdfInfo(gone, path, LIMITS), rejectsWith('POPPLER_MISSING', /apt-get install poppler-utils/));
  const info = { pages: 1, metadata: {}, encrypted: false };
  await assert.rejects(collect(pdfPages(tools, path, info, { ...LIMITS, size: 0, maxPages: 1 })), rejectsWith('INVALID_ARGUMENT', /size/));
  await assert.rejects(collect(pdfPages(tools, path, info, { ...LIMITS, size: 224, maxPages: 0 })), rejectsWith('INVALID_ARGUMENT', /maxPages/));
  await assert.rejects(pdfInfo(tools, path, { deadlineMs: 0 }), rejectsWith('INVALID_ARGUMENT', /deadlineMs/));
  await assert.rejects(renderPage(tools, path, 0, 64, LIMITS), rejectsWith('INVALID_ARGUMENT', /page/));
});

test('throughput: pages per second of a 20-page PDF at 224 and 512 px', async (t) => {
  const path = join(dir, 'twenty.pdf');
  const colours: Rgb[] = [RED, GREEN, BLUE, [240, 240, 200]];
  await makePdf(path, Array.from({ length: 20 }, (_, i) => ({ colour: colours[i % 4], text: `page ${i + 1} of a report about throughput` })));
  const info = await pdfInfo(tools, path, LIMITS);
  for (const size of [224, 512]) {
    const started = performance.now();
    const pages = await collect(pdfPages(tools, path, info, { ...LIMITS, size, maxPages: 20 }));
    const seconds = (performance.now() - started) / 1000;
    assert.equal(pages.length, 20);
    t.diagnostic(`size ${size}: ${(20 / seconds).toFixed(1)} pages/s (${seconds.toFixed(2)} s for 20 pages)`);
    assert.ok(20 / seconds > 1, `only ${(20 / seconds).toFixed(2)} pages/s`);
  }
});
