// The duplicates scan and its background jobs, on a real embedded store holding vectors made
// here (no model): which groups, progress, and the bounds the server's jobs keep.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { TesseraError } from '../../src/errors.ts';
import { DuplicateJobs, type DuplicateJob } from '../../src/search/duplicate-jobs.ts';
import { describeGroup } from '../../src/cli/duplicates.ts';
import { findDuplicates, FILE_COVERAGE, MIN_MATCHED_PARTS, type DuplicateGroup, type DuplicateProgress } from '../../src/search/duplicates.ts';
import { NEAR_IDENTICAL } from '../../src/search/group.ts';
import { openStore } from '../../src/store/open.ts';
import type { DocumentRecord, Metadata, VectorStore } from '../../src/store/store.ts';
import { cosine, tempDir } from '../helpers/models.ts';

const DIMS = 64;
const WRITER = { model: 'made-here', dtype: 'fp32' };

/** Axis `axis` tilted towards axis `axis + 1` by `tilt`, unit length: cosine to the bare axis is 1/sqrt(1 + tilt²). */
function vector(axis: number, tilt = 0): Float32Array {
  const v = new Float32Array(DIMS);
  v[axis] = 1;
  v[(axis + 1) % DIMS] = tilt;
  const norm = Math.hypot(1, tilt);
  return v.map((x) => x / norm);
}

const doc = (id: string, v: Float32Array, modality: 'text' | 'image' = 'text'): DocumentRecord =>
  modality === 'text' ? { id, modality, text: id, metadata: {}, hash: `h-${id}`, vector: v } : { id, modality, image: `https://example.com/${id}.png`, metadata: {}, hash: `h-${id}`, vector: v };

/** Three near-copies on axis 0 (cosine >= 0.995 to each other), a pair on axis 4 (0.98), 40 loners on axes of their own. */
const DOCS = [
  doc('a1', vector(0)),
  doc('a2', vector(0, 0.05), 'image'),
  doc('a3', vector(0, 0.1)),
  doc('b1', vector(4), 'image'),
  doc('b2', vector(4, 0.2), 'image'),
  ...Array.from({ length: 40 }, (_, i) => doc(`lone-${String(i).padStart(2, '0')}`, vector(8 + i))),
];

let store: VectorStore;
before(async () => {
  store = await openStore(await tempDir('tessera-duplicates-'));
  await store.createCollection({ name: 'near', ...WRITER, dimensions: DIMS });
  await store.upsert('near', DOCS, WRITER);
});
after(() => store?.close());

/** Polls until the job has finished (a condition with a deadline, not a sleep). */
async function finished(job: DuplicateJob): Promise<DuplicateJob> {
  const deadline = Date.now() + 30_000;
  while (job.status === 'queued' || job.status === 'running') {
    assert.ok(Date.now() < deadline, `job ${job.id} did not finish`);
    await new Promise((r) => setTimeout(r, 5));
  }
  return job;
}

const groupIds = (groups: { ids: string[] }[]) => groups.map((g) => g.ids);

describe('findDuplicates', () => {
  test('connected groups above the threshold, largest first; the weakest link is the score; progress page by page', async () => {
    const progress: DuplicateProgress[] = [];
    const groups = await findDuplicates(store, 'near', { threshold: 0.97, onProgress: (p) => progress.push(p) });
    assert.deepEqual(groupIds(groups), [['a1', 'a2', 'a3'], ['b1', 'b2']]);
    // a3 is 0.995 to a1 and ~0.999 to a2: its best link; b's only link is cos(b1, b2) = 1/sqrt(1.04).
    assert.ok(Math.abs(groups[1]!.score - 1 / Math.hypot(1, 0.2)) < 1e-4, String(groups[1]!.score));
    assert.ok(groups[0]!.score > groups[1]!.score && groups[0]!.score <= 1);
    assert.deepEqual(progress.at(-1), { scanned: DOCS.length, total: DOCS.length });
    assert.ok(progress.every((p, i) => i === 0 || p.scanned > progress[i - 1]!.scanned));

    assert.deepEqual(groupIds(await findDuplicates(store, 'near', { threshold: 0.99 })), [['a1', 'a2', 'a3']]);
    assert.deepEqual(groupIds(await findDuplicates(store, 'near', { threshold: 0.97, modality: 'image' })), [['b1', 'b2']]);
    await assert.rejects(findDuplicates(store, 'ghost'), (err: unknown) => err instanceof TesseraError && err.code === 'COLLECTION_NOT_FOUND');
  });
});

