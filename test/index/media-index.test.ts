/**
 * Videos and PDFs in a folder index: a video becomes its frames, a PDF its pages (picture and
 * text), each file written whole in one atomic write, kept while unchanged, replaced whole when
 * changed, removed whole when gone, and reported (never half-indexed) when it cannot be read.
 */
import assert from 'node:assert/strict';
import { rm, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Embedder } from '../../src/engine/embedder.ts';
import { indexSources, type IndexResult } from '../../src/index/pipeline.ts';
import { resolveSource } from '../../src/index/sources.ts';
import { openStore } from '../../src/store/open.ts';
import type { ModelRef, StoredDocument, VectorStore } from '../../src/store/store.ts';
import { solidImage } from '../helpers/images.ts';
import { makeVideo } from '../helpers/media.ts';
import { forged, tempDir } from '../helpers/models.ts';
import { makeEncryptedPdf, makePdf } from '../helpers/pdf.ts';

let embedder: Embedder;
let writer: ModelRef;
let store: VectorStore;

before(async () => {
  const model = await forged('colour');
  embedder = await Embedder.load(model);
  writer = { model, dtype: 'fp32' };
  store = await openStore(await tempDir('tessera-media-store-'));
});

after(async () => {
  await store.close();
  await embedder.close();
});

let collections = 0;
async function newCollection(): Promise<string> {
  const name = `media${++collections}`;
  const [probe] = await embedder.embedTexts(['x']);
  await store.createCollection({ name, ...writer, dimensions: probe!.embedding.length });
  return name;
}

const COLOURS = [
  { colour: 'black', seconds: 1, plain: true },
  { colour: 'red', seconds: 2 },
  { colour: 'blue', seconds: 2 },
  { colour: 'green', seconds: 2 },
];

/** A folder with a video, a PDF, a photo and a note. */
async function mediaFolder(): Promise<string> {
  const dir = await tempDir('tessera-media-folder-');
  await makeVideo(join(dir, 'colours.mp4'), COLOURS, { metadata: { creation_time: '2021-06-05T14:03:09Z', location: '+48.8584+002.2945/' } });
  await makePdf(
    join(dir, 'pages.pdf'),
    [
      { colour: [220, 20, 20], text: 'a red page about apples' },
      { colour: [20, 20, 220], text: 'a blue page about the sea' },
      { colour: [20, 160, 20] },
    ],
    { title: 'Colours', author: 'A. Painter' },
  );
  await writeFile(join(dir, 'photo.png'), await solidImage(32, 32, [250, 250, 0]));
  await writeFile(join(dir, 'note.txt'), 'a note about yellow');
  return dir;
}

async function run(collection: string, dir: string, extra: Partial<Parameters<typeof indexSources>[0]> = {}): Promise<IndexResult & { notes: string[] }> {
  const notes: string[] = [];
  const result = await indexSources({ store, collection, embedder, writer, sources: [await resolveSource(dir)], onNote: (n) => notes.push(n), ...extra });
  return { ...result, notes };
}

const summary = (r: IndexResult) => ({ added: r.added, updated: r.updated, skipped: r.skipped, removed: r.removed, failed: r.failed });

async function all(collection: string): Promise<StoredDocument[]> {
  const ids: string[] = [];
  for await (const page of store.scan(collection)) ids.push(...page.map((r) => r.id));
  return (await store.get(collection, ids)).sort((a, b) => (a.id < b.id ? -1 : 1));
}

/** What `work` gave, and how many batches the model ran meanwhile. */
async function batchesDuring<T>(work: () => Promise<T>): Promise<{ result: T; batches: number }> {
  let batches = 0;
  const stop = embedder.onBatch(() => batches++);
  try {
    return { result: await work(), batches };
  } finally {
    stop();
  }
}

const framesOf = (docs: StoredDocument[], video: string) => docs.filter((d) => d.metadata.video === video);

