// Grouping a video's frames and a PDF's pages into one result each, and collapsing
// near-identical documents, on a real embedded store holding vectors made here (scores set by
// hand: the query is document "q" on axis 0); the NEAR_IDENTICAL threshold measured on images
// made with sharp and the demo (colour) model; and the body fields over HTTP.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { Embedder } from '../../src/engine/embedder.ts';
import { COLLAPSE_LOOKAHEAD, MAX_LISTED, NEAR_IDENTICAL, type GroupedHit } from '../../src/search/group.ts';
import { parseSearchParameters } from '../../src/search/params.ts';
import { MAX_SHAPED_CANDIDATES, searchCollection, type SearchInput } from '../../src/search/search.ts';
import { openStore } from '../../src/store/open.ts';
import type { DocumentRecord, Metadata, VectorSearch, VectorStore } from '../../src/store/store.ts';
import { clock, resultLabel } from '../../src/cli/search.ts';
import { tessera } from '../helpers/cli.ts';
import { rejectsWith } from '../helpers/errors.ts';
import { cosine, forged, tempDir } from '../helpers/models.ts';
import { startServer } from '../helpers/server.ts';

/** Room for a direction of its own for every document made here (axes 1-399), and the hand-placed ones (400 on). */
const DIMS = 512;
const WRITER = { model: 'made-here', dtype: 'fp32' };

/** Unit vector: `score` on axis 0 (the query), the rest on `axis`, plus `nudge` on axis + 1 (then normalised). */
function vec(score: number, axis: number, nudge = 0, dims = DIMS): Float32Array {
  const v = new Float32Array(dims);
  v[0] = score;
  v[axis] = Math.sqrt(1 - score * score);
  v[axis + 1] = nudge;
  const norm = Math.hypot(...v);
  return v.map((x) => x / norm);
}

let nextAxis = 1;
/** A document scoring `score` against the query, in a direction of its own (its vector unlike any other's). */
function doc(id: string, score: number, metadata: Metadata = {}, options: { text?: boolean; hash?: string; vector?: Float32Array } = {}): DocumentRecord {
  const vector = options.vector ?? vec(score, (nextAxis += 2));
  assert.ok(nextAxis < 400, 'out of axes');
  const base = { id, metadata, hash: options.hash ?? `h-${id}`, vector };
  return options.text ? { ...base, modality: 'text', text: id } : { ...base, modality: 'image', image: `https://example.com/${encodeURIComponent(id)}` };
}

const query = (): DocumentRecord => ({ id: 'q', modality: 'text', text: 'q', metadata: {}, hash: 'h-q', vector: vec(1, 1) });
const frame = (video: string, t: number, score: number, day: number) => doc(`${video}#t=${t.toFixed(3)}`, score, { video, t, duration: 60, day });
const page = (pdf: string, n: number, score: number, text = false) =>
  doc(`${pdf}#page=${n}${text ? '&text' : ''}`, score, { pdf, page: n, page_count: 6, day: 4 }, { text });

/** Frames of two videos, pages of a PDF (image and text documents of a page), photos. */
const MEDIA = [
  query(),
  ...[0.95, 0.93, 0.91, 0.9, 0.89, 0.5].map((s, i) => frame('clips/a.mp4', i + 1, s, i === 0 ? 5 : 1)),
  frame('clips/b.mp4', 0, 0.94, 3),
  frame('clips/b.mp4', 2, 0.6, 0),
  doc('p1.jpg', 0.925, { day: 2 }),
  page('docs/x.pdf', 1, 0.92),
  page('docs/x.pdf', 1, 0.915, true),
  page('docs/x.pdf', 2, 0.85),
  page('docs/x.pdf', 2, 0.84, true),
  page('docs/x.pdf', 3, 0.8, true),
  page('docs/x.pdf', 4, 0.7),
  page('docs/x.pdf', 5, 0.65),
  doc('p2.jpg', 0.88, { day: 6 }),
  doc('p3.jpg', 0.3),
];

