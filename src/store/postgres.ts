/**
 * The shared store's backend: PostgreSQL + pgvector (https://github.com/pgvector/pgvector), for
 * several machines (replicas, indexing workers) working on the same data, under the collections
 * layer (collections.ts), which hands it validated input and the collection's cached descriptor.
 *
 * Schema (created and migrated by tessera itself, see MIGRATIONS):
 *   tessera_schema       one row: the schema version this database is at.
 *   tessera_collections  one row per collection: name, model, dtype, dimensions, creation time,
 *                        the documents table's name, and `fields` (metadata key -> type, a JSONB
 *                        object: a collection keeps one type per field, as the embedded store does).
 *   tessera_classifiers  one row per few-shot classifier (postgres-classifiers.ts).
 *   tessera_docs_<n>     one table per collection (the vector column's dimensions differ from one
 *                        collection to the next): id, modality, text, image, root, hash, metadata
 *                        JSONB, vector(dims), and tsv, a tsvector generated from text. Named by a
 *                        sequence, not by the collection: names are case-sensitive and up to 63
 *                        characters, which PostgreSQL identifiers (63 bytes, folded) cannot carry.
 * Indexes per collection: HNSW over the vector (cosine), GIN over tsv (full text), GIN
 * (jsonb_path_ops) over metadata (equality filters).
 *
 * Writes: one transaction per call. An upsert locks its collection's row (FOR SHARE, so upserts
 * of one collection run concurrently; FOR UPDATE when it records new metadata fields), checks
 * it against the layer's descriptor (the same documents table, no field of another type), then
 * `INSERT ... ON CONFLICT (id) DO UPDATE` in chunks: all of it is stored, or none.
 *
 * Searches: one statement on the cached descriptor's table (exact below the ANN threshold), two
 * through the HNSW index (its settings, then the query); a table dropped meanwhile fails the
 * statement, which the layer turns into a re-read.
 *
 * Faults: every call either answers or fails with STORE_UNAVAILABLE within its deadlines
 * (connecting: connectTimeoutMs; each statement: queryTimeoutMs, on the client and as the
 * server's statement_timeout). The pool drops broken connections and makes new ones, so the
 * store resumes by itself once PostgreSQL is back.
 */
import pg from 'pg';
import { invalidArgument, TesseraError } from '../errors.ts';
import { StaleCollection, type Restrictions, type ScanRow, type StoreBackend } from './backend.ts';
import type { ClassifierStore } from './classifiers.ts';
import { collectionNotFound, Collections } from './collections.ts';
import { CLASSIFIERS_TABLE_SQL, PgClassifierStore } from './postgres-classifiers.ts';
import { compileWhere, Params, whereSql } from './postgres-where.ts';
import type { CollectionDescriptor, CollectionSpec, DocumentRecord, Filter, Metadata, MetadataKind, Modality, SearchHit, StoredDocument } from './store.ts';

export interface PostgresStoreOptions {
  /** Exact search below this many documents in a collection, the HNSW index from it on. */
  annThreshold?: number;
  /** Deadline for getting a connection (ms, default 2000). */
  connectTimeoutMs?: number;
  /** Deadline for each statement (ms, default 10000): client side and statement_timeout. */
  queryTimeoutMs?: number;
  /** Deadline for ping()'s `SELECT 1` (ms, default 2000). */
  pingTimeoutMs?: number;
  /** Connections in the pool (default 10). */
  maxConnections?: number;
  /** HNSW build parameters of new collections (default DEFAULT_HNSW). */
  hnsw?: HnswSettings;
}

export interface HnswSettings {
  /** Neighbours per node and layer. */
  m: number;
  /** Candidate list size while inserting. */
  efConstruction: number;
}

/*
 * m 16, ef_construction 64: pgvector's defaults, kept because measurement found nothing to buy
 * with more. 2026-12, AMD EPYC, 2 cores shared with other work, PostgreSQL 15 + pgvector 0.8.6:
 * 10k 768-d clustered vectors (100 Gaussian centres, bench/search.ts's clusteredVectors), upserts
 * of 500, 50 queries, recall@10 against brute force, ef_search 40:
 *   m 16, ef_construction 64:   395 documents/s inserted, recall 1.000, p50 3.1 ms
 *   m 16, ef_construction 128:  186 documents/s inserted, recall 1.000, p50 2.3 ms
 * Doubling ef_construction halves the insert rate (pgvector keeps the graph up to date row by
 * row, inside each upsert's transaction) for no recall here. m 16 costs ~2*m*8 bytes a row beside
 * a 3 KB 768-d vector. Larger or harder collections may want more: `hnsw` in the options sets
 * both for new collections.
 */
