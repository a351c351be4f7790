/**
 * The contract every store's ClassifierStore passes: register it with
 * `classifierContract('lance', async () => { const dir = tempDir(); return { store: await openLanceStore(dir), another: () => openLanceStore(dir) }; })`.
 * `open()` gives an empty store of its own; `another()` a second, independent handle on the same
 * data (another process's pool or connection: what a second replica has).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import type { ClassifierRecord } from '../../src/store/classifiers.ts';
import type { VectorStore } from '../../src/store/store.ts';
import { rejectsWith } from '../helpers/errors.ts';

export interface ClassifierFixture {
  store: VectorStore;
  another(): Promise<VectorStore>;
}

/** A classifier record with `labels.length` x `dims` weights derived from `seed`. */
export function sampleClassifier(owner: string, seed: number, overrides: Partial<ClassifierRecord> = {}): ClassifierRecord {
  const labels = overrides.labels ?? ['warm', 'cool', 'SKU-1182'];
  const dims = overrides.dimensions ?? 8;
  const weights = new Float64Array(labels.length * dims).map((_, i) => Math.sin(seed * 1000 + i) * 37.123456789);
  const at = new Date(Date.UTC(2026, 0, 1, 0, 0, seed)).toISOString();
  return {
    id: randomUUID(),
    owner,
    access: 'private',
    model: 'demo',
    dtype: 'fp32',
    modelName: 'jina-clip-v1',
    dimensions: dims,
    labels,
    weights,
    zeroShot: false,
    version: 1,
    samples: 6,
    usedNumber: 0,
    createdAt: at,
    updatedAt: at,
    usedAt: null,
    ...overrides,
  };
}

const plain = (r: ClassifierRecord | undefined) => r && { ...r, weights: Array.from(r.weights) };

