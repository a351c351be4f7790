/**
 * The PostgreSQL store's classifiers: one row each in tessera_classifiers (migration 2), so
 * every replica on the database sees the same ones. An update is one `UPDATE ... WHERE id = $1
 * AND version = $2`: atomic, and a compare-and-swap between replicas. Creating takes a
 * transaction-scoped advisory lock on the owner, so that two replicas creating at once cannot
 * both pass the per-key limit.
 */
import type pg from 'pg';
import { TesseraError } from '../errors.ts';
import { CLASSIFIER_ID, weightsFromBytes, weightsToBytes, type ClassifierAccess, type ClassifierRecord, type ClassifierStore } from './classifiers.ts';

/** First key of the two-key advisory locks on owners ("clsf"); migrations use the one-key form. */
const OWNER_LOCK_SPACE = 1668051814;

export const CLASSIFIERS_TABLE_SQL = [
  `CREATE TABLE tessera_classifiers (
     id text COLLATE "C" PRIMARY KEY,
     owner text NOT NULL,
     access text NOT NULL CHECK (access IN ('private', 'public')),
     model text NOT NULL,
     dtype text NOT NULL,
     model_name text NOT NULL,
     dimensions integer NOT NULL CHECK (dimensions > 0),
     labels jsonb NOT NULL,
     weights bytea NOT NULL,
     zero_shot boolean NOT NULL,
     version integer NOT NULL,
     samples bigint NOT NULL,
     used_number bigint NOT NULL DEFAULT 0,
     created_at timestamptz NOT NULL,
     updated_at timestamptz NOT NULL,
     used_at timestamptz
   )`,
  'CREATE INDEX tessera_classifiers_owner ON tessera_classifiers (owner, created_at)',
];

interface Row {
  id: string;
  owner: string;
  access: ClassifierAccess;
  model: string;
  dtype: string;
  model_name: string;
  dimensions: number;
  labels: string[];
  weights: Buffer;
  zero_shot: boolean;
  version: number;
  samples: string;
  used_number: string;
  created_at: Date;
  updated_at: Date;
  used_at: Date | null;
}

const COLUMNS = 'id, owner, access, model, dtype, model_name, dimensions, labels, weights, zero_shot, version, samples, used_number, created_at, updated_at, used_at';

function recordOf(row: Row): ClassifierRecord {
  return {
    id: row.id,
    owner: row.owner,
    access: row.access,
    model: row.model,
    dtype: row.dtype,
    modelName: row.model_name,
    dimensions: row.dimensions,
    labels: row.labels,
    weights: weightsFromBytes(row.weights),
    zeroShot: row.zero_shot,
    version: row.version,
    samples: Number(row.samples),
    usedNumber: Number(row.used_number),
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
    usedAt: row.used_at ? row.used_at.toISOString() : null,
  };
}

/** How the store lends its pool: errors already mapped (STORE_UNAVAILABLE, ...). */
export interface PgAccess {
  query<R extends pg.QueryResultRow>(sql: string, params?: unknown[]): Promise<pg.QueryResult<R>>;
  tx<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T>;
}

export class PgClassifierStore implements ClassifierStore {
  constructor(private readonly db: PgAccess) {}

  async create(record: ClassifierRecord, maxPerOwner: number): Promise<void> {
    if (!CLASSIFIER_ID.test(record.id)) throw new Error(`classifier ids are UUIDs, got ${JSON.stringify(record.id)}`);
    await this.db.tx(async (client) => {
      await client.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [OWNER_LOCK_SPACE, record.owner]);
      const { rows } = await client.query<{ n: string }>('SELECT count(*) AS n FROM tessera_classifiers WHERE owner = $1', [record.owner]);
      if (Number(rows[0]!.n) >= maxPerOwner) {
        throw new TesseraError('CLASSIFIER_COUNT_LIMIT', `the key ${JSON.stringify(record.owner)} has ${maxPerOwner} classifiers already, the most it may have; delete one (DELETE /v1/classifiers/{id}) first`);
      }
      await client.query(
        `INSERT INTO tessera_classifiers (${COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10, $11, $12, $13, $14, $15, $16)`,
        [
          record.id, record.owner, record.access, record.model, record.dtype, record.modelName, record.dimensions, JSON.stringify(record.labels),
          weightsToBytes(record.weights), record.zeroShot, record.version, record.samples, record.usedNumber, record.createdAt, record.updatedAt, record.usedAt,
        ],
      );
    });
  }

  async get(id: string): Promise<ClassifierRecord | undefined> {
    if (typeof id !== 'string' || !CLASSIFIER_ID.test(id)) return undefined;
    const { rows } = await this.db.query<Row>(`SELECT ${COLUMNS} FROM tessera_classifiers WHERE id = $1`, [id]);
    return rows[0] && recordOf(rows[0]);
  }

  async list(owner: string): Promise<ClassifierRecord[]> {
    const { rows } = await this.db.query<Row>(`SELECT ${COLUMNS} FROM tessera_classifiers WHERE owner = $1 ORDER BY created_at, id`, [owner]);
    return rows.map(recordOf);
  }

  async countByOwner(owner: string): Promise<number> {
    const { rows } = await this.db.query<{ n: string }>('SELECT count(*) AS n FROM tessera_classifiers WHERE owner = $1', [owner]);
    return Number(rows[0]!.n);
  }

  async update(record: ClassifierRecord, expectedVersion: number): Promise<boolean> {
    if (record.version !== expectedVersion + 1) throw new Error(`an update writes version ${expectedVersion + 1}, got ${record.version}`);
    if (!CLASSIFIER_ID.test(record.id)) return false;
    const result = await this.db.query(
      `UPDATE tessera_classifiers SET labels = $3::jsonb, weights = $4, version = $5, samples = $6, updated_at = $7, zero_shot = $8
       WHERE id = $1 AND version = $2`,
      [record.id, expectedVersion, JSON.stringify(record.labels), weightsToBytes(record.weights), record.version, record.samples, record.updatedAt, record.zeroShot],
    );
    return result.rowCount === 1;
  }

  async recordUse(id: string, at: string): Promise<void> {
    if (!CLASSIFIER_ID.test(id)) return;
    await this.db.query('UPDATE tessera_classifiers SET used_number = used_number + 1, used_at = greatest(used_at, $2::timestamptz) WHERE id = $1', [id, at]);
  }

  async delete(id: string): Promise<boolean> {
    if (typeof id !== 'string' || !CLASSIFIER_ID.test(id)) return false;
    const result = await this.db.query('DELETE FROM tessera_classifiers WHERE id = $1', [id]);
    return result.rowCount === 1;
  }
}