export const DEFAULT_HNSW: HnswSettings = { m: 16, efConstruction: 64 };
/** The embedded store's threshold (DEFAULT_ANN_THRESHOLD in lance.ts): the same semantics. */
export const DEFAULT_ANN_THRESHOLD = 5_000;
/** Full-text configuration: no stemming and no stop words, like the embedded store's tokenizer. */
const TS_CONFIG = 'simple';
/** pgvector indexes `vector` columns of at most 2000 dimensions with HNSW. */
const MAX_DIMENSIONS = 2000;
/** Rows per INSERT statement: keeps each statement well inside the statement timeout. */
const UPSERT_CHUNK = 500;
/** pg_advisory_xact_lock key for migrations ("tessera!" as a bigint). */
const MIGRATION_LOCK = '8387236820507844897';

// ---- schema and migrations ----

interface Migration {
  version: number;
  description: string;
  up(client: pg.ClientBase): Promise<void>;
}

const statements =
  (...sql: string[]) =>
  async (client: pg.ClientBase) => {
    for (const s of sql) await client.query(s);
  };

/**
 * Ordered; each runs once, in the migration transaction, under the advisory lock. Append new
 * ones (e.g. the few-shot classifiers' tables) with the next version; never edit a released
 * one. A migration that changes documents tables loops over tessera_collections.table_name.
 */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'pgvector, the collections registry',
    up: statements(
      'CREATE EXTENSION IF NOT EXISTS vector',
      `CREATE TABLE tessera_collections (
         name text COLLATE "C" PRIMARY KEY,
         table_name text NOT NULL UNIQUE,
         model text NOT NULL,
         dtype text NOT NULL,
         dimensions integer NOT NULL CHECK (dimensions > 0),
         fields jsonb NOT NULL DEFAULT '{}'::jsonb,
         created_at timestamptz NOT NULL
       )`,
      'CREATE SEQUENCE tessera_docs_seq',
    ),
  },
  {
    version: 2,
    description: 'few-shot classifiers',
    up: statements(...CLASSIFIERS_TABLE_SQL),
  },
];
export const SCHEMA_VERSION = MIGRATIONS.at(-1)!.version;

// ---- errors ----

/** A URL without its password, for messages. */
export function withoutPassword(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@');
  }
}

function passwordOf(url: string): string | undefined {
  try {
    const p = decodeURIComponent(new URL(url).password);
    return p.length > 0 ? p : undefined;
  } catch {
    return /\/\/[^:@/]*:([^@/]+)@/.exec(url)?.[1];
  }
}

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'EHOSTDOWN', 'ENETUNREACH', 'ENETDOWN', 'ENOTFOUND', 'EAI_AGAIN']);
/** SQLSTATEs of a server that is gone, going or not there yet, or that did not answer in time. */
const UNAVAILABLE_STATES = new Set(['57P01', '57P02', '57P03', '57014', '53300', '53400']);
const UNAVAILABLE_MESSAGES = /Connection terminated|timeout exceeded when trying to connect|Query read timeout|Connection ended|connection error|the database system is (starting up|shutting down|in recovery mode)|Client was closed and is not queryable/i;

/** Whether `err` says PostgreSQL cannot be reached, is restarting, or did not answer in time. */
export function isUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && (code.startsWith('08') || UNAVAILABLE_STATES.has(code) || NETWORK_CODES.has(code))) return true;
  if (err instanceof AggregateError && err.errors.some(isUnavailable)) return true;
  return UNAVAILABLE_MESSAGES.test(err.message);
}

const isDatabaseError = (err: unknown): err is pg.DatabaseError => err instanceof pg.DatabaseError;

/** Thrown inside an upsert that took a share lock but must record new fields: redo with FOR UPDATE. */
class NeedsFieldLock extends Error {}

// ---- rows ----

const DOC_COLUMNS = 'id, modality, text, image, root, hash, metadata';
const HIT_COLUMNS = 'id, modality, text, image, metadata';

interface DocRow {
  id: string;
  modality: Modality;
  text: string | null;
  image: string | null;
  root: string | null;
  hash: string;
  metadata: Metadata;
  vector?: string;
}

interface CollectionRow {
  name: string;
  table_name: string;
  model: string;
  dtype: string;
  dimensions: number;
  fields: Record<string, MetadataKind>;
  created_at: Date;
}

