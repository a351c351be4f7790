/**
 * A database made by the previous tessera: its schema is what the earlier migrations (read from
 * MIGRATIONS, not copied here) created, with collections and documents in it. Opened by this
 * tessera, it is migrated to SCHEMA_VERSION under the lock, once, with every document, vector
 * and collection record as it was, and what the new migrations added works.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import type { ClassifierRecord } from '../../src/store/classifiers.ts';
import { parseFilter } from '../../src/store/filter.ts';
import { MIGRATIONS, openPostgresStore, SCHEMA_VERSION } from '../../src/store/postgres.ts';
import type { DocumentRecord } from '../../src/store/store.ts';
import { startPostgres, type PgServer } from '../helpers/postgres.ts';

const WRITER = { model: 'demo', dtype: 'fp32' };
const DIMS = 8;
const EARLIER = MIGRATIONS.filter((m) => m.version < SCHEMA_VERSION);
const PREVIOUS = EARLIER.at(-1)?.version ?? 0;

let server: PgServer;
before(async () => {
  server = await startPostgres();
});
after(async () => {
  await server?.close();
});

const dbOf = (url: string) => new URL(url).pathname.slice(1);

function axis(i: number, tilt = 0): Float32Array {
  const v = new Float32Array(DIMS);
  v[i % DIMS] = 1;
  v[(i + 1) % DIMS] = tilt;
  const norm = Math.hypot(1, tilt);
  return v.map((x) => x / norm);
}

const DOCS: DocumentRecord[] = [
  { id: 'note-1', modality: 'text', text: 'a red pump in the cellar', metadata: { year: 2020, kind: 'note', public: true }, hash: 'h-note-1', vector: axis(0) },
  { id: 'note-2', modality: 'text', text: 'the blue door', metadata: { year: 2022, kind: 'note', public: false }, hash: 'h-note-2', vector: axis(3, 0.3) },
  { id: 'photos/cat.jpg', modality: 'image', image: '/photos/cat.jpg', root: '/photos', metadata: { year: 2021, kind: 'photo' }, hash: 'h-cat', vector: axis(5) },
];

/**
 * A database at the previous schema version: the earlier migrations run as the migrator runs
 * them (one transaction) and the version recorded, then collections written by the store's own
 * code while the database says it is up to date, so that it does not migrate (no earlier
 * migration changed the documents tables: when one does, write them here as that version did).
 */
async function previousVersionDatabase(): Promise<{ url: string; before: { info: unknown; docs: unknown } }> {
  const url = await server.createDatabase();
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query('BEGIN');
    for (const migration of EARLIER) await migration.up(client);
    // The migrator's own bookkeeping table, as it creates it.
    await client.query('CREATE TABLE tessera_schema (one boolean PRIMARY KEY DEFAULT true CHECK (one), version integer NOT NULL, migrated_at timestamptz NOT NULL DEFAULT now())');
    await client.query('INSERT INTO tessera_schema (version, migrated_at) VALUES ($1, $2)', [SCHEMA_VERSION, new Date('2026-01-01T00:00:00Z')]);
    await client.query('COMMIT');
  } finally {
    await client.end();
  }
  const writer = await openPostgresStore(url);
  await writer.createCollection({ name: 'old', ...WRITER, dimensions: DIMS });
  await writer.upsert('old', DOCS, WRITER);
  await writer.createCollection({ name: 'Old-Empty', ...WRITER, dimensions: 4 });
  const info = await writer.getCollection('old');
  const docs = await writer.get('old', DOCS.map((d) => d.id), { vectors: true });
  await writer.close();
  await server.query(dbOf(url), 'UPDATE tessera_schema SET version = $1', [PREVIOUS]);
  return { url, before: { info, docs } };
}

function classifier(owner: string): ClassifierRecord {
  const now = new Date().toISOString();
  return {
    id: randomUUID(), owner, access: 'private', model: WRITER.model, dtype: WRITER.dtype, modelName: 'jina-clip-v1', dimensions: DIMS,
    labels: ['red', 'blue'], weights: new Float64Array(2 * DIMS).fill(0.25), zeroShot: true, version: 1, samples: 2, usedNumber: 0,
    createdAt: now, updatedAt: now, usedAt: null,
  };
}