/** One video of 100 frames scoring above everything else, then photos: k groups need deeper candidates. */
const DEEP = [query(), ...Array.from({ length: 100 }, (_, i) => frame('long.mp4', i, 0.99 - i * 0.001, i)), ...[0.8, 0.79, 0.78].map((s, i) => doc(`photo-${i}.jpg`, s))];

/** Photos: a PNG and its WebP (vectors 0.995 alike), a copy with the same hash (but unlike vectors), and the rest apart. */
const A_PNG = vec(0.9, 400);
const PHOTOS = [
  query(),
  doc('a.png', 0.9, {}, { vector: A_PNG }),
  doc('a.webp', 0, {}, { vector: vec(0.9, 400, 0.1) }),
  doc('b.png', 0.88, {}, { hash: 'same-bytes' }),
  doc('c.png', 0.85),
  doc('d.png', 0.8, {}, { vector: vec(0.8, 404) }),
  doc('d.txt', 0, {}, { text: true, vector: vec(0.8, 404, 0.01) }),
  doc('e.png', 0.78, {}, { vector: vec(0.78, 406) }),
  doc('e-like.png', 0, {}, { vector: vec(0.78, 406, 0.25) }),
  ...Array.from({ length: 30 }, (_, i) => doc(`filler-${String(i).padStart(2, '0')}.png`, 0.75 - i * 0.01)),
  doc('b-copy.png', 0.705, {}, { hash: 'same-bytes' }),
];

/** Two videos whose best frames are near-identical, and a video whose two frames are. */
const CLIPS = [
  query(),
  doc('v1.mp4#t=0.000', 0.9, { video: 'v1.mp4', t: 0 }, { vector: vec(0.9, 410) }),
  doc('v2.mp4#t=0.000', 0, { video: 'v2.mp4', t: 0 }, { vector: vec(0.9, 410, 0.05) }),
  doc('v1.mp4#t=1.000', 0, { video: 'v1.mp4', t: 1 }, { vector: vec(0.9, 410, 0.08) }),
  doc('v3.mp4#t=0.000', 0.5, { video: 'v3.mp4', t: 0 }),
];