/** A collection as this backend describes it to the collections layer. */
export interface PgCollection extends CollectionDescriptor {
  /** Quoted identifier of the documents table: a recreated collection gets another one. */
  table: string;
  /** Whether searches go through the HNSW index, and when that was last counted (see #usesIndex). */
  readonly index: { on: boolean; checkedAt: number };
}

/**
 * `(n)`: the table's rows counted up to $1 (the ANN threshold) and no further, which is what
 * choosing between exact and HNSW search needs, without counting a large table whole.
 */
const rowsUpTo = (table: string) => `(SELECT count(*) AS n FROM (SELECT 1 FROM ${table} LIMIT $1) few)`;
/** How long a collection found below the ANN threshold is searched exactly before it is counted again (other processes may fill it). */
const INDEX_RECHECK_MS = 1000;

function ident(tableName: string): string {
  // Our own names only (tessera_docs_<n>): a guard, not an escape.
  if (!/^tessera_docs_\d+$/.test(tableName)) throw new TesseraError('STORE_INVALID', `unexpected documents table name ${JSON.stringify(tableName)} in tessera_collections`);
  return `"${tableName}"`;
}

function collectionOf(row: CollectionRow): PgCollection {
  return {
    name: row.name,
    model: row.model,
    dtype: row.dtype,
    dimensions: row.dimensions,
    createdAt: row.created_at.toISOString(),
    fields: new Map(Object.entries(row.fields)),
    table: ident(row.table_name),
    index: { on: false, checkedAt: 0 },
  };
}

/** pgvector's text form. Float32 -> shortest double text -> float4 parses back to the same value. */
const vectorLiteral = (v: Float32Array): string => `[${Array.from(v).join(',')}]`;
const parseVector = (text: string): Float32Array => new Float32Array(text.slice(1, -1).split(',').map(Number));

function documentOf(row: DocRow): StoredDocument {
  const doc: StoredDocument = { id: row.id, modality: row.modality, metadata: row.metadata, hash: row.hash };
  if (row.text !== null) doc.text = row.text;
  if (row.image !== null) doc.image = row.image;
  if (row.root !== null) doc.root = row.root;
  return doc;
}

function hitOf(row: Omit<DocRow, 'root' | 'hash'>, score: number): SearchHit {
  const hit: SearchHit = { id: row.id, modality: row.modality, metadata: row.metadata, score };
  if (row.text !== null) hit.text = row.text;
  if (row.image !== null) hit.image = row.image;
  return hit;
}

// ---- the store ----

export class PostgresBackend implements StoreBackend<PgCollection> {
  readonly location: string;
  readonly maxDimensions = MAX_DIMENSIONS;
  readonly #pool: pg.Pool;
  readonly #password: string | undefined;
  readonly #annThreshold: number;
  readonly #pingTimeoutMs: number;
  readonly #hnsw: HnswSettings;
  #closed = false;
  readonly classifiers: ClassifierStore;