describe('migrating a database of the previous schema version', () => {
  test('there is a previous version to migrate from', () => {
    assert.ok(EARLIER.length > 0 && PREVIOUS === SCHEMA_VERSION - 1, `migrations ${MIGRATIONS.map((m) => m.version)}`);
  });

  test('opened by this tessera: migrated once, every collection and document as it was, the new schema in use', async () => {
    const { url, before } = await previousVersionDatabase();
    const db = dbOf(url);
    // Really the previous schema: its version, and nothing of the newer migrations' tables.
    assert.deepEqual((await server.query(db, 'SELECT version FROM tessera_schema')).rows, [{ version: PREVIOUS }]);
    assert.deepEqual((await server.query(db, "SELECT to_regclass('tessera_classifiers') AS t")).rows, [{ t: null }]);

    const store = await openPostgresStore(url);
    try {
      const schema = (await server.query<{ version: number; migrated_at: Date }>(db, 'SELECT version, migrated_at FROM tessera_schema')).rows;
      assert.equal(schema.length, 1);
      assert.equal(schema[0]!.version, SCHEMA_VERSION);
      assert.ok(schema[0]!.migrated_at > new Date('2026-01-01T00:00:00Z'), 'migrated_at records the migration');
      assert.equal((await server.query(db, "SELECT to_regclass('tessera_classifiers') AS t")).rows[0]!.t, 'tessera_classifiers');

      // The data, as the previous version stored it.
      assert.deepEqual(await store.getCollection('old'), before.info);
      assert.deepEqual((await store.listCollections()).map((c) => [c.name, c.count, c.dimensions]).sort(), [['Old-Empty', 0, 4], ['old', 3, DIMS]]);
      const docs = await store.get('old', DOCS.map((d) => d.id), { vectors: true });
      assert.deepEqual(docs, before.docs);
      for (const [i, doc] of docs.entries()) {
        assert.deepEqual(Array.from(doc.vector!), Array.from(DOCS[i]!.vector), doc.id);
        assert.deepEqual(doc.metadata, DOCS[i]!.metadata);
      }
      assert.deepEqual([...(await store.hashes('old'))].sort(), DOCS.map((d) => [d.id, d.hash]).sort());

      // Searched, filtered, full text and written as any collection.
      assert.equal((await store.search('old', { vector: axis(3), k: 1 }))[0]!.id, 'note-2');
      const filtered = await store.search('old', { vector: axis(3), k: 3, filter: parseFilter({ kind: 'note', year: { $lt: 2021 } }) });
      assert.deepEqual(filtered.map((h) => h.id), ['note-1']);
      assert.deepEqual((await store.fullTextSearch('old', { text: 'pump', k: 3 })).map((h) => h.id), ['note-1']);
      await store.upsert('old', [{ id: 'note-3', modality: 'text', text: 'a green field', metadata: { year: 2024, kind: 'note', rating: 4.5 }, hash: 'h-note-3', vector: axis(6) }], WRITER);
      assert.equal(await store.count('old'), 4);
      await assert.rejects(store.upsert('old', [{ ...DOCS[0]!, metadata: { year: 'soon' } }], WRITER), (err: unknown) => (err as { code?: string }).code === 'METADATA_INVALID');

      // What the new migrations brought: the classifiers' table, in use.
      const made = classifier('alice');
      await store.classifiers.create(made, 10);
      assert.deepEqual((await store.classifiers.get(made.id))?.labels, ['red', 'blue']);
      assert.deepEqual((await store.classifiers.list('alice')).map((c) => c.id), [made.id]);
    } finally {
      await store.close();
    }

    // Opening again changes nothing: the migration ran once.
    const migratedAt = (await server.query<{ migrated_at: Date }>(db, 'SELECT migrated_at FROM tessera_schema')).rows[0]!.migrated_at;
    const again = await openPostgresStore(url);
    try {
      assert.equal(await again.count('old'), 4);
      assert.equal((await again.classifiers.list('alice')).length, 1);
    } finally {
      await again.close();
    }
    assert.deepEqual((await server.query(db, 'SELECT version, migrated_at FROM tessera_schema')).rows, [{ version: SCHEMA_VERSION, migrated_at: migratedAt }]);
  });

  test('several replicas opening it at once: one migrates, all of them work', async () => {
    const { url } = await previousVersionDatabase();
    const stores = await Promise.all(Array.from({ length: 5 }, () => openPostgresStore(url)));
    try {
      for (const store of stores) assert.equal(await store.count('old'), DOCS.length);
      await stores[0]!.classifiers.create(classifier('bob'), 10);
      assert.equal((await stores[4]!.classifiers.list('bob')).length, 1);
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
    const db = dbOf(url);
    assert.deepEqual((await server.query(db, 'SELECT version FROM tessera_schema')).rows, [{ version: SCHEMA_VERSION }]);
    assert.deepEqual((await server.query(db, "SELECT count(*)::int AS n FROM pg_class WHERE relname = 'tessera_classifiers'")).rows, [{ n: 1 }]);
  });
});