describe('videos and PDFs in a folder index', () => {
  test('a video is its frames and a PDF its pages, with their metadata; "blue" finds the blue moment and the blue page', async () => {
    const dir = await mediaFolder();
    const c = await newCollection();
    const result = await run(c, dir);
    assert.deepEqual(summary(result), { added: 4, updated: 0, skipped: 0, removed: 0, failed: 0 }, JSON.stringify(result.failures));
    const docs = await all(c);

    const frames = framesOf(docs, 'colours.mp4');
    assert.ok(frames.length >= 3, `${frames.length} frames`);
    for (const f of frames) {
      assert.match(f.id, /^colours\.mp4#t=\d+\.\d{3}$/);
      assert.equal(f.modality, 'image');
      assert.equal(f.image, join(dir, 'colours.mp4'));
      assert.equal(f.id, `colours.mp4#t=${(f.metadata.t as number).toFixed(3)}`);
      assert.ok((f.metadata.t as number) >= 1, `the black intro is not a frame (t=${f.metadata.t})`);
      assert.ok(Math.abs((f.metadata.duration as number) - 7) < 0.1, `duration ${f.metadata.duration}`);
      assert.equal(f.metadata.taken_at, '2021-06-05T14:03:09Z');
      assert.ok(Math.abs((f.metadata.gps_lat as number) - 48.8584) < 1e-6);
      assert.equal(f.metadata.ext, 'mp4');
    }

    const pages = docs.filter((d) => d.metadata.pdf === 'pages.pdf');
    assert.deepEqual(pages.map((p) => p.id), ['pages.pdf#page=1', 'pages.pdf#page=1&text', 'pages.pdf#page=2', 'pages.pdf#page=2&text', 'pages.pdf#page=3']);
    const [page2, text2] = [pages[2]!, pages[3]!];
    assert.equal(page2.modality, 'image');
    assert.equal(text2.modality, 'text');
    assert.match(text2.text!, /a blue page about the sea/);
    for (const p of [page2, text2]) {
      assert.deepEqual([p.metadata.page, p.metadata.page_count, p.metadata.title, p.metadata.author], [2, 3, 'Colours', 'A. Painter']);
    }

    const [blue] = await embedder.embedTexts(['blue']);
    const hits = await store.search(c, { vector: blue!.embedding, k: 3, modality: 'image' });
    const frame = hits.find((h) => h.metadata.video === 'colours.mp4')!;
    assert.ok((frame.metadata.t as number) >= 3 && (frame.metadata.t as number) < 5, `the best blue frame is at ${frame.metadata.t}`);
    const page = hits.find((h) => h.metadata.pdf === 'pages.pdf')!;
    assert.equal(page.metadata.page, 2);
  });

  test('a rerun skips unchanged files unread; a changed video replaces all its frames; a gone PDF is pruned whole', async () => {
    const dir = await mediaFolder();
    const c = await newCollection();
    await run(c, dir);
    const rerun = await batchesDuring(() => run(c, dir));
    assert.deepEqual(summary(rerun.result), { added: 0, updated: 0, skipped: 4, removed: 0, failed: 0 });
    assert.equal(rerun.batches, 0, 'nothing embedded on a rerun');

    const before = framesOf(await all(c), 'colours.mp4').map((d) => d.id);
    await makeVideo(join(dir, 'colours.mp4'), [{ colour: 'yellow', seconds: 1.5 }, { colour: 'purple', seconds: 1.5 }]);
    assert.deepEqual(summary(await run(c, dir)), { added: 0, updated: 1, skipped: 3, removed: 0, failed: 0 });
    const after = framesOf(await all(c), 'colours.mp4');
    assert.ok(after.length >= 2);
    for (const f of after) assert.ok((f.metadata.t as number) < 3 && Math.abs((f.metadata.duration as number) - 3) < 0.1, `a frame of the new video: ${f.id}`);
    assert.ok(before.some((id) => !after.some((f) => f.id === id)), 'old frames are gone');
    assert.equal(after.filter((f) => f.metadata.taken_at !== undefined).length, 0, 'no metadata of the old video is left');

    await rm(join(dir, 'pages.pdf'));
    const pruned = await run(c, dir, { prune: true });
    assert.deepEqual(summary(pruned), { added: 0, updated: 0, skipped: 3, removed: 5, failed: 0 });
    assert.equal((await all(c)).filter((d) => d.metadata.pdf !== undefined).length, 0);
  });

  test('--rehash of unchanged media embeds nothing and writes nothing', async () => {
    const dir = await mediaFolder();
    const c = await newCollection();
    await run(c, dir);
    const rehash = await batchesDuring(() => run(c, dir, { rehash: true }));
    assert.deepEqual(summary(rehash.result), { added: 0, updated: 0, skipped: 4, removed: 0, failed: 0 });
    assert.equal(rehash.batches, 0);
  });

  test('watched paths: a video deleted loses its frames, a PDF added gains its pages', async () => {
    const dir = await mediaFolder();
    const c = await newCollection();
    await run(c, dir);
    await rm(join(dir, 'colours.mp4'));
    await makePdf(join(dir, 'more.pdf'), [{ colour: [200, 200, 0], text: 'yellow' }]);
    const r = await run(c, dir, { paths: [join(dir, 'colours.mp4'), join(dir, 'more.pdf')] });
    assert.equal(r.added, 1);
    assert.ok(r.removed >= 3, `removed ${r.removed}`);
    const docs = await all(c);
    assert.equal(framesOf(docs, 'colours.mp4').length, 0);
    assert.deepEqual(docs.filter((d) => d.metadata.pdf === 'more.pdf').map((d) => d.id), ['more.pdf#page=1', 'more.pdf#page=1&text']);
    assert.equal(docs.filter((d) => d.metadata.pdf === 'pages.pdf').length, 5, 'the other PDF is untouched');
  });

  test('broken and hostile files fail with a reason and keep what was indexed; the rest indexes', async () => {
    const dir = await mediaFolder();
    const c = await newCollection();
    await run(c, dir);
    const frames = framesOf(await all(c), 'colours.mp4').length;
    // The video cut in half, a PDF that needs a password, random bytes behind a PDF header.
    await truncate(join(dir, 'colours.mp4'), 2000);
    await makeEncryptedPdf(join(dir, 'locked.pdf'), { userPassword: 'secret', ownerPassword: 'owner' });
    await writeFile(join(dir, 'corrupt.pdf'), Buffer.concat([Buffer.from('%PDF-1.7\n'), Buffer.alloc(4000, 0x5a)]));
    const r = await run(c, dir, { prune: true });
    assert.deepEqual(summary(r), { added: 0, updated: 0, skipped: 3, removed: 0, failed: 3 });
    assert.deepEqual(r.failures.map((f) => [f.item, f.code]).sort(), [['colours.mp4', 'VIDEO_UNDECODABLE'], ['corrupt.pdf', 'PDF_UNREADABLE'], ['locked.pdf', 'PDF_ENCRYPTED']]);
    for (const f of r.failures) assert.ok(f.message.includes(join(dir, f.item)), `the message names the file: ${f.message}`);
    assert.equal(framesOf(await all(c), 'colours.mp4').length, frames, 'a video that now fails keeps its frames (not pruned)');
  });

  test('without FFmpeg, videos are passed over with one note naming how to install it; everything else indexes', async () => {
    const dir = await mediaFolder();
    await makeVideo(join(dir, 'second.webm'), [{ colour: 'red', seconds: 1 }]);
    const c = await newCollection();
    const r = await run(c, dir, { media: { ffmpegDir: join(dir, 'no-ffmpeg-here') } });
    assert.deepEqual(summary(r), { added: 3, updated: 0, skipped: 0, removed: 0, failed: 0 });
    const notes = r.notes.filter((n) => /FFmpeg/.test(n));
    assert.equal(notes.length, 1, r.notes.join('\n'));
    assert.match(notes[0]!, /passed over 2 video file\(s\): FFmpeg not found; install FFmpeg \(Debian\/Ubuntu: apt-get install ffmpeg\)/);
    assert.equal((await all(c)).filter((d) => d.metadata.video !== undefined).length, 0);
  });
});
