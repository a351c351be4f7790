// The duplicates scan and its background jobs, on a real embedded store holding vectors made
// here (no model): which groups, progress, and the bounds the server's jobs keep.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { TesseraError } from '../../src/errors.ts';
import { DuplicateJobs, type DuplicateJob } from '../../src/search/duplicate-jobs.ts';
import { findDuplicates, type DuplicateProgress } from '../../src/search/duplicates.ts';
import { openStore } from '../../src/store/open.ts';
import type { DocumentRecord, VectorStore } from '../../src/store/store.ts';
import { tempDir } from '../helpers/models.ts';

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
