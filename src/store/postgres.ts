/**
 * The shared store: PostgreSQL + pgvector (https://github.com/pgvector/pgvector), for several
 * machines (replicas, indexing workers) working on the same data.
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
 * of one collection run concurrently; FOR UPDATE when it records new metadata fields), then
 * `INSERT ... ON CONFLICT (id) DO UPDATE` in chunks: all of it is stored, or none.
 *
 * Faults: every call either answers or fails with STORE_UNAVAILABLE within its deadlines
 * (connecting: connectTimeoutMs; each statement: queryTimeoutMs, on the client and as the
 * server's statement_timeout). The pool drops broken connections and makes new ones, so the
 * store resumes by itself once PostgreSQL is back.
 */
import pg from 'pg';
import { invalidArgument, TesseraError } from '../errors.ts';
import type { ClassifierStore } from './classifiers.ts';
import { CLASSIFIERS_TABLE_SQL, PgClassifierStore } from './postgres-classifiers.ts';
import { compileWhere, Params, whereSql } from './postgres-where.ts';
import type {
  CollectionInfo,
  CollectionSpec,
  DocumentRecord,
  Filter,
  Metadata,
  Modality,
  ModelRef,
  SearchHit,
  StoredDocument,
  TextSearch,
  VectorSearch,
  VectorStore,
} from './store.ts';
import { COLLECTION_NAME } from './store.ts';
import { checkMinScore, checkPaging, kindOf, validateCollectionName, validateDocument, validateDocumentId, type MetadataKind } from './validate.ts';

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

interface Collection {
  name: string;
  /** Quoted identifier of the documents table. */
  table: string;
  spec: CollectionSpec & { createdAt: string };
  kinds: Map<string, MetadataKind>;
}

/**
 * `(n)`: the table's rows counted up to $1 (the ANN threshold) and no further, which is what
 * choosing between exact and HNSW search needs, without counting a large table whole.
 */
const rowsUpTo = (table: string) => `(SELECT count(*) AS n FROM (SELECT 1 FROM ${table} LIMIT $1) few)`;

function ident(tableName: string): string {
  // Our own names only (tessera_docs_<n>): a guard, not an escape.
  if (!/^tessera_docs_\d+$/.test(tableName)) throw new TesseraError('STORE_INVALID', `unexpected documents table name ${JSON.stringify(tableName)} in tessera_collections`);
  return `"${tableName}"`;
}

