/**
 * The PostgreSQL + pgvector store against a real PostgreSQL 15 (test/helpers/postgres.ts): the
 * contract suite, its schema and migrations, and outages.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { TesseraError } from '../../src/errors.ts';
import { parseFilter } from '../../src/store/filter.ts';
import { openStore } from '../../src/store/open.ts';
import { openPostgresStore, PostgresStore, SCHEMA_VERSION } from '../../src/store/postgres.ts';
import type { VectorStore } from '../../src/store/store.ts';
import { rejectsWith } from '../helpers/errors.ts';
import { PG_PASSWORD, startPostgres, type PgServer } from '../helpers/postgres.ts';
import { cosineOf, imageDoc, storeContract, textDoc, unitVector } from './contract.ts';
import { classifierContract } from './classifier-contract.ts';

const WRITER = { model: 'demo', dtype: 'fp32' };
let server: PgServer;
before(async () => {
  server = await startPostgres();
});
after(async () => {
  await server?.close();
});

/** Fails unless `promise` rejects with `code` within `ms`; returns the error. */
async function rejectsWithin(promise: Promise<unknown>, code: string, ms: number): Promise<TesseraError> {
  const started = Date.now();
  let caught: unknown;
  try {
    await promise;
  } catch (err) {
    caught = err;
  }
  const took = Date.now() - started;
  assert.ok(caught !== undefined, 'expected a rejection');
  rejectsWith(code)(caught);
  assert.ok(took < ms, `rejected after ${took} ms, expected within ${ms} ms`);
  assert.doesNotMatch((caught as Error).message, new RegExp(PG_PASSWORD), 'the password never appears in a message');
  return caught as TesseraError;
}

let contractUrl = '';
storeContract('postgres', async () => openPostgresStore((contractUrl = await server.createDatabase())), () => openPostgresStore(contractUrl));
classifierContract('postgres', async () => {
  const url = await server.createDatabase();
  return { store: await openPostgresStore(url), another: () => openPostgresStore(url) };
});

describe('schema', () => {
  test('created once, migrated under a lock, and the data outlives the pool that wrote it', async () => {
    const url = await server.createDatabase();
    const first = await openStore(url);
    assert.ok(first instanceof PostgresStore);
    assert.doesNotMatch(first.location, new RegExp(PG_PASSWORD));
    await first.createCollection({ name: 'kept', ...WRITER, dimensions: 8 });
    await first.upsert('kept', [textDoc('a', 'hello', unitVector(1), { year: 2020 })], WRITER);
    const created = await first.getCollection('kept');
    await first.close();
    await assert.rejects(first.count('kept'), /closed/);

    const second = await openPostgresStore(url.replace(/^postgres:/, 'postgresql:'));
    assert.deepEqual(await second.getCollection('kept'), created);
    const [a] = await second.get('kept', ['a'], { vectors: true });
    assert.deepEqual(a?.metadata, { year: 2020 });
    assert.deepEqual(Array.from(a!.vector!), Array.from(unitVector(1)));
    await assert.rejects(second.upsert('kept', [textDoc('b', 'x', unitVector(2))], { model: 'other', dtype: 'fp32' }), rejectsWith('COLLECTION_MODEL_MISMATCH'));
    await second.close();
    const db = new URL(url).pathname.slice(1);
    assert.deepEqual((await server.query(db, 'SELECT version FROM tessera_schema')).rows, [{ version: SCHEMA_VERSION }]);
    assert.deepEqual((await server.query(db, "SELECT extname FROM pg_extension WHERE extname = 'vector'")).rows, [{ extname: 'vector' }]);
  });

  test('several replicas opening a fresh database at once all succeed', async () => {
    const url = await server.createDatabase();
    const stores = await Promise.all(Array.from({ length: 6 }, () => openPostgresStore(url)));
    await stores[0]!.createCollection({ name: 'shared', ...WRITER, dimensions: 8 });
    await stores[1]!.upsert('shared', [textDoc('a', 'hello', unitVector(1))], WRITER);
    for (const store of stores) assert.equal((await store.getCollection('shared'))?.count, 1);
    await Promise.all(stores.map((s) => s.close()));
    const db = new URL(url).pathname.slice(1);
    assert.deepEqual((await server.query(db, 'SELECT version FROM tessera_schema')).rows, [{ version: SCHEMA_VERSION }]);
  });

  test('a schema newer than this tessera knows is refused, naming both versions', async () => {
    const url = await server.createDatabase();
    await (await openPostgresStore(url)).close();
    const db = new URL(url).pathname.slice(1);
    await server.query(db, 'UPDATE tessera_schema SET version = $1', [SCHEMA_VERSION + 1]);
    await assert.rejects(openPostgresStore(url), rejectsWith('STORE_INVALID', new RegExp(`version ${SCHEMA_VERSION + 1}.*\\(${SCHEMA_VERSION}\\)`)));
    // Also when the table is all there is (written by a newer tessera that failed midway).
    const other = await server.createDatabase();
    await server.query(new URL(other).pathname.slice(1), 'CREATE TABLE tessera_schema (one boolean PRIMARY KEY, version integer NOT NULL); INSERT INTO tessera_schema VALUES (true, 99)');
    await assert.rejects(openPostgresStore(other), rejectsWith('STORE_INVALID', /version 99/));
  });
});

