import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdir, readFile, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Embedder } from '../../src/engine/embedder.ts';
import { contentHash, parseDocumentInput } from '../../src/index/document.ts';
import { indexSources, type IndexFailure, type IndexResult } from '../../src/index/pipeline.ts';
import { resolveSource } from '../../src/index/sources.ts';
import { openStore } from '../../src/store/open.ts';
import type { ModelRef, VectorStore } from '../../src/store/store.ts';
import { noiseImage, solidImage } from '../helpers/images.ts';
import { forged, tempDir } from '../helpers/models.ts';

const ROOT = new URL('../..', import.meta.url).pathname;

let embedder: Embedder;
let writer: ModelRef;
let store: VectorStore;
let storeDir: string;

before(async () => {
  const model = await forged('colour');
  embedder = await Embedder.load(model);
  writer = { model, dtype: 'fp32' };
  storeDir = await tempDir('tessera-index-store-');
  store = await openStore(storeDir);
});

after(async () => {
  await store.close();
  await embedder.close();
});

const COLOURS = { red: [255, 0, 0], green: [0, 255, 0], blue: [0, 0, 255], yellow: [255, 255, 0] } as const;

/** A folder of solid-colour images (PNG, JPEG, WebP, one without an extension), texts and junk. */
async function photoFolder(): Promise<string> {
  const dir = await tempDir('tessera-index-folder-');
  await mkdir(join(dir, 'sub', 'deeper'), { recursive: true });
  await writeFile(join(dir, 'red.png'), await solidImage(40, 30, COLOURS.red));
  await writeFile(join(dir, 'green.jpg'), await sharpAs(COLOURS.green, 'jpeg'));
  await writeFile(join(dir, 'sub', 'blue.webp'), await sharpAs(COLOURS.blue, 'webp'));
  await writeFile(join(dir, 'sub', 'deeper', 'yellow'), await solidImage(20, 20, COLOURS.yellow));
  await writeFile(join(dir, 'note.txt'), 'a poem about the sea');
  await writeFile(join(dir, 'sub', 'readme.md'), '# heading\n\nsome markdown');
  await writeFile(join(dir, 'data.bin'), Buffer.from([1, 2, 3, 4]));
  await writeFile(join(dir, 'picture.bmp'), Buffer.concat([Buffer.from('BM'), Buffer.alloc(60)]));
  return dir;
}

async function sharpAs(rgb: readonly [number, number, number], format: 'jpeg' | 'webp'): Promise<Buffer> {
  const { default: sharp } = await import('sharp');
  return sharp({ create: { width: 32, height: 32, channels: 3, background: { r: rgb[0], g: rgb[1], b: rgb[2] } } }).toFormat(format).toBuffer();
}

let collections = 0;
async function newCollection(): Promise<string> {
  const name = `c${++collections}`;
  const [probe] = await embedder.embedTexts(['x']);
  await store.createCollection({ name, ...writer, dimensions: probe!.embedding.length });
  return name;
}

async function run(collection: string, paths: string[], extra: Partial<Parameters<typeof indexSources>[0]> = {}): Promise<IndexResult> {
  const sources = await Promise.all(paths.map((p) => resolveSource(p)));
  return indexSources({ store, collection, embedder, writer, sources, ...extra });
}

const summary = (r: IndexResult) => ({ added: r.added, updated: r.updated, skipped: r.skipped, removed: r.removed, failed: r.failed });

async function topHit(collection: string, query: string, modality?: 'text' | 'image'): Promise<string | undefined> {
  const [q] = await embedder.embedTexts([query]);
  const hits = await store.search(collection, { vector: q!.embedding, k: 3, modality });
  return hits[0]?.id;
}

