/**
 * Over HTTP, a video frame's and a PDF page's thumbnails show that frame and that page, and
 * the file behind them is served with byte ranges (as players seek), only from inside the
 * folder it was indexed from.
 */
import assert from 'node:assert/strict';
import { readFile, rename, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { indexSources } from '../../src/index/pipeline.ts';
import { resolveSource } from '../../src/index/sources.ts';
import { modelRefOf } from '../../src/search/collection.ts';
import { openStore } from '../../src/store/open.ts';
import type { VectorStore } from '../../src/store/store.ts';
import { makeVideo } from '../helpers/media.ts';
import { forged, tempDir } from '../helpers/models.ts';
import { makePdf } from '../helpers/pdf.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

let api: TestServer;
let store: VectorStore;
let dir: string;
let frames: { id: string; t: number }[];

before(async () => {
  dir = await tempDir('tessera-media-files-');
  await makeVideo(join(dir, 'clip.mp4'), [{ colour: 'red', seconds: 2 }, { colour: 'blue', seconds: 2 }]);
  await makePdf(join(dir, 'doc.pdf'), [{ colour: [230, 230, 20], text: 'a yellow page' }, { colour: [20, 20, 230], text: 'a blue page' }]);
  store = await openStore(await tempDir('tessera-media-files-store-'));
  api = await startServer({ model: 'colour', store });
  const writer = modelRefOf(await forged('colour'), 'fp32');
  await store.createCollection({ name: 'media', ...writer, dimensions: (await api.embedder.embedTexts(['x']))[0]!.embedding.length });
  const result = await indexSources({ store, collection: 'media', embedder: api.embedder, writer, sources: [await resolveSource(dir)] });
  assert.equal(result.added, 2, JSON.stringify(result.failures));
  const ids: string[] = [];
  for await (const page of store.scan('media')) ids.push(...page.map((r) => r.id));
  frames = (await store.get('media', ids)).filter((d) => d.metadata.video === 'clip.mp4').map((d) => ({ id: d.id, t: d.metadata.t as number }));
});

after(async () => {
  await api.close();
  await store.close();
});

const doc = (id: string, what: 'thumbnail' | 'file', headers: Record<string, string> = {}) =>
  fetch(`${api.url}/v1/collections/media/documents/${encodeURIComponent(id)}/${what}`, { headers });

/** Mean RGB of an encoded image. */
async function meanColour(bytes: ArrayBuffer): Promise<number[]> {
  const { channels } = await sharp(Buffer.from(bytes)).stats();
  return channels.slice(0, 3).map((c) => c.mean);
}

describe('searching videos and PDFs over HTTP', () => {
  type Hit = { id: string; score: number; metadata: Record<string, unknown>; moments?: { id: string; t: number; score: number }[]; pages?: { id: string; page: number; score: number }[] };
  const search = async (body: object) => {
    const response = await api.post('/v1/collections/media/search', body);
    assert.equal(response.status, 200);
    return ((await response.json()) as { data: Hit[] }).data;
  };

  test('"blue" finds the blue moment of the video and the blue page of the PDF, one result each, the rest as moments and pages', async () => {
    const hits = await search({ query: 'blue', k: 10 });
    assert.deepEqual(hits.map((h) => h.metadata.video ?? h.metadata.pdf).sort(), ['clip.mp4', 'doc.pdf'], 'one result per file');
    const video = hits.find((h) => h.metadata.video === 'clip.mp4')!;
    assert.ok((video.metadata.t as number) >= 2 && (video.metadata.t as number) < 4, `the moment is in the blue part: ${video.metadata.t}`);
    assert.ok(video.moments!.every((m) => m.score <= video.score && m.id !== video.id && m.id.startsWith('clip.mp4#t=')));
    const pdf = hits.find((h) => h.metadata.pdf === 'doc.pdf')!;
    assert.equal(pdf.metadata.page, 2);
    assert.ok(pdf.pages!.every((p) => p.page !== 2), 'the best page is not listed again');

    const every = await search({ query: 'blue', k: 50, group: false });
    assert.equal(every.filter((h) => h.metadata.video === 'clip.mp4').length, frames.length, 'group: false gives every frame');
  });
});

describe('thumbnails and files of frames and pages', () => {
  test("a frame's thumbnail is that frame; a page's (its picture's and its text's) is that page", async () => {
    const blue = frames.find((f) => f.t >= 2)!;
    const red = frames.find((f) => f.t < 2)!;
    for (const [frame, wanted] of [[blue, 2], [red, 0]] as const) {
      const response = await doc(frame.id, 'thumbnail');
      assert.equal(response.status, 200);
      assert.equal(response.headers.get('content-type'), 'image/webp');
      const rgb = await meanColour(await response.arrayBuffer());
      assert.equal(rgb.indexOf(Math.max(...rgb)), wanted, `${frame.id}: ${rgb.map(Math.round)}`);
    }
    for (const id of ['doc.pdf#page=2', 'doc.pdf#page=2&text']) {
      const response = await doc(id, 'thumbnail');
      assert.equal(response.status, 200, id);
      const [r, g, b] = await meanColour(await response.arrayBuffer());
      assert.ok(b! > r! + 100 && b! > g! + 100, `${id} shows the blue page: ${[r, g, b].map(Math.round)}`);
    }
  });

  test('the file behind a frame, whole and by byte ranges; past its end, 416 RANGE_NOT_SATISFIABLE', async () => {
    const bytes = await readFile(join(dir, 'clip.mp4'));
    const id = frames[0]!.id;
    const whole = await doc(id, 'file');
    assert.equal(whole.status, 200);
    assert.equal(whole.headers.get('content-type'), 'video/mp4');
    assert.equal(whole.headers.get('accept-ranges'), 'bytes');
    assert.ok(Buffer.from(await whole.arrayBuffer()).equals(bytes));

    const part = await doc(id, 'file', { range: 'bytes=100-199' });
    assert.equal(part.status, 206);
    assert.equal(part.headers.get('content-range'), `bytes 100-199/${bytes.length}`);
    assert.ok(Buffer.from(await part.arrayBuffer()).equals(bytes.subarray(100, 200)));

    const tail = await doc(id, 'file', { range: 'bytes=-10' });
    assert.equal(tail.status, 206);
    assert.ok(Buffer.from(await tail.arrayBuffer()).equals(bytes.subarray(bytes.length - 10)));

    const open = await doc(id, 'file', { range: `bytes=${bytes.length - 5}-` });
    assert.equal(open.status, 206);
    assert.equal((await open.arrayBuffer()).byteLength, 5);

    const past = await doc(id, 'file', { range: `bytes=${bytes.length}-` });
    assert.equal(past.status, 416);
    assert.equal(past.headers.get('content-range'), `bytes */${bytes.length}`);
    assert.equal(((await past.json()) as { code: string }).code, 'RANGE_NOT_SATISFIABLE');

    const pdf = await doc('doc.pdf#page=2&text', 'file');
    assert.equal(pdf.status, 200);
    assert.equal(pdf.headers.get('content-type'), 'application/pdf');
    assert.ok(Buffer.from(await pdf.arrayBuffer()).equals(await readFile(join(dir, 'doc.pdf'))));
  });

  test('a file swapped for a link leading out of the folder is not served; an unknown id is 404', async () => {
    const outside = await tempDir('tessera-media-outside-');
    await makeVideo(join(outside, 'secret.mp4'), [{ colour: 'green', seconds: 1 }]);
    await rename(join(dir, 'clip.mp4'), join(dir, 'moved.mp4'));
    await symlink(join(outside, 'secret.mp4'), join(dir, 'clip.mp4'));
    for (const what of ['file', 'thumbnail'] as const) {
      const response = await doc(frames[1]!.id, what);
      assert.equal(response.status, 404, what);
      assert.equal(((await response.json()) as { code: string }).code, 'DOCUMENT_NOT_FOUND');
    }
    const unknown = await doc('clip.mp4#t=99.000', 'file');
    assert.equal(unknown.status, 404);
  });
});