describe('writes are transactions', () => {
  let store: VectorStore;
  before(async () => {
    store = await openPostgresStore(await server.createDatabase());
    await store.createCollection({ name: 'tx', ...WRITER, dimensions: 8 });
    await store.upsert('tx', [textDoc('keep', 'kept', unitVector(1), { n: 1 })], WRITER);
  });
  after(() => store.close());

  test('an upsert the database rejects part way (past the first INSERT) stores nothing', async () => {
    // 1200 documents are three INSERT statements (rows go in id order); the last one's text
    // makes a tsvector over PostgreSQL's 1 MB limit, which the database refuses in the third.
    const huge = Array.from({ length: 200_000 }, (_, i) => `w${i}`).join(' ');
    const docs = Array.from({ length: 1200 }, (_, i) => textDoc(`n${String(i).padStart(4, '0')}`, `new ${i}`, unitVector(i + 2), { fresh: i }));
    docs[0] = textDoc('keep', 'changed', unitVector(5), { n: 2, fresh: 0 });
    docs[600] = textDoc('z-huge', huge, unitVector(7), { fresh: 600 });
    await assert.rejects(store.upsert('tx', docs, WRITER), rejectsWith('DOCUMENT_INVALID', /PostgreSQL limit.*tsvector/));
    assert.equal(await store.count('tx'), 1);
    const [kept] = await store.get('tx', ['keep']);
    assert.equal(kept?.text, 'kept');
    assert.deepEqual(kept?.metadata, { n: 1 });
    // The new field's type was not recorded either: another type for it is still welcome.
    await store.upsert('tx', [textDoc('s', 'string field', unitVector(3), { fresh: 'text' })], WRITER);
    assert.equal(await store.count('tx', parseFilter({ fresh: 'text' })), 1);
    assert.equal(await store.delete('tx', ['s']), 1);
  });

  test('concurrent writers of the same ids in opposite orders neither deadlock nor duplicate', async () => {
    await store.createCollection({ name: 'order', ...WRITER, dimensions: 8 });
    const forward = Array.from({ length: 300 }, (_, i) => textDoc(`o${i}`, `forward ${i}`, unitVector(i + 1)));
    const batches = Array.from({ length: 6 }, (_, b) => (b % 2 ? [...forward].reverse() : forward).map((d) => ({ ...d, metadata: { b } })));
    await Promise.all(batches.map((docs) => store.upsert('order', docs, WRITER)));
    assert.equal(await store.count('order'), 300);
    assert.equal((await store.hashes('order')).size, 300);
  });

  test('a NUL character, which PostgreSQL cannot store, is DOCUMENT_INVALID naming the field', async () => {
    await assert.rejects(store.upsert('tx', [textDoc('a', 'fine', unitVector(2)), textDoc('b', 'nul\u0000here', unitVector(3))], WRITER), rejectsWith('DOCUMENT_INVALID', /documents\[1\]\.text.*NUL/));
    await assert.rejects(store.upsert('tx', [textDoc('a', 'fine', unitVector(2), { tag: 'x\u0000' })], WRITER), rejectsWith('DOCUMENT_INVALID', /documents\[0\]\.metadata\.tag/));
    assert.equal(await store.count('tx'), 1);
    // In a search text it is only a separator.
    assert.deepEqual(await store.fullTextSearch('tx', { text: 'kept\u0000', k: 5 }).then((h) => h.map((x) => x.id)), ['keep']);
  });
});

