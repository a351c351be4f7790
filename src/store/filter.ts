/**
 * Metadata filters: `parseFilter` turns untrusted JSON into a `Filter` whose field names match
 * METADATA_KEY and whose values have the types their operators need. Backends compile only
 * parsed filters, so no raw user string ever reaches a query language.
 *
 * Semantics every backend keeps: fields are ANDed; a bare value means `$eq`; several operators
 * on one field are ANDed; a document without the field never matches a condition on it (not
 * even `$ne`), as SQL's NULL does; `$in` matches any of its values (an empty list matches none).
 *
 * Places: `$near` ({lat, lon, km}: great-circle distance) and `$within` ({south, west, north,
 * east}: a box, crossing the antimeridian when west > east) sit at the top of a filter and test
 * the numbers in `gps_lat` / `gps_lon`; a document without them matches neither.
 *
 * Dates: `taken_at` holds ISO 8601 UTC strings as tessera writes them ("2021-07-14T18:03:11Z"),
 * which sort as text in time order; a range bound given as a date ("2021-06-01", midnight UTC)
 * or a date-time with any offset is rewritten to that same form, so it compares as a date.
 */
import { utcIso } from '../dates.ts';
import { TesseraError, describeValue } from '../errors.ts';
import { METADATA_KEY, type FieldCondition, type Filter, type MetadataValue, type NearCondition, type WithinCondition } from './store.ts';
import { isMetadataValue } from './validate.ts';

export const FILTER_OPERATORS = ['$eq', '$ne', '$gt', '$gte', '$lt', '$lte', '$in'] as const;
export type FilterOperator = (typeof FILTER_OPERATORS)[number];
/** At most this many values in one `$in`. */
export const MAX_IN_VALUES = 1000;

const invalid = (message: string) => new TesseraError('FILTER_INVALID', message);

/** The metadata keys that hold places, and the ones that hold dates tessera writes in UTC. */
export const LAT_KEY = 'gps_lat';
export const LON_KEY = 'gps_lon';
const DATE_KEYS = new Set(['taken_at']);
export const PLACE_OPERATORS = ['$near', '$within'] as const;
/** Mean Earth radius (IUGG), the sphere great-circle distances are measured on. */
export const EARTH_RADIUS_KM = 6371.0088;

const ISO_DATE = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?$/;

/**
 * An ISO 8601 date or date-time as "YYYY-MM-DDTHH:MM:SSZ" in UTC (".sss" kept when not zero);
 * a date alone is midnight UTC, a date-time without offset is read as UTC. Undefined when
 * `text` is not such a date, names an impossible one (month 13, 31 April), or lies outside the
 * years 1000-9999.
 */
export function isoUtc(text: string): string | undefined {
  const m = ISO_DATE.exec(text);
  if (!m) return undefined;
  const [, y, mo, d, h = '00', mi = '00', sec = '00', frac = '', zone = 'Z'] = m;
  let offsetMinutes = 0;
  if (zone !== 'Z') {
    const digits = zone.replace(':', '');
    offsetMinutes = (zone[0] === '-' ? -1 : 1) * (Number(digits.slice(1, 3)) * 60 + Number(digits.slice(3, 5)));
    if (Math.abs(offsetMinutes) > 14 * 60) return undefined;
  }
  return utcIso(+y!, +mo!, +d!, +h, +mi, +sec, offsetMinutes, Math.round(Number(`0${frac || '.0'}`) * 1000));
}

function number(value: unknown, where: string, min: number, max: number, what: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    throw invalid(`${where}: expected ${what} but received ${describeValue(value)}`);
  }
  return value;
}

function placeObject(json: unknown, where: string, keys: readonly string[]): Record<string, unknown> {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw invalid(`${where}: expected {${keys.map((k) => `"${k}"`).join(', ')}} but received ${describeValue(json)}`);
  }
  const extra = Object.keys(json).filter((k) => !keys.includes(k));
  if (extra.length > 0) throw invalid(`${where}: unknown field ${JSON.stringify(extra[0])}; expected ${keys.join(', ')}`);
  for (const k of keys) if (!(k in json)) throw invalid(`${where}.${k}: missing; expected ${keys.join(', ')}`);
  return json as Record<string, unknown>;
}

const latitude = (v: unknown, where: string) => number(v, where, -90, 90, 'a latitude from -90 to 90 (decimal degrees)');
const longitude = (v: unknown, where: string) => number(v, where, -180, 180, 'a longitude from -180 to 180 (decimal degrees)');

