import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { openLanceStore } from '../../src/store/lance.ts';
import { defaultStoreLocation, openStore, storeLocation } from '../../src/store/open.ts';
import { rejectsWith } from '../helpers/errors.ts';
import { parseFilter } from '../../src/store/filter.ts';
import { clusteredVectors } from '../../bench/search.ts';
import { cosineOf, imageDoc, storeContract, textDoc, unitVector } from './contract.ts';
import { classifierContract } from './classifier-contract.ts';

const dirs: string[] = [];
export function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-store-'));
  dirs.push(dir);
  return dir;
}
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

storeContract('lance', () => openLanceStore(tempDir()), (store) => openLanceStore(store.location));
classifierContract('lance', async () => {
  const dir = tempDir();
  return { store: await openLanceStore(dir), another: () => openLanceStore(dir) };
});

test('a collection and its documents outlive the process that wrote them', async () => {
  const dir = tempDir();
  const first = await openStore(dir);
  await first.createCollection({ name: 'kept', model: 'demo', dtype: 'fp32', dimensions: 8 });
  await first.upsert('kept', [textDoc('a', 'hello', unitVector(1), { year: 2020 })], { model: 'demo', dtype: 'fp32' });
  const created = await first.getCollection('kept');
  await first.close();
  const second = await openStore(dir);
  assert.deepEqual(await second.getCollection('kept'), created);
  assert.deepEqual((await second.get('kept', ['a']))[0]?.metadata, { year: 2020 });
  await assert.rejects(second.upsert('kept', [textDoc('b', 'x', unitVector(2))], { model: 'other', dtype: 'fp32' }), rejectsWith('COLLECTION_MODEL_MISMATCH'));
  await second.close();
});

