import assert from 'node:assert/strict';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Embedder } from '../../src/engine/embedder.ts';
import { PHOTO_KEYS } from '../../src/image/photo-metadata.ts';
import { indexSources, stateOf, unchangedFile, type IndexResult } from '../../src/index/pipeline.ts';
import { resolveSource, type FileCandidate } from '../../src/index/sources.ts';
import { parseFilter } from '../../src/store/filter.ts';
import { openStore } from '../../src/store/open.ts';
import type { Metadata, ModelRef, VectorStore } from '../../src/store/store.ts';
import { photoCases, type PhotoCase } from '../helpers/exif.ts';
import { forged, tempDir } from '../helpers/models.ts';

let embedder: Embedder;
let writer: ModelRef;
let store: VectorStore;
let cases: PhotoCase[];

before(async () => {
  const model = await forged('colour');
  embedder = await Embedder.load(model);
  writer = { model, dtype: 'fp32' };
  store = await openStore(await tempDir('tessera-photo-store-'));
  cases = await photoCases();
});

after(async () => {
  await store.close();
  await embedder.close();
});

let collections = 0;
async function newCollection(): Promise<string> {
  const name = `photos${++collections}`;
  const [probe] = await embedder.embedTexts(['x']);
  await store.createCollection({ name, ...writer, dimensions: probe!.embedding.length });
  return name;
}

/** Every photo case, and a text file beside them. */
async function photoFolder(): Promise<string> {
  const dir = await tempDir('tessera-photo-folder-');
  await Promise.all(cases.map((c) => writeFile(join(dir, c.name), c.bytes)));
  await writeFile(join(dir, 'note.txt'), 'a postcard from the antimeridian');
  return dir;
}

async function run(collection: string, paths: string[], extra: Partial<Parameters<typeof indexSources>[0]> = {}): Promise<IndexResult> {
  const sources = await Promise.all(paths.map((p) => resolveSource(p)));
  return indexSources({ store, collection, embedder, writer, sources, ...extra });
}

const summary = (r: IndexResult) => ({ added: r.added, updated: r.updated, skipped: r.skipped, removed: r.removed, failed: r.failed });
const photoKeysOf = (m: Metadata) => Object.fromEntries(Object.entries(m).filter(([k]) => PHOTO_KEYS.includes(k)));

/** Batches the model runs while `work` does. */
async function batchesDuring(work: () => Promise<void>): Promise<number> {
  let batches = 0;
  const stop = embedder.onBatch(() => batches++);
  try {
    await work();
  } finally {
    stop();
  }
  return batches;
}