describe('past the threshold searches go through the HNSW index', () => {
  test('near neighbours found, filters do not starve results, new rows found at once', { timeout: 120_000 }, async () => {
    const dims = 32;
    const store = await openPostgresStore(await server.createDatabase(), { annThreshold: 500 });
    await store.createCollection({ name: 'ann', ...WRITER, dimensions: dims });
    const vectors = Array.from({ length: 2000 }, (_, i) => unitVector(i + 1, dims));
    const doc = (i: number) => ({
      ...(i % 2 ? imageDoc(`d${i}`, `/photos/${i}.jpg`, vectors[i]!) : textDoc(`d${i}`, `text ${i}`, vectors[i]!)),
      metadata: { group: i % 20 },
    });
    await store.upsert('ann', Array.from({ length: 400 }, (_, i) => doc(i)), WRITER);
    assert.equal(await store.usesIndex('ann'), false, 'exact search below the threshold');
    await store.upsert('ann', Array.from({ length: 1600 }, (_, i) => doc(400 + i)), WRITER);
    assert.equal(await store.usesIndex('ann'), true);

    let found = 0;
    const queries = Array.from({ length: 20 }, (_, i) => unitVector(10_000 + i, dims));
    for (const q of queries) {
      const exact = vectors.map((v, i) => ({ i, s: cosineOf(q, v) })).sort((a, b) => b.s - a.s).slice(0, 10);
      const hits = await store.search('ann', { vector: q, k: 10 });
      assert.equal(hits.length, 10);
      for (let i = 1; i < hits.length; i++) assert.ok(hits[i - 1]!.score >= hits[i]!.score, 'best first');
      const want = new Set(exact.map((e) => `d${e.i}`));
      found += hits.filter((h) => want.has(h.id)).length;
      for (const h of hits) assert.ok(Math.abs(h.score - cosineOf(q, vectors[Number(h.id.slice(1))]!)) < 1e-5, 'scores are cosine similarities');
    }
    assert.ok(found / (10 * queries.length) >= 0.9, `recall@10 ${found / (10 * queries.length)}`);

    // One document in 40 matches (group 3, images): iterative scans still fill k.
    const filtered = await store.search('ann', { vector: queries[0]!, k: 30, filter: parseFilter({ group: 3 }), modality: 'image' });
    assert.equal(filtered.length, 30);
    assert.ok(filtered.every((h) => h.metadata.group === 3 && h.modality === 'image'));
    const page = await store.search('ann', { vector: queries[0]!, k: 10, offset: 10 });
    assert.equal(page.length, 10);
    const fresh = unitVector(4242, dims);
    await store.upsert('ann', [textDoc('fresh', 'fresh', fresh)], WRITER);
    assert.equal((await store.search('ann', { vector: fresh, k: 1 }))[0]?.id, 'fresh');
    await store.close();
  });
});

