/**
 * The embedded store's backend: LanceDB (https://lancedb.github.io/lancedb/) in a folder, no
 * server, under the collections layer (collections.ts), which hands it validated input only.
 *
 * One collection = one LanceDB table. Its model, dtype, dimensions and creation time live in
 * the table's Arrow schema metadata, written by the same commit that creates the table, so a
 * crash never leaves a collection without them (nor them without a collection).
 *
 * Columns: id, modality, text, image, root, hash, vector (FixedSizeList<Float32>), and one
 * typed, nullable column per metadata key (`m_<key>`: Float64, Bool or Utf8), added by schema
 * evolution the first time a key appears. Why typed columns and not a JSON column: LanceDB 0.31
 * has JSON functions (json_extract, json_get_int, ...) only for its own `lance.json` extension
 * type (JSONB in a binary column), which the JavaScript Arrow writer cannot produce, and on a
 * plain string column they fail at planning ("Failed to coerce arguments"). Typed columns let
 * LanceDB push filters down (prefiltering before the vector search, so `k` still holds) with
 * the right comparison semantics (numbers compare as numbers), and can carry scalar indexes.
 * The price: a field keeps one type per collection; a document giving another type for it is
 * METADATA_INVALID.
 *
 * Writes: one mergeInsert('id') per upsert call (update matched, insert the rest) is one Lance
 * commit: a SIGKILL leaves all of the call or none of it. Writes to one collection are
 * serialised inside the process (LanceDB would otherwise retry conflicting commits), and each
 * rereads the schema under that lock: a field another process added, or a table it dropped or
 * recreated, is StaleCollection, and the layer re-reads the collection.
 */
import { mkdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import type * as LanceModule from '@lancedb/lancedb';
import type * as ArrowModule from 'apache-arrow';
import { KeyedSerializer } from '../concurrency.ts';
import { TesseraError } from '../errors.ts';
import { StaleCollection, type Restrictions, type ScanRow, type StoreBackend } from './backend.ts';
import type { ClassifierStore } from './classifiers.ts';
import { collectionNotFound, Collections } from './collections.ts';
import { FileClassifierStore } from './file-classifiers.ts';
import { compileWhere, idIn, metadataColumn, METADATA_PREFIX } from './lance-where.ts';
import type { CollectionDescriptor, CollectionSpec, DocumentRecord, Filter, Metadata, MetadataKind, Modality, SearchHit, StoredDocument } from './store.ts';

// LanceDB is CommonJS and checks Arrow classes with instanceof: use the same (CommonJS) copy of
// apache-arrow, not the ES module build an `import` would load.
const require = createRequire(import.meta.url);
const arrow = require('apache-arrow') as typeof ArrowModule;
patchAllNullBools();
// LanceDB logs deprecation and statistics notices to stderr at "warn"; a CLI's stderr is the
// user's. Its logger reads LANCEDB_LOG once, when the module loads, hence the require here.
process.env.LANCEDB_LOG ??= 'error';
const lancedb = require('@lancedb/lancedb') as typeof LanceModule;

type ArrowSchema = ArrowModule.Schema;
type ArrowTable = ArrowModule.Table;

const META = { model: 'tessera.model', dtype: 'tessera.dtype', dimensions: 'tessera.dimensions', createdAt: 'tessera.created_at', format: 'tessera.format' } as const;
/** Bumped when the table layout changes incompatibly. */
const FORMAT = '1';
/** Field metadata on `vector`: rows in the table when its ANN index was last trained. */
const ANN_TRAINED_ROWS = 'tessera.ann_trained_rows';
const VECTOR_INDEX = 'vector_idx';
const TEXT_INDEX = 'text_idx';
/** A BTREE on id: fetching documents by id (a "more like this" query's example, change detection) without a scan. */
const ID_INDEX = 'id_idx';
/** Excluded ids up to this many are dropped after the search rather than by a prefilter (an `id NOT IN` prefilter doubled search time at 100k). */
const MAX_POST_EXCLUDED = 100;
const MAX_DIMENSIONS = 65536;

/**
 * How the ANN index is built and searched. The defaults (DEFAULT_ANN) were chosen by
 * measurement with `tessera bench --only search`; see bench/search.ts.
 */
export interface AnnSettings {
  type: 'IVF_PQ' | 'IVF_HNSW_SQ';
  /** IVF partitions = round(rows / rowsPerPartition), at least 1. */
  rowsPerPartition: number;
  /** IVF_PQ: dimensions per PQ sub-vector (8 or 16 use SIMD). */
  dimsPerSubVector?: number;
  /** Partitions probed per query (more are probed when a filter leaves too few hits). */
  nprobes: number;
  /** Re-rank limit x refineFactor candidates on the full vectors (exact scores, better recall). */
  refineFactor?: number;
  /** IVF_HNSW_SQ: candidates per query = max(ef, k x efPerK); graph degree and build effort. */
  ef?: number;
  m?: number;
  efConstruction?: number;
}

/*
 * Chosen by measurement (2026-12, AMD EPYC (Zen 4), 2 cores shared with other work, so latencies
 * are pessimistic): 100k documents of 768-d clustered vectors (1000 Gaussian centres, see
 * bench/search.ts), 100 fresh queries, recall@10 against brute-force exact search.
 *
 *   exact (no index)       10k: p50 44 ms, p99 126 ms      100k: p50 440-550 ms
 *   IVF_PQ, 391 partitions x 48 sub-vectors (16 dims each): build 277 s (!)
 *     nprobes 20, refine 5: recall 0.864   refine 10: 1.000, p50 7.1 ms   nprobes 10, refine 10: 0.998, p50 6.4 ms
 *   IVF_PQ, 96 sub-vectors (8 dims): build 372 s; nprobes 20, refine 10: 1.000, p50 12.9 ms
 *   IVF_HNSW_SQ, 2 partitions (50k rows each), m 20, efConstruction 150: build 175 s
 *     nprobes 2, ef 100: 0.980, p50 3.6 ms   ef 40, refine 2: 0.992, p50 3.9 ms
 *   IVF_HNSW_SQ, 10 partitions (10k rows each), m 20, efConstruction 150: build 25-34 s
 *     nprobes 5, ef 100: 0.923   nprobes 10, ef 50: 0.973-0.980, p50 6.3-6.8 ms
 *     nprobes 10, ef 50, refine 2: 1.000, p50 7.1 ms, p99 12.3 ms      <- chosen
 *   (at 10k, one partition: ef 100: 0.978, p50 1.6 ms; refine 2: 0.984, p50 2.3 ms)
 *
 * IVF_HNSW_SQ with 10k-row partitions builds 8x faster than IVF_PQ at the same recall and
 * latency; refineFactor 2 re-ranks on the full vectors, which lifts recall to 1.0 and makes the
 * scores exact cosines (min_score cuts on true similarities).
 *
 * Through the store (`tessera bench --quick --only search`, 1000-document upserts, same data):
 * 10k: p50 4.8 ms, p99 24 ms, recall 0.976; 100k: p50 9.1 ms, p99 117 ms, recall 1.0; index
 * build at 100k 24 s; 508 MB on disk per 100k; 293 documents/s inserted with index upkeep
 * (retrains at each doubling and folds of new rows into the HNSW graphs dominate that: without
 * an ANN index the same upserts run at ~7000 documents/s).
 */
export const DEFAULT_ANN: AnnSettings = { type: 'IVF_HNSW_SQ', rowsPerPartition: 10_000, m: 20, efConstruction: 150, nprobes: 10, ef: 50, refineFactor: 2 };
/**
 * Exact (flat) search below this many rows (exact p50 ~20 ms at 5k here); an ANN index is built
 * by the write that crosses it (~2 s at 5k), retrained when the table has doubled since.
 */
export const DEFAULT_ANN_THRESHOLD = 5_000;

export interface LanceStoreOptions {
  /** Rows from which a collection gets an ANN index (default DEFAULT_ANN_THRESHOLD). */
  annThreshold?: number;
  ann?: AnnSettings;
  /**
   * Seconds between checks for writes by other processes (LanceDB's read consistency). 0, the
   * default, sees every commit at once (a server serving while `tessera index` writes).
   */
  readConsistencyInterval?: number;
  /** Compact (merge small fragments, fold new rows into indexes) past this many fragments. */
  maxFragments?: number;
  /** Old table versions are kept this long for readers in other processes (ms). */
  keepVersionsMs?: number;
}

/** What a table's schema says about the collection (its fields: the `m_*` columns). */
interface Layout {
  collection: CollectionDescriptor;
  schema: ArrowSchema;
}

function kindOfType(type: ArrowModule.DataType): MetadataKind | undefined {
  if (arrow.DataType.isFloat(type)) return 'number';
  if (arrow.DataType.isBool(type)) return 'boolean';
  if (arrow.DataType.isUtf8(type)) return 'string';
  return undefined;
}

const SQL_NULL_FOR: Record<MetadataKind, string> = { number: 'CAST(NULL AS DOUBLE)', boolean: 'CAST(NULL AS BOOLEAN)', string: 'CAST(NULL AS STRING)' };

function layoutOf(name: string, schema: ArrowSchema): Layout | undefined {
  const meta = schema.metadata;
  const model = meta.get(META.model);
  const dimensions = Number(meta.get(META.dimensions));
  if (model === undefined || !Number.isInteger(dimensions)) return undefined;
  const fields = new Map<string, MetadataKind>();
  for (const field of schema.fields) {
    if (!field.name.startsWith(METADATA_PREFIX)) continue;
    const kind = kindOfType(field.type);
    if (kind) fields.set(field.name.slice(METADATA_PREFIX.length), kind);
  }
  return { collection: { name, model, dtype: meta.get(META.dtype) ?? '', dimensions, createdAt: meta.get(META.createdAt) ?? '', fields }, schema };
}

/** Whether a table is the collection a descriptor was read from (not a recreated one). */
const sameCollection = (a: CollectionDescriptor, b: CollectionDescriptor): boolean =>
  a.createdAt === b.createdAt && a.model === b.model && a.dtype === b.dtype && a.dimensions === b.dimensions;

function baseSchema(spec: CollectionSpec, createdAt: string): ArrowSchema {
  return new arrow.Schema(
    [
      new arrow.Field('id', new arrow.Utf8(), false),
      new arrow.Field('modality', new arrow.Utf8(), false),
      new arrow.Field('text', new arrow.Utf8(), true),
      new arrow.Field('image', new arrow.Utf8(), true),
      new arrow.Field('root', new arrow.Utf8(), true),
      new arrow.Field('hash', new arrow.Utf8(), false),
      new arrow.Field('vector', new arrow.FixedSizeList(spec.dimensions, new arrow.Field('item', new arrow.Float32(), true)), false),
    ],
    new Map([
      [META.format, FORMAT],
      [META.model, spec.model],
      [META.dtype, spec.dtype],
      [META.dimensions, String(spec.dimensions)],
      [META.createdAt, createdAt],
    ]),
  );
}

/** An Arrow table of `docs` with exactly `schema`'s columns (absent metadata: null). */
function toArrow(schema: ArrowSchema, docs: readonly DocumentRecord[], dims: number): ArrowTable {
  const n = docs.length;
  const children = schema.fields.map((field) => {
    if (field.name === 'vector') {
      const flat = new Float32Array(n * dims);
      docs.forEach((d, i) => flat.set(d.vector, i * dims));
      const child = arrow.makeData({ type: new arrow.Float32(), length: n * dims, nullCount: 0, data: flat });
      return arrow.makeData({ type: field.type as ArrowModule.FixedSizeList, length: n, nullCount: 0, child });
    }
    let values: (string | number | boolean | null)[];
    if (field.name.startsWith(METADATA_PREFIX)) {
      const key = field.name.slice(METADATA_PREFIX.length);
      values = docs.map((d) => d.metadata[key] ?? null);
    } else {
      const name = field.name as 'id' | 'modality' | 'text' | 'image' | 'root' | 'hash';
      values = docs.map((d) => d[name] ?? null);
    }
    if (arrow.DataType.isBool(field.type)) return boolData(values as (boolean | null)[]);
    return arrow.vectorFromArray(values, field.type).data[0]!;
  });
  const struct = arrow.makeData({ type: new arrow.Struct(schema.fields), length: n, nullCount: 0, children });
  return new arrow.Table([new arrow.RecordBatch(schema, struct)]);
}

/**
 * A boolean column with its value buffer always allocated (zeros where null), so that the
 * serialiser can write it out (see patchAllNullBools).
 */
function boolData(values: readonly (boolean | null)[]): ArrowModule.Data<ArrowModule.Bool> {
  const bytes = Math.ceil(values.length / 8);
  const data = new Uint8Array(bytes);
  const valid = new Uint8Array(bytes);
  let nullCount = 0;
  values.forEach((v, i) => {
    if (v === null) nullCount++;
    else {
      valid[i >> 3]! |= 1 << (i & 7);
      if (v) data[i >> 3]! |= 1 << (i & 7);
    }
  });
  return arrow.makeData({ type: new arrow.Bool(), length: values.length, nullCount, data, nullBitmap: valid });
}

/**
 * apache-arrow 18's IPC writer gives an all-null boolean column an empty value buffer
 * (apache/arrow-js#68, fixed upstream in #392; LanceDB 0.31 accepts Arrow up to 18.1 only),
 * and Lance refuses such a batch ("Spill has sent an error"): a write of documents that all
 * lack a boolean key the collection has would fail. The validity bitmap is written before
 * this visitor runs, so handing it the same buffers with a null count of 0 writes the
 * (zeroed) values and changes nothing else.
 */
function patchAllNullBools(): void {
  const { VectorAssembler } = require('apache-arrow/visitor/vectorassembler') as { VectorAssembler: { prototype: { visitBool(data: ArrowModule.Data): unknown } } };
  const visitBool = VectorAssembler.prototype.visitBool;
  if ((visitBool as { patched?: boolean }).patched) return;
  const patched = function (this: unknown, data: ArrowModule.Data) {
    if (data.length > 0 && data.nullCount >= data.length && data.values instanceof Uint8Array && data.values.length * 8 >= data.length) {
      const buffers = [undefined, data.values, data.nullBitmap, undefined] as unknown as Parameters<typeof data.clone>[4];
      return visitBool.call(this, data.clone(data.type, data.offset, data.length, 0, buffers));
    }
    return visitBool.call(this, data);
  };
  VectorAssembler.prototype.visitBool = Object.assign(patched, { patched: true });
}

/** Plain JS values of one result row (the `toArray()` rows of LanceDB are Arrow proxies). */
type Row = Record<string, unknown>;

function documentOf(row: Row, kinds: ReadonlyMap<string, MetadataKind>): StoredDocument {
  const metadata: Metadata = {};
  for (const key of kinds.keys()) {
    const v = row[metadataColumn(key)];
    if (v !== null && v !== undefined) metadata[key] = v as string | number | boolean;
  }
  const doc: StoredDocument = { id: row.id as string, modality: row.modality as Modality, metadata, hash: row.hash as string };
  if (typeof row.text === 'string') doc.text = row.text;
  if (typeof row.image === 'string') doc.image = row.image;
  if (typeof row.root === 'string') doc.root = row.root;
  return doc;
}

function vectorOf(value: unknown): Float32Array {
  // An Arrow Vector of Float32 for a FixedSizeList cell; copy it out of LanceDB's buffers.
  const v = value as { toArray(): Float32Array };
  return new Float32Array(v.toArray());
}

function hitOf(row: Row, kinds: ReadonlyMap<string, MetadataKind>, score: number): SearchHit {
  const { id, modality, text, image, metadata } = documentOf(row, kinds);
  const hit: SearchHit = { id, modality, metadata, score };
  if (text !== undefined) hit.text = text;
  if (image !== undefined) hit.image = image;
  return hit;
}


export class LanceBackend implements StoreBackend {
  readonly location: string;
  readonly maxDimensions = MAX_DIMENSIONS;
  readonly #db: LanceModule.Connection;
  readonly #options: Required<Omit<LanceStoreOptions, 'readConsistencyInterval'>>;
  readonly #tables = new Map<string, Promise<LanceModule.Table>>();
  /** Tail of each collection's write queue. */
  readonly #locks = new KeyedSerializer();
  /** ANN index builds running in the background, by collection. */
  readonly #builds = new Map<string, Promise<void>>();
  /** The last background build's failure, by collection (retried by the next write). */
  readonly #buildErrors = new Map<string, Error>();
  #closed = false;
  /** Few-shot classifiers: files beside the tables (file-classifiers.ts). */
  readonly classifiers: ClassifierStore;

  private constructor(location: string, db: LanceModule.Connection, options: LanceStoreOptions) {
    this.location = location;
    this.classifiers = new FileClassifierStore(location);
    this.#db = db;
    this.#options = {
      annThreshold: options.annThreshold ?? DEFAULT_ANN_THRESHOLD,
      ann: options.ann ?? DEFAULT_ANN,
      maxFragments: options.maxFragments ?? 32,
      keepVersionsMs: options.keepVersionsMs ?? 10 * 60_000,
    };
  }

  /** Opens (creating it if needed) the store in folder `dir`. STORE_INVALID if it cannot. */
  static async open(dir: string, options: LanceStoreOptions = {}): Promise<LanceBackend> {
    try {
      mkdirSync(dir, { recursive: true });
      if (!statSync(dir).isDirectory()) throw new Error('not a folder');
    } catch (cause) {
      throw new TesseraError('STORE_INVALID', `the store folder ${dir} cannot be created or is not a folder: ${(cause as Error).message}`, { cause });
    }
    const db = await lancedb.connect(dir, { readConsistencyInterval: options.readConsistencyInterval ?? 0 });
    return new LanceBackend(dir, db, options);
  }

  // ---- plumbing ----

  #serialize<T>(name: string, work: () => Promise<T>): Promise<T> {
    return this.#locks.run(name, work);
  }

  async #tableNames(): Promise<string[]> {
    const names: string[] = [];
    for (;;) {
      const page = await this.#db.tableNames({ startAfter: names.at(-1), limit: 1000 });
      names.push(...page);
      if (page.length < 1000) return names;
    }
  }

  /** The open table of a collection and its schema read now, or undefined when there is none (or it is not ours). */
  async #open(name: string): Promise<{ table: LanceModule.Table; layout: Layout } | undefined> {
    if (this.#closed) throw new Error('the store is closed');
    let pending = this.#tables.get(name);
    if (!pending) {
      pending = this.#db.openTable(name);
      this.#tables.set(name, pending);
    }
    let table: LanceModule.Table;
    try {
      table = await pending;
    } catch {
      if (this.#tables.get(name) === pending) this.#tables.delete(name);
      return undefined;
    }
    let schema: ArrowSchema;
    try {
      schema = await table.schema();
    } catch {
      // Dropped by another process since we opened it.
      if (this.#tables.get(name) === pending) this.#tables.delete(name);
      return undefined;
    }
    const layout = layoutOf(name, schema);
    return layout && { table, layout };
  }

  /** For the index tools below, which take a name: COLLECTION_NOT_FOUND. */
  async #need(name: string): Promise<{ table: LanceModule.Table; layout: Layout }> {
    const found = await this.#open(name);
    if (!found) throw collectionNotFound(name, this.location);
    return found;
  }

  /**
   * The table of the collection `c` describes, its schema reread: StaleCollection when it was
   * dropped or recreated by another process since. Its fields may have grown (other writers).
   */
  async #current(c: CollectionDescriptor): Promise<{ table: LanceModule.Table; layout: Layout }> {
    const found = await this.#open(c.name);
    if (!found) throw new StaleCollection(c.name, 'missing');
    if (!sameCollection(found.layout.collection, c)) throw new StaleCollection(c.name, 'changed');
    return found;
  }

  // ---- collections ----

  async list(): Promise<CollectionDescriptor[]> {
    const out: CollectionDescriptor[] = [];
    for (const name of await this.#tableNames()) {
      const found = await this.#open(name);
      if (found) out.push(found.layout.collection);
    }
    return out;
  }

  async describe(name: string): Promise<CollectionDescriptor | undefined> {
    return (await this.#open(name))?.layout.collection;
  }

  create(spec: CollectionSpec, createdAt: string): Promise<CollectionDescriptor> {
    const { name } = spec;
    return this.#serialize(name, async () => {
      const schema = baseSchema(spec, createdAt);
      const create = () => this.#db.createEmptyTable(name, schema, { mode: 'create', existOk: false });
      let table: LanceModule.Table;
      try {
        table = await create();
      } catch (cause) {
        if (await this.#open(name)) throw new TesseraError('COLLECTION_EXISTS', `a collection ${JSON.stringify(name)} exists already in ${this.location}`);
        // A table folder without a readable first version: what a crash during a previous
        // create leaves. It holds nothing; replace it.
        if (!(await this.#tableNames()).includes(name)) throw cause;
        await this.#db.dropTable(name);
        table = await create();
      }
      this.#tables.set(name, Promise.resolve(table));
      return layoutOf(name, schema)!.collection;
    });
  }

  drop(name: string): Promise<boolean> {
    return this.#serialize(name, async () => {
      if (!(await this.#tableNames()).includes(name)) return false;
      const cached = this.#tables.get(name);
      this.#tables.delete(name);
      if (cached) await cached.then((t) => t.close(), () => {});
      await this.#db.dropTable(name);
      return true;
    });
  }

  // ---- writes ----

  upsert(c: CollectionDescriptor, docs: readonly DocumentRecord[], fields: ReadonlyMap<string, MetadataKind>, remove?: readonly string[]): Promise<void> {
    // Under the write lock, on the schema as it is now: no other write of this process can add
    // a field meanwhile; one of another process makes the commits conflict (caught below).
    return this.#serialize(c.name, async () => {
      const { table, layout } = await this.#current(c);
      const stored = layout.collection.fields;
      const added = [...fields].filter(([key]) => !stored.has(key));
      if ([...fields].some(([key, kind]) => stored.has(key) && stored.get(key) !== kind)) throw new StaleCollection(c.name, 'changed');
      let schema = layout.schema;
      try {
        if (added.length > 0) {
          // A commit of its own before the data; a crash between them leaves only empty columns.
          await table.addColumns(added.map(([key, kind]) => ({ name: metadataColumn(key), valueSql: SQL_NULL_FOR[kind] })));
          schema = await table.schema();
        }
        let merge = table.mergeInsert('id').whenMatchedUpdateAll().whenNotMatchedInsertAll();
        // Rows to remove go in the same commit: target rows no new document matches, of these ids.
        if (remove && remove.length > 0) merge = merge.whenNotMatchedBySourceDelete({ where: idIn(remove) });
        await merge.execute(toArrow(schema, docs, c.dimensions));
      } catch (err) {
        // Another process changed the schema meanwhile (added a field, perhaps this one, or
        // dropped the table) and the commits conflicted: the layer re-reads and redoes the call.
        const now = await table.schema().catch(() => undefined);
        if (!now || now.fields.map((f) => f.name).join() !== schema.fields.map((f) => f.name).join()) throw new StaleCollection(c.name, 'changed');
        throw err;
      }
      await this.#maintain(c.name, table, c.dimensions);
    });
  }

  delete(c: CollectionDescriptor, ids: readonly string[]): Promise<number> {
    return this.#serialize(c.name, async () => {
      const { table } = await this.#current(c);
      let removed = 0;
      // One commit per call when it fits one statement, which every realistic call does.
      for (let i = 0; i < ids.length; i += 10_000) removed += (await table.delete(idIn(ids.slice(i, i + 10_000)))).numDeletedRows;
      return removed;
    });
  }
  /**
   * Index upkeep after a write: the FTS index (LanceDB searches rows written after it, so it
   * only needs folding in for speed), the ANN index once the table crosses the threshold
   * (retrained when the table has doubled since), and compaction of the small fragments each
   * write leaves (which also folds new rows into both indexes).
   *
   * ANN builds run in the background, as Qdrant's optimiser does: the write that asks for one
   * returns at once, later writes go on meanwhile, and searches keep using the previous index
   * (LanceDB builds the new one from a snapshot and swaps it in by one commit; a crash before
   * that commit leaves the old one in place). No compaction runs during a build: rewriting
   * fragments under it would conflict with its commit.
   */
  async #maintain(name: string, table: LanceModule.Table, dims: number): Promise<void> {
    const indices = await table.listIndices();
    if (!indices.some((i) => i.name === TEXT_INDEX)) {
      await table.createIndex('text', { config: lancedb.Index.fts({ withPosition: false }), name: TEXT_INDEX });
    }
    if (!indices.some((i) => i.name === ID_INDEX)) {
      await table.createIndex('id', { config: lancedb.Index.btree(), name: ID_INDEX });
    }
    if (this.#builds.has(name)) return;
    const rows = await table.countRows();
    const ann = indices.find((i) => i.name === VECTOR_INDEX);
    const { annThreshold } = this.#options;
    if (rows >= annThreshold) {
      const trained = ann ? Number((await table.schema()).fields.find((f) => f.name === 'vector')?.metadata.get(ANN_TRAINED_ROWS) ?? 0) : 0;
      if (!ann || rows >= 2 * trained) {
        this.#buildInBackground(name, table, dims);
        return;
      }
    }
    const stats = await table.stats();
    const unindexed = ann ? ((await table.indexStats(VECTOR_INDEX))?.numUnindexedRows ?? 0) : 0;
    // LanceDB's optimize() compacts and folds new rows into every index in one go. Unindexed
    // rows are searched exactly meanwhile (~4 ms per 1000 rows of 768-d here): at a quarter of
    // the table unindexed, p50 at 100k was 77 ms against 28 ms at 5%; 10% is between.
    if (stats.fragmentStats.numSmallFragments > this.#options.maxFragments || unindexed > Math.max(annThreshold, rows * 0.1)) {
      await table.optimize({ cleanupOlderThan: new Date(Date.now() - this.#options.keepVersionsMs) });
    }
  }

  #buildInBackground(name: string, table: LanceModule.Table, dims: number): void {
    const build = (async () => {
      try {
        await this.#buildAnn(name, table, dims);
        this.#buildErrors.delete(name);
      } catch (err) {
        // Kept for indexState; the next write that needs an index tries again.
        this.#buildErrors.set(name, err as Error);
      } finally {
        this.#builds.delete(name);
      }
    })();
    this.#builds.set(name, build);
  }

  /** Resolves once no ANN build of the collection runs (tests, benchmarks, close). */
  async indexBuilt(collection: string): Promise<void> {
    for (let build = this.#builds.get(collection); build; build = this.#builds.get(collection)) await build;
  }

  /** Builds (or retrains) the ANN index now, whatever the size, and waits for it; benchmarks time this. */
  async buildAnnIndex(collection: string): Promise<void> {
    await this.indexBuilt(collection);
    const { table, layout } = await this.#need(collection);
    const build = this.#buildAnn(collection, table, layout.collection.dimensions);
    this.#builds.set(collection, build.catch(() => {}));
    try {
      await build;
    } finally {
      this.#builds.delete(collection);
    }
  }

  /** Which indexes a collection has and how many rows they cover (tests, benchmarks, `tessera` status). */
  async indexState(collection: string): Promise<{ ann?: { type: string; indexedRows: number; unindexedRows: number }; fullText: boolean; building: boolean; buildError?: string }> {
    const { table } = await this.#need(collection);
    const indices = await table.listIndices();
    const ann = indices.find((i) => i.name === VECTOR_INDEX);
    const stats = ann && (await table.indexStats(VECTOR_INDEX));
    return {
      ann: ann && stats ? { type: stats.indexType, indexedRows: stats.numIndexedRows, unindexedRows: stats.numUnindexedRows } : undefined,
      fullText: indices.some((i) => i.name === TEXT_INDEX),
      building: this.#builds.has(collection),
      buildError: this.#buildErrors.get(collection)?.message,
    };
  }

  /**
   * Trains an index on the table as it is now and swaps it in by one commit (replace), then
   * records the row count it was trained on (under the write lock: a schema commit must not
   * race a write's). Writes may commit meanwhile; their rows are searched exactly until the
   * next compaction folds them in.
   */
  async #buildAnn(name: string, table: LanceModule.Table, dims: number): Promise<void> {
    const a = this.#options.ann;
    const rows = await table.countRows();
    const numPartitions = Math.max(1, Math.round(rows / a.rowsPerPartition));
    const config =
      a.type === 'IVF_PQ'
        ? lancedb.Index.ivfPq({ distanceType: 'cosine', numPartitions, numSubVectors: Math.max(1, Math.floor(dims / (a.dimsPerSubVector ?? 16))) })
        : lancedb.Index.hnswSq({ distanceType: 'cosine', numPartitions, m: a.m, efConstruction: a.efConstruction });
    await table.createIndex('vector', { config, name: VECTOR_INDEX, replace: true });
    await this.#serialize(name, () => table.updateFieldMetadata([{ path: 'vector', metadata: { [ANN_TRAINED_ROWS]: String(rows) } }]));
  }

  /**
   * Merges small fragments, folds unindexed rows into the indexes and removes table versions
   * older than `keepVersionsMs` (or `olderThan`). Called by writes as needed; benchmarks call
   * it to measure bytes on disk.
   */
  async compact(collection: string, olderThan?: Date): Promise<void> {
    const cleanupOlderThan = olderThan ?? new Date(Date.now() - this.#options.keepVersionsMs);
    await this.#serialize(collection, async () => {
      await (await this.#need(collection)).table.optimize({ cleanupOlderThan });
    });
  }


  // ---- reads ----

  async get(c: CollectionDescriptor, ids: readonly string[], vectors: boolean): Promise<(StoredDocument & { vector?: Float32Array })[]> {
    const { table, layout } = await this.#current(c);
    const { fields } = layout.collection;
    const columns = ['id', 'modality', 'text', 'image', 'root', 'hash', ...[...fields.keys()].map(metadataColumn)];
    if (vectors) columns.push('vector');
    const found: (StoredDocument & { vector?: Float32Array })[] = [];
    for (let i = 0; i < ids.length; i += 1000) {
      const rows = (await table.query().where(idIn(ids.slice(i, i + 1000))).select(columns).toArray()) as Row[];
      for (const row of rows) {
        const doc: StoredDocument & { vector?: Float32Array } = documentOf(row, fields);
        if (vectors) doc.vector = vectorOf(row.vector);
        found.push(doc);
      }
    }
    return found;
  }

  async hashes(c: CollectionDescriptor): Promise<Map<string, string>> {
    const { table } = await this.#current(c);
    const out = new Map<string, string>();
    for await (const batch of table.query().select(['id', 'hash'])) {
      const ids = batch.getChild('id')!;
      const hashes = batch.getChild('hash')!;
      for (let i = 0; i < batch.numRows; i++) out.set(ids.get(i) as string, hashes.get(i) as string);
    }
    return out;
  }

  async *scan(c: CollectionDescriptor, pageSize: number): AsyncIterable<ScanRow[]> {
    const { table } = await this.#current(c);
    let page: ScanRow[] = [];
    for await (const batch of table.query().select(['id', 'modality', 'vector'])) {
      const ids = batch.getChild('id')!;
      const modalities = batch.getChild('modality')!;
      const vectors = batch.getChild('vector')!;
      for (let i = 0; i < batch.numRows; i++) {
        page.push({ id: ids.get(i) as string, modality: modalities.get(i) as Modality, vector: vectorOf(vectors.get(i)) });
        if (page.length >= pageSize) {
          yield page;
          page = [];
        }
      }
    }
    if (page.length > 0) yield page;
  }

  async search(c: CollectionDescriptor, query: Restrictions & { vector: Float32Array; limit: number }): Promise<SearchHit[]> {
    const { table, layout } = await this.#current(c);
    const { fields } = layout.collection;
    const a = this.#options.ann;
    const excluded = query.excludeIds ?? [];
    // A few excluded ids (the examples of "more like this"): ask for as many more and drop them after.
    const after = excluded.length > 0 && excluded.length <= MAX_POST_EXCLUDED ? new Set(excluded) : undefined;
    const limit = query.limit + (after ? after.size : 0);
    let q = table
      .vectorSearch(query.vector)
      .column('vector')
      .distanceType('cosine')
      .select([...resultColumns(fields), '_distance'])
      .limit(limit);
    // Without an index LanceDB ignores these and searches exactly.
    q = q.minimumNprobes(a.nprobes).maximumNprobes(Math.max(a.nprobes, 4 * a.nprobes));
    if (a.refineFactor !== undefined) q = q.refineFactor(a.refineFactor);
    if (a.ef !== undefined) q = q.ef(Math.max(a.ef, 2 * limit));
    const where = compileWhere(after ? { ...query, excludeIds: undefined } : query, fields);
    if (where) q = q.where(where);
    const rows = (await q.toArray()) as Row[];
    const kept = after ? rows.filter((row) => !after.has(row.id as string)).slice(0, query.limit) : rows;
    return kept.map((row) => hitOf(row, fields, 1 - (row._distance as number)));
  }

  async fullTextSearch(c: CollectionDescriptor, query: Restrictions & { text: string; limit: number }): Promise<SearchHit[]> {
    const { table, layout } = await this.#current(c);
    const { fields } = layout.collection;
    if (!(await table.listIndices()).some((i) => i.name === TEXT_INDEX)) return [];
    let q = table
      .query()
      .fullTextSearch(new lancedb.MatchQuery(query.text, 'text'))
      .select([...resultColumns(fields), '_score'])
      .limit(query.limit);
    const where = compileWhere(query, fields);
    if (where) q = q.where(where);
    const rows = (await q.toArray()) as Row[];
    return rows.map((row) => hitOf(row, fields, row._score as number));
  }

  async count(c: CollectionDescriptor, filter?: Filter): Promise<number> {
    const { table, layout } = await this.#current(c);
    return table.countRows(compileWhere({ filter }, layout.collection.fields));
  }

  /** Embedded: the folder is always there once opened. */
  async ping(): Promise<void> {}

  async close(): Promise<void> {
    if (this.#closed) return;
    // An index build under way finishes first: a CLI run leaves its collection indexed.
    while (this.#builds.size > 0) await Promise.all(this.#builds.values());
    await this.#locks.idle();
    this.#closed = true;
    for (const pending of this.#tables.values()) await pending.then((t) => t.close(), () => {});
    this.#tables.clear();
    this.#db.close();
  }
}

const resultColumns = (fields: ReadonlyMap<string, MetadataKind>): string[] => ['id', 'modality', 'text', 'image', ...[...fields.keys()].map(metadataColumn)];

/** The embedded store as callers use it: the collections layer over LanceDB, and its index tools. */
export class LanceStore extends Collections<LanceBackend> {
  /** Resolves once no ANN build of the collection runs (tests, benchmarks). */
  indexBuilt(collection: string): Promise<void> {
    return this.backend.indexBuilt(collection);
  }
  /** Builds (or retrains) the ANN index now and waits for it; benchmarks time this. */
  buildAnnIndex(collection: string): Promise<void> {
    return this.backend.buildAnnIndex(collection);
  }
  indexState(collection: string): ReturnType<LanceBackend['indexState']> {
    return this.backend.indexState(collection);
  }
  compact(collection: string, olderThan?: Date): Promise<void> {
    return this.backend.compact(collection, olderThan);
  }
}

/** Opens the LanceDB store in folder `dir`. */
export async function openLanceStore(dir: string, options?: LanceStoreOptions): Promise<LanceStore> {
  return new LanceStore(await LanceBackend.open(dir, options));
}