function collectionOf(row: CollectionRow): Collection {
  return {
    name: row.name,
    table: ident(row.table_name),
    spec: { name: row.name, model: row.model, dtype: row.dtype, dimensions: row.dimensions, createdAt: row.created_at.toISOString() },
    kinds: new Map(Object.entries(row.fields)),
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

// ---- checks (the same as the embedded store's) ----

const notFound = (name: string, location: string) => new TesseraError('COLLECTION_NOT_FOUND', `no collection ${JSON.stringify(name)} in the store at ${location}`);

/** PostgreSQL's text cannot hold U+0000; say so about the field instead of failing the batch opaquely. */
function checkNoNul(value: string | undefined, field: string): void {
  if (value !== undefined && value.includes('\u0000')) {
    throw new TesseraError('DOCUMENT_INVALID', `${field}: contains a NUL character (\\u0000), which the PostgreSQL store cannot hold; remove it`);
  }
}

/** The shared checks, then the one PostgreSQL adds: no NUL characters in stored text. */
function validatePgDocument(doc: DocumentRecord, i: number, dims: number): void {
  validateDocument(doc, i, dims);
  const at = `documents[${i}]`;
  for (const field of ['id', 'text', 'image', 'root', 'hash'] as const) checkNoNul(doc[field], `${at}.${field}`);
  for (const [key, value] of Object.entries(doc.metadata)) if (typeof value === 'string') checkNoNul(value, `${at}.metadata.${key}`);
}

/**
 * Validates every document (before anything is written) and returns the metadata fields the
 * batch introduces. METADATA_INVALID when a field's type disagrees with the collection's or
 * with an earlier document of the batch.
 */
function checkBatch(docs: readonly DocumentRecord[], collection: Collection): Map<string, MetadataKind> {
  const seen = new Map<string, number>();
  const newKinds = new Map<string, MetadataKind>();
  docs.forEach((doc, i) => {
    validatePgDocument(doc, i, collection.spec.dimensions);
    const first = seen.get(doc.id);
    if (first !== undefined) throw new TesseraError('DOCUMENT_ID_DUPLICATE', `documents[${i}].id: ${JSON.stringify(doc.id)} appears already as documents[${first}].id`);
    seen.set(doc.id, i);
    for (const [key, value] of Object.entries(doc.metadata ?? {})) {
      const kind = kindOf(value);
      const known = collection.kinds.get(key) ?? newKinds.get(key);
      if (known === undefined) newKinds.set(key, kind);
      else if (known !== kind) {
        throw new TesseraError('METADATA_INVALID', `documents[${i}].metadata.${key}: the collection holds ${known}s in this field but this document gives a ${kind}`);
      }
    }
  });
  return newKinds;
}

function checkWriter(collection: Collection, writer: ModelRef): void {
  const { spec } = collection;
  if (writer.model !== spec.model || writer.dtype !== spec.dtype) {
    throw new TesseraError(
      'COLLECTION_MODEL_MISMATCH',
      `collection ${JSON.stringify(spec.name)} holds vectors of model ${JSON.stringify(spec.model)} (${spec.dtype}) but these come from ${JSON.stringify(writer.model)} (${writer.dtype})`,
    );
  }
}

// ---- the store ----

export class PostgresStore implements VectorStore {
  readonly location: string;
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
  static async open(url: string, options: PostgresStoreOptions = {}): Promise<PostgresStore> {
    const store = new PostgresStore(url, options);
    try {
      await store.#guard(undefined, () => store.#migrate());
    } catch (err) {
      await store.#pool.end().catch(() => {});
      throw err;
    }
    return store;
  }

  // ---- plumbing ----

  /** Maps driver errors to STORE_UNAVAILABLE / STORE_INVALID (and a vanished table to COLLECTION_NOT_FOUND). */
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
    if (err instanceof TesseraError) return err;
    if (isUnavailable(err)) {
      const why = this.#scrub((err as Error).message || (err as { code?: string }).code || String(err));
      return new TesseraError('STORE_UNAVAILABLE', `PostgreSQL at ${this.location} cannot be reached or did not answer in time (${why}); retry shortly`, { cause: err });
    }
    if (isDatabaseError(err)) {
      // The documents table went away under us: dropped by another client meanwhile.
      if (err.code === '42P01' && collection !== undefined) return notFound(collection, this.location);
      if (err.code === '54000') return new TesseraError('DOCUMENT_INVALID', `a document exceeds a PostgreSQL limit: ${this.#scrub(err.message)}`, { cause: err });
      return new TesseraError('STORE_INVALID', `PostgreSQL at ${this.location} refused the request: ${this.#scrub(err.message)} (SQLSTATE ${err.code})`, { cause: err });
    }
    return err;
  }

  /** Runs `work` in one transaction on one connection; a broken connection is discarded. */
  async #tx<T>(work: (client: pg.PoolClient) => Promise<T>, begin = 'BEGIN'): Promise<T> {
    const client = await this.#pool.connect();
    let broken: Error | undefined;
    // A checked-out connection has no listener of the pool's: the server ending it between two
    // statements (a restart: 57P01) would be an uncaught 'error'. Note it; the next statement
    // fails anyway and the connection is discarded on release.
    const onError = (err: Error) => (broken = err);
    client.on('error', onError);
    try {
      await client.query(begin);
      const out = await work(client);
      await client.query('COMMIT');
      return out;
    } catch (err) {
      if (isUnavailable(err)) broken = err as Error;
      else {
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

  async #lookup(name: string, client: pg.ClientBase | pg.Pool = this.#pool, lock = ''): Promise<Collection | undefined> {
    if (typeof name !== 'string' || !COLLECTION_NAME.test(name)) return undefined;
    const { rows } = await client.query<CollectionRow>(
      `SELECT name, table_name, model, dtype, dimensions, fields, created_at FROM tessera_collections WHERE name = $1${lock}`,
      [name],
    );
    return rows[0] && collectionOf(rows[0]);
  }

  async #need(name: string): Promise<Collection> {
    const found = await this.#lookup(name);
    if (!found) throw notFound(name, this.location);
    return found;
  }

  async #countRows(c: Collection, client: pg.ClientBase | pg.Pool = this.#pool): Promise<number> {
    const { rows } = await client.query<{ n: string }>(`SELECT count(*) AS n FROM ${c.table}`);
    return Number(rows[0]!.n);
  }

  // ---- collections ----

  listCollections(): Promise<CollectionInfo[]> {
    return this.#guard(undefined, async () => {
      const { rows } = await this.#pool.query<CollectionRow>('SELECT name, table_name, model, dtype, dimensions, fields, created_at FROM tessera_collections');
      const out: CollectionInfo[] = [];
      for (const row of rows) {
        const c = collectionOf(row);
        try {
          out.push({ ...c.spec, count: await this.#countRows(c) });
        } catch (err) {
          if (!(isDatabaseError(err) && err.code === '42P01')) throw err; // dropped meanwhile
        }
      }
      return out.sort((a, b) => a.name.localeCompare(b.name));
    });
  }

  getCollection(name: string): Promise<CollectionInfo | undefined> {
    return this.#guard(undefined, async () => {
      const c = await this.#lookup(name);
      if (!c) return undefined;
      try {
        return { ...c.spec, count: await this.#countRows(c) };
      } catch (err) {
        if (isDatabaseError(err) && err.code === '42P01') return undefined;
        throw err;
      }
    });
  }

  createCollection(spec: CollectionSpec): Promise<CollectionInfo> {
    return this.#guard(undefined, async () => {
      const name = validateCollectionName(spec.name);
      if (typeof spec.model !== 'string' || spec.model.length === 0) throw invalidArgument('model', 'a model name', spec.model);
      if (typeof spec.dtype !== 'string' || spec.dtype.length === 0) throw invalidArgument('dtype', 'a dtype', spec.dtype);
      if (!Number.isInteger(spec.dimensions) || spec.dimensions < 1 || spec.dimensions > MAX_DIMENSIONS) {
        throw invalidArgument('dimensions', `an integer from 1 to ${MAX_DIMENSIONS} (pgvector's HNSW limit)`, spec.dimensions);
      }
      checkNoNul(spec.model, 'model');
      checkNoNul(spec.dtype, 'dtype');
      const createdAt = new Date().toISOString();
      const { m, efConstruction } = this.#hnsw;
      if (!Number.isInteger(m) || !Number.isInteger(efConstruction)) throw invalidArgument('hnsw', 'integer m and efConstruction', JSON.stringify(this.#hnsw));
      await this.#tx(async (client) => {
        // A concurrent create of the same name waits on the primary key, then finds it taken.
        const { rows } = await client.query<{ table_name: string }>(
          `INSERT INTO tessera_collections (name, table_name, model, dtype, dimensions, created_at)
           VALUES ($1, 'tessera_docs_' || nextval('tessera_docs_seq'), $2, $3, $4, $5)
           ON CONFLICT (name) DO NOTHING RETURNING table_name`,
          [name, spec.model, spec.dtype, spec.dimensions, createdAt],
        );
        if (rows.length === 0) throw new TesseraError('COLLECTION_EXISTS', `a collection ${JSON.stringify(name)} exists already in ${this.location}`);
        const tableName = rows[0]!.table_name;
        const table = ident(tableName);
        await client.query(`CREATE TABLE ${table} (
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
        await client.query(`CREATE INDEX "${tableName}_vector" ON ${table} USING hnsw (vector vector_cosine_ops) WITH (m = ${m}, ef_construction = ${efConstruction})`);
        await client.query(`CREATE INDEX "${tableName}_tsv" ON ${table} USING gin (tsv)`);
        await client.query(`CREATE INDEX "${tableName}_metadata" ON ${table} USING gin (metadata jsonb_path_ops)`);
      });
      return { name, model: spec.model, dtype: spec.dtype, dimensions: spec.dimensions, createdAt, count: 0 };
    });
  }

  dropCollection(name: string): Promise<boolean> {
    return this.#guard(undefined, async () => {
      if (typeof name !== 'string' || !COLLECTION_NAME.test(name)) return false;
      return this.#tx(async (client) => {
        const { rows } = await client.query<{ table_name: string }>('DELETE FROM tessera_collections WHERE name = $1 RETURNING table_name', [name]);
        if (rows.length === 0) return false;
        // Waits for writers and readers of the table to finish (they hold locks on it).
        await client.query(`DROP TABLE IF EXISTS ${ident(rows[0]!.table_name)}`);
        return true;
      });
    });
  }

  // ---- writes ----

  upsert(collection: string, docs: readonly DocumentRecord[], writer: ModelRef): Promise<void> {
    return this.#guard(collection, async () => {
      const seen = await this.#need(collection);
      checkWriter(seen, writer);
      if (docs.length === 0) return;
      // Everything is checked before anything is written: one bad document, nothing stored.
      let forUpdate = checkBatch(docs, seen).size > 0;
      // Rows are locked in id order, so that writers of overlapping batches do not deadlock;
      // should the server still detect one (or a serialization failure), the write is redone.
      const ordered = [...docs].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
      for (let attempt = 1; ; attempt++) {
        try {
          await this.#tx((client) => this.#write(client, collection, docs, ordered, writer, forUpdate));
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

  /** `docs` as given (errors name their positions), `ordered` by id (the order rows are written in). */
  async #write(client: pg.PoolClient, name: string, docs: readonly DocumentRecord[], ordered: readonly DocumentRecord[], writer: ModelRef, forUpdate: boolean): Promise<void> {
    // The row lock keeps the collection from being dropped (or its fields changed) meanwhile.
    const c = await this.#lookup(name, client, forUpdate ? ' FOR UPDATE' : ' FOR SHARE');
    if (!c) throw notFound(name, this.location);
    checkWriter(c, writer);
    const newKinds = checkBatch(docs, c);
    if (newKinds.size > 0) {
      if (!forUpdate) throw new NeedsFieldLock();
      await client.query('UPDATE tessera_collections SET fields = fields || $2::jsonb WHERE name = $1', [name, JSON.stringify(Object.fromEntries(newKinds))]);
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

  delete(collection: string, ids: readonly string[]): Promise<number> {
    return this.#guard(collection, async () => {
      const c = await this.#need(collection);
      ids.forEach((id, i) => validateDocumentId(id, `ids[${i}]`));
      if (ids.length === 0) return 0;
      return this.#tx(async (client) => {
        let removed = 0;
        for (let i = 0; i < ids.length; i += 10_000) {
          removed += (await client.query(`DELETE FROM ${c.table} WHERE id = ANY($1::text[])`, [ids.slice(i, i + 10_000)])).rowCount ?? 0;
        }
        return removed;
      });
    });
  }

  // ---- reads ----

  get(collection: string, ids: readonly string[], options?: { vectors?: boolean }): Promise<(StoredDocument & { vector?: Float32Array })[]> {
    return this.#guard(collection, async () => {
      const c = await this.#need(collection);
      ids.forEach((id, i) => validateDocumentId(id, `ids[${i}]`));
      const columns = options?.vectors ? `${DOC_COLUMNS}, vector::text AS vector` : DOC_COLUMNS;
      const found = new Map<string, StoredDocument & { vector?: Float32Array }>();
      for (let i = 0; i < ids.length; i += 1000) {
        const { rows } = await this.#pool.query<DocRow>(`SELECT ${columns} FROM ${c.table} WHERE id = ANY($1::text[])`, [ids.slice(i, i + 1000)]);
        for (const row of rows) {
          const doc: StoredDocument & { vector?: Float32Array } = documentOf(row);
          if (options?.vectors && row.vector !== undefined) doc.vector = parseVector(row.vector);
          found.set(doc.id, doc);
        }
      }
      return ids.flatMap((id) => found.get(id) ?? []);
    });
  }

  hashes(collection: string): Promise<Map<string, string>> {
    return this.#guard(collection, async () => {
      const c = await this.#need(collection);
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

  async *scan(collection: string, pageSize = 1000): AsyncIterable<{ id: string; modality: Modality; vector: Float32Array }[]> {
    if (!Number.isInteger(pageSize) || pageSize < 1) throw invalidArgument('pageSize', 'a positive integer', pageSize);
    const c = await this.#guard(collection, () => this.#need(collection));
    let last: string | undefined;
    for (;;) {
      const { rows } = await this.#guard(collection, () =>
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

  search(collection: string, query: VectorSearch): Promise<SearchHit[]> {
    return this.#guard(collection, async () => {
      const c = await this.#need(collection);
      const { k, offset } = checkPaging(query);
      const dims = c.spec.dimensions;
      if (!(query.vector instanceof Float32Array) || query.vector.length !== dims) {
        throw new TesseraError('VECTOR_DIMENSIONS_MISMATCH', `query vector: the collection has ${dims} dimensions but the query has ${query.vector?.length ?? 0}`);
      }
      checkMinScore(query.minScore);
      const limit = offset + k;
      const params = new Params([vectorLiteral(query.vector)]);
      const where = whereSql(compileWhere(query, c.kinds, params));
      const sql = `WITH hits AS MATERIALIZED (
          SELECT ${HIT_COLUMNS}, vector <=> $1::vector AS distance FROM ${c.table}${where}
          ORDER BY vector <=> $1::vector LIMIT ${params.add(limit)}
        ) SELECT * FROM hits ORDER BY distance, id`;
      const rows = await this.#tx(async (client) => {
        // Small collections: exact search (the planner may not use the HNSW index), so results
        // are exactly brute force's. Past the threshold: the index, with an ef_search that
        // covers offset + k, and iterative scans (pgvector 0.8) so that a filter the graph's
        // first candidates do not meet does not starve the result; relaxed_order can return
        // neighbours slightly out of order, hence the outer ORDER BY over the materialised hits.
        const ef = String(Math.min(1000, Math.max(40, 2 * limit)));
        await client.query(
          `SELECT set_config('enable_indexscan', CASE WHEN n >= $1 THEN 'on' ELSE 'off' END, true),
                  set_config('hnsw.iterative_scan', CASE WHEN n >= $1 THEN 'relaxed_order' ELSE 'off' END, true),
                  set_config('hnsw.ef_search', $2, true)
           FROM ${rowsUpTo(c.table)} counted`,
          [this.#annThreshold, ef],
        );
        return (await client.query<DocRow & { distance: number }>(sql, params.values)).rows;
      }, 'BEGIN READ ONLY');
      const minScore = query.minScore ?? -Infinity;
      return rows
        .slice(offset)
        .map((row) => hitOf(row, 1 - row.distance))
        .filter((hit) => hit.score >= minScore);
    });
  }

  /** Whether `collection`'s searches go through its HNSW index now (tests, benchmarks). */
  usesIndex(collection: string): Promise<boolean> {
    return this.#guard(collection, async () => {
      const c = await this.#need(collection);
      const { rows } = await this.#pool.query<{ n: string }>(`SELECT n FROM ${rowsUpTo(c.table)} counted`, [this.#annThreshold]);
      return Number(rows[0]!.n) >= this.#annThreshold;
    });
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

  fullTextSearch(collection: string, query: TextSearch): Promise<SearchHit[]> {
    return this.#guard(collection, async () => {
      const c = await this.#need(collection);
      const { k, offset } = checkPaging(query);
      if (typeof query.text !== 'string' || query.text.trim().length === 0) throw new TesseraError('QUERY_INVALID', 'text: expected a non-empty text to search for');
      // Any of the query's words (as the embedded store's match query), ranked by cover density
      // normalised by document length (flag 1), best first. plainto_tsquery reads the text as
      // words, never as syntax; its ' & ' become ' | '.
      const params = new Params([query.text.replaceAll('\u0000', ' ')]);
      const clauses = ['tsv @@ q.q', ...compileWhere(query, c.kinds, params)];
      const { rows } = await this.#pool.query<DocRow & { score: number }>(
        `SELECT ${HIT_COLUMNS}, ts_rank_cd(tsv, q.q, 1) AS score
         FROM ${c.table}, (SELECT replace(plainto_tsquery('${TS_CONFIG}', $1)::text, ' & ', ' | ')::tsquery AS q) q
         ${whereSql(clauses)}
         ORDER BY score DESC, id LIMIT ${params.add(k)} OFFSET ${params.add(offset)}`,
        params.values,
      );
      return rows.map((row) => hitOf(row, row.score));
    });
  }

  count(collection: string, filter?: Filter): Promise<number> {
    return this.#guard(collection, async () => {
      const c = await this.#need(collection);
      const params = new Params();
      const where = whereSql(compileWhere({ filter }, c.kinds, params));
      const { rows } = await this.#pool.query<{ n: string }>(`SELECT count(*) AS n FROM ${c.table}${where}`, params.values);
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

/** Opens the PostgreSQL store at `url` (postgres:// or postgresql://), creating its schema if needed. */
export function openPostgresStore(url: string, options?: PostgresStoreOptions): Promise<PostgresStore> {
  return PostgresStore.open(url, options);
}