describe('outages', () => {
  test('unreachable or refusing: STORE_UNAVAILABLE / STORE_INVALID at once, never the password', async () => {
    await rejectsWithin(openStore(`postgres://me:${PG_PASSWORD}@127.0.0.1:1/tessera`), 'STORE_UNAVAILABLE', 3000);
    await rejectsWithin(openStore(`postgresql://me:${PG_PASSWORD}@127.0.0.1:1/tessera`), 'STORE_UNAVAILABLE', 3000);
    const wrong = server.url().replace(encodeURIComponent(PG_PASSWORD), `${PG_PASSWORD}-wrong`);
    const err = await rejectsWithin(openStore(wrong), 'STORE_INVALID', 3000);
    assert.match(err.message, /password authentication failed/);
    assert.match(err.message, /\*\*\*/);
    await rejectsWithin(openStore(server.url('no_such_db')), 'STORE_INVALID', 3000);
  });

  test('while the server is down every call fails fast; after it is back the same store works again', { timeout: 60_000 }, async () => {
    const store = await openPostgresStore(await server.createDatabase(), { connectTimeoutMs: 1000, queryTimeoutMs: 2000 });
    await store.createCollection({ name: 'up', ...WRITER, dimensions: 8 });
    await store.upsert('up', [textDoc('a', 'hello there', unitVector(1))], WRITER);
    await store.ping();
    try {
      await server.stop();
      const calls: [string, () => Promise<unknown>][] = [
        ['ping', () => store.ping()],
        ['search', () => store.search('up', { vector: unitVector(1), k: 1 })],
        ['fullTextSearch', () => store.fullTextSearch('up', { text: 'hello', k: 1 })],
        ['upsert', () => store.upsert('up', [textDoc('b', 'x', unitVector(2))], WRITER)],
        ['delete', () => store.delete('up', ['a'])],
        ['get', () => store.get('up', ['a'])],
        ['count', () => store.count('up')],
        ['listCollections', () => store.listCollections()],
        ['createCollection', () => store.createCollection({ name: 'down', ...WRITER, dimensions: 8 })],
      ];
      for (const [name, call] of calls) {
        const err = await rejectsWithin(call(), 'STORE_UNAVAILABLE', 3000);
        assert.match(err.message, /retry/, name);
        assert.ok(err.message.includes(store.location), name);
      }
    } finally {
      await server.start();
    }
    await store.ping();
    assert.equal((await store.search('up', { vector: unitVector(1), k: 1 }))[0]?.id, 'a');
    await store.upsert('up', [textDoc('b', 'x', unitVector(2))], WRITER);
    assert.equal(await store.count('up'), 2);

    // A restart under an open pool: its connections die; the next calls make new ones.
    await server.restart();
    assert.equal(await store.count('up'), 2);
    await store.ping();
    await store.close();
  });

  test('a server that answers nothing: calls fail within their deadlines, then resume', { timeout: 60_000 }, async () => {
    const store = await openPostgresStore(await server.createDatabase(), { connectTimeoutMs: 1000, queryTimeoutMs: 1500, pingTimeoutMs: 1000 });
    await store.createCollection({ name: 'hung', ...WRITER, dimensions: 8 });
    await store.upsert('hung', [textDoc('a', 'hello', unitVector(1))], WRITER);
    try {
      await server.freeze();
      // Pooled connections: the query deadline; new connections: the connect deadline.
      await rejectsWithin(store.ping(), 'STORE_UNAVAILABLE', 4000);
      await rejectsWithin(store.search('hung', { vector: unitVector(1), k: 1 }), 'STORE_UNAVAILABLE', 4000);
      await rejectsWithin(store.upsert('hung', [textDoc('b', 'x', unitVector(2))], WRITER), 'STORE_UNAVAILABLE', 4000);
    } finally {
      await server.thaw();
    }
    await store.ping();
    assert.equal(await store.count('hung'), 1);
    await store.close();
  });
});
