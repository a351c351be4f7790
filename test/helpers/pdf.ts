/**
 * PDFs made by tests: pages filled with a colour and carrying a line of text (pdf-lib, a
 * standard font so nothing is embedded), many blank pages at once, and password-encrypted
 * PDFs written by hand (pdf-lib cannot encrypt). Tests make what they read instead of
 * shipping binary fixtures, so what a page holds is stated next to the assertion on it.
 */
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { PDFDocument, PDFName, PDFNumber, PDFPageLeaf, type PDFRef, StandardFonts, degrees, rgb } from 'pdf-lib';

export type Rgb = [number, number, number];

export interface PdfPageSpec {
  /** Fill of the whole page, 0..255 per channel; white when absent. */
  colour?: Rgb;
  /** One line (wrapped to the page width) drawn in Helvetica; WinAnsi characters only. */
  text?: string;
  /** Points; US Letter (612 x 792) when absent. At most 14400, PDF's largest page. */
  width?: number;
  height?: number;
  /** The part a viewer shows, [x, y, width, height] in points; the whole page when absent. */
  cropBox?: [number, number, number, number];
  /** /Rotate: viewers (and Poppler) turn the page clockwise by this much. */
  rotate?: 0 | 90 | 180 | 270;
}

export interface PdfInfoSpec {
  title?: string;
  author?: string;
}

/** The bytes of a PDF with these pages (and info dictionary entries). */
export async function pdfBytes(pages: readonly PdfPageSpec[], info: PdfInfoSpec = {}): Promise<Uint8Array> {
  const doc = await PDFDocument.create();
  const font = await doc.embedFont(StandardFonts.Helvetica);
  for (const spec of pages) {
    const width = spec.width ?? 612;
    const height = spec.height ?? 792;
    const page = doc.addPage([width, height]);
    if (spec.colour) {
      const [r, g, b] = spec.colour.map((c) => c / 255) as Rgb;
      page.drawRectangle({ x: 0, y: 0, width, height, color: rgb(r, g, b) });
    }
    if (spec.text) {
      // Small against the page, so the page's mean colour stays its fill's; black or white,
      // whichever stands out, so the rendered text is also legible to a person looking.
      const size = Math.max(8, Math.min(width, height) / 40);
      const light = spec.colour ? spec.colour[0] * 0.299 + spec.colour[1] * 0.587 + spec.colour[2] * 0.114 > 128 : true;
      page.drawText(spec.text, {
        x: width / 20,
        y: height * 0.9,
        size,
        font,
        color: light ? rgb(0, 0, 0) : rgb(1, 1, 1),
        maxWidth: width * 0.9,
        lineHeight: size * 1.2,
      });
    }
    if (spec.cropBox) page.setCropBox(...spec.cropBox);
    if (spec.rotate) page.setRotation(degrees(spec.rotate));
  }
  if (info.title !== undefined) doc.setTitle(info.title);
  if (info.author !== undefined) doc.setAuthor(info.author);
  return doc.save();
}

/** Writes a PDF with these pages to `path` (see pdfBytes). */
export async function makePdf(path: string, pages: readonly PdfPageSpec[], info: PdfInfoSpec = {}): Promise<void> {
  await writeFile(path, await pdfBytes(pages, info));
}

/**
 * Writes a PDF of `count` blank pages of `size` points square: huge page counts cheaply. The
 * page leaves go straight into one flat /Kids array (valid PDF, and what many generators
 * write): pdf-lib's addPage walks its page tree per page, which takes seconds at 10,000.
 */
export async function makeBlankPdf(path: string, count: number, size = 200): Promise<void> {
  const doc = await PDFDocument.create();
  const pagesRef = doc.catalog.get(PDFName.of('Pages')) as PDFRef;
  const pages = doc.catalog.Pages();
  const mediaBox = doc.context.obj([0, 0, size, size]);
  for (let i = 0; i < count; i++) {
    const leaf = PDFPageLeaf.withContextAndParent(doc.context, pagesRef);
    leaf.set(PDFName.of('MediaBox'), mediaBox);
    pages.Kids().push(doc.context.register(leaf));
  }
  pages.set(PDFName.of('Count'), PDFNumber.of(count));
  await writeFile(path, await doc.save({ useObjectStreams: false, objectsPerTick: Infinity }));
}

/**
 * Writes a one-page PDF that never finishes rendering or extracting: form XObjects nested
 * `depth` deep, each drawing the next 16 times (16^7 = 268 million rectangles at depth 8),
 * the PDF counterpart of a zip bomb. Tiny (about 2 KB) and valid; pdfinfo opens it at once.
 */
export async function makeNestedFormsPdf(path: string, depth = 8): Promise<void> {
  const objects = [
    '<< /Type /Catalog /Pages 2 0 R >>',
    '<< /Type /Pages /Kids [3 0 R] /Count 1 >>',
    '<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] /Resources << /XObject << /X 5 0 R >> >> /Contents 4 0 R >>',
    streamObject('', '/X Do'),
  ];
  for (let level = 0; level < depth; level++) {
    const inner = level < depth - 1;
    const body = inner ? Array(16).fill('q 0.9 0 0 0.9 1 1 cm /X Do Q').join(' ') : '0 0 10 10 re f BT ET';
    const resources = inner ? `/Resources << /XObject << /X ${6 + level} 0 R >> >>` : '';
    objects.push(streamObject(`/Type /XObject /Subtype /Form /BBox [0 0 200 200] ${resources}`, body));
  }
  await writeFile(path, assemble(objects.map((o) => Buffer.from(o, 'latin1')), '/Root 1 0 R'));
}

function streamObject(dict: string, data: string): string {
  return `<< ${dict} /Length ${Buffer.byteLength(data, 'latin1')} >>\nstream\n${data}\nendstream`;
}