describe('duplicate jobs', () => {
  test('a job runs in the background and ends with the same groups as a direct scan', async () => {
    const jobs = new DuplicateJobs(store);
    const job = jobs.start('near', { threshold: 0.97 });
    assert.equal(job.status, 'queued');
    assert.equal(jobs.get('near', job.id), job);
    await finished(job);
    assert.equal(job.status, 'done');
    assert.deepEqual(groupIds(job.groups()), groupIds(await findDuplicates(store, 'near', { threshold: 0.97 })));
    assert.deepEqual(job.progress, { scanned: DOCS.length, total: DOCS.length });
    assert.ok(job.startedAt! >= job.createdAt && job.finishedAt! >= job.startedAt!);
    assert.deepEqual(jobs.list('near').map((j) => j.id), [job.id]);
    assert.deepEqual(jobs.list('other'), []);
    assert.throws(() => jobs.get('other', job.id), (err: unknown) => err instanceof TesseraError && err.code === 'DUPLICATES_JOB_NOT_FOUND');
    await jobs.close();
  });

  test('scans run one at a time; a queued one deleted never runs', async () => {
    const jobs = new DuplicateJobs(store);
    const first = jobs.start('near', { threshold: 0.97 });
    const second = jobs.start('near', { threshold: 0.99 });
    const third = jobs.start('near', { threshold: 0.97, modality: 'image' });
    jobs.cancel('near', second.id);
    assert.equal(second.status, 'cancelled');
    assert.throws(() => jobs.get('near', second.id), (err: unknown) => err instanceof TesseraError && err.code === 'DUPLICATES_JOB_NOT_FOUND');
    await finished(third);
    assert.equal(first.status, 'done');
    assert.ok(third.startedAt! >= first.finishedAt!, 'the third began once the first had ended');
    assert.equal(second.startedAt, undefined);
    assert.deepEqual(groupIds(third.groups()), [['b1', 'b2']]);
    await jobs.close();
  });

  test('bounded: QUEUE_FULL while every held job is unfinished; then the oldest finished one makes room', async () => {
    const jobs = new DuplicateJobs(store, { kept: 2, keepMs: 60_000 });
    const a = jobs.start('near');
    const b = jobs.start('near');
    assert.throws(() => jobs.start('near'), (err: unknown) => err instanceof TesseraError && err.code === 'QUEUE_FULL' && /2 duplicates jobs are queued or running/.test(err.message));
    await finished(b);
    const c = jobs.start('near');
    assert.throws(() => jobs.get('near', a.id), (err: unknown) => err instanceof TesseraError && err.code === 'DUPLICATES_JOB_NOT_FOUND');
    assert.deepEqual(jobs.list('near').map((j) => j.id), [b.id, c.id]);
    await finished(c);
    await jobs.close();
  });

  test('finished results are kept keepMs, then forgotten', async () => {
    const jobs = new DuplicateJobs(store, { kept: 4, keepMs: 0 });
    const job = await finished(jobs.start('near'));
    assert.equal(job.status, 'done');
    assert.throws(() => jobs.get('near', job.id), (err: unknown) => err instanceof TesseraError && err.code === 'DUPLICATES_JOB_NOT_FOUND');
    await jobs.close();
  });

  test('a collection that is gone fails its job with the reason; close stops the rest and refuses new ones', async () => {
    const jobs = new DuplicateJobs(store);
    const ghost = await finished(jobs.start('ghost'));
    assert.equal(ghost.status, 'failed');
    assert.equal(ghost.error?.code, 'COLLECTION_NOT_FOUND');
    const queued = jobs.start('near');
    await jobs.close();
    assert.equal(queued.status, 'cancelled');
    assert.equal(queued.startedAt, undefined);
    assert.throws(() => jobs.start('near'), (err: unknown) => err instanceof TesseraError && err.code === 'SHUTTING_DOWN');
  });
});