describe('photo metadata in a folder index', () => {
  test('every photo is embedded and stored with its photo keys beside the walk keys; a rerun skips them unread', async () => {
    const dir = await photoFolder();
    const name = await newCollection();
    const first = await run(name, [dir]);
    assert.deepEqual(first.failures, []);
    assert.deepEqual(summary(first), { added: cases.length + 1, updated: 0, skipped: 0, removed: 0, failed: 0 });

    const docs = new Map((await store.get(name, [...cases.map((c) => c.name), 'note.txt'])).map((d) => [d.id, d]));
    const root = (await resolveSource(dir)).path;
    for (const c of cases) {
      const doc = docs.get(c.name);
      assert.ok(doc, `${c.name} is stored`);
      const info = await stat(join(dir, c.name));
      assert.deepEqual(
        doc.metadata,
        { ...c.expected, ext: c.name.split('.').pop()!, bytes: info.size, mtime: info.mtime.toISOString(), _source: root },
        c.name,
      );
    }
    // No date: no taken_at, and never the mtime in its place.
    const plain = docs.get('no-exif.png')!;
    assert.equal(plain.metadata.taken_at, undefined);
    assert.equal(typeof plain.metadata.mtime, 'string');
    assert.deepEqual(photoKeysOf(docs.get('note.txt')!.metadata), {});

    // The stored docs carry keys the walk does not know; size and mtime alone still say "unchanged".
    let second: IndexResult | undefined;
    assert.equal(await batchesDuring(async () => void (second = await run(name, [dir]))), 0);
    assert.deepEqual(summary(second!), { added: 0, updated: 0, skipped: cases.length + 1, removed: 0, failed: 0 });

    // A filter on the new keys: the southern-hemisphere photos.
    const [probe] = await embedder.embedTexts(['red']);
    const south = await store.search(name, { vector: probe!.embedding, k: 100, filter: parseFilter({ gps_lat: { $lt: 0 } }) });
    assert.deepEqual(
      south.map((h) => h.id).sort(),
      cases.filter((c) => typeof c.expected.gps_lat === 'number' && c.expected.gps_lat < 0).map((c) => c.name).sort(),
    );
  });

  test('--rehash fills the keys into a collection indexed before them, rewriting records with their stored vectors', async () => {
    const dir = await photoFolder();
    const current = await newCollection();
    await run(current, [dir]);
    const ids = [...cases.map((c) => c.name), 'note.txt'];

    // An "old" collection: the same records as the index writes, less the photo keys.
    const stored = await store.get(current, ids, { vectors: true });
    const name = await newCollection();
    await store.upsert(name, stored.map((d) => ({ ...d, vector: d.vector!, metadata: Object.fromEntries(Object.entries(d.metadata).filter(([k]) => !PHOTO_KEYS.includes(k))) })), writer);
    for (const d of await store.get(name, ids)) assert.deepEqual(photoKeysOf(d.metadata), {}, d.id);

    // Without --rehash nothing is read: size and mtime are unchanged.
    const plain = await run(name, [dir]);
    assert.deepEqual(summary(plain), { added: 0, updated: 0, skipped: cases.length + 1, removed: 0, failed: 0 });

    let rehashed: IndexResult | undefined;
    const batches = await batchesDuring(async () => void (rehashed = await run(name, [dir], { rehash: true })));
    assert.equal(batches, 0, 'the model ran no batch');
    // Every image gains at least width and height; the text has no photo keys and is skipped.
    assert.deepEqual(summary(rehashed!), { added: 0, updated: cases.length, skipped: 1, removed: 0, failed: 0 });

    const after = new Map((await store.get(name, ids, { vectors: true })).map((d) => [d.id, d]));
    for (const before of stored) {
      const now = after.get(before.id)!;
      assert.deepEqual(Buffer.from(now.vector!.buffer, now.vector!.byteOffset, now.vector!.byteLength), Buffer.from(before.vector!.buffer, before.vector!.byteOffset, before.vector!.byteLength), `${before.id}: the same vector, bit for bit`);
      assert.deepEqual(now.metadata, before.metadata, `${before.id}: the keys are back`);
    }
    // And now the keys are in, a plain rerun skips everything again.
    assert.deepEqual(summary(await run(name, [dir])), { added: 0, updated: 0, skipped: cases.length + 1, removed: 0, failed: 0 });
  });

  test(
    'a batch without any dated photo, into a collection that has dated ones',
    // taken_at_offset_known is absent from every document of the second run: the LanceDB store
    // must write an all-null boolean column (apache-arrow 18 leaves its buffer empty otherwise).
    async () => {
      const name = await newCollection();
      assert.equal((await run(name, [await photoFolder()])).failed, 0);
      const later = await tempDir('tessera-photo-undated-');
      await writeFile(join(later, 'screenshot.png'), cases.find((c) => c.name === 'no-exif.png')!.bytes);
      await writeFile(join(later, 'todo.txt'), 'buy film');
      assert.deepEqual(summary(await run(name, [later])), { added: 2, updated: 0, skipped: 0, removed: 0, failed: 0 });
    },
  );

  test('unchangedFile compares the walk keys only, both ways', async () => {
    const source = { kind: 'folder' as const, given: '/photos', path: '/photos' };
    const walk: Metadata = { ext: 'jpg', bytes: 1234, mtime: '2024-01-01T00:00:00.000Z', _source: '/photos' };
    const candidate = (metadata: Metadata): FileCandidate => ({ type: 'file', id: 'a.jpg', source, path: '/photos/a.jpg', kind: 'image', bytes: 1234, mtime: '2024-01-01T00:00:00.000Z', metadata });
    const stored = (metadata: Metadata) => stateOf({ id: 'a.jpg', modality: 'image', image: '/photos/a.jpg', root: '/photos', metadata, hash: 'h' });
    const photo = { taken_at: '2021-07-14T18:03:11Z', taken_at_offset_known: true, width: 48, height: 32 };
    assert.equal(unchangedFile(stored({ ...walk, ...photo }), candidate(walk)), true, 'photo keys stored beside the walk keys');
    assert.equal(unchangedFile(stored(walk), candidate(walk)), true, 'a collection from before the photo keys');
    assert.equal(unchangedFile(stored({ ...walk, ...photo, mtime: 'x' }), candidate(walk)), false, 'a walk key changed');
    assert.equal(unchangedFile(stored({ ...walk, ...photo, extra: 1 }), candidate(walk)), false, 'a walk key stored that the walk no longer gives');
    assert.equal(unchangedFile(stored({ ...walk, ...photo }), candidate({ ...walk, extra: 1 })), false, 'a walk key given that is not stored');
  });
});

