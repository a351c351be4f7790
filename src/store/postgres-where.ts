/**
 * Compiles parsed filters, modality and excluded ids into a parameterised PostgreSQL `WHERE`
 * over a documents table (columns id, modality, metadata JSONB). Every value, metadata keys
 * included, travels as a bind parameter ($1, $2, ...); the SQL text holds only our own fixed
 * fragments, so no user string is ever spliced into it.
 *
 * Type semantics, as the embedded store has them: a collection keeps one type per metadata
 * field (recorded in `kinds`, enforced by upsert), so
 *   - equality is JSONB containment (`metadata @> {"key": value}`): type-strict (1 is not "1"),
 *     numbers compare as numbers (1 = 1.0), and the GIN index (jsonb_path_ops) serves it;
 *   - $ne and $in compare JSONB values (still type-strict);
 *   - ranges compare as float8 on number fields and bytewise (COLLATE "C", as the embedded
 *     store and JavaScript compare) on string fields (on booleans the collections layer
 *     refuses them, as it refuses a value of another kind than its field's);
 *   - a missing field yields SQL NULL, which matches no condition, not even $ne;
 *   - a field the collection has never seen matches nothing.
 */
import { conditionsOf, fieldConditions, LAT_KEY, LON_KEY, placeConditions, type FilterOperator } from './filter.ts';
import type { Filter, MetadataKind, MetadataValue, Modality } from './store.ts';


/** Collects bind parameters and hands out their placeholders. */
export class Params {
  readonly values: unknown[] = [];
  constructor(initial: readonly unknown[] = []) {
    this.values.push(...initial);
  }
  add(value: unknown): string {
    this.values.push(value);
    return `$${this.values.length}`;
  }
}

const RANGE_OP: Record<'$gt' | '$gte' | '$lt' | '$lte', string> = { $gt: '>', $gte: '>=', $lt: '<', $lte: '<=' };

function clause(key: string, kind: MetadataKind, op: FilterOperator, value: MetadataValue | MetadataValue[], params: Params): string {
  switch (op) {
    case '$eq':
      return `metadata @> ${params.add(JSON.stringify({ [key]: value }))}::jsonb`;
    case '$ne':
      return `(metadata -> ${params.add(key)}) <> ${params.add(JSON.stringify(value))}::jsonb`;
    case '$in': {
      const values = value as MetadataValue[];
      if (values.length === 0) return 'FALSE';
      return `(metadata -> ${params.add(key)}) = ANY(${params.add(values.map((v) => JSON.stringify(v)))}::jsonb[])`;
    }
    default: {
      const sqlOp = RANGE_OP[op];
      if (kind === 'number') return `((metadata ->> ${params.add(key)})::float8) ${sqlOp} ${params.add(value)}::float8`;
      return `((metadata ->> ${params.add(key)}) COLLATE "C") ${sqlOp} (${params.add(value)}::text COLLATE "C")`;
    }
  }
}

/** The SQL conditions of `filter` (ANDed by the caller); its values were checked against `kinds`. */
export function compileFilter(filter: Filter, kinds: ReadonlyMap<string, MetadataKind>, params: Params): string[] {
  const clauses: string[] = [];
  for (const [key, condition] of fieldConditions(filter)) {
    const kind = kinds.get(key);
    if (kind === undefined) {
      clauses.push('FALSE');
      continue;
    }
    for (const [op, value] of conditionsOf(condition)) clauses.push(clause(key, kind, op, value, params));
  }
  if (filter.$near || filter.$within) {
    // A collection without numeric coordinates has no place to match.
    if (kinds.get(LAT_KEY) !== 'number' || kinds.get(LON_KEY) !== 'number') clauses.push('FALSE');
    else {
      const lat = `((metadata ->> ${params.add(LAT_KEY)})::float8)`;
      const lon = `((metadata ->> ${params.add(LON_KEY)})::float8)`;
      clauses.push(...placeConditions(filter, lat, lon, (n) => `${params.add(n)}::float8`));
    }
  }
  return clauses;
}

export interface WhereParts {
  filter?: Filter;
  modality?: Modality;
  excludeIds?: readonly string[];
}

/** The conditions of `parts` (to be ANDed), empty when nothing restricts the query. */
export function compileWhere(parts: WhereParts, kinds: ReadonlyMap<string, MetadataKind>, params: Params): string[] {
  const clauses = parts.filter ? compileFilter(parts.filter, kinds, params) : [];
  if (parts.modality) clauses.push(`modality = ${params.add(parts.modality)}`);
  if (parts.excludeIds && parts.excludeIds.length > 0) clauses.push(`NOT (id = ANY(${params.add([...parts.excludeIds])}::text[]))`);
  return clauses;
}

/** ` WHERE (a) AND (b)`, or '' for no conditions. */
export const whereSql = (clauses: readonly string[]): string => (clauses.length === 0 ? '' : ` WHERE ${clauses.map((c) => `(${c})`).join(' AND ')}`);