describe('duplicate kinds, and videos and PDFs as whole files', () => {
  const D = 256;
  let axis = 0;
  let nudgeAxis = 200;
  /** A direction of its own. */
  const fresh = () => {
    const v = new Float32Array(D);
    v[++axis] = 1;
    return v;
  };
  /** `v` moved a little (cosine 1/sqrt(1 + amount²) to it) in a direction of its own. */
  const nudged = (v: Float32Array, amount: number) => {
    const out = Float32Array.from(v);
    out[nudgeAxis++] = amount;
    const norm = Math.hypot(...out);
    return out.map((x) => x / norm);
  };
  /** On the plane of two axes of its own, at angle `radians`. */
  const plane = fresh();
  const planeY = fresh();
  const angled = (radians: number) => plane.map((x, i) => Math.cos(radians) * x + Math.sin(radians) * planeY[i]!);

  const image = (id: string, vector: Float32Array, metadata: Metadata = {}, hash = `h-${id}`): DocumentRecord => ({ id, modality: 'image', image: `https://example.com/${id}`, metadata, hash, vector });
  const text = (id: string, vector: Float32Array, metadata: Metadata, hash = `h-${id}`): DocumentRecord => ({ id, modality: 'text', text: id, metadata, hash, vector });
  const frames = (video: string, vectors: Float32Array[], hashes?: string[]) =>
    vectors.map((v, t) => image(`${video}#t=${t.toFixed(3)}`, v, { video, t, duration: vectors.length }, hashes?.[t]));
  const pages = (pdf: string, vectors: { image: Float32Array; text?: Float32Array }[], hashOf = (id: string) => `h-${id}`) =>
    vectors.flatMap((p, i) => {
      const metadata = { pdf, page: i + 1, page_count: vectors.length };
      const id = `${pdf}#page=${i + 1}`;
      return [image(id, p.image, metadata, hashOf(id)), ...(p.text ? [text(`${id}&text`, p.text, metadata, hashOf(`${id}&text`))] : [])];
    });

  const same = fresh();
  const near = fresh();
  const similar = fresh();
  const staticShot = fresh();
  const titleCard = fresh();
  const c = [fresh(), fresh(), fresh(), fresh()];
  const e = [fresh(), fresh()];
  const g = Array.from({ length: 6 }, fresh);
  const x = [0, 1, 2].map(() => ({ image: fresh(), text: fresh() }));
  const DOCS: DocumentRecord[] = [
    // Photos: the same bytes twice; a PNG and its WebP; two shots of a burst.
    image('same.png', same, {}, 'bytes-1'),
    image('same-copy.png', same, {}, 'bytes-1'),
    image('near.png', near),
    image('near.webp', nudged(near, 0.1)),
    image('shot-1.jpg', similar),
    image('shot-2.jpg', nudged(similar, 0.25)),
    // Four photos in a chain: 1-2 and 3-4 near-identical, 2-3 only similar: one similar group.
    ...[0, 0.14, 0.42, 0.56].map((a, i) => image(`chain-${i + 1}.jpg`, angled(a))),
    // A static shot: the frames of one video, near-identical to each other.
    ...frames('static.mp4', [staticShot, nudged(staticShot, 0.05), nudged(staticShot, 0.08)]),
    // Two videos that share their title card (the same frame, the same bytes), nothing else.
    ...frames('a.mp4', [titleCard, fresh(), fresh(), fresh()], ['title', 'a1', 'a2', 'a3']),
    ...frames('b.mp4', [titleCard, fresh(), fresh(), fresh()], ['title', 'b1', 'b2', 'b3']),
    // A video and its re-encode; a video and its exact copy; a video and a clip cut from it.
    ...frames('c.mp4', c),
    ...frames('d.mp4', c.map((v) => nudged(v, 0.1))),
    ...frames('e.mp4', e, ['e0', 'e1']),
    ...frames('f.mp4', e, ['e0', 'e1']),
    ...frames('g.mp4', g),
    ...frames('h.mp4', [g[2]!, g[3]!]),
    // A photo that is the re-encode's first frame: a photo is not a copy of a video.
    image('still.jpg', c[0]!, {}, 'h-c.mp4#t=0.000'),
    // A PDF (image and text of each page), its exact copy, and another sharing only its cover.
    ...pages('x.pdf', x, (id) => `h-${id.replace(/^x/, '')}`),
    ...pages('y.pdf', x, (id) => `h-${id.replace(/^y/, '')}`),
    ...pages('z.pdf', [{ image: x[0]!.image }, { image: fresh() }, { image: fresh() }, { image: fresh() }]),
  ];

  const FILES = 'files';
  before(async () => {
    await store.createCollection({ name: FILES, model: WRITER.model, dtype: WRITER.dtype, dimensions: D });
    await store.upsert(FILES, DOCS, WRITER);
  });

  const named = (g: DuplicateGroup) => (g.videos ?? g.pdfs ?? g.ids).join(' + ');

  test('exact copies, near-identical and similar groups; frames and pages paired only as whole files', async () => {
    // The vectors are what the kinds say.
    assert.ok(cosine(near, DOCS[3]!.vector) >= NEAR_IDENTICAL);
    assert.ok(cosine(similar, DOCS[5]!.vector) < NEAR_IDENTICAL && cosine(similar, DOCS[5]!.vector) >= 0.95);
    assert.ok(cosine(angled(0.14), angled(0.42)) < NEAR_IDENTICAL && cosine(angled(0), angled(0.42)) < 0.95);
    assert.deepEqual([FILE_COVERAGE, MIN_MATCHED_PARTS], [0.5, 2]);

    const groups = await findDuplicates(store, FILES, { threshold: 0.95 });
    assert.deepEqual(Object.fromEntries(groups.map((g) => [named(g), g.kind])), {
      'same-copy.png + same.png': 'exact',
      'near.png + near.webp': 'near_identical',
      'shot-1.jpg + shot-2.jpg': 'similar',
      'chain-1.jpg + chain-2.jpg + chain-3.jpg + chain-4.jpg': 'similar',
      'e.mp4 + f.mp4': 'exact',
      'c.mp4 + d.mp4': 'near_identical',
      'g.mp4 + h.mp4': 'similar',
      'x.pdf + y.pdf': 'exact',
    });
    // The chain: its weakest strongest link is near-identical, but 2-3 is not: similar all the same.
    const chain = groups.find((g) => g.ids[0] === 'chain-1.jpg')!;
    assert.ok(chain.score >= NEAR_IDENTICAL, String(chain.score));
    assert.equal(groups[0], chain);

    // A file group names its files and, for each, its best matching frame (page).
    const cd = groups.find((g) => g.videos?.[0] === 'c.mp4')!;
    assert.deepEqual(cd.videos, ['c.mp4', 'd.mp4']);
    assert.equal(cd.pdfs, undefined);
    assert.match(cd.ids[0]!, /^c\.mp4#t=/);
    assert.match(cd.ids[1]!, /^d\.mp4#t=/);
    assert.ok(Math.abs(cd.score - 1 / Math.hypot(1, 0.1)) < 1e-4, String(cd.score));
    const xy = groups.find((g) => g.pdfs)!;
    assert.deepEqual(xy.pdfs, ['x.pdf', 'y.pdf']);
    assert.match(xy.ids[0]!, /^x\.pdf#page=\d/);
    assert.match(xy.ids[1]!, /^y\.pdf#page=\d/);

    // Frames of one video, the videos sharing a title card, the photo of a frame and the PDF
    // sharing a cover are in no group.
    const members = groups.flatMap((g) => [...g.ids, ...(g.videos ?? []), ...(g.pdfs ?? [])]);
    for (const never of ['static.mp4', 'a.mp4', 'b.mp4', 'still.jpg', 'z.pdf']) {
      assert.ok(!members.some((m) => m.startsWith(never)), `${never} in ${JSON.stringify(groups)}`);
    }
    assert.ok(groups.every((g) => g.ids.length >= 2));
  });

  test('a job gives the same kinds; the CLI says them', async () => {
    const jobs = new DuplicateJobs(store);
    const job = await finished(jobs.start(FILES, { threshold: 0.95 }));
    assert.equal(job.status, 'done');
    assert.deepEqual(job.groups().map((g) => [named(g), g.kind]), (await findDuplicates(store, FILES, { threshold: 0.95 })).map((g) => [named(g), g.kind]));
    await jobs.close();
    assert.equal(
      describeGroup({ ids: ['c.mp4#t=0.000', 'd.mp4#t=0.000'], score: 0.995, kind: 'near_identical', videos: ['c.mp4', 'd.mp4'] }, 1),
      'group 2: 2 videos, similarity >= 0.9950, near-identical\n  c.mp4 (c.mp4#t=0.000)\n  d.mp4 (d.mp4#t=0.000)',
    );
    assert.equal(describeGroup({ ids: ['a', 'b'], score: 1, kind: 'exact' }, 0), 'group 1: 2 documents, similarity >= 1.0000, exact copies\n  a\n  b');
  });

  test('above NEAR_IDENTICAL every group of documents is near-identical or exact; a clip stays similar', async () => {
    const groups = await findDuplicates(store, FILES, { threshold: 0.99 });
    const documents = groups.filter((g) => !g.videos && !g.pdfs);
    assert.deepEqual(documents.map((g) => [g.ids.join(' + '), g.kind]).sort(), [
      ['chain-1.jpg + chain-2.jpg', 'near_identical'],
      ['chain-3.jpg + chain-4.jpg', 'near_identical'],
      ['near.png + near.webp', 'near_identical'],
      ['same-copy.png + same.png', 'exact'],
    ]);
    // Its frames are the very frames of the longer video, but it is a third of it.
    assert.equal(groups.find((g) => g.videos?.includes('h.mp4'))?.kind, 'similar');
  });
});