describe('document input', () => {
  test('exactly one of text or image, known fields only, checked id and metadata', () => {
    assert.deepEqual(parseDocumentInput({ id: 'a', text: 'hi', metadata: { n: 1 } }, 'd'), { id: 'a', text: 'hi', metadata: { n: 1 } });
    assert.deepEqual(parseDocumentInput({ id: 'a', image: 'x.png' }, 'd'), { id: 'a', image: 'x.png', metadata: {} });
    const code = (v: unknown) => {
      try {
        parseDocumentInput(v, 'documents[2]');
        return 'ok';
      } catch (err) {
        assert.match((err as Error).message, /^documents\[2\]/);
        return (err as { code: string }).code;
      }
    };
    assert.equal(code({ id: 'a', text: 't', image: 'i' }), 'DOCUMENT_INVALID');
    assert.equal(code({ id: 'a' }), 'DOCUMENT_INVALID');
    assert.equal(code({ id: 'a', text: 't', vector: [1] }), 'DOCUMENT_INVALID');
    assert.equal(code({ id: 'a', text: 5 }), 'DOCUMENT_INVALID');
    assert.equal(code(['a']), 'DOCUMENT_INVALID');
    assert.equal(code({ id: 'x'.repeat(513), text: 't' }), 'DOCUMENT_ID_INVALID');
    assert.equal(code({ id: 7, text: 't' }), 'DOCUMENT_ID_INVALID');
    assert.equal(code({ id: 'a', text: 't', metadata: { nested: { a: 1 } } }), 'METADATA_INVALID');
    assert.equal(code({ id: 'a', text: 't', metadata: { 'bad key': 1 } }), 'METADATA_INVALID');
  });
});

