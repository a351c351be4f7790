/**
 * The contract every VectorStore backend passes, through the collections layer as callers get
 * it: register it with `storeContract('lance', () => openLanceStore(tempDir()), (s) => ...)`.
 * Each `open()` must give an empty store of its own; `another(store)` opens a second store on
 * the same data, as another process (a replica, an indexer) would, with a cache of its own.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { parseFilter } from '../../src/store/filter.ts';
import type { DocumentRecord, Metadata, MetadataValue, ModelRef, SearchHit, VectorStore } from '../../src/store/store.ts';
import { rejectsWith } from '../helpers/errors.ts';

export const DIMS = 8;
const WRITER: ModelRef = { model: 'demo', dtype: 'fp32' };

/** A deterministic unit vector for `seed` (a small PRNG; near seeds give unrelated vectors). */
export function unitVector(seed: number, dims = DIMS): Float32Array {
  let s = (seed * 2654435761) >>> 0 || 1;
  const v = new Float32Array(dims);
  let norm = 0;
  for (let i = 0; i < dims; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    v[i] = (s / 2 ** 32) * 2 - 1;
    norm += v[i]! * v[i]!;
  }
  for (let i = 0; i < dims; i++) v[i]! /= Math.sqrt(norm);
  return v;
}

export function cosineOf(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  for (let i = 0; i < a.length; i++) dot += a[i]! * b[i]!;
  return dot;
}

export function textDoc(id: string, text: string, vector: Float32Array, metadata: Metadata = {}): DocumentRecord {
  return { id, modality: 'text', text, metadata, hash: `h-${id}-${text.length}`, vector };
}

export function imageDoc(id: string, image: string, vector: Float32Array, metadata: Metadata = {}): DocumentRecord {
  return { id, modality: 'image', image, root: '/photos', metadata, hash: `h-${id}-img`, vector };
}

const ids = (hits: readonly { id: string }[]) => hits.map((h) => h.id);
const sorted = (xs: readonly string[]) => [...xs].sort();

/** 40 documents with metadata of every type, half texts and half images. */
function corpus(): DocumentRecord[] {
  const tags = ['alpha', 'beta', "o'brien", 'x\\y'];
  return Array.from({ length: 40 }, (_, i) => {
    const metadata: Metadata = { year: 2000 + (i % 20), tag: tags[i % 4]!, flag: i % 3 === 0, price: i * 0.5 };
    if (i % 5 === 0) delete metadata.price; // some documents lack a field
    const id = `doc-${String(i).padStart(2, '0')}`;
    return i % 2 === 0 ? textDoc(id, `text number ${i} about things`, unitVector(i + 1), metadata) : imageDoc(id, `/photos/${i}.jpg`, unitVector(i + 1), metadata);
  });
}

/** What a filter condition means, evaluated in JS: the reference the store must agree with. */
function matches(doc: DocumentRecord, filter: Record<string, unknown>): boolean {
  return Object.entries(filter).every(([key, cond]) => {
    const v = doc.metadata[key];
    if (v === undefined) return false;
    const conds = cond !== null && typeof cond === 'object' ? Object.entries(cond) : [['$eq', cond]];
    return conds.every(([op, x]) => {
      switch (op) {
        case '$eq': return v === x;
        case '$ne': return v !== x;
        case '$gt': return v > (x as MetadataValue);
        case '$gte': return v >= (x as MetadataValue);
        case '$lt': return v < (x as MetadataValue);
        case '$lte': return v <= (x as MetadataValue);
        case '$in': return (x as MetadataValue[]).includes(v);
        default: throw new Error(op as string);
      }
    });
  });
}