/** A classic PDF file of these objects (numbered from 1) with a cross-reference table. */
function assemble(objects: readonly Buffer[], trailer: string): Buffer {
  const parts: Buffer[] = [Buffer.from('%PDF-1.4\n%\xe2\xe3\xcf\xd3\n', 'latin1')];
  let offset = parts[0]!.length;
  const offsets: number[] = [];
  objects.forEach((body, i) => {
    const obj = Buffer.concat([Buffer.from(`${i + 1} 0 obj\n`), body, Buffer.from('\nendobj\n')]);
    offsets.push(offset);
    parts.push(obj);
    offset += obj.length;
  });
  // Cross-reference entries are exactly 20 bytes: 10-digit offset, 5-digit generation, type, " \n".
  const entries = ['0000000000 65535 f \n', ...offsets.map((o) => `${String(o).padStart(10, '0')} 00000 n \n`)];
  parts.push(Buffer.from(`xref\n0 ${objects.length + 1}\n${entries.join('')}trailer\n<< /Size ${objects.length + 1} ${trailer} >>\nstartxref\n${offset}\n%%EOF\n`));
  return Buffer.concat(parts);
}

// --- Encrypted PDFs: the Standard security handler, revision 2 (40-bit RC4), by hand ---------

/** The padding string of PDF 32000-1, 7.6.3.3 (Algorithm 2). */
const PAD = Buffer.from('28bf4e5e4e758a4164004e56fffa01082e2e00b6d0683e802f0ca9fe6453697a', 'hex');

const md5 = (...parts: Buffer[]) => createHash('md5').update(Buffer.concat(parts)).digest();
const padded = (password: string) => Buffer.concat([Buffer.from(password, 'latin1'), PAD]).subarray(0, 32);

/** RC4 in plain code: OpenSSL 3 keeps it only in its legacy provider. */
function rc4(key: Buffer, data: Buffer): Buffer {
  const s = Array.from({ length: 256 }, (_, i) => i);
  for (let i = 0, j = 0; i < 256; i++) {
    j = (j + s[i]! + key[i % key.length]!) & 255;
    [s[i], s[j]] = [s[j]!, s[i]!];
  }
  const out = Buffer.alloc(data.length);
  for (let n = 0, i = 0, j = 0; n < data.length; n++) {
    i = (i + 1) & 255;
    j = (j + s[i]!) & 255;
    [s[i], s[j]] = [s[j]!, s[i]!];
    out[n] = data[n]! ^ s[(s[i]! + s[j]!) & 255]!;
  }
  return out;
}

export interface EncryptedPdfSpec {
  /** '' (the default) encrypts with an owner password only: any reader opens it without asking. */
  userPassword?: string;
  ownerPassword: string;
  /** Drawn on the one page (300 x 200 points, white); its stream is encrypted like any. */
  text?: string;
  title?: string;
}

/**
 * Writes a one-page PDF encrypted with the Standard security handler, /V 1 /R 2 (PDF 32000-1,
 * 7.6.3, Algorithms 1, 2, 3 and 4), so that it is valid: a user password makes readers ask for
 * it (Poppler: "Incorrect password"); an owner password alone opens without asking.
 */
export async function makeEncryptedPdf(path: string, spec: EncryptedPdfSpec): Promise<void> {
  const id = md5(Buffer.from(`${path}${spec.ownerPassword}`));
  const permissions = -60; // print allowed; modify, copy, annotate not (bits 3..6), upper bits set
  // Algorithm 3: /O is the padded user password, RC4'd with a key from the owner password.
  const owner = rc4(md5(padded(spec.ownerPassword)).subarray(0, 5), padded(spec.userPassword ?? ''));
  // Algorithm 2: the file key, from the user password, /O, /P and the first /ID string.
  const p = Buffer.alloc(4);
  p.writeInt32LE(permissions);
  const key = md5(padded(spec.userPassword ?? ''), owner, p, id).subarray(0, 5);
  // Algorithm 4: /U is the padding string RC4'd with the file key.
  const user = rc4(key, PAD);
  // Algorithm 1: each object's strings and streams are RC4'd with a key of its number.
  const objectKey = (num: number) => md5(key, Buffer.from([num & 255, (num >> 8) & 255, (num >> 16) & 255, 0, 0])).subarray(0, 10);
  const hex = (b: Buffer) => `<${b.toString('hex')}>`;

  const content = Buffer.from(`BT /F1 14 Tf 20 100 Td (${(spec.text ?? '').replace(/[()\\]/g, '\\$&')}) Tj ET`, 'latin1');
  const stream = rc4(objectKey(4), content);
  const objects: Buffer[] = [
    Buffer.from('<< /Type /Catalog /Pages 2 0 R >>'),
    Buffer.from('<< /Type /Pages /Kids [3 0 R] /Count 1 >>'),
    Buffer.from('<< /Type /Page /Parent 2 0 R /MediaBox [0 0 300 200] /Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>'),
    Buffer.concat([Buffer.from(`<< /Length ${stream.length} >>\nstream\n`), stream, Buffer.from('\nendstream')]),
    Buffer.from('<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>'),
    Buffer.from(`<< /Title ${hex(rc4(objectKey(6), Buffer.from(spec.title ?? '', 'latin1')))} >>`),
    // The encryption dictionary's own strings are never encrypted.
    Buffer.from(`<< /Filter /Standard /V 1 /R 2 /Length 40 /O ${hex(owner)} /U ${hex(user)} /P ${permissions} >>`),
  ];
  await writeFile(path, assemble(objects, `/Root 1 0 R /Info 6 0 R /Encrypt 7 0 R /ID [${hex(id)} ${hex(id)}]`));
}
