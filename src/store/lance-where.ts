/**
 * Compiles parsed filters, modality and excluded ids into LanceDB's SQL `where`.
 *
 * Safety: identifiers come only from our own column names (`m_` + a key that already matched
 * METADATA_KEY, so letters, digits and "_" only) and are backquoted; string values are single-
 * quoted with `'` doubled (LanceDB's SQL dialect does not treat backslash as an escape: checked
 * against 0.31, `'a\'` is the string `a\`); numbers are finite and written by JavaScript's own
 * formatting (digits, ".", "e", "+", "-"); booleans are TRUE/FALSE. Nothing else is emitted.
 */
import { conditionsOf, fieldConditions, LAT_KEY, LON_KEY, placeConditions, type FilterOperator } from './filter.ts';
import { METADATA_KEY, type Filter, type MetadataKind, type MetadataValue, type Modality } from './store.ts';


/** Metadata key -> its column, prefixed so that no key collides with id, vector, text, ... */
export const metadataColumn = (key: string): string => {
  if (!METADATA_KEY.test(key)) throw new Error(`not a metadata key: ${key}`);
  return `m_${key}`;
};
export const METADATA_PREFIX = 'm_';

export function sqlString(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}

function sqlNumber(value: number): string {
  if (!Number.isFinite(value)) throw new Error('non-finite number in a filter');
  return String(value);
}

function sqlLiteral(value: MetadataValue): string {
  if (typeof value === 'string') return sqlString(value);
  if (typeof value === 'number') return sqlNumber(value);
  return value ? 'TRUE' : 'FALSE';
}

const SQL_OP: Record<Exclude<FilterOperator, '$in'>, string> = { $eq: '=', $ne: '!=', $gt: '>', $gte: '>=', $lt: '<', $lte: '<=' };

/**
 * `kinds`: the type of each metadata field the collection has a column for. A field the
 * collection has never seen matches nothing. Values were checked against the kinds by the
 * collections layer (checkFilter).
 */
export function compileFilter(filter: Filter, kinds: ReadonlyMap<string, MetadataKind>): string[] {
  const clauses: string[] = [];
  for (const [key, condition] of fieldConditions(filter)) {
    if (!kinds.has(key)) {
      clauses.push('FALSE');
      continue;
    }
    const column = `\`${metadataColumn(key)}\``;
    for (const [op, value] of conditionsOf(condition)) {
      if (op === '$in') {
        const values = value as MetadataValue[];
        clauses.push(values.length === 0 ? 'FALSE' : `${column} IN (${values.map(sqlLiteral).join(', ')})`);
      } else {
        clauses.push(`${column} ${SQL_OP[op]} ${sqlLiteral(value as MetadataValue)}`);
      }
    }
  }
  if (filter.$near || filter.$within) {
    // A collection without numeric coordinates has no place to match.
    if (kinds.get(LAT_KEY) !== 'number' || kinds.get(LON_KEY) !== 'number') clauses.push('FALSE');
    else clauses.push(...placeConditions(filter, `\`${metadataColumn(LAT_KEY)}\``, `\`${metadataColumn(LON_KEY)}\``, (n) => `(${sqlNumber(n)})`));
  }
  return clauses;
}

export interface WhereParts {
  filter?: Filter;
  modality?: Modality;
  excludeIds?: readonly string[];
}

/** The whole `where`, or undefined when nothing restricts the search. */
export function compileWhere(parts: WhereParts, kinds: ReadonlyMap<string, MetadataKind>): string | undefined {
  const clauses = parts.filter ? compileFilter(parts.filter, kinds) : [];
  if (parts.modality) clauses.push(`modality = ${sqlString(parts.modality)}`);
  if (parts.excludeIds && parts.excludeIds.length > 0) clauses.push(`id NOT IN (${parts.excludeIds.map(sqlString).join(', ')})`);
  return clauses.length === 0 ? undefined : clauses.map((c) => `(${c})`).join(' AND ');
}

export const idIn = (ids: readonly string[]): string => `id IN (${ids.map(sqlString).join(', ')})`;