  private constructor(url: string, options: PostgresStoreOptions) {
    this.location = withoutPassword(url);
    this.#password = passwordOf(url);
    this.#annThreshold = options.annThreshold ?? DEFAULT_ANN_THRESHOLD;
    this.#pingTimeoutMs = options.pingTimeoutMs ?? 2000;
    this.#hnsw = options.hnsw ?? DEFAULT_HNSW;
    const queryTimeoutMs = options.queryTimeoutMs ?? 10_000;
    this.#pool = new pg.Pool({
      connectionString: url,
      max: options.maxConnections ?? 10,
      connectionTimeoutMillis: options.connectTimeoutMs ?? 2000,
      // The client gives up on a statement after this; the server cancels it a little before,
      // so that a slow statement ends with the server's clean 57014 where it can.
      query_timeout: queryTimeoutMs + 500,
      statement_timeout: queryTimeoutMs,
      // A transaction left open by a client that vanished does not hold its locks for long.
      idle_in_transaction_session_timeout: Math.max(queryTimeoutMs * 3, 30_000),
      idleTimeoutMillis: 30_000,
      keepAlive: true,
      application_name: 'tessera',
    });
    // An idle connection whose server goes away emits 'error' on the pool; without a listener
    // that would crash the process. The pool drops that connection and makes a new one on demand.
    this.#pool.on('error', () => {});
    this.classifiers = new PgClassifierStore({
      query: (sql, params) => this.#guard(undefined, () => this.#pool.query(sql, params)),
      tx: (work) => this.#guard(undefined, () => this.#tx(work)),
    });
  }

  /** Connects, creates or migrates the schema, and returns the store. */
  static async open(url: string, options: PostgresStoreOptions = {}): Promise<PostgresBackend> {
    const store = new PostgresBackend(url, options);
    try {
      await store.#guard(undefined, () => store.#migrate());
    } catch (err) {
      await store.#pool.end().catch(() => {});
      throw err;
    }
    return store;
  }

  // ---- plumbing ----

  /** Maps driver errors to STORE_UNAVAILABLE / STORE_INVALID (and a vanished table to StaleCollection). */
  async #guard<T>(collection: string | undefined, work: () => Promise<T>): Promise<T> {
    if (this.#closed) throw new Error('the store is closed');
    try {
      return await work();
    } catch (err) {
      throw this.#mapError(err, collection);
    }
  }

  #scrub(message: string): string {
    return this.#password ? message.replaceAll(this.#password, '***') : message;
  }

  #mapError(err: unknown, collection?: string): unknown {
    if (err instanceof TesseraError || err instanceof StaleCollection) return err;
    if (isUnavailable(err)) {
      const why = this.#scrub((err as Error).message || (err as { code?: string }).code || String(err));
      return new TesseraError('STORE_UNAVAILABLE', `PostgreSQL at ${this.location} cannot be reached or did not answer in time (${why}); retry shortly`, { cause: err });
    }
    if (isDatabaseError(err)) {
      // The documents table went away under us: dropped by another client meanwhile.
      if (err.code === '42P01' && collection !== undefined) return new StaleCollection(collection, 'missing');
      if (err.code === '54000') return new TesseraError('DOCUMENT_INVALID', `a document exceeds a PostgreSQL limit: ${this.#scrub(err.message)}`, { cause: err });
      return new TesseraError('STORE_INVALID', `PostgreSQL at ${this.location} refused the request: ${this.#scrub(err.message)} (SQLSTATE ${err.code})`, { cause: err });
    }
    return err;
  }

  /**
   * Runs `work` in one transaction on one connection (`begin` null: on one connection, no
   * transaction); a broken connection is discarded.
   */
  async #tx<T>(work: (client: pg.PoolClient) => Promise<T>, begin: string | null = 'BEGIN'): Promise<T> {
    const client = await this.#pool.connect();
    let broken: Error | undefined;
    // A checked-out connection has no listener of the pool's: the server ending it between two
    // statements (a restart: 57P01) would be an uncaught 'error'. Note it; the next statement
    // fails anyway and the connection is discarded on release.
    const onError = (err: Error) => (broken = err);
    client.on('error', onError);
    try {
      if (begin !== null) await client.query(begin);
      const out = await work(client);
      if (begin !== null) await client.query('COMMIT');
      return out;
    } catch (err) {
      if (isUnavailable(err)) broken = err as Error;
      else if (begin !== null) {
        try {
          await client.query('ROLLBACK');
        } catch (e) {
          broken = e as Error;
        }
      }
      throw err;
    } finally {
      client.off('error', onError);
      client.release(broken);
    }
  }

  async #migrate(): Promise<void> {
    const tooNew = (version: number) =>
      new TesseraError('STORE_INVALID', `the database at ${this.location} has tessera schema version ${version}, newer than this tessera knows (${SCHEMA_VERSION}); upgrade tessera`);
    // Fast path: an up-to-date database needs no lock (and no DDL rights).
    let current: number | null = null;
    try {
      current = (await this.#pool.query<{ version: number }>('SELECT version FROM tessera_schema')).rows[0]?.version ?? null;
    } catch (err) {
      if (!(isDatabaseError(err) && err.code === '42P01')) throw err;
    }
    if (current !== null && current > SCHEMA_VERSION) throw tooNew(current);
    if (current === SCHEMA_VERSION) return;
    await this.#tx(async (client) => {
      // Replicas starting at once: one migrates, the others wait here and then find it done.
      await client.query(`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK})`);
      await client.query(`CREATE TABLE IF NOT EXISTS tessera_schema (
        one boolean PRIMARY KEY DEFAULT true CHECK (one),
        version integer NOT NULL,
        migrated_at timestamptz NOT NULL DEFAULT now()
      )`);
      const found = (await client.query<{ version: number }>('SELECT version FROM tessera_schema')).rows[0]?.version ?? 0;
      if (found > SCHEMA_VERSION) throw tooNew(found);
      for (const migration of MIGRATIONS) {
        if (migration.version > found) await migration.up(client);
      }
      if (found < SCHEMA_VERSION) {
        await client.query(
          `INSERT INTO tessera_schema (one, version) VALUES (true, $1) ON CONFLICT (one) DO UPDATE SET version = EXCLUDED.version, migrated_at = now()`,
          [SCHEMA_VERSION],
        );
      }
    });
  }


  async #lookup(name: string, client: pg.ClientBase | pg.Pool = this.#pool, lock = ''): Promise<PgCollection | undefined> {
    const { rows } = await client.query<CollectionRow>(
      `SELECT name, table_name, model, dtype, dimensions, fields, created_at FROM tessera_collections WHERE name = $1${lock}`,
      [name],
    );
    return rows[0] && collectionOf(rows[0]);
  }

  /** For the tools below, which take a name: COLLECTION_NOT_FOUND. */
  async #need(name: string): Promise<PgCollection> {
    const found = await this.#lookup(name);
    if (!found) throw collectionNotFound(name, this.location);
    return found;
  }

  /** PostgreSQL's text cannot hold U+0000; say so about the field instead of failing the batch opaquely. */
  checkText(value: string, field: string): void {
    if (value.includes('\u0000')) {
      throw new TesseraError('DOCUMENT_INVALID', `${field}: contains a NUL character (\\u0000), which the PostgreSQL store cannot hold; remove it`);
    }
  }

  // ---- collections ----

  list(): Promise<PgCollection[]> {
    return this.#guard(undefined, async () => {
      const { rows } = await this.#pool.query<CollectionRow>('SELECT name, table_name, model, dtype, dimensions, fields, created_at FROM tessera_collections');
      return rows.map(collectionOf);
    });
  }

  describe(name: string): Promise<PgCollection | undefined> {
    return this.#guard(undefined, () => this.#lookup(name));
  }

  create(spec: CollectionSpec, createdAt: string): Promise<PgCollection> {
    return this.#guard(undefined, async () => {
      const { name } = spec;
      const { m, efConstruction } = this.#hnsw;
      if (!Number.isInteger(m) || !Number.isInteger(efConstruction)) throw invalidArgument('hnsw', 'integer m and efConstruction', JSON.stringify(this.#hnsw));
      return this.#tx(async (client) => {
        // A concurrent create of the same name waits on the primary key, then finds it taken.
        const { rows } = await client.query<CollectionRow>(
          `INSERT INTO tessera_collections (name, table_name, model, dtype, dimensions, created_at)
           VALUES ($1, 'tessera_docs_' || nextval('tessera_docs_seq'), $2, $3, $4, $5)
           ON CONFLICT (name) DO NOTHING RETURNING name, table_name, model, dtype, dimensions, fields, created_at`,
          [name, spec.model, spec.dtype, spec.dimensions, createdAt],
        );
        if (rows.length === 0) throw new TesseraError('COLLECTION_EXISTS', `a collection ${JSON.stringify(name)} exists already in ${this.location}`);
        const c = collectionOf(rows[0]!);
        const tableName = rows[0]!.table_name;
        await client.query(`CREATE TABLE ${c.table} (
          id text COLLATE "C" PRIMARY KEY,
          modality text NOT NULL CHECK (modality IN ('text', 'image')),
          text text,
          image text,
          root text,
          hash text NOT NULL,
          metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
          vector vector(${spec.dimensions}) NOT NULL,
          tsv tsvector GENERATED ALWAYS AS (to_tsvector('${TS_CONFIG}'::regconfig, coalesce(text, ''))) STORED
        )`);
        await client.query(`CREATE INDEX "${tableName}_vector" ON ${c.table} USING hnsw (vector vector_cosine_ops) WITH (m = ${m}, ef_construction = ${efConstruction})`);
        await client.query(`CREATE INDEX "${tableName}_tsv" ON ${c.table} USING gin (tsv)`);
        await client.query(`CREATE INDEX "${tableName}_metadata" ON ${c.table} USING gin (metadata jsonb_path_ops)`);
        return c;
      });
    });
  }

  drop(name: string): Promise<boolean> {
    return this.#guard(undefined, () =>
      this.#tx(async (client) => {
        const { rows } = await client.query<{ table_name: string }>('DELETE FROM tessera_collections WHERE name = $1 RETURNING table_name', [name]);
        if (rows.length === 0) return false;
        // Waits for writers and readers of the table to finish (they hold locks on it).
        await client.query(`DROP TABLE IF EXISTS ${ident(rows[0]!.table_name)}`);
        return true;
      }),
    );
  }

  // ---- writes ----

  upsert(c: PgCollection, docs: readonly DocumentRecord[], fields: ReadonlyMap<string, MetadataKind>, remove?: readonly string[]): Promise<void> {
    return this.#guard(c.name, async () => {
      // A share lock on the collection's row suffices unless the batch brings new fields.
      let forUpdate = [...fields.keys()].some((key) => !c.fields.has(key));
      // Rows are locked in id order, so that writers of overlapping batches do not deadlock;
      // should the server still detect one (or a serialization failure), the write is redone.
      const ordered = [...docs].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
      for (let attempt = 1; ; attempt++) {
        try {
          await this.#tx(async (client) => {
            await this.#write(client, c, ordered, fields, forUpdate);
            if (remove && remove.length > 0) await client.query(`DELETE FROM ${c.table} WHERE id = ANY($1::text[])`, [remove]);
          });
          // Rows were added: the next search counts again whether the index should serve it.
          if (!c.index.on) c.index.checkedAt = 0;
          return;
        } catch (err) {
          if (err instanceof NeedsFieldLock && !forUpdate) {
            forUpdate = true;
            continue;
          }
          if (isDatabaseError(err) && (err.code === '40P01' || err.code === '40001') && attempt < 3) continue;
          throw err;
        }
      }
    });
  }

  /** `ordered`: the documents by id (the order rows are written in). */
  async #write(client: pg.PoolClient, c: PgCollection, ordered: readonly DocumentRecord[], fields: ReadonlyMap<string, MetadataKind>, forUpdate: boolean): Promise<void> {
    // The row lock keeps the collection from being dropped (or its fields changed) meanwhile.
    const now = await this.#lookup(c.name, client, forUpdate ? ' FOR UPDATE' : ' FOR SHARE');
    if (!now) throw new StaleCollection(c.name, 'missing');
    if (now.table !== c.table || [...fields].some(([key, kind]) => now.fields.has(key) && now.fields.get(key) !== kind)) throw new StaleCollection(c.name, 'changed');
    const added = [...fields].filter(([key]) => !now.fields.has(key));
    if (added.length > 0) {
      if (!forUpdate) throw new NeedsFieldLock();
      await client.query('UPDATE tessera_collections SET fields = fields || $2::jsonb WHERE name = $1', [c.name, JSON.stringify(Object.fromEntries(added))]);
    }
    for (let i = 0; i < ordered.length; i += UPSERT_CHUNK) {
      const chunk = ordered.slice(i, i + UPSERT_CHUNK);
      await client.query(
        `INSERT INTO ${c.table} (id, modality, text, image, root, hash, metadata, vector)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::jsonb[], $8::vector[])
         ON CONFLICT (id) DO UPDATE SET modality = EXCLUDED.modality, text = EXCLUDED.text, image = EXCLUDED.image,
           root = EXCLUDED.root, hash = EXCLUDED.hash, metadata = EXCLUDED.metadata, vector = EXCLUDED.vector`,
        [
          chunk.map((d) => d.id),
          chunk.map((d) => d.modality),
          chunk.map((d) => d.text ?? null),
          chunk.map((d) => d.image ?? null),
          chunk.map((d) => d.root ?? null),
          chunk.map((d) => d.hash),
          chunk.map((d) => JSON.stringify(d.metadata ?? {})),
          chunk.map((d) => vectorLiteral(d.vector)),
        ],
      );
    }
  }

  delete(c: PgCollection, ids: readonly string[]): Promise<number> {
    return this.#guard(c.name, () =>
      this.#tx(async (client) => {
        let removed = 0;
        for (let i = 0; i < ids.length; i += 10_000) {
          removed += (await client.query(`DELETE FROM ${c.table} WHERE id = ANY($1::text[])`, [ids.slice(i, i + 10_000)])).rowCount ?? 0;
        }
        return removed;
      }),
    );
  }

  // ---- reads ----

  get(c: PgCollection, ids: readonly string[], vectors: boolean): Promise<(StoredDocument & { vector?: Float32Array })[]> {
    return this.#guard(c.name, async () => {
      const columns = vectors ? `${DOC_COLUMNS}, vector::text AS vector` : DOC_COLUMNS;
      const found: (StoredDocument & { vector?: Float32Array })[] = [];
      for (let i = 0; i < ids.length; i += 1000) {
        const { rows } = await this.#pool.query<DocRow>(`SELECT ${columns} FROM ${c.table} WHERE id = ANY($1::text[])`, [ids.slice(i, i + 1000)]);
        for (const row of rows) {
          const doc: StoredDocument & { vector?: Float32Array } = documentOf(row);
          if (vectors && row.vector !== undefined) doc.vector = parseVector(row.vector);
          found.push(doc);
        }
      }
      return found;
    });
  }

  hashes(c: PgCollection): Promise<Map<string, string>> {
    return this.#guard(c.name, async () => {
      const out = new Map<string, string>();
      // Keyset pages: no statement grows with the collection (each stays inside the timeout).
      let last: string | undefined;
      for (;;) {
        const { rows } = await this.#pool.query<{ id: string; hash: string }>(
          `SELECT id, hash FROM ${c.table}${last === undefined ? '' : ' WHERE id > $2'} ORDER BY id LIMIT $1`,
          last === undefined ? [10_000] : [10_000, last],
        );
        for (const row of rows) out.set(row.id, row.hash);
        if (rows.length < 10_000) return out;
        last = rows.at(-1)!.id;
      }
    });
  }

  async *scan(c: PgCollection, pageSize: number): AsyncIterable<ScanRow[]> {
    let last: string | undefined;
    for (;;) {
      const { rows } = await this.#guard(c.name, () =>
        this.#pool.query<{ id: string; modality: Modality; vector: string }>(
          `SELECT id, modality, vector::text AS vector FROM ${c.table}${last === undefined ? '' : ' WHERE id > $2'} ORDER BY id LIMIT $1`,
          last === undefined ? [pageSize] : [pageSize, last],
        ),
      );
      if (rows.length > 0) yield rows.map((r) => ({ id: r.id, modality: r.modality, vector: parseVector(r.vector) }));
      if (rows.length < pageSize) return;
      last = rows.at(-1)!.id;
    }
  }

  /**
   * Whether searches of `c` go through its HNSW index: from ANN threshold rows on. Small
   * collections are searched exactly (the planner may not use the index), so their results are
   * exactly brute force's. Counted up to the threshold only, and at most once a second per
   * collection while it is below it (a write of this process counts again at once), never
   * again once it has reached it: deletes seldom take a collection back below, and the index
   * still answers well there.
   */
  async #usesIndex(c: PgCollection, client: pg.ClientBase | pg.Pool = this.#pool): Promise<boolean> {
    if (c.index.on || Date.now() - c.index.checkedAt < INDEX_RECHECK_MS) return c.index.on;
    const { rows } = await client.query<{ n: string }>(`SELECT n FROM ${rowsUpTo(c.table)} counted`, [this.#annThreshold]);
    c.index.on = Number(rows[0]!.n) >= this.#annThreshold;
    c.index.checkedAt = Date.now();
    return c.index.on;
  }

  search(c: PgCollection, query: Restrictions & { vector: Float32Array; limit: number }): Promise<SearchHit[]> {
    return this.#guard(c.name, async () => {
      const { limit } = query;
      const params = new Params([vectorLiteral(query.vector)]);
      const where = whereSql(compileWhere(query, c.fields, params));
      const rows = await this.#tx(async (client) => {
        if (!(await this.#usesIndex(c, client))) {
          // Ordered by an expression the HNSW index cannot serve: exact search.
          const exact = `SELECT ${HIT_COLUMNS}, vector <=> $1::vector AS distance FROM ${c.table}${where}
            ORDER BY (vector <=> $1::vector) + 0, id LIMIT ${params.add(limit)}`;
          return (await client.query<DocRow & { distance: number }>(exact, params.values)).rows;
        }
        // The index, with an ef_search that covers the limit, and iterative scans (pgvector 0.8)
        // so that a filter the graph's first candidates do not meet does not starve the result;
        // relaxed_order can return neighbours slightly out of order, hence the outer ORDER BY
        // over the materialised hits. Set for the session, not in a transaction (BEGIN and
        // COMMIT would be two more round trips): they steer HNSW scans only, and every HNSW
        // search sets them first.
        const ef = String(Math.min(1000, Math.max(40, 2 * limit)));
        await client.query(`SELECT set_config('hnsw.ef_search', $1, false), set_config('hnsw.iterative_scan', 'relaxed_order', false)`, [ef]);
        const sql = `WITH hits AS MATERIALIZED (
            SELECT ${HIT_COLUMNS}, vector <=> $1::vector AS distance FROM ${c.table}${where}
            ORDER BY vector <=> $1::vector LIMIT ${params.add(limit)}
          ) SELECT * FROM hits ORDER BY distance, id`;
        return (await client.query<DocRow & { distance: number }>(sql, params.values)).rows;
      }, null);
      return rows.map((row) => hitOf(row, 1 - row.distance));
    });
  }

  fullTextSearch(c: PgCollection, query: Restrictions & { text: string; limit: number }): Promise<SearchHit[]> {
    return this.#guard(c.name, async () => {
      // Any of the query's words (as the embedded store's match query), ranked by cover density
      // normalised by document length (flag 1), best first. plainto_tsquery reads the text as
      // words, never as syntax; its ' & ' become ' | '.
      const params = new Params([query.text.replaceAll('\u0000', ' ')]);
      const clauses = ['tsv @@ q.q', ...compileWhere(query, c.fields, params)];
      const { rows } = await this.#pool.query<DocRow & { score: number }>(
        `SELECT ${HIT_COLUMNS}, ts_rank_cd(tsv, q.q, 1) AS score
         FROM ${c.table}, (SELECT replace(plainto_tsquery('${TS_CONFIG}', $1)::text, ' & ', ' | ')::tsquery AS q) q
         ${whereSql(clauses)}
         ORDER BY score DESC, id LIMIT ${params.add(query.limit)}`,
        params.values,
      );
      return rows.map((row) => hitOf(row, row.score));
    });
  }

  count(c: PgCollection, filter?: Filter): Promise<number> {
    return this.#guard(c.name, async () => {
      const params = new Params();
      const where = whereSql(compileWhere({ filter }, c.fields, params));
      const { rows } = await this.#pool.query<{ n: string }>(`SELECT count(*) AS n FROM ${c.table}${where}`, params.values);
      return Number(rows[0]!.n);
    });
  }

  // ---- tools for tests and benchmarks ----

  /** Whether `collection`'s searches go through its HNSW index now (counted now). */
  usesIndex(collection: string): Promise<boolean> {
    return this.#guard(collection, async () => this.#usesIndex(await this.#need(collection)));
  }

  /**
   * Rebuilds the collection's HNSW index from scratch (REINDEX), with `maintenanceWorkMem` for
   * the graph: what a bulk load followed by an index build costs. Benchmarks time this; the
   * index is otherwise kept up to date by every write. Needs a queryTimeoutMs long enough.
   */
  buildAnnIndex(collection: string, maintenanceWorkMem = '1GB'): Promise<void> {
    return this.#guard(collection, async () => {
      const c = await this.#need(collection);
      await this.#tx(async (client) => {
        await client.query(`SELECT set_config('maintenance_work_mem', $1, true)`, [maintenanceWorkMem]);
        await client.query(`REINDEX INDEX "${c.table.slice(1, -1)}_vector"`);
      });
    });
  }

  /** Bytes on disk of the collection's table, its TOAST data and its indexes. */
  sizeBytes(collection: string): Promise<number> {
    return this.#guard(collection, async () => {
      const c = await this.#need(collection);
      const { rows } = await this.#pool.query<{ n: string }>('SELECT pg_total_relation_size($1::regclass) AS n', [c.table]);
      return Number(rows[0]!.n);
    });
  }

  ping(): Promise<void> {
    return this.#guard(undefined, async () => {
      // pg honours a per-query query_timeout; its types do not declare it.
      const ping: pg.QueryConfig & { query_timeout: number } = { text: 'SELECT 1', query_timeout: this.#pingTimeoutMs };
      await this.#pool.query(ping);
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#pool.end();
  }
}

/** The shared store as callers use it: the collections layer over PostgreSQL, and its index tools. */
export class PostgresStore extends Collections<PostgresBackend> {
  usesIndex(collection: string): Promise<boolean> {
    return this.backend.usesIndex(collection);
  }
  buildAnnIndex(collection: string, maintenanceWorkMem?: string): Promise<void> {
    return this.backend.buildAnnIndex(collection, maintenanceWorkMem);
  }
  sizeBytes(collection: string): Promise<number> {
    return this.backend.sizeBytes(collection);
  }
}

/** Opens the PostgreSQL store at `url` (postgres:// or postgresql://), creating its schema if needed. */
export async function openPostgresStore(url: string, options?: PostgresStoreOptions): Promise<PostgresStore> {
  return new PostgresStore(await PostgresBackend.open(url, options));
}