export function classifierContract(name: string, open: () => Promise<ClassifierFixture>): void {
  describe(`${name}: classifier store contract`, () => {
    test('a classifier reads back exactly as written (weights bit for bit); unknown and malformed ids find nothing', async () => {
      const { store } = await open();
      const c = sampleClassifier('alice', 1, { access: 'public', zeroShot: true });
      await store.classifiers.create(c, 16);
      assert.deepEqual(plain(await store.classifiers.get(c.id)), plain(c));
      assert.equal(await store.classifiers.get(randomUUID()), undefined);
      for (const bad of ['', 'x', '../etc', `${c.id}/../x`, c.id.toUpperCase()]) assert.equal(await store.classifiers.get(bad), undefined, bad);
      // Classifiers are not collections.
      assert.deepEqual(await store.listCollections(), []);
      await store.close();
    });

    test('list and count are per owner, oldest first', async () => {
      const { store } = await open();
      const a2 = sampleClassifier('alice', 20);
      const a1 = sampleClassifier('alice', 10);
      const b = sampleClassifier('bob', 15);
      for (const c of [a2, a1, b]) await store.classifiers.create(c, 16);
      assert.deepEqual((await store.classifiers.list('alice')).map((c) => c.id), [a1.id, a2.id]);
      assert.deepEqual((await store.classifiers.list('bob')).map((c) => c.id), [b.id]);
      assert.deepEqual(await store.classifiers.list('carol'), []);
      assert.equal(await store.classifiers.countByOwner('alice'), 2);
      assert.equal(await store.classifiers.countByOwner('carol'), 0);
      await store.close();
    });

    test('the per-owner limit holds under concurrent creates, from two handles', async () => {
      const { store, another } = await open();
      const twin = await another();
      const results = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => (i % 2 ? twin : store).classifiers.create(sampleClassifier('alice', i), 3)));
      const refused = results.filter((r) => r.status === 'rejected');
      // The embedded store serialises creates within a process only: its two handles may both pass.
      const made = await store.classifiers.countByOwner('alice');
      if (name === 'postgres') assert.equal(made, 3);
      else assert.ok(made >= 3 && made <= 4, `${made} made`);
      assert.equal(refused.length, 8 - made);
      for (const r of refused) rejectsWith('CLASSIFIER_COUNT_LIMIT', /alice/)((r as PromiseRejectedResult).reason);
      await store.classifiers.create(sampleClassifier('bob', 1), 3);
      await twin.close();
      await store.close();
    });

    test('update is a compare-and-swap on the version', async () => {
      const { store } = await open();
      const c = sampleClassifier('alice', 1);
      await store.classifiers.create(c, 16);
      const v2 = { ...sampleClassifier('alice', 2, { id: c.id, createdAt: c.createdAt, labels: ['warm', 'cool', 'SKU-1182', 'new'] }), version: 2, samples: 12 };
      assert.equal(await store.classifiers.update(v2, 1), true);
      const stale = { ...sampleClassifier('alice', 3, { id: c.id, createdAt: c.createdAt }), version: 2 };
      assert.equal(await store.classifiers.update(stale, 1), false, 'a writer that read version 1 loses');
      assert.deepEqual(plain(await store.classifiers.get(c.id)), plain(v2));
      assert.equal(await store.classifiers.update({ ...v2, id: randomUUID(), version: 2 }, 1), false, 'no such classifier');
      await assert.rejects(store.classifiers.update({ ...v2, version: 5 }, 2), /version 3/);
      await store.close();
    });

    test('concurrent read-modify-write through two handles loses no update', async () => {
      const { store, another } = await open();
      const twin = await another();
      const c = sampleClassifier('alice', 1, { weights: new Float64Array(24) });
      await store.classifiers.create(c, 16);
      let conflicts = 0;
      const bump = async (s: VectorStore) => {
        for (;;) {
          const current = (await s.classifiers.get(c.id))!;
          const weights = Float64Array.from(current.weights);
          weights[0]! += 1;
          if (await s.classifiers.update({ ...current, weights, version: current.version + 1 }, current.version)) return;
          conflicts++;
        }
      };
      await Promise.all(Array.from({ length: 24 }, (_, i) => bump(i % 2 ? twin : store)));
      const final = (await twin.classifiers.get(c.id))!;
      assert.equal(final.version, 25);
      assert.equal(final.weights[0], 24, `every increment is there (${conflicts} conflicts retried)`);
      await twin.close();
      await store.close();
    });

    test('uses are counted without a new version', async () => {
      const { store } = await open();
      const c = sampleClassifier('alice', 1);
      await store.classifiers.create(c, 16);
      await store.classifiers.recordUse(c.id, '2026-02-01T00:00:00.000Z');
      await store.classifiers.recordUse(c.id, '2026-02-02T00:00:00.000Z');
      const used = (await store.classifiers.get(c.id))!;
      assert.equal(used.usedNumber, 2);
      assert.equal(used.usedAt, '2026-02-02T00:00:00.000Z');
      assert.equal(used.version, 1);
      await store.classifiers.recordUse(randomUUID(), '2026-02-02T00:00:00.000Z');
      await store.close();
    });

    test('delete removes it for good; a stale update cannot bring it back', async () => {
      const { store } = await open();
      const c = sampleClassifier('alice', 1);
      await store.classifiers.create(c, 16);
      assert.equal(await store.classifiers.delete(c.id), true);
      assert.equal(await store.classifiers.get(c.id), undefined);
      assert.equal(await store.classifiers.delete(c.id), false);
      assert.equal(await store.classifiers.delete('not-a-uuid'), false);
      assert.equal(await store.classifiers.update({ ...c, version: 2 }, 1), false);
      assert.equal(await store.classifiers.get(c.id), undefined);
      assert.equal(await store.classifiers.countByOwner('alice'), 0);
      await store.close();
    });

    test('classifiers outlive the handle that wrote them', async () => {
      const { store, another } = await open();
      const c = sampleClassifier('alice', 1);
      await store.classifiers.create(c, 16);
      await store.classifiers.update({ ...c, version: 2, samples: 7 }, 1);
      await store.close();
      const later = await another();
      assert.deepEqual(plain(await later.classifiers.get(c.id)), plain({ ...c, version: 2, samples: 7 }));
      await later.close();
    });
  });
}