describe('indexing a folder', () => {
  test('images by signature in every decoded format, texts by extension, ids relative; vectors right', async () => {
    const dir = await photoFolder();
    const name = await newCollection();
    const notes: string[] = [];
    const result = await run(name, [dir], { onNote: (line) => notes.push(line) });
    assert.deepEqual(summary(result), { added: 6, updated: 0, skipped: 0, removed: 0, failed: 0 });
    const hashes = await store.hashes(name);
    assert.deepEqual([...hashes.keys()].sort(), ['green.jpg', 'note.txt', 'red.png', 'sub/blue.webp', 'sub/deeper/yellow', 'sub/readme.md']);
    assert.equal(hashes.get('red.png'), contentHash(await readFile(join(dir, 'red.png'))));
    assert.equal(hashes.get('note.txt'), contentHash('a poem about the sea'));
    assert.ok(notes.some((n) => /1 BMP file/.test(n)), `a note about the BMP file: ${notes.join(' | ')}`);

    const [red] = await store.get(name, ['red.png']);
    assert.equal(red!.modality, 'image');
    assert.equal(red!.image, join(dir, 'red.png'));
    assert.equal(red!.root, dir);
    assert.equal(red!.metadata.ext, 'png');
    assert.equal(red!.metadata.bytes, (await readFile(join(dir, 'red.png'))).length);
    assert.equal(typeof red!.metadata.mtime, 'string');
    const [note] = await store.get(name, ['note.txt']);
    assert.equal(note!.text, 'a poem about the sea');

    // The colour model embeds "red" next to red pictures: the vectors are the right ones.
    for (const colour of ['red', 'green', 'blue', 'yellow']) {
      const id = await topHit(name, colour, 'image');
      assert.match(id ?? '', new RegExp(colour), `"${colour}" finds ${id}`);
    }
  });

  test('incremental: unchanged skipped, changed updated, new added, gone pruned only with --prune', async () => {
    const dir = await photoFolder();
    const name = await newCollection();
    assert.equal((await run(name, [dir])).added, 6);
    assert.deepEqual(summary(await run(name, [dir])), { added: 0, updated: 0, skipped: 6, removed: 0, failed: 0 });

    // red.png now holds a blue picture: one update, and the search sees the new content.
    await writeFile(join(dir, 'red.png'), await solidImage(40, 30, COLOURS.blue));
    await writeFile(join(dir, 'new.txt'), 'fresh text');
    assert.deepEqual(summary(await run(name, [dir])), { added: 1, updated: 1, skipped: 5, removed: 0, failed: 0 });
    const [q] = await embedder.embedTexts(['blue']);
    const blues = (await store.search(name, { vector: q!.embedding, k: 2, modality: 'image' })).map((h) => h.id).sort();
    assert.deepEqual(blues, ['red.png', 'sub/blue.webp']);

    await unlink(join(dir, 'green.jpg'));
    assert.deepEqual(summary(await run(name, [dir])), { added: 0, updated: 0, skipped: 6, removed: 0, failed: 0 });
    assert.equal(await store.count(name), 7);
    assert.deepEqual(summary(await run(name, [dir], { prune: true })), { added: 0, updated: 0, skipped: 6, removed: 1, failed: 0 });
    assert.equal(await store.count(name), 6);
    assert.equal((await store.get(name, ['green.jpg'])).length, 0);
  });

  test('--prune leaves documents of other sources alone', async () => {
    const a = await photoFolder();
    const b = await tempDir('tessera-index-b-');
    await writeFile(join(b, 'only.txt'), 'from b');
    const name = await newCollection();
    await run(name, [a]);
    // Indexing b with --prune must not remove a's documents.
    assert.deepEqual(summary(await run(name, [b], { prune: true })), { added: 1, updated: 0, skipped: 0, removed: 0, failed: 0 });
    assert.equal(await store.count(name), 7);
  });

  test('same content, new metadata: rewritten with its vector, not re-embedded', async () => {
    const dir = await photoFolder();
    const name = await newCollection();
    await run(name, [dir]);
    const [before] = await store.get(name, ['red.png'], { vectors: true });
    const later = new Date(Date.now() + 60_000);
    const { utimes } = await import('node:fs/promises');
    await utimes(join(dir, 'red.png'), later, later);
    let embedded = 0;
    const off = embedder.onBatch((report) => (embedded += report.size));
    const result = await run(name, [dir]);
    off();
    assert.deepEqual(summary(result), { added: 0, updated: 1, skipped: 5, removed: 0, failed: 0 });
    assert.equal(embedded, 0, 'nothing embedded');
    const [after] = await store.get(name, ['red.png'], { vectors: true });
    assert.equal(after!.metadata.mtime, later.toISOString());
    assert.deepEqual(Array.from(after!.vector!), Array.from(before!.vector!));
  });

  test('bad files are skipped and reported with their reason; the rest is indexed', async () => {
    const dir = await tempDir('tessera-index-bad-');
    await writeFile(join(dir, 'good.png'), await solidImage(16, 16, COLOURS.red));
    await writeFile(join(dir, 'broken.png'), Buffer.concat([Buffer.from('\x89PNG\r\n\x1a\n', 'latin1'), Buffer.alloc(40, 7)]));
    await writeFile(join(dir, 'huge.png'), await noiseImage(300, 300, 1));
    await writeFile(join(dir, 'empty.txt'), '');
    await writeFile(join(dir, 'latin1.txt'), Buffer.from([0x63, 0x61, 0x66, 0xe9]));
    await writeFile(join(dir, 'long.txt'), 'word '.repeat(9000)); // over the model's 8192 tokens
    const name = await newCollection();
    const small = await Embedder.load(writer.model, { maxPixels: 10_000 });
    try {
      const failures: IndexFailure[] = [];
      const sources = [await resolveSource(dir)];
      const result = await indexSources({ store, collection: name, embedder: small, writer, sources, onFailure: (f) => failures.push(f) });
      assert.deepEqual(summary(result), { added: 1, updated: 0, skipped: 0, removed: 0, failed: 5 });
      const byItem = new Map(failures.map((f) => [f.item, f]));
      assert.equal(byItem.get('broken.png')?.code, 'IMAGE_UNDECODABLE');
      assert.match(byItem.get('broken.png')!.message, /broken\.png/);
      assert.equal(byItem.get('huge.png')?.code, 'IMAGE_TOO_LARGE');
      assert.equal(byItem.get('empty.txt')?.code, 'DOCUMENT_INVALID');
      assert.equal(byItem.get('latin1.txt')?.code, 'TEXT_INVALID');
      assert.equal(byItem.get('long.txt')?.code, 'TEXT_TOO_LONG');
      // With truncation the long text goes in.
      const again = await indexSources({ store, collection: name, embedder: small, writer, sources, truncate: true });
      assert.deepEqual(summary(again), { added: 1, updated: 0, skipped: 1, removed: 0, failed: 4 });
    } finally {
      await small.close();
    }
  });

  test('symlinks are followed inside the root and never out of it', async () => {
    const outside = await tempDir('tessera-index-outside-');
    await writeFile(join(outside, 'secret.png'), await solidImage(16, 16, COLOURS.green));
    await mkdir(join(outside, 'dir'));
    await writeFile(join(outside, 'dir', 'also.txt'), 'outside text');
    const dir = await tempDir('tessera-index-links-');
    await mkdir(join(dir, 'real'));
    await writeFile(join(dir, 'real', 'inside.png'), await solidImage(16, 16, COLOURS.red));
    await symlink(join(outside, 'secret.png'), join(dir, 'leak.png'));
    await symlink(join(outside, 'dir'), join(dir, 'leakdir'));
    await symlink(join(dir, 'real', 'inside.png'), join(dir, 'alias.png'));
    await symlink(dir, join(dir, 'real', 'loop'));
    const name = await newCollection();
    const notes: string[] = [];
    const result = await run(name, [dir], { onNote: (n) => notes.push(n) });
    assert.deepEqual([...(await store.hashes(name)).keys()].sort(), ['alias.png', 'real/inside.png']);
    assert.equal(result.failed, 0);
    assert.ok(notes.some((n) => n.includes('leak.png')) && notes.some((n) => n.includes('leakdir')), notes.join(' | '));
  });
});