describe('photo metadata in a JSONL index', () => {
  test("the file's keys go under the document's own: the document's win, the ones it lacks come from the file", async () => {
    const dir = await photoFolder();
    const jsonl = join(dir, 'docs.jsonl');
    const lines = [
      { id: 'mine', image: 'north-east.jpg', metadata: { camera_make: 'My own camera', tag: 'paris' } },
      { id: 'dated', image: 'no-exif.png', metadata: { taken_at: '1999-12-31T23:59:59Z' } },
      { id: 'hostile', image: 'ifd-loop.jpg' },
    ];
    await writeFile(jsonl, lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
    const name = await newCollection();
    const result = await run(name, [jsonl]);
    assert.deepEqual(summary(result), { added: 3, updated: 0, skipped: 0, removed: 0, failed: 0 });
    const docs = new Map((await store.get(name, ['mine', 'dated', 'hostile'])).map((d) => [d.id, d]));
    const expected = (file: string) => cases.find((c) => c.name === file)!.expected;
    const source = docs.get('mine')!.metadata._source;
    assert.deepEqual(docs.get('mine')!.metadata, { ...expected('north-east.jpg'), camera_make: 'My own camera', tag: 'paris', _source: source });
    assert.deepEqual(docs.get('dated')!.metadata, { ...expected('no-exif.png'), taken_at: '1999-12-31T23:59:59Z', _source: source });
    assert.deepEqual(docs.get('hostile')!.metadata, { ...expected('ifd-loop.jpg'), _source: source });
    assert.equal(docs.get('mine')!.hash, (await store.hashes(name)).get('mine'));

    // The merged metadata is what the rerun compares: unchanged lines are skipped, not rewritten.
    assert.deepEqual(summary(await run(name, [jsonl])), { added: 0, updated: 0, skipped: 3, removed: 0, failed: 0 });
    // A document's own key changed: rewritten with its vector, the file's keys kept.
    lines[0]!.metadata!.tag = 'louvre';
    await writeFile(jsonl, lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
    assert.deepEqual(summary(await run(name, [jsonl])), { added: 0, updated: 1, skipped: 2, removed: 0, failed: 0 });
    const [mine] = await store.get(name, ['mine']);
    assert.deepEqual(mine!.metadata, { ...expected('north-east.jpg'), camera_make: 'My own camera', tag: 'louvre', _source: source });
    assert.ok((await readFile(jsonl, 'utf8')).includes('louvre'));
  });
});