function parseNear(json: unknown, where: string): NearCondition {
  const o = placeObject(json, where, ['lat', 'lon', 'km']);
  const km = number(o.km, `${where}.km`, Number.MIN_VALUE, Number.MAX_VALUE, 'a distance in kilometres greater than 0');
  return { lat: latitude(o.lat, `${where}.lat`), lon: longitude(o.lon, `${where}.lon`), km };
}

function parseWithin(json: unknown, where: string): WithinCondition {
  const o = placeObject(json, where, ['south', 'west', 'north', 'east']);
  const box = { south: latitude(o.south, `${where}.south`), west: longitude(o.west, `${where}.west`), north: latitude(o.north, `${where}.north`), east: longitude(o.east, `${where}.east`) };
  if (box.south > box.north) throw invalid(`${where}: south (${box.south}) is north of north (${box.north})`);
  return box;
}

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
    if (key === '$near') {
      filter.$near = parseNear(condition, where);
      continue;
    }
    if (key === '$within') {
      filter.$within = parseWithin(condition, where);
      continue;
    }
    if (key.startsWith('$')) throw invalid(`${field}: unknown operator ${JSON.stringify(key)} at the top of a filter; expected ${PLACE_OPERATORS.join(' or ')}, or a metadata key`);
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
        let v = checkValue(value, `${where}.${op}`, op as FilterOperator);
        if (DATE_KEYS.has(key) && typeof v === 'string' && op !== '$eq' && op !== '$ne') {
          v = isoUtc(v) ?? fail(`${where}.${op}: expected an ISO 8601 date ("2021-06-01") or date-time ("2021-06-01T12:00:00+02:00") but received ${JSON.stringify(v)}`);
        }
        (parsed as Record<string, MetadataValue>)[op] = v;
      }
    }
    filter[key] = parsed;
  }
  return filter;
}

function fail(message: string): never {
  throw invalid(message);
}

/** The field conditions of a filter, its place operators left out. */
export function fieldConditions(filter: Filter): [string, FieldCondition][] {
  return Object.entries(filter).filter(([key]) => !key.startsWith('$')) as [string, FieldCondition][];
}

/**
 * SQL conditions for a filter's place operators, in the dialect both backends share
 * (radians, sin, cos, power): `lat` / `lon` are the column expressions, `literal` writes a
 * number (a bind parameter, or a finite literal). Distance is the haversine formula compared
 * without asin: hav(d/R) <= sin^2(km / 2R), exact up to half the Earth's circumference.
 */
export function placeConditions(filter: Filter, lat: string, lon: string, literal: (n: number) => string): string[] {
  const out: string[] = [];
  const near = filter.$near;
  if (near) {
    const half = near.km / (2 * EARTH_RADIUS_KM);
    if (half >= Math.PI / 2) out.push(`${lat} IS NOT NULL AND ${lon} IS NOT NULL`);
    else {
      const hav = `power(sin(radians(${lat} - ${literal(near.lat)}) / 2), 2) + cos(radians(${literal(near.lat)})) * cos(radians(${lat})) * power(sin(radians(${lon} - ${literal(near.lon)}) / 2), 2)`;
      // The latitude band first: cheap, and a planner may use it to skip the trigonometry.
      const band = (near.km / EARTH_RADIUS_KM) * (180 / Math.PI);
      out.push(`${lat} BETWEEN ${literal(near.lat - band)} AND ${literal(near.lat + band)}`, `${hav} <= ${literal(Math.sin(half) ** 2)}`);
    }
  }
  const box = filter.$within;
  if (box) {
    out.push(`${lat} BETWEEN ${literal(box.south)} AND ${literal(box.north)}`);
    out.push(box.west <= box.east ? `${lon} BETWEEN ${literal(box.west)} AND ${literal(box.east)}` : `(${lon} >= ${literal(box.west)} OR ${lon} <= ${literal(box.east)})`);
  }
  return out;
}

/** The conditions on one field as (operator, value) pairs, for backends' compilers. */
export function conditionsOf(condition: FieldCondition): [FilterOperator, MetadataValue | MetadataValue[]][] {
  if (condition === null || typeof condition !== 'object') return [['$eq', condition]];
  return Object.entries(condition).filter(([, v]) => v !== undefined) as [FilterOperator, MetadataValue | MetadataValue[]][];
}