export function storeContract(name: string, open: () => Promise<VectorStore>, another: (store: VectorStore) => Promise<VectorStore>): void {
  describe(`VectorStore contract: ${name}`, () => {
    let store: VectorStore;
    let n = 0;
    /** A fresh collection name per test. */
    const fresh = async (dims = DIMS, model = WRITER) => {
      const collection = `c${++n}`;
      await store.createCollection({ name: collection, ...model, dimensions: dims });
      return collection;
    };
    before(async () => {
      store = await open();
    });
    after(async () => {
      await store.close();
    });

    describe('collections', () => {
      test('create, get, list, drop', async () => {
        const info = await store.createCollection({ name: 'Photos_2024-a', model: 'jinaai/jina-clip-v1', dtype: 'q8', dimensions: 768 });
        assert.equal(info.name, 'Photos_2024-a');
        assert.equal(info.count, 0);
        assert.ok(!Number.isNaN(Date.parse(info.createdAt)));
        const got = await store.getCollection('Photos_2024-a');
        assert.deepEqual(got, info);
        assert.ok((await store.listCollections()).some((c) => c.name === 'Photos_2024-a' && c.model === 'jinaai/jina-clip-v1' && c.dtype === 'q8' && c.dimensions === 768));
        assert.equal(await store.dropCollection('Photos_2024-a'), true);
        assert.equal(await store.getCollection('Photos_2024-a'), undefined);
        assert.equal(await store.dropCollection('Photos_2024-a'), false);
        assert.ok(!(await store.listCollections()).some((c) => c.name === 'Photos_2024-a'));
      });

      test('a second create of the same name is COLLECTION_EXISTS and keeps the first', async () => {
        const c = await fresh();
        await store.upsert(c, [textDoc('a', 'x', unitVector(1))], WRITER);
        await assert.rejects(store.createCollection({ name: c, model: 'other', dtype: 'fp32', dimensions: 4 }), rejectsWith('COLLECTION_EXISTS', new RegExp(c)));
        const info = await store.getCollection(c);
        assert.equal(info?.model, 'demo');
        assert.equal(info?.dimensions, DIMS);
        assert.equal(info?.count, 1);
      });

      test('names that are not safe are COLLECTION_NAME_INVALID', async () => {
        for (const bad of ['', '../x', 'a/b', 'a b', '-a', '_a', 'a.b', 'x'.repeat(64), 'é', "a'; DROP TABLE x; --"]) {
          await assert.rejects(store.createCollection({ name: bad, ...WRITER, dimensions: DIMS }), rejectsWith('COLLECTION_NAME_INVALID'), bad);
        }
        await store.createCollection({ name: 'x'.repeat(63), ...WRITER, dimensions: DIMS });
        assert.equal(await store.dropCollection('x'.repeat(63)), true);
      });

      test('unknown collections: undefined, false, or COLLECTION_NOT_FOUND', async () => {
        assert.equal(await store.getCollection('nope'), undefined);
        assert.equal(await store.getCollection('../etc'), undefined);
        assert.equal(await store.dropCollection('nope'), false);
        const notFound = rejectsWith('COLLECTION_NOT_FOUND', /nope/);
        await assert.rejects(store.upsert('nope', [textDoc('a', 'x', unitVector(1))], WRITER), notFound);
        await assert.rejects(store.search('nope', { vector: unitVector(1), k: 1 }), notFound);
        await assert.rejects(store.fullTextSearch('nope', { text: 'x', k: 1 }), notFound);
        await assert.rejects(store.get('nope', ['a']), notFound);
        await assert.rejects(store.delete('nope', ['a']), notFound);
        await assert.rejects(store.count('nope'), notFound);
        await assert.rejects(store.hashes('nope'), notFound);
        await assert.rejects((async () => { for await (const _ of store.scan('nope')) void _; })(), notFound);
      });
    });

    describe('writes', () => {
      test('upsert replaces by id and never duplicates', async () => {
        const c = await fresh();
        await store.upsert(c, [textDoc('a', 'first', unitVector(1), { k: 1, old: 'yes' }), textDoc('b', 'bee', unitVector(2))], WRITER);
        await store.upsert(c, [textDoc('a', 'second', unitVector(3), { k: 2 }), textDoc('c', 'sea', unitVector(4))], WRITER);
        await store.upsert(c, [textDoc('a', 'second', unitVector(3), { k: 2 })], WRITER);
        assert.equal(await store.count(c), 3);
        const [a] = await store.get(c, ['a'], { vectors: true });
        assert.equal(a?.text, 'second');
        assert.deepEqual(a?.metadata, { k: 2 }, 'a replaced document keeps none of the old metadata');
        assert.equal(a?.hash, 'h-a-6');
        assert.deepEqual(Array.from(a!.vector!), Array.from(unitVector(3)));
        const scanned: string[] = [];
        for await (const page of store.scan(c)) scanned.push(...ids(page));
        assert.deepEqual(sorted(scanned), ['a', 'b', 'c']);
        // A text document may become an image document under the same id.
        await store.upsert(c, [imageDoc('b', '/photos/b.png', unitVector(2))], WRITER);
        const [b] = await store.get(c, ['b']);
        assert.equal(b?.modality, 'image');
        assert.equal(b?.image, '/photos/b.png');
        assert.equal(b?.root, '/photos');
        assert.equal(b?.text, undefined);
        assert.equal(await store.count(c), 3);
      });

      test('upsert with remove: old ids gone and new ones in one write; a refused write removes nothing', async () => {
        const c = await fresh();
        const frame = (t: string, axis: number) => imageDoc(`v.mp4#t=${t}`, '/videos/v.mp4', unitVector(axis), { video: 'v.mp4' });
        await store.upsert(c, [frame('0.000', 1), frame('2.000', 2), frame('4.000', 3), textDoc('other', 'o', unitVector(4))], WRITER);
        // The video changed: frames at 0 and 3 now; 0 is replaced, 2 and 4 go, 'other' stays.
        const old = ['v.mp4#t=0.000', 'v.mp4#t=2.000', 'v.mp4#t=4.000'];
        await store.upsert(c, [frame('0.000', 5), frame('3.000', 6)], WRITER, { remove: old });
        assert.deepEqual(sorted((await store.get(c, [...old, 'v.mp4#t=3.000', 'other'])).map((d) => d.id)), ['other', 'v.mp4#t=0.000', 'v.mp4#t=3.000']);
        const [zero] = await store.get(c, ['v.mp4#t=0.000'], { vectors: true });
        assert.deepEqual(Array.from(zero!.vector!), Array.from(unitVector(5)));
        // A refused batch (a vector of the wrong size) leaves the old frames where they were.
        await assert.rejects(store.upsert(c, [frame('9.000', 1), textDoc('bad', 'b', unitVector(1, DIMS + 1))], WRITER, { remove: ['v.mp4#t=0.000', 'v.mp4#t=3.000'] }), rejectsWith('VECTOR_DIMENSIONS_MISMATCH', /documents\[1\]/));
        assert.equal(await store.count(c), 3);
        // Nothing to write: the ids are removed.
        await store.upsert(c, [], WRITER, { remove: ['v.mp4#t=0.000', 'v.mp4#t=3.000'] });
        assert.deepEqual((await store.get(c, ['v.mp4#t=0.000', 'v.mp4#t=3.000', 'other'])).map((d) => d.id), ['other']);
      });

      test('one bad document: an error naming it, and nothing of the batch written', async () => {
        const c = await fresh();
        await store.upsert(c, [textDoc('keep', 'kept', unitVector(1), { n: 1 })], WRITER);
        const good = (id: string) => textDoc(id, `new ${id}`, unitVector(9));
        const replaced = textDoc('keep', 'changed', unitVector(5), { n: 2 });
        const cases: [string, DocumentRecord, RegExp][] = [
          ['VECTOR_DIMENSIONS_MISMATCH', textDoc('x', 'x', unitVector(1, DIMS + 1)), /documents\[2\]\.vector/],
          ['DOCUMENT_ID_INVALID', textDoc('é'.repeat(256) + 'a', 'x', unitVector(1)), /documents\[2\]\.id.*513/],
          ['DOCUMENT_ID_INVALID', textDoc('', 'x', unitVector(1)), /documents\[2\]\.id/],
          ['DOCUMENT_ID_DUPLICATE', good('n1'), /documents\[2\]\.id.*documents\[1\]/],
          ['METADATA_INVALID', textDoc('x', 'x', unitVector(1), { nested: { a: 1 } } as unknown as Metadata), /documents\[2\]\.metadata\.nested/],
          ['METADATA_INVALID', textDoc('x', 'x', unitVector(1), { 'bad key': 1 }), /documents\[2\]\.metadata/],
          ['METADATA_INVALID', textDoc('x', 'x', unitVector(1), { n: 'a string where numbers are' }), /documents\[2\]\.metadata\.n/],
          ['METADATA_INVALID', textDoc('x', 'x', unitVector(1), { inf: Number.POSITIVE_INFINITY }), /documents\[2\]\.metadata\.inf/],
          ['DOCUMENT_INVALID', { ...textDoc('x', 'x', unitVector(1)), image: '/a.png' }, /documents\[2\].*both/],
          ['DOCUMENT_INVALID', { id: 'x', modality: 'text', metadata: {}, hash: 'h', vector: unitVector(1) }, /documents\[2\].*neither/],
        ];
        for (const [code, bad, message] of cases) {
          await assert.rejects(store.upsert(c, [replaced, good('n1'), bad, good('n3')], WRITER), rejectsWith(code, message), code);
          assert.equal(await store.count(c), 1, `${code}: nothing of the batch was written`);
          const [kept] = await store.get(c, ['keep']);
          assert.equal(kept?.text, 'kept', `${code}: the existing document is unchanged`);
          assert.deepEqual(kept?.metadata, { n: 1 });
        }
        // Two documents of one batch disagreeing on a new field's type.
        await assert.rejects(
          store.upsert(c, [textDoc('p', 'p', unitVector(1), { fresh: 1 }), textDoc('q', 'q', unitVector(1), { fresh: true })], WRITER),
          rejectsWith('METADATA_INVALID', /documents\[1\]\.metadata\.fresh/),
        );
        assert.equal(await store.count(c), 1);
      });

      test('vectors of another model, dtype or size are refused', async () => {
        const c = await fresh();
        const doc = textDoc('a', 'x', unitVector(1));
        await assert.rejects(store.upsert(c, [doc], { model: 'other', dtype: 'fp32' }), rejectsWith('COLLECTION_MODEL_MISMATCH', /demo.*other/));
        await assert.rejects(store.upsert(c, [doc], { model: 'demo', dtype: 'q8' }), rejectsWith('COLLECTION_MODEL_MISMATCH', /q8/));
        await assert.rejects(store.upsert(c, [textDoc('a', 'x', unitVector(1, 4))], WRITER), rejectsWith('VECTOR_DIMENSIONS_MISMATCH', /8.*4/));
        assert.equal(await store.count(c), 0);
        await store.upsert(c, [], WRITER);
        assert.equal(await store.count(c), 0);
      });

      test('a batch in which no document has a key the collection holds (every type)', async () => {
        const c = await fresh();
        await store.upsert(c, [textDoc('a', 'a', unitVector(1), { flag: true, n: 1, s: 'x' })], WRITER);
        await store.upsert(c, [textDoc('b', 'b', unitVector(2)), textDoc('c', 'c', unitVector(3), { other: 2 })], WRITER);
        assert.deepEqual((await store.get(c, ['a', 'b', 'c'])).map((d) => d.metadata), [{ flag: true, n: 1, s: 'x' }, {}, { other: 2 }]);
        assert.deepEqual(ids(await store.search(c, { vector: unitVector(1), k: 5, filter: parseFilter({ flag: true }) })), ['a']);
      });

      test('ids of up to 512 UTF-8 bytes, any characters', async () => {
        const c = await fresh();
        const long = 'é'.repeat(256);
        const odd = ["it's", 'a\\b', 'photos/2024/x y.jpg', '"quoted"', '%2e%2e/', 'line\nbreak', '🙂'];
        await store.upsert(c, [long, ...odd].map((id, i) => textDoc(id, `t${i}`, unitVector(i + 1))), WRITER);
        assert.deepEqual(ids(await store.get(c, [long, ...odd])), [long, ...odd]);
        assert.equal(await store.delete(c, ["it's"]), 1);
        assert.equal(await store.count(c), odd.length);
        const hits = await store.search(c, { vector: unitVector(1), k: 10, excludeIds: ['a\\b', '"quoted"'] });
        assert.ok(!ids(hits).includes('a\\b') && !ids(hits).includes('"quoted"'));
        assert.equal(hits.length, odd.length - 2);
      });

      test('get, delete, hashes, scan, count', async () => {
        const c = await fresh();
        const docs = corpus();
        await store.upsert(c, docs, WRITER);
        assert.equal(await store.count(c), 40);
        const got = await store.get(c, ['doc-07', 'missing', 'doc-02']);
        assert.deepEqual(ids(got), ['doc-07', 'doc-02']);
        assert.deepEqual(got[1], { id: 'doc-02', modality: 'text', text: 'text number 2 about things', metadata: docs[2]!.metadata, hash: docs[2]!.hash });
        assert.equal(got[0]?.image, '/photos/7.jpg');
        assert.equal(got[0]?.root, '/photos');
        assert.equal(got[0]?.vector, undefined);
        const [withVector] = await store.get(c, ['doc-03'], { vectors: true });
        assert.ok(Math.abs(cosineOf(withVector!.vector!, unitVector(4)) - 1) < 1e-6);
        const hashes = await store.hashes(c);
        assert.equal(hashes.size, 40);
        assert.equal(hashes.get('doc-05'), docs[5]!.hash);
        const pages: number[] = [];
        const seen = new Set<string>();
        for await (const page of store.scan(c, 7)) {
          pages.push(page.length);
          for (const row of page) {
            assert.equal(row.vector.length, DIMS);
            assert.equal(row.modality, Number(row.id.slice(4)) % 2 === 0 ? 'text' : 'image');
            seen.add(row.id);
          }
        }
        assert.deepEqual(pages, [7, 7, 7, 7, 7, 5]);
        assert.equal(seen.size, 40);
        assert.equal(await store.delete(c, ['doc-00', 'doc-01', 'missing']), 2);
        assert.equal(await store.delete(c, ['doc-00']), 0);
        assert.equal(await store.delete(c, []), 0);
        assert.equal(await store.count(c), 38);
        assert.equal(await store.count(c, parseFilter({ tag: 'beta' })), docs.filter((d, i) => i > 1 && d.metadata.tag === 'beta').length);
        await assert.rejects(store.delete(c, ['x'.repeat(513)]), rejectsWith('DOCUMENT_ID_INVALID'));
      });

      test('concurrent writers in one process: nothing lost, nothing duplicated', async () => {
        const c = await fresh();
        const batches = Array.from({ length: 8 }, (_, b) => Array.from({ length: 10 }, (_, i) => textDoc(`b${b}-${i}`, `batch ${b}`, unitVector(b * 10 + i + 1), { b })));
        const again = Array.from({ length: 8 }, (_, b) => Array.from({ length: 10 }, (_, i) => textDoc(`b0-${i}`, `rewrite ${b}`, unitVector(i + 1), { b })));
        await Promise.all([...batches, ...again].map((docs) => store.upsert(c, docs, WRITER)));
        assert.equal(await store.count(c), 80);
        const hashes = await store.hashes(c);
        assert.equal(hashes.size, 80);
        const searched = await Promise.all(Array.from({ length: 4 }, (_, i) => store.search(c, { vector: unitVector(i + 11), k: 1 })));
        assert.deepEqual(searched.map((h) => h[0]!.id), ['b1-0', 'b1-1', 'b1-2', 'b1-3']);
      });
    });

    describe('search', () => {
      let c: string;
      const docs = corpus();
      before(async () => {
        c = await fresh();
        await store.upsert(c, docs, WRITER);
      });

      /** The store's answer for a filter must be exactly the JS reference's. */
      async function expectFilter(json: Record<string, unknown>): Promise<void> {
        const filter = parseFilter(json);
        const want = sorted(docs.filter((d) => matches(d, json)).map((d) => d.id));
        const hits = await store.search(c, { vector: unitVector(1), k: 100, filter });
        assert.deepEqual(sorted(ids(hits)), want, JSON.stringify(json));
        assert.equal(await store.count(c, filter), want.length, JSON.stringify(json));
      }

      test('cosine scores, best first', async () => {
        const query = unitVector(8);
        const hits = await store.search(c, { vector: query, k: 40 });
        assert.equal(hits.length, 40);
        assert.equal(hits[0]!.id, 'doc-07');
        assert.ok(Math.abs(hits[0]!.score - 1) < 1e-5);
        for (const hit of hits) {
          const doc = docs.find((d) => d.id === hit.id)!;
          assert.ok(Math.abs(hit.score - cosineOf(query, doc.vector)) < 1e-5, `${hit.id}: ${hit.score}`);
        }
        for (let i = 1; i < hits.length; i++) assert.ok(hits[i - 1]!.score >= hits[i]!.score);
        const top: SearchHit = hits[0]!;
        assert.deepEqual(Object.keys(top).sort(), ['id', 'image', 'metadata', 'modality', 'score']);
        assert.deepEqual(top.metadata, docs[7]!.metadata);
      });

      test('filters: equality, ranges, $in, $ne, booleans, strings, combined', async () => {
        await expectFilter({ year: 2003 });
        await expectFilter({ year: { $gte: 2005, $lt: 2009 } });
        await expectFilter({ year: { $gt: 2015 } });
        await expectFilter({ year: { $lte: 2001 } });
        await expectFilter({ price: { $gt: 3.25, $lte: 10 } });
        await expectFilter({ tag: { $in: ['alpha', "o'brien"] } });
        await expectFilter({ year: { $in: [2000, 2019, 1999] } });
        await expectFilter({ tag: { $ne: 'beta' } });
        await expectFilter({ flag: true });
        await expectFilter({ flag: { $ne: true } });
        await expectFilter({ tag: "o'brien" });
        await expectFilter({ tag: 'x\\y' });
        await expectFilter({ tag: { $gte: 'beta' } });
        await expectFilter({ flag: false, year: { $gte: 2010 }, tag: { $in: ['alpha', 'beta'] } });
        await expectFilter({ price: { $ne: 0 } }); // documents without price do not match
        await expectFilter({ tag: { $in: [] } });
        await expectFilter({ never_seen: 'x' });
      });

      test('a narrow filter still yields k hits (filtering is not done after the top k)', async () => {
        // Only two documents are from 2019; they are far from the query.
        const filter = parseFilter({ year: 2019 });
        const want = docs.filter((d) => d.metadata.year === 2019).map((d) => d.id);
        const hits = await store.search(c, { vector: unitVector(1), k: 2, filter });
        assert.deepEqual(sorted(ids(hits)), sorted(want));
      });

      test('injection attempts are FILTER_INVALID or match nothing, and change nothing', async () => {
        const before = await store.hashes(c);
        for (const json of [{ 'a = 1 OR 1': 1 }, { "year' OR '1'='1": 1 }, { 'year) OR (1=1': 1 }, { year: { '$gt) OR (1': 1 } }, { 'tag; DROP TABLE x': 'a' }, { '`tag`': 'a' }]) {
          assert.throws(() => parseFilter(json), rejectsWith('FILTER_INVALID'), JSON.stringify(json));
        }
        for (const value of ["x' OR '1'='1", "x') OR ('1'='1", "alpha' --", "'; DELETE FROM c; --", 'alpha\\', "\\' OR 1=1 --"]) {
          const filter = parseFilter({ tag: value });
          assert.deepEqual(await store.search(c, { vector: unitVector(1), k: 10, filter }), [], value);
          assert.equal(await store.count(c, filter), 0, value);
          assert.deepEqual(await store.fullTextSearch(c, { text: 'things', k: 10, filter }), [], value);
          const inList = parseFilter({ tag: { $in: [value] } });
          assert.equal(await store.count(c, inList), 0, value);
        }
        assert.deepEqual(await store.hashes(c), before);
        assert.equal(await store.count(c), 40);
        // Injections through ids are values too.
        assert.deepEqual(await store.get(c, ["doc-01' OR '1'='1"]), []);
        assert.equal(await store.delete(c, ["doc-01' OR '1'='1", "x') OR ('1'='1"]), 0);
        const hits = await store.search(c, { vector: unitVector(1), k: 40, excludeIds: ["x') OR ('1'='1"] });
        assert.equal(hits.length, 40);
        assert.equal(await store.count(c), 40);
      });

      test('malformed filters are FILTER_INVALID naming the field', () => {
        const cases: [unknown, RegExp][] = [
          [[1, 2], /filter/],
          ['year = 1', /filter/],
          [null, /filter/],
          [{ year: { $regex: 'x' } }, /filter\.year.*\$regex/],
          [{ year: { $gt: true } }, /filter\.year\.\$gt/],
          [{ year: { $gt: null } }, /filter\.year\.\$gt/],
          [{ year: { $in: 2000 } }, /filter\.year\.\$in/],
          [{ year: { $in: [2000, '2001'] } }, /filter\.year\.\$in/],
          [{ year: { $in: [{}] } }, /filter\.year\.\$in\[0\]/],
          [{ year: [2000] }, /filter\.year/],
          [{ year: {} }, /filter\.year/],
          [{ year: null }, /filter\.year/],
          [{ year: { nested: { $eq: 1 } } }, /filter\.year/],
          [{ '': 1 }, /filter/],
          [{ ['a'.repeat(65)]: 1 }, /filter/],
        ];
        for (const [json, message] of cases) assert.throws(() => parseFilter(json), rejectsWith('FILTER_INVALID', message), JSON.stringify(json));
        assert.throws(() => parseFilter([], 'body.filter'), rejectsWith('FILTER_INVALID', /body\.filter/));
      });

      test('a filter value of another type than the field holds is FILTER_INVALID', async () => {
        await assert.rejects(store.search(c, { vector: unitVector(1), k: 5, filter: parseFilter({ year: '2003' }) }), rejectsWith('FILTER_INVALID', /filter\.year/));
        await assert.rejects(store.count(c, parseFilter({ flag: { $gt: 1 } })), rejectsWith('FILTER_INVALID', /filter\.flag/));
      });

      test('modality, excludeIds, minScore and offset', async () => {
        const query = unitVector(3);
        const all = await store.search(c, { vector: query, k: 40 });
        const images = await store.search(c, { vector: query, k: 40, modality: 'image' });
        assert.deepEqual(ids(images), ids(all.filter((h) => h.modality === 'image')));
        assert.ok(images.every((h) => h.image !== undefined && h.text === undefined));
        const texts = await store.search(c, { vector: query, k: 5, modality: 'text', filter: parseFilter({ flag: true }) });
        assert.deepEqual(ids(texts), ids(all.filter((h) => h.modality === 'text' && h.metadata.flag === true)).slice(0, 5));

        const excluded = await store.search(c, { vector: query, k: 5, excludeIds: ['doc-02', all[1]!.id] });
        assert.deepEqual(ids(excluded), ids(all).filter((id) => id !== 'doc-02' && id !== all[1]!.id).slice(0, 5));

        const cut = all[9]!.score;
        const above = await store.search(c, { vector: query, k: 40, minScore: cut });
        assert.deepEqual(ids(above), ids(all.filter((h) => h.score >= cut)));
        assert.deepEqual(await store.search(c, { vector: query, k: 10, minScore: 1.01 }), []);

        const pages: string[] = [];
        for (let offset = 0; offset < 40; offset += 7) pages.push(...ids(await store.search(c, { vector: query, k: 7, offset })));
        assert.deepEqual(pages, ids(all));
        assert.deepEqual(await store.search(c, { vector: query, k: 5, offset: 40 }), []);
        const filteredPage = await store.search(c, { vector: query, k: 3, offset: 2, modality: 'image' });
        assert.deepEqual(ids(filteredPage), ids(images).slice(2, 5));
      });

      test('bad search parameters', async () => {
        const bad = rejectsWith('SEARCH_PARAMETER_INVALID');
        for (const k of [0, 1001, 1.5, -1, Number.NaN]) await assert.rejects(store.search(c, { vector: unitVector(1), k }), bad, String(k));
        await assert.rejects(store.search(c, { vector: unitVector(1), k: 1, offset: -1 }), bad);
        await assert.rejects(store.search(c, { vector: unitVector(1), k: 1, modality: 'audio' as 'text' }), bad);
        await assert.rejects(store.search(c, { vector: unitVector(1, 4), k: 1 }), rejectsWith('VECTOR_DIMENSIONS_MISMATCH'));
        await assert.rejects(store.fullTextSearch(c, { text: '  ', k: 1 }), rejectsWith('QUERY_INVALID'));
      });
    });

    describe('places and dates', () => {
      // Photos around the world: both hemispheres, both sides of the antimeridian, the poles'
      // neighbourhood; some without coordinates or dates.
      const places: [string, number, number][] = [
        ['lisbon', 38.7223, -9.1393], ['sintra', 38.8029, -9.3817], ['porto', 41.1579, -8.6291], ['madrid', 40.4168, -3.7038],
        ['sydney', -33.8688, 151.2093], ['wellington', -41.2865, 174.7762], ['suva', -18.1416, 178.4419], ['apia', -13.8333, -171.7667],
        ['taveuni', -16.8, 179.95], ['rabi', -16.5, -179.97], ['santiago', -33.4489, -70.6693], ['longyearbyen', 78.2232, 15.6267],
      ];
      const photos: DocumentRecord[] = places.map(([name, lat, lon], i) =>
        imageDoc(name, `/photos/${name}.jpg`, unitVector(200 + i), { gps_lat: lat, gps_lon: lon, taken_at: `2021-0${1 + (i % 9)}-1${i % 10}T12:00:00Z` }),
      );
      photos.push(imageDoc('nowhere', '/photos/nowhere.jpg', unitVector(300), { taken_at: '2021-07-01T00:00:00Z' }));
      photos.push(imageDoc('undated', '/photos/undated.jpg', unitVector(301), { gps_lat: 38.72, gps_lon: -9.14 }));
      let c: string;
      before(async () => {
        c = await fresh();
        await store.upsert(c, photos, WRITER);
      });
      const km = (lat1: number, lon1: number, lat2: number, lon2: number) => {
        const r = (d: number) => (d * Math.PI) / 180;
        const h = Math.sin(r(lat2 - lat1) / 2) ** 2 + Math.cos(r(lat1)) * Math.cos(r(lat2)) * Math.sin(r(lon2 - lon1) / 2) ** 2;
        return 2 * 6371.0088 * Math.asin(Math.sqrt(h));
      };
      async function expectPlaces(json: Record<string, unknown>, want: string[]): Promise<void> {
        const filter = parseFilter(json);
        assert.deepEqual(sorted(ids(await store.search(c, { vector: unitVector(1), k: 100, filter }))), sorted(want), JSON.stringify(json));
        assert.equal(await store.count(c, filter), want.length, JSON.stringify(json));
      }
      const near = (lat: number, lon: number, radius: number) =>
        photos.filter((d) => typeof d.metadata.gps_lat === 'number' && km(lat, lon, d.metadata.gps_lat, d.metadata.gps_lon as number) <= radius).map((d) => d.id);

      test('$near: great-circle distance, both hemispheres and across the antimeridian', async () => {
        await expectPlaces({ $near: { lat: 38.72, lon: -9.14, km: 25 } }, ['lisbon', 'sintra', 'undated']);
        assert.deepEqual(sorted(near(38.72, -9.14, 25)), ['lisbon', 'sintra', 'undated']);
        for (const [lat, lon, radius] of [[38.72, -9.14, 350], [-33.87, 151.21, 2300], [-16.6, 180, 60], [-16.6, -179.99, 300], [78, 15, 100], [0, 0, 20_000], [10, 10, 1]] as const) {
          await expectPlaces({ $near: { lat, lon, km: radius } }, near(lat, lon, radius));
        }
        // Across the antimeridian: Taveuni (179.95 E) and Rabi (179.97 W) are 20 km apart.
        await expectPlaces({ $near: { lat: -16.65, lon: 179.99, km: 40 } }, ['taveuni', 'rabi']);
      });

      test('$within: boxes, one crossing the antimeridian, combined with field conditions', async () => {
        await expectPlaces({ $within: { south: 36, west: -10, north: 42, east: -6 } }, ['lisbon', 'sintra', 'porto', 'undated']);
        await expectPlaces({ $within: { south: -45, west: 170, north: -10, east: -170 } }, ['wellington', 'suva', 'apia', 'taveuni', 'rabi']);
        await expectPlaces({ $within: { south: -45, west: 170, north: -10, east: -170 }, taken_at: { $lt: '2021-07-01' } }, ['wellington', 'rabi']);
        await expectPlaces({ $near: { lat: 38.72, lon: -9.14, km: 400 }, $within: { south: 38, west: -10, north: 40, east: 0 } }, ['lisbon', 'sintra', 'undated']);
      });

      test('dates compare as dates: bare dates are midnight UTC, offsets are converted', async () => {
        const dated = (pred: (t: string) => boolean) => photos.filter((d) => typeof d.metadata.taken_at === 'string' && pred(d.metadata.taken_at)).map((d) => d.id);
        await expectPlaces({ taken_at: { $gte: '2021-06-01', $lt: '2021-09-01' } }, dated((t) => t >= '2021-06-01T00:00:00Z' && t < '2021-09-01T00:00:00Z'));
        // 2021-07-01T02:00:00+02:00 is midnight UTC: "nowhere" was taken then, so $gt leaves it out.
        await expectPlaces({ taken_at: { $gte: '2021-07-01T02:00:00+02:00', $lte: '2021-07-01' } }, ['nowhere']);
        await expectPlaces({ taken_at: { $gt: '2021-07-01T02:00:00+02:00', $lt: '2021-07-02' } }, []);
        assert.throws(() => parseFilter({ taken_at: { $gte: '2021-13-01' } }), rejectsWith('FILTER_INVALID', /filter\.taken_at\.\$gte/));
        assert.throws(() => parseFilter({ taken_at: { $lt: 'last summer' } }), rejectsWith('FILTER_INVALID', /filter\.taken_at\.\$lt/));
      });

      test('a narrow place still yields k hits, and a collection without places matches none', async () => {
        const hits = await store.search(c, { vector: unitVector(200), k: 2, filter: parseFilter({ $near: { lat: -16.65, lon: 179.99, km: 40 } }) });
        assert.deepEqual(sorted(ids(hits)), ['rabi', 'taveuni']);
        const bare = await fresh();
        await store.upsert(bare, [imageDoc('x', '/photos/x.jpg', unitVector(1), { year: 2020 })], WRITER);
        assert.deepEqual(await store.search(bare, { vector: unitVector(1), k: 5, filter: parseFilter({ $near: { lat: 0, lon: 0, km: 20_000 } }) }), []);
        assert.equal(await store.count(bare, parseFilter({ $within: { south: -90, west: -180, north: 90, east: 180 } })), 0);
      });

      test('bad places are FILTER_INVALID naming the field', () => {
        for (const [json, field] of [
          [{ $near: { lat: 95, lon: 0, km: 1 } }, /filter\.\$near\.lat/],
          [{ $near: { lat: 0, lon: 181, km: 1 } }, /filter\.\$near\.lon/],
          [{ $near: { lat: 0, lon: 0, km: 0 } }, /filter\.\$near\.km/],
          [{ $near: { lat: 0, lon: 0, km: -5 } }, /filter\.\$near\.km/],
          [{ $near: { lat: 0, lon: 0 } }, /filter\.\$near\.km: missing/],
          [{ $near: { lat: '0', lon: 0, km: 1 } }, /filter\.\$near\.lat/],
          [{ $near: { lat: 0, lon: 0, km: 1, radius: 2 } }, /filter\.\$near.*radius/],
          [{ $near: [0, 0, 1] }, /filter\.\$near/],
          [{ $within: { south: 10, west: 0, north: 5, east: 1 } }, /filter\.\$within/],
          [{ $within: { south: -91, west: 0, north: 5, east: 1 } }, /filter\.\$within\.south/],
          [{ $within: { south: 0, west: 0, north: 5 } }, /filter\.\$within\.east/],
          [{ $box: {} }, /\$box/],
        ] as const) {
          assert.throws(() => parseFilter(json), rejectsWith('FILTER_INVALID', field), JSON.stringify(json));
        }
      });
    });

    describe('another process on the same data', () => {
      // `store` has each collection cached (it used it first); `other` changes it meanwhile.
      let other: VectorStore;
      before(async () => {
        other = await another(store);
      });
      after(() => other.close());

      test('a collection dropped elsewhere is COLLECTION_NOT_FOUND for every call, not a stale answer', async () => {
        const c = await fresh();
        await store.upsert(c, [textDoc('a', 'x', unitVector(1))], WRITER);
        assert.equal((await store.search(c, { vector: unitVector(1), k: 1 }))[0]?.id, 'a');
        assert.equal(await other.dropCollection(c), true);
        const notFound = rejectsWith('COLLECTION_NOT_FOUND', new RegExp(c));
        await assert.rejects(store.search(c, { vector: unitVector(1), k: 1 }), notFound);
        await assert.rejects(store.fullTextSearch(c, { text: 'x', k: 1 }), notFound);
        await assert.rejects(store.get(c, ['a']), notFound);
        await assert.rejects(store.count(c), notFound);
        await assert.rejects(store.upsert(c, [textDoc('b', 'y', unitVector(2))], WRITER), notFound);
        await assert.rejects(store.requireCollection(c), notFound);
        assert.equal(await store.getCollection(c), undefined);
        assert.equal(await other.getCollection(c), undefined, 'the write did not recreate it');
      });

      test('a collection recreated elsewhere with another model and size: writes and searches follow the new one', async () => {
        const c = await fresh();
        await store.upsert(c, [textDoc('a', 'x', unitVector(1), { n: 1 })], WRITER);
        assert.equal((await store.requireCollection(c, WRITER)).dimensions, DIMS);
        const next = { model: 'next', dtype: 'fp16' };
        await other.dropCollection(c);
        await other.createCollection({ name: c, ...next, dimensions: 4 });
        await assert.rejects(store.upsert(c, [textDoc('b', 'y', unitVector(2))], WRITER), rejectsWith('COLLECTION_MODEL_MISMATCH', /next.*demo/));
        await assert.rejects(store.requireCollection(c, WRITER), rejectsWith('COLLECTION_MODEL_MISMATCH'));
        await store.upsert(c, [textDoc('b', 'y', unitVector(2, 4), { n: 'now a string' })], next);
        assert.deepEqual(ids(await store.search(c, { vector: unitVector(2, 4), k: 5 })), ['b']);
        assert.deepEqual((await other.get(c, ['a', 'b'])).map((d) => d.metadata), [{ n: 'now a string' }]);
        assert.equal((await store.getCollection(c))?.count, 1);
      });

      test('fields added elsewhere: one kind per field holds, filters and results see them', async () => {
        const c = await fresh();
        await store.upsert(c, [textDoc('a', 'x', unitVector(1), { year: 2020 })], WRITER);
        assert.equal(await store.count(c, parseFilter({ year: 2020 })), 1);
        await other.upsert(c, [textDoc('b', 'y', unitVector(2), { tag: 'red', year: 2021 })], WRITER);
        // `store` has not seen `tag`: a number for it is still refused, from what is stored.
        await assert.rejects(
          store.upsert(c, [textDoc('c', 'z', unitVector(3), { year: 2022 }), textDoc('d', 'w', unitVector(4), { tag: 7 })], WRITER),
          rejectsWith('METADATA_INVALID', /documents\[1\]\.metadata\.tag: the collection holds strings/),
        );
        assert.equal(await other.count(c), 2, 'nothing of the refused batch was written');
        assert.deepEqual(ids(await store.search(c, { vector: unitVector(2), k: 5, filter: parseFilter({ tag: 'red' }) })), ['b']);
        assert.deepEqual((await store.search(c, { vector: unitVector(2), k: 1 }))[0]?.metadata, { tag: 'red', year: 2021 });
        await assert.rejects(store.count(c, parseFilter({ tag: 1 })), rejectsWith('FILTER_INVALID', /filter\.tag/));
        // Both add a field at once, of different kinds: one of them wins, the other is refused.
        const outcomes = await Promise.allSettled([
          store.upsert(c, [textDoc('e', 'e', unitVector(5), { both: 1 })], WRITER),
          other.upsert(c, [textDoc('f', 'f', unitVector(6), { both: 'one' })], WRITER),
        ]);
        assert.equal(outcomes.filter((o) => o.status === 'fulfilled').length, 1, JSON.stringify(outcomes));
        const refused = outcomes.find((o) => o.status === 'rejected') as PromiseRejectedResult;
        rejectsWith('METADATA_INVALID', /documents\[0\]\.metadata\.both/)(refused.reason);
        assert.equal(await other.count(c), 3);
      });
    });

    describe('full text', () => {
      test('a rare exact term finds its document at once, and replacement updates it', async () => {
        const c = await fresh();
        const filler = Array.from({ length: 30 }, (_, i) => textDoc(`f${i}`, `an ordinary sentence about cats${' and dogs'.repeat(i)}`, unitVector(i + 1), { i }));
        await store.upsert(c, [...filler, imageDoc('img', '/photos/zorblax.jpg', unitVector(99))], WRITER);
        await store.upsert(c, [textDoc('part', 'replacement gasket, part number XK4471Q, fits the old model', unitVector(50), { i: 100 })], WRITER);
        const hits = await store.fullTextSearch(c, { text: 'XK4471Q', k: 5 });
        assert.deepEqual(ids(hits), ['part']);
        assert.ok(hits[0]!.score > 0);
        assert.equal(hits[0]!.text, 'replacement gasket, part number XK4471Q, fits the old model');
        assert.deepEqual(hits[0]!.metadata, { i: 100 });
        // Image documents have no text to match (their path is not text).
        assert.deepEqual(await store.fullTextSearch(c, { text: 'zorblax', k: 5 }), []);
        // Written just now, in a second batch: findable at once.
        await store.upsert(c, [textDoc('late', 'a quokka appears', unitVector(51))], WRITER);
        assert.deepEqual(ids(await store.fullTextSearch(c, { text: 'quokka', k: 5 })), ['late']);
        await store.upsert(c, [textDoc('late', 'a wombat appears', unitVector(51))], WRITER);
        assert.deepEqual(await store.fullTextSearch(c, { text: 'quokka', k: 5 }), []);
        assert.deepEqual(ids(await store.fullTextSearch(c, { text: 'wombat', k: 5 })), ['late']);
        await store.delete(c, ['late']);
        assert.deepEqual(await store.fullTextSearch(c, { text: 'wombat', k: 5 }), []);
        // Many matches (of distinct BM25 scores: the texts differ in length): best first, filters,
        // exclusions and paging apply.
        const cats = await store.fullTextSearch(c, { text: 'cats', k: 30 });
        assert.equal(cats.length, 30);
        for (let i = 1; i < cats.length; i++) assert.ok(cats[i - 1]!.score >= cats[i]!.score);
        const filtered = await store.fullTextSearch(c, { text: 'cats', k: 30, filter: parseFilter({ i: { $lt: 5 } }), excludeIds: ['f0'] });
        assert.deepEqual(sorted(ids(filtered)), ['f1', 'f2', 'f3', 'f4']);
        const page = await store.fullTextSearch(c, { text: 'cats', k: 5, offset: 5 });
        assert.deepEqual(ids(page), ids(cats).slice(5, 10));
        assert.deepEqual(await store.fullTextSearch(c, { text: 'cats', k: 5, modality: 'image' }), []);
      });

      test('query text is a search, not syntax', async () => {
        const c = await fresh();
        await store.upsert(c, [textDoc('a', "o'brien AND the (parenthesis) test", unitVector(1)), textDoc('b', 'nothing here', unitVector(2))], WRITER);
        for (const text of ["o'brien", "' OR '1'='1", 'AND OR NOT', 'parenthesis)', '"unterminated', 'a:b*~2 ^3']) {
          const hits = await store.fullTextSearch(c, { text, k: 5 });
          assert.ok(hits.every((h) => h.id === 'a' || h.id === 'b'), text);
        }
        assert.deepEqual(ids(await store.fullTextSearch(c, { text: 'parenthesis)', k: 5 })), ['a']);
        assert.equal(await store.count(c), 2);
      });
    });
  });
}