test('where the store lives', async () => {
  assert.equal(defaultStoreLocation({ XDG_DATA_HOME: '/data/xdg' }), '/data/xdg/tessera');
  assert.match(defaultStoreLocation({}), /\/\.local\/share\/tessera$/);
  assert.match(defaultStoreLocation({ XDG_DATA_HOME: 'relative' }), /\/\.local\/share\/tessera$/);
  assert.equal(storeLocation('/srv/s', { TESSERA_STORE: '/other' }), '/srv/s');
  assert.equal(storeLocation(undefined, { TESSERA_STORE: '/other' }), '/other');
  assert.equal(storeLocation(undefined, { XDG_DATA_HOME: '/x' }), '/x/tessera');
  assert.equal(storeLocation(undefined, { TESSERA_STORE: 'postgres://me:secret@db.example/tessera' }), 'postgres://me:secret@db.example/tessera');
  // A postgres:// URL selects the PostgreSQL backend (test/store/postgres.test.ts); nothing
  // listens on port 1, so it is unavailable, said without the password.
  for (const url of ['postgres://me:secret@127.0.0.1:1/tessera', 'postgresql://me:secret@127.0.0.1:1/tessera']) {
    await assert.rejects(openStore(url), (err: Error) => {
      rejectsWith('STORE_UNAVAILABLE', /127\.0\.0\.1:1/)(err);
      assert.doesNotMatch(err.message, /secret/);
      return true;
    });
  }
  await assert.rejects(openStore('redis://me:secret@db.example/0'), (err: Error) => {
    rejectsWith('STORE_INVALID', /postgres:\/\//)(err);
    assert.doesNotMatch(err.message, /secret/);
    return true;
  });
  const file = join(tempDir(), 'a-file');
  (await import('node:fs')).writeFileSync(file, 'x');
  await assert.rejects(openStore(file), rejectsWith('STORE_INVALID', /a-file/));
});

test('past the threshold searches go through an ANN index that still finds near neighbours', { timeout: 180_000 }, async () => {
  const dims = 64;
  const mixture = clusteredVectors(dims, 30, 7);
  const vectors = Array.from({ length: 3000 }, mixture.draw);
  const store = await openLanceStore(tempDir(), { annThreshold: 1500 });
  const writer = { model: 'demo', dtype: 'fp32' };
  await store.createCollection({ name: 'ann', ...writer, dimensions: dims });
  const doc = (i: number) => ({
    ...(i % 2 ? imageDoc(`d${i}`, `/photos/${i}.jpg`, vectors[i]!) : textDoc(`d${i}`, `text ${i}`, vectors[i]!)),
    metadata: { group: i % 10 },
  });
  await store.upsert('ann', Array.from({ length: 1000 }, (_, i) => doc(i)), writer);
  assert.equal((await store.indexState('ann')).ann, undefined, 'exact search below the threshold');
  await store.upsert('ann', Array.from({ length: 1000 }, (_, i) => doc(1000 + i)), writer);
  // The upsert crossing the threshold returned with the build still running in the background.
  const building = await store.indexState('ann');
  assert.equal(building.building, true, 'the write did not wait for the index build');
  await store.indexBuilt('ann');
  const built = (await store.indexState('ann')).ann;
  assert.ok(built, 'the upsert crossing the threshold started the index build');
  assert.equal(built.indexedRows, 2000);
  await store.upsert('ann', Array.from({ length: 1000 }, (_, i) => doc(2000 + i)), writer);
  const state = (await store.indexState('ann')).ann!;
  assert.equal(state.indexedRows + state.unindexedRows, 3000);

  const queries = Array.from({ length: 20 }, mixture.draw);
  let found = 0;
  for (const q of queries) {
    const exact = vectors.map((v, i) => ({ i, s: cosineOf(q, v) })).sort((a, b) => b.s - a.s).slice(0, 10);
    const hits = await store.search('ann', { vector: q, k: 10 });
    assert.equal(hits.length, 10);
    const want = new Set(exact.map((e) => `d${e.i}`));
    found += hits.filter((h) => want.has(h.id)).length;
    for (const h of hits) assert.ok(Math.abs(h.score - cosineOf(q, vectors[Number(h.id.slice(1))]!)) < 0.02, 'scores are cosine similarities');
  }
  assert.ok(found / (10 * queries.length) >= 0.9, `recall@10 ${found / (10 * queries.length)}`);

  // Filters, modality, exclusions, min_score and paging through the index.
  const q = queries[0]!;
  const filtered = await store.search('ann', { vector: q, k: 10, filter: parseFilter({ group: 3 }), modality: 'image' });
  assert.equal(filtered.length, 10);
  assert.ok(filtered.every((h) => h.metadata.group === 3 && h.modality === 'image'));
  const top = await store.search('ann', { vector: q, k: 20 });
  const excluded = await store.search('ann', { vector: q, k: 5, excludeIds: [top[0]!.id] });
  assert.ok(!excluded.some((h) => h.id === top[0]!.id));
  const above = await store.search('ann', { vector: q, k: 20, minScore: top[4]!.score });
  assert.ok(above.length >= 5 && above.every((h) => h.score >= top[4]!.score));
  const second = await store.search('ann', { vector: q, k: 10, offset: 10 });
  assert.ok(second.every((h) => !top.slice(0, 5).some((t) => t.id === h.id)));
  // A document written after the index was built is found at once.
  const fresh = unitVector(4242, dims);
  await store.upsert('ann', [textDoc('fresh', 'fresh', fresh)], writer);
  assert.equal((await store.search('ann', { vector: fresh, k: 1 }))[0]?.id, 'fresh');
  await store.close();
});

test('a retrain runs beside the old index: writes go on, searches keep using it, then it is swapped in', { timeout: 180_000 }, async () => {
  const dims = 64;
  const mixture = clusteredVectors(dims, 30, 11);
  const vectors = Array.from({ length: 5000 }, mixture.draw);
  const store = await openLanceStore(tempDir(), { annThreshold: 1000 });
  const writer = { model: 'demo', dtype: 'fp32' };
  await store.createCollection({ name: 'grow', ...writer, dimensions: dims });
  const docs = (from: number, n: number) => Array.from({ length: n }, (_, i) => textDoc(`d${from + i}`, `text ${from + i}`, vectors[from + i]!));
  await store.upsert('grow', docs(0, 1000), writer);
  await store.indexBuilt('grow');
  assert.equal((await store.indexState('grow')).ann?.indexedRows, 1000);
  // Doubling: this write starts a retrain and returns; the next writes and searches do not wait.
  await store.upsert('grow', docs(1000, 1000), writer);
  assert.equal((await store.indexState('grow')).building, true);
  await store.upsert('grow', docs(2000, 500), writer);
  const during = await store.indexState('grow');
  if (during.building) assert.equal(during.ann?.indexedRows, 1000, 'the old index serves while the new one is built');
  const recall = async (n: number) => {
    let found = 0;
    const queries = Array.from({ length: 10 }, mixture.draw);
    for (const q of queries) {
      const want = new Set(vectors.slice(0, n).map((v, i) => ({ i, s: cosineOf(q, v) })).sort((a, b) => b.s - a.s).slice(0, 10).map((e) => `d${e.i}`));
      found += (await store.search('grow', { vector: q, k: 10 })).filter((h) => want.has(h.id)).length;
    }
    return found / (10 * queries.length);
  };
  const recallDuring = await recall(2500);
  assert.ok(recallDuring >= 0.9, `recall@10 during the build ${recallDuring}`);
  await store.indexBuilt('grow');
  const after = await store.indexState('grow');
  assert.equal(after.building, false);
  assert.equal(after.buildError, undefined);
  assert.ok(after.ann!.indexedRows >= 2000, `the retrained index covers the doubled table: ${JSON.stringify(after.ann)}`);
  assert.equal(after.ann!.indexedRows + after.ann!.unindexedRows, 2500);
  assert.ok((await recall(2500)) >= 0.9);
  await store.close();
});

test('a SIGKILL during an index build leaves the old index working', { timeout: 180_000 }, async () => {
  const dir = tempDir();
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/store/index-build-child.ts', dir], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk;
      if (out.includes('building')) resolve();
    });
    child.once('exit', () => reject(new Error(`the child exited before building: ${out}`)));
  });
  child.kill('SIGKILL');
  await new Promise((resolve) => child.once('exit', resolve));
  assert.ok(!out.includes('built'), `the kill should land during the build: ${out}`);
  const store = await openLanceStore(dir, { annThreshold: 2000 });
  const state = await store.indexState('big');
  assert.equal(await store.count('big'), 8000);
  assert.equal(state.ann?.indexedRows, 4000, 'the index trained before the kill is the one in place');
  const query = unitVector(77, 128);
  const hits = await store.search('big', { vector: query, k: 10 });
  assert.equal(hits.length, 10);
  // The next write that needs the retrain starts it again, and it completes.
  await store.upsert('big', [textDoc('one-more', 'one more', unitVector(78, 128))], { model: 'demo', dtype: 'fp32' });
  await store.indexBuilt('big');
  assert.ok((await store.indexState('big')).ann!.indexedRows >= 8000);
  await store.close();
});