/** Counts what the search asks of the store. */
function spied(store: VectorStore) {
  const calls = { search: [] as VectorSearch[], getIds: 0 };
  const search: VectorStore['search'] = (collection, q) => {
    calls.search.push(q);
    return store.search(collection, q);
  };
  const get: VectorStore['get'] = (collection, ids, options) => {
    calls.getIds += ids.length;
    return store.get(collection, ids, options);
  };
  const spy = new Proxy(store, {
    get(target, key) {
      if (key === 'search') return search;
      if (key === 'get') return get;
      const value: unknown = Reflect.get(target, key, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return { spy, calls };
}

let store: VectorStore;
let storeDir: string;
before(async () => {
  storeDir = await tempDir('tessera-group-');
  store = await openStore(storeDir);
  for (const [name, docs] of [['media', MEDIA], ['deep', DEEP], ['photos', PHOTOS], ['clips', CLIPS], ['plain', PHOTOS.slice(0, 8)]] as const) {
    await store.createCollection({ name, ...WRITER, dimensions: DIMS });
    await store.upsert(name, docs, WRITER);
  }
});
after(() => store?.close());

async function search(collection: string, params: Record<string, unknown> = {}, on: VectorStore = store): Promise<GroupedHit[]> {
  const input: SearchInput = { ...parseSearchParameters(params), terms: [{ kind: 'id', id: 'q', weight: 1 }] };
  return (await searchCollection({ store: on, model: WRITER }, collection, input)).hits;
}

const ids = (hits: readonly GroupedHit[]) => hits.map((h) => h.id);
const close = (a: number, b: number) => Math.abs(a - b) < 1e-5;

describe('grouping', () => {
  test('one result per video and per PDF: the best frame or page, with up to 3 other matching ones', async () => {
    const hits = await search('media', { k: 10 });
    assert.deepEqual(ids(hits), ['clips/a.mp4#t=1.000', 'clips/b.mp4#t=0.000', 'p1.jpg', 'docs/x.pdf#page=1', 'p2.jpg', 'p3.jpg']);
    const [a, b, p1, x] = hits as [GroupedHit, GroupedHit, GroupedHit, GroupedHit];
    // The result is the best frame: its score and metadata.
    assert.ok(close(a.score, 0.95), String(a.score));
    assert.deepEqual(a.metadata, { video: 'clips/a.mp4', t: 1, duration: 60, day: 5 });
    assert.equal(MAX_LISTED, 3);
    assert.deepEqual(a.moments!.map((m) => [m.id, m.t, Math.round(m.score * 100) / 100]), [
      ['clips/a.mp4#t=2.000', 2, 0.93],
      ['clips/a.mp4#t=3.000', 3, 0.91],
      ['clips/a.mp4#t=4.000', 4, 0.9],
    ]);
    assert.deepEqual(b.moments!.map((m) => m.id), ['clips/b.mp4#t=2.000']);
    assert.equal(a.pages, undefined);
    assert.equal(p1.moments, undefined);
    assert.equal(p1.pages, undefined);
    // A page's image and text are one page: page 1 (the result's own) is not listed, page 2 once.
    assert.deepEqual(x.metadata.page, 1);
    assert.deepEqual(x.pages!.map((p) => [p.id, p.page]), [
      ['docs/x.pdf#page=2', 2],
      ['docs/x.pdf#page=3&text', 3],
      ['docs/x.pdf#page=4', 4],
    ]);
    assert.ok(close(x.pages![0]!.score, 0.85));
  });

  test('k and offset count results, not frames; group: false gives every frame and page', async () => {
    assert.deepEqual(ids(await search('media', { k: 2, offset: 1 })), ['clips/b.mp4#t=0.000', 'p1.jpg']);
    assert.deepEqual(ids(await search('media', { k: 1, offset: 3 })), ['docs/x.pdf#page=1']);
    const frames = await search('media', { k: 5, group: false });
    assert.deepEqual(ids(frames), ['clips/a.mp4#t=1.000', 'clips/b.mp4#t=0.000', 'clips/a.mp4#t=2.000', 'p1.jpg', 'docs/x.pdf#page=1']);
    assert.ok(frames.every((h) => h.moments === undefined && h.pages === undefined));
    assert.equal((await search('media', { k: 100, group: false })).length, MEDIA.length - 1);
  });

  test('after the cut-offs: moments and pages are matching ones only', async () => {
    // 0.9 x 0.95 = 0.855: page 2 (0.85) and the frames below a's fifth are cut.
    const cut = await search('media', { k: 10, cutoff: { relative: 0.9 } });
    assert.deepEqual(ids(cut), ['clips/a.mp4#t=1.000', 'clips/b.mp4#t=0.000', 'p1.jpg', 'docs/x.pdf#page=1', 'p2.jpg']);
    assert.deepEqual(cut[3]!.pages, []);
    assert.deepEqual(cut[1]!.moments, []);
    const floor = await search('media', { k: 10, min_score: 0.9 });
    assert.deepEqual(ids(floor), ['clips/a.mp4#t=1.000', 'clips/b.mp4#t=0.000', 'p1.jpg', 'docs/x.pdf#page=1']);
    assert.deepEqual(floor[0]!.moments!.map((m) => m.t), [2, 3, 4]);
  });

  test('with a sort, groups are ordered by their best member\'s key', async () => {
    // a's best frame has day 5 although its other frames have day 1; b's best day 3.
    const byDay = await search('media', { k: 10, sort: 'day' });
    assert.deepEqual(ids(byDay), ['p1.jpg', 'clips/b.mp4#t=0.000', 'docs/x.pdf#page=1', 'clips/a.mp4#t=1.000', 'p2.jpg', 'p3.jpg']);
    assert.equal(byDay[3]!.moments!.length, 3);
    assert.deepEqual(ids(await search('media', { k: 2, offset: 2, sort: '-day' })), ['docs/x.pdf#page=1', 'clips/b.mp4#t=0.000']);
    // Ungrouped, frames are sorted one by one.
    assert.deepEqual(ids(await search('media', { k: 3, sort: 'day', group: false })), ['clips/b.mp4#t=2.000', 'clips/a.mp4#t=2.000', 'clips/a.mp4#t=3.000']);
  });

  test('when the first candidates are frames of one video, deeper candidates bring k results', async () => {
    const { spy, calls } = spied(store);
    const hits = await search('deep', { k: 3 }, spy);
    assert.deepEqual(ids(hits), ['long.mp4#t=0.000', 'photo-0.jpg', 'photo-1.jpg']);
    assert.equal(hits[0]!.moments!.length, 3);
    // 12 candidates (4 per result) were one video; then 48; then 192, the rest of the collection.
    assert.deepEqual(calls.search.map((c) => [c.k, c.offset]), [[12, 0], [36, 12], [144, 48]]);
    assert.ok(MAX_SHAPED_CANDIDATES >= 1000);
    assert.deepEqual(ids(await search('deep', { k: 2, offset: 2 })), ['photo-1.jpg', 'photo-2.jpg']);
  });

  test('a collection without videos or PDFs searches as before: one store search of k results', async () => {
    const { spy, calls } = spied(store);
    const hits = await search('plain', { k: 3, offset: 1 }, spy);
    assert.deepEqual(ids(hits), ['a.webp', 'b.png', 'c.png']);
    assert.deepEqual(calls.search.map((c) => [c.k, c.offset]), [[3, 1]]);
    assert.equal(calls.getIds, 1); // the query document's vector, nothing more
    assert.ok(hits.every((h) => !('moments' in h) && !('pages' in h) && !('collapsed' in h)));
  });
});

describe('collapsing', () => {
  test('the same hash, or vectors at least NEAR_IDENTICAL alike, collapse under the first; the rest stays', async () => {
    assert.ok(cosine(A_PNG, PHOTOS[2]!.vector) >= NEAR_IDENTICAL);
    assert.ok(cosine(PHOTOS[7]!.vector, PHOTOS[8]!.vector) < NEAR_IDENTICAL && cosine(PHOTOS[7]!.vector, PHOTOS[8]!.vector) > 0.95);
    const plain = await search('photos', { k: 6 });
    assert.deepEqual(ids(plain), ['a.png', 'a.webp', 'b.png', 'c.png', 'd.png', 'd.txt']);
    const collapsed = await search('photos', { k: 6, collapse: true });
    assert.deepEqual(ids(collapsed), ['a.png', 'b.png', 'c.png', 'd.png', 'd.txt', 'e.png']);
    assert.deepEqual(collapsed[0]!.collapsed!.map((c) => c.id), ['a.webp']);
    assert.ok(close(collapsed[0]!.collapsed![0]!.score, plain[1]!.score));
    // b-copy.png: the same bytes, further down the list (within the look-ahead), and unlike in vector.
    assert.deepEqual(collapsed[1]!.collapsed!.map((c) => c.id), ['b-copy.png']);
    // A text and an image never collapse; 0.96 alike is similar, not near-identical.
    assert.equal(collapsed[3]!.collapsed, undefined);
    assert.equal(collapsed[5]!.collapsed, undefined);
    assert.ok(ids(await search('photos', { k: 7, collapse: true })).includes('e-like.png'));
  });

  test('pages count collapsed results; only the page and its look-ahead are read', async () => {
    assert.deepEqual(ids(await search('photos', { k: 2, offset: 1, collapse: true })), ['b.png', 'c.png']);
    const { spy, calls } = spied(store);
    const page = await search('photos', { k: 1, offset: 1, collapse: true }, spy);
    assert.deepEqual(page.map((h) => [h.id, h.collapsed?.map((c) => c.id)]), [['b.png', ['b-copy.png']]]);
    // The query's own vector, then the candidates up to the second result (a.webp collapsed
    // on the way) and the look-ahead past it.
    assert.equal(calls.getIds, 1 + 3 + COLLAPSE_LOOKAHEAD);
    // Without collapse, the next page shows the copies.
    assert.deepEqual(ids(await search('photos', { k: 1, offset: 1 })), ['a.webp']);
  });

  test('frames collapse only with frames of their own video; grouped videos stay apart', async () => {
    const grouped = await search('clips', { collapse: true });
    assert.deepEqual(ids(grouped), ['v1.mp4#t=0.000', 'v2.mp4#t=0.000', 'v3.mp4#t=0.000']);
    assert.deepEqual(grouped[0]!.moments!.map((m) => m.id), ['v1.mp4#t=1.000']);
    assert.ok(grouped.every((h) => h.collapsed === undefined));
    const frames = await search('clips', { collapse: true, group: false });
    assert.deepEqual(ids(frames), ['v1.mp4#t=0.000', 'v2.mp4#t=0.000', 'v3.mp4#t=0.000']);
    assert.deepEqual(frames[0]!.collapsed!.map((c) => c.id), ['v1.mp4#t=1.000']);
  });

  test('group and collapse parameters: booleans, defaults left out, anything else names the field', () => {
    assert.deepEqual(parseSearchParameters({ group: true, collapse: false }), { k: 10, offset: 0, mode: 'vector' });
    assert.deepEqual(parseSearchParameters({ group: false, collapse: true }), { k: 10, offset: 0, mode: 'vector', group: false, collapse: true });
    for (const raw of [{ group: 'yes' }, { group: 0 }, { collapse: 'true' }, { collapse: {} }]) {
      const field = Object.keys(raw)[0]!;
      assert.throws(() => parseSearchParameters(raw), rejectsWith('SEARCH_PARAMETER_INVALID', new RegExp(`^${field}: expected true or false`)), JSON.stringify(raw));
    }
  });
});

describe('tessera search', () => {
  const cli = async (args: string[]) => {
    const run = await tessera(['search', '--like', 'q', '--store', storeDir, ...args]);
    assert.equal(run.code, 0, run.stderr);
    return run.stdout;
  };
  type Row = GroupedHit & Record<string, unknown>;
  const json = async (args: string[]) => (JSON.parse(await cli([...args, '--json'])) as { data: Row[] }).data;

  test('the table names a video\'s result by its moment, a PDF\'s by its page; --json lists the rest', async () => {
    assert.deepEqual(['0:03.2', '1:05.5', '1:02:05.0', '0:00.0'], [3.25, 65.5, 3725, 0].map(clock));
    const table = (await cli(['--collection', 'media', '--k', '4'])).trim().split('\n');
    assert.equal(table.length, 5);
    assert.match(table[1]!, /^\s+1\s+0\.9500\s+image\s+clips\/a\.mp4 at 0:01\.0 \(\+3 moments\)/);
    assert.match(table[2]!, /clips\/b\.mp4 at 0:00\.0 \(\+1 moment\)/);
    assert.match(table[4]!, /docs\/x\.pdf page 1 \(\+3 pages\)/);
    const grouped = await json(['--collection', 'media', '--k', '4']);
    assert.deepEqual(grouped[0]!.moments!.map((m) => m.t), [2, 3, 4]);
    assert.deepEqual(grouped[3]!.pages!.map((p) => p.page), [2, 3, 4]);
    assert.deepEqual(Object.keys(grouped[2]!).sort(), ['id', 'image', 'metadata', 'score']);
  });

  test('--no-group gives every frame; --collapse lists what a result stands for', async () => {
    const frames = await json(['--collection', 'media', '--k', '3', '--no-group']);
    assert.deepEqual(ids(frames), ['clips/a.mp4#t=1.000', 'clips/b.mp4#t=0.000', 'clips/a.mp4#t=2.000']);
    assert.ok(frames.every((h) => !('moments' in h)));
    const collapsed = await json(['--collection', 'photos', '--k', '2', '--collapse']);
    assert.deepEqual(collapsed.map((h) => [h.id, h.collapsed?.map((c) => c.id)]), [['a.png', ['a.webp']], ['b.png', ['b-copy.png']]]);
    assert.match(await cli(['--collection', 'photos', '--k', '1', '--collapse']), /a\.png \(\+1 near-identical\)/);
    assert.equal(resultLabel({ id: 'docs/y.pdf#page=7&text', score: 1, modality: 'text', metadata: { pdf: 'docs/y.pdf', page: 7 }, pages: [] }), 'docs/y.pdf page 7');
  });
});

describe('the near-identical threshold', () => {
  /** A 320x240 "photo": noisy vertical bands of `colours`. */
  async function photo(colours: [number, number, number][], seed: number): Promise<Buffer> {
    const [w, h] = [320, 240];
    const data = Buffer.alloc(w * h * 3);
    let s = seed;
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const band = colours[Math.floor((x / w) * colours.length)]!;
        for (let c = 0; c < 3; c++) {
          s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
          data[(y * w + x) * 3 + c] = Math.max(0, Math.min(255, band[c]! + (s % 41) - 20));
        }
      }
    }
    return sharp(data, { raw: { width: w, height: h, channels: 3 } }).png().toBuffer();
  }

  let embedder: Embedder;
  before(async () => {
    embedder = await Embedder.load(await forged('colour'), { intraOpThreads: 1 });
  });
  after(() => embedder?.close());

  test('re-encodes and resizes of a photo score above it on the demo model, other photos below', async () => {
    const [red, blue, white, green]: [number, number, number][] = [[200, 30, 30], [30, 30, 200], [240, 240, 240], [30, 160, 30]];
    const original = await photo([red, blue, white], 1);
    const same = {
      webp: await sharp(original).webp({ quality: 80 }).toBuffer(),
      jpeg: await sharp(original).jpeg({ quality: 60 }).toBuffer(),
      resized: await sharp(original).resize(160, 120).png().toBuffer(),
      'resized jpeg': await sharp(original).resize(160).jpeg({ quality: 75 }).toBuffer(),
    };
    const different = {
      cropped: await sharp(original).extract({ left: 0, top: 0, width: 260, height: 240 }).png().toBuffer(),
      'bands reordered': await photo([blue, red, white], 2),
      'other proportions': await photo([red, blue, blue, white], 3),
      'another colour': await photo([green, blue, white], 4),
    };
    const all = [original, ...Object.values(same), ...Object.values(different)].map((b) => ({ image: new Uint8Array(b) }));
    const vectors = (await embedder.embed(all)).map((e) => e.embedding);
    const scores = vectors.slice(1).map((v) => cosine(vectors[0]!, v));
    const names = [...Object.keys(same), ...Object.keys(different)];
    const report = names.map((n, i) => `${n} ${scores[i]!.toFixed(5)}`).join(', ');
    scores.slice(0, 4).forEach((s, i) => assert.ok(s >= NEAR_IDENTICAL, `${names[i]}: ${report}`));
    scores.slice(4).forEach((s, i) => assert.ok(s < NEAR_IDENTICAL, `${names[4 + i]}: ${report}`));
    // The gap the threshold sits in.
    assert.ok(Math.min(...scores.slice(0, 4)) > 0.999 && Math.max(...scores.slice(4)) < 0.96, report);
  });
});

describe('over HTTP', () => {
  test('group and collapse come through the body; a non-boolean is a 422 naming the field', async () => {
    const api = await startServer({ model: 'colour', store });
    assert.equal((await api.post('/v1/collections', { name: 'served' })).status, 200);
    const info = await store.requireCollection('served');
    const writer = { model: info.model, dtype: info.dtype };
    const small = (score: number, axis: number, nudge = 0) => vec(score, axis, nudge, info.dimensions);
    await store.upsert('served', [
      { id: 'q', modality: 'text', text: 'q', metadata: {}, hash: 'h-q', vector: small(1, 1) },
      { id: 'clip.mp4#t=1.000', modality: 'image', image: 'https://example.com/f1.png', metadata: { video: 'clip.mp4', t: 1 }, hash: 'f1', vector: small(0.9, 3) },
      { id: 'clip.mp4#t=2.500', modality: 'image', image: 'https://example.com/f2.png', metadata: { video: 'clip.mp4', t: 2.5 }, hash: 'f2', vector: small(0.85, 5) },
      { id: 'doc.pdf#page=2', modality: 'image', image: 'https://example.com/p2.png', metadata: { pdf: 'doc.pdf', page: 2, page_count: 3 }, hash: 'p2', vector: small(0.8, 7) },
      { id: 'doc.pdf#page=3&text', modality: 'text', text: 'page three', metadata: { pdf: 'doc.pdf', page: 3, page_count: 3 }, hash: 'p3', vector: small(0.75, 9) },
      { id: 'a.png', modality: 'image', image: 'https://example.com/a.png', metadata: {}, hash: 'a', vector: small(0.7, 11) },
      { id: 'a.webp', modality: 'image', image: 'https://example.com/a.webp', metadata: {}, hash: 'a2', vector: small(0.7, 11, 0.05) },
    ], writer);
    const search = async (body: Record<string, unknown>) => {
      const response = await api.post('/v1/collections/served/search', { query: { id: 'q' }, ...body });
      return { status: response.status, body: (await response.json()) as { data: (GroupedHit & { image?: string })[]; code?: string; detail?: string } };
    };

    const grouped = await search({ collapse: true });
    assert.equal(grouped.status, 200, JSON.stringify(grouped.body));
    assert.deepEqual(grouped.body.data.map((h) => h.id), ['clip.mp4#t=1.000', 'doc.pdf#page=2', 'a.png']);
    assert.deepEqual(grouped.body.data[0]!.moments!.map((m) => [m.id, m.t]), [['clip.mp4#t=2.500', 2.5]]);
    assert.deepEqual(grouped.body.data[1]!.pages!.map((p) => [p.id, p.page]), [['doc.pdf#page=3&text', 3]]);
    assert.deepEqual(grouped.body.data[2]!.collapsed!.map((c) => c.id), ['a.webp']);
    assert.ok(!('collapsed' in grouped.body.data[0]!));

    const flat = await search({ group: false });
    assert.deepEqual(flat.body.data.map((h) => h.id), ['clip.mp4#t=1.000', 'clip.mp4#t=2.500', 'doc.pdf#page=2', 'doc.pdf#page=3&text', 'a.png', 'a.webp']);
    assert.ok(flat.body.data.every((h) => !('moments' in h) && !('pages' in h) && !('collapsed' in h)));

    for (const [body, field] of [[{ group: 'yes' }, 'group'], [{ collapse: 1 }, 'collapse']] as const) {
      const bad = await search(body);
      assert.equal(bad.status, 422, JSON.stringify(bad.body));
      assert.equal(bad.body.code, 'SEARCH_PARAMETER_INVALID');
      assert.match(bad.body.detail!, new RegExp(`^${field}: expected true or false`));
    }

    // The duplicates job shows each group's kind.
    const started = await api.post('/v1/collections/served/duplicates', { threshold: 0.95 });
    assert.equal(started.status, 202);
    const location = started.headers.get('location')!;
    const deadline = Date.now() + 30_000;
    let job: { status: string; data: { ids: string[]; kind: string }[] };
    do {
      assert.ok(Date.now() < deadline, 'the duplicates job did not finish');
      await new Promise((r) => setTimeout(r, 10));
      job = (await (await fetch(`${api.url}${location}`)).json()) as typeof job;
    } while (job.status === 'queued' || job.status === 'running');
    assert.deepEqual(job.data.map((g) => [g.ids, g.kind]), [[['a.png', 'a.webp'], 'near_identical']]);
    await api.close();
  });
});