describe('indexing JSONL and URL lists', () => {
  test('JSONL: texts, image paths relative to the file, base64; bad lines reported, duplicates refused', async () => {
    const dir = await tempDir('tessera-index-jsonl-');
    await mkdir(join(dir, 'img'));
    await writeFile(join(dir, 'img', 'r.png'), await solidImage(16, 16, COLOURS.red));
    const blue = (await solidImage(16, 16, COLOURS.blue)).toString('base64');
    const lines = [
      JSON.stringify({ id: 'doc-1', text: 'a yellow submarine', metadata: { year: 1968, tag: 'song' } }),
      JSON.stringify({ id: 'doc-2', image: 'img/r.png', metadata: { tag: 'pic' } }),
      JSON.stringify({ id: 'doc-3', image: blue }),
      '',
      '{not json',
      JSON.stringify({ id: 'doc-4', text: 'x', image: 'img/r.png' }),
      JSON.stringify({ id: 'doc-1', text: 'again' }),
      JSON.stringify({ id: 'doc-5', image: 'img/missing.png' }),
      JSON.stringify({ id: 'doc-6', text: 't', metadata: { deep: { a: 1 } } }),
    ];
    const file = join(dir, 'docs.jsonl');
    await writeFile(file, lines.join('\n'));
    const name = await newCollection();
    const failures: IndexFailure[] = [];
    const result = await run(name, [file], { onFailure: (f) => failures.push(f) });
    assert.deepEqual(summary(result), { added: 3, updated: 0, skipped: 0, removed: 0, failed: 5 });
    assert.deepEqual(failures.map((f) => f.code).sort(), ['DOCUMENT_ID_DUPLICATE', 'DOCUMENT_INVALID', 'DOCUMENT_INVALID', 'IMAGE_NOT_FOUND', 'METADATA_INVALID']);
    assert.ok(failures.some((f) => /docs\.jsonl line 5 is not valid JSON/.test(f.message)));

    const [d1, d2, d3] = await store.get(name, ['doc-1', 'doc-2', 'doc-3']);
    assert.equal(d1!.text, 'a yellow submarine');
    assert.equal(d1!.metadata.year, 1968);
    assert.equal(d2!.image, join(dir, 'img', 'r.png'));
    assert.match(d3!.image!, /^data:image\/png;base64,/);
    assert.equal(await topHit(name, 'blue', 'image'), 'doc-3');

    // Edit one line's metadata, drop another, and prune: not while a line is unreadable
    // (it might be any document), and once it is gone, the dropped document goes.
    lines[0] = JSON.stringify({ id: 'doc-1', text: 'a yellow submarine', metadata: { year: 1969, tag: 'song' } });
    lines.splice(2, 1);
    await writeFile(file, lines.join('\n'));
    const notes: string[] = [];
    assert.deepEqual(summary(await run(name, [file], { prune: true, onNote: (n) => notes.push(n) })), { added: 0, updated: 1, skipped: 1, removed: 0, failed: 5 });
    assert.ok(notes.some((n) => n.startsWith('not pruning')), notes.join(' | '));
    assert.equal((await store.get(name, ['doc-1']))[0]!.metadata.year, 1969);
    await writeFile(file, lines.filter((l) => l !== '{not json').join('\n'));
    assert.deepEqual(summary(await run(name, [file], { prune: true })), { added: 0, updated: 0, skipped: 2, removed: 1, failed: 4 });
    assert.equal((await store.get(name, ['doc-3'])).length, 0);
  });

  test('URL list: fetched over HTTP, private addresses only when allowed, unreachable ones fail alone', async () => {
    const red = await solidImage(16, 16, COLOURS.red);
    const green = await solidImage(16, 16, COLOURS.green);
    const server: Server = createServer((req, res) => {
      if (req.url === '/red.png') res.writeHead(200, { 'content-type': 'image/png' }).end(red);
      else if (req.url === '/green.png') res.writeHead(200, { 'content-type': 'image/png' }).end(green);
      else res.writeHead(404).end('no');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const dir = await tempDir('tessera-index-urls-');
      const file = join(dir, 'urls.txt');
      await writeFile(file, `# photos\n${base}/red.png\n\n${base}/green.png\n${base}/gone.png\nftp://example.com/x.png\n`);
      const name = await newCollection();
      const blocked: IndexFailure[] = [];
      const refused = await run(name, [file], { onFailure: (f) => blocked.push(f) });
      assert.deepEqual(summary(refused), { added: 0, updated: 0, skipped: 0, removed: 0, failed: 4 });
      assert.deepEqual(blocked.map((f) => f.code), ['IMAGE_URL_BLOCKED', 'IMAGE_URL_BLOCKED', 'IMAGE_URL_BLOCKED', 'IMAGE_URL_INVALID']);

      const failures: IndexFailure[] = [];
      const result = await run(name, [file], { fetchPolicy: { allowPrivate: true }, onFailure: (f) => failures.push(f) });
      assert.deepEqual(summary(result), { added: 2, updated: 0, skipped: 0, removed: 0, failed: 2 });
      assert.equal(failures.find((f) => f.item === `${base}/gone.png`)?.code, 'IMAGE_FETCH_FAILED');
      const [doc] = await store.get(name, [`${base}/red.png`]);
      assert.equal(doc!.image, `${base}/red.png`);
      assert.equal(doc!.hash, contentHash(red));
      assert.equal(await topHit(name, 'green', 'image'), `${base}/green.png`);
      assert.deepEqual(summary(await run(name, [file], { fetchPolicy: { allowPrivate: true } })), { added: 0, updated: 0, skipped: 2, removed: 0, failed: 2 });
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

/** Runs the real command line; resolves with its exit code and output. */
function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('tessera index (the command)', () => {
  test('--json prints exactly the five counts; --strict exits 1 on a failure; the model is the collection\'s', async () => {
    const dir = await photoFolder();
    await writeFile(join(dir, 'broken.png'), Buffer.concat([Buffer.from('\x89PNG\r\n\x1a\n', 'latin1'), Buffer.alloc(40, 7)]));
    const cliStore = await tempDir('tessera-index-cli-');
    const first = await cli(['index', dir, '--collection', 'photos', '--model', 'demo', '--store', cliStore, '--json']);
    assert.equal(first.code, 0, first.stderr);
    const parsed = JSON.parse(first.stdout) as Record<string, unknown>;
    assert.deepEqual(Object.keys(parsed), ['added', 'updated', 'skipped', 'removed', 'failed']);
    assert.deepEqual(parsed, { added: 6, updated: 0, skipped: 0, removed: 0, failed: 1 });
    assert.equal(first.stdout.trim().split('\n').length, 1, 'one line on stdout');
    assert.match(first.stderr, /broken\.png.*IMAGE_UNDECODABLE/);
    assert.match(first.stderr, /added 6, updated 0, skipped 0, removed 0, failed 1/);

    // The second run takes the collection's own model (no --model) and fails with --strict.
    const strict = await cli(['index', dir, '--collection', 'photos', '--store', cliStore, '--json', '--strict']);
    assert.equal(strict.code, 1, strict.stderr);
    assert.deepEqual(JSON.parse(strict.stdout), { added: 0, updated: 0, skipped: 6, removed: 0, failed: 1 });

    const other = await cli(['index', dir, '--collection', 'photos', '--store', cliStore, '--model', await forged('tiny')]);
    assert.equal(other.code, 1);
    assert.match(other.stderr, /holds vectors of "demo"/);

    await rm(join(dir, 'broken.png'));
    const clean = await cli(['index', dir, '--collection', 'photos', '--store', cliStore, '--strict', '--json']);
    assert.equal(clean.code, 0, clean.stderr);
    assert.equal(JSON.parse(clean.stdout).failed, 0);

    const missing = await cli(['index', join(dir, 'nope'), '--collection', 'photos', '--store', cliStore]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /nope: no such file or folder/);
  });
});
