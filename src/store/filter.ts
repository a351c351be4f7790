/**
 * Metadata filters: `parseFilter` turns untrusted JSON into a `Filter` whose field names match
 * METADATA_KEY and whose values have the types their operators need. Backends compile only
 * parsed filters, so no raw user string ever reaches a query language.
 *
 * Semantics every backend keeps: fields are ANDed; a bare value means `$eq`; several operators
 * on one field are ANDed; a document without the field never matches a condition on it (not
 * even `$ne`), as SQL's NULL does; `$in` matches any of its values (an empty list matches none).
 */
import { TesseraError, describeValue } from '../errors.ts';
import { METADATA_KEY, type FieldCondition, type Filter, type MetadataValue } from './store.ts';
import { isMetadataValue } from './validate.ts';

export const FILTER_OPERATORS = ['$eq', '$ne', '$gt', '$gte', '$lt', '$lte', '$in'] as const;
export type FilterOperator = (typeof FILTER_OPERATORS)[number];
/** At most this many values in one `$in`. */
export const MAX_IN_VALUES = 1000;

const invalid = (message: string) => new TesseraError('FILTER_INVALID', message);

function checkValue(value: unknown, where: string, op: FilterOperator): MetadataValue {
  if (op === '$gt' || op === '$gte' || op === '$lt' || op === '$lte') {
    if (typeof value === 'string' || (typeof value === 'number' && Number.isFinite(value))) return value;
    throw invalid(`${where}: ${op} compares with a string or a finite number but received ${describeValue(value)}`);
  }
  if (isMetadataValue(value)) return value;
  throw invalid(`${where}: expected a string, a finite number or a boolean but received ${describeValue(value)}`);
}

/** Validates untrusted JSON into a Filter. FILTER_INVALID naming the field otherwise. */
export function parseFilter(json: unknown, field = 'filter'): Filter {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw invalid(`${field}: expected an object of field -> value or {"$eq"|"$ne"|"$gt"|"$gte"|"$lt"|"$lte"|"$in": ...} but received ${describeValue(json)}`);
  }
  const filter: Filter = {};
  for (const [key, condition] of Object.entries(json)) {
    const where = `${field}.${key}`;
    if (!METADATA_KEY.test(key)) {
      throw invalid(`${field}: field ${JSON.stringify(key)} is not a metadata key (1-64 letters, digits or "_" starting with a letter or "_")`);
    }
    if (condition === null || typeof condition !== 'object') {
      filter[key] = checkValue(condition, where, '$eq');
      continue;
    }
    if (Array.isArray(condition)) throw invalid(`${where}: a list of values is written {"$in": [...]}`);
    const ops = Object.entries(condition);
    if (ops.length === 0) throw invalid(`${where}: expected at least one operator of ${FILTER_OPERATORS.join(', ')}`);
    const parsed: Exclude<FieldCondition, MetadataValue> = {};
    for (const [op, value] of ops) {
      if (!(FILTER_OPERATORS as readonly string[]).includes(op)) {
        throw invalid(`${where}: unknown operator ${JSON.stringify(op)}; expected one of ${FILTER_OPERATORS.join(', ')}`);
      }
      if (op === '$in') {
        if (!Array.isArray(value)) throw invalid(`${where}.$in: expected a list of values but received ${describeValue(value)}`);
        if (value.length > MAX_IN_VALUES) throw invalid(`${where}.$in: at most ${MAX_IN_VALUES} values but received ${value.length}`);
        const values = value.map((v, i) => checkValue(v, `${where}.$in[${i}]`, '$in'));
        const kinds = new Set(values.map((v) => typeof v));
        if (kinds.size > 1) throw invalid(`${where}.$in: the values must all be of one type but mix ${[...kinds].join(' and ')}`);
        parsed.$in = values;
      } else {
        const v = checkValue(value, `${where}.${op}`, op as FilterOperator);
        (parsed as Record<string, MetadataValue>)[op] = v;
      }
    }
    filter[key] = parsed;
  }
  return filter;
}

/** The conditions on one field as (operator, value) pairs, for backends' compilers. */
export function conditionsOf(condition: FieldCondition): [FilterOperator, MetadataValue | MetadataValue[]][] {
  if (condition === null || typeof condition !== 'object') return [['$eq', condition]];
  return Object.entries(condition).filter(([, v]) => v !== undefined) as [FilterOperator, MetadataValue | MetadataValue[]][];
}
