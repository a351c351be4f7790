/**
 * The knobs of a search, checked once for the HTTP API and the CLI alike: every bad value is
 * SEARCH_PARAMETER_INVALID naming the field, what was expected and what came.
 */
import { TesseraError, describeValue } from '../errors.ts';
import { parseFilter } from '../store/filter.ts';
import { MAX_K, MAX_OFFSET, METADATA_KEY, type Filter, type Modality } from '../store/store.ts';
import type { Cutoff } from './cutoff.ts';
import { BY_SCORE, type SortOrder } from './sort.ts';

export const DEFAULT_K = 10;
/** The store's caps (store.ts), which it enforces too: one rule, checked first here to name the field. */
export { MAX_K, MAX_OFFSET };
export const SEARCH_MODES = ['vector', 'hybrid'] as const;
export type SearchMode = (typeof SEARCH_MODES)[number];
export const MODALITIES: readonly Modality[] = ['text', 'image'];

export interface SearchParameters {
  k: number;
  offset: number;
  /** Cosine similarity cut-off (hybrid: applied to the vector side's candidates). */
  minScore?: number;
  modality?: Modality;
  filter?: Filter;
  mode: SearchMode;
  /** A metadata key to order by (default: relevance), applied to the hits that pass the cut-offs. */
  sort?: SortOrder;
  /** A cut-off relative to the query's own scores, beside the absolute `minScore`. */
  cutoff?: Cutoff;
  /** false: every frame and page a result of its own (default: one result per video and per PDF). */
  group?: boolean;
  /** true: near-identical documents as one result, the others listed under it (default off). */
  collapse?: boolean;
}

/** The parameters as they come: JSON values (HTTP) or numbers parsed from flags (CLI). */
export interface RawSearchParameters {
  k?: unknown;
  offset?: unknown;
  min_score?: unknown;
  modality?: unknown;
  filter?: unknown;
  mode?: unknown;
  sort?: unknown;
  cutoff?: unknown;
  group?: unknown;
  collapse?: unknown;
}

const invalid = (field: string, expected: string, value: unknown) =>
  new TesseraError('SEARCH_PARAMETER_INVALID', `${field}: expected ${expected} but received ${describeValue(value)}`);

const given = (value: unknown) => value !== undefined && value !== null;

function integer(value: unknown, field: string, min: number, max: number, fallback: number): number {
  if (!given(value)) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw invalid(field, `an integer from ${min} to ${max}`, value);
  }
  return value;
}

function oneOf<T extends string>(value: unknown, field: string, allowed: readonly T[]): T | undefined {
  if (!given(value)) return undefined;
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw invalid(field, `one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}`, value);
  }
  return value as T;
}

function boolean(value: unknown, field: string): boolean | undefined {
  if (!given(value)) return undefined;
  if (typeof value !== 'boolean') throw invalid(field, 'true or false', value);
  return value;
}

/**
 * Validates k (default 10, 1..1000), offset, min_score (-1..1), modality, mode (default
 * vector), filter, sort, cutoff, group (default true) and collapse (default false); the
 * defaults of group and collapse are left out of the answer.
 */
export function parseSearchParameters(raw: RawSearchParameters): SearchParameters {
  const params: SearchParameters = {
    k: integer(raw.k, 'k', 1, MAX_K, DEFAULT_K),
    offset: integer(raw.offset, 'offset', 0, MAX_OFFSET, 0),
    mode: oneOf(raw.mode, 'mode', SEARCH_MODES) ?? 'vector',
  };
  const sort = parseSort(raw.sort);
  if (sort !== BY_SCORE) params.sort = sort;
  if (given(raw.cutoff)) params.cutoff = parseCutoff(raw.cutoff);
  if (given(raw.min_score)) {
    const s = raw.min_score;
    if (typeof s !== 'number' || !Number.isFinite(s) || s < -1 || s > 1) throw invalid('min_score', 'a number from -1 to 1 (cosine similarity)', s);
    params.minScore = s;
  }
  const modality = oneOf(raw.modality, 'modality', MODALITIES);
  if (modality) params.modality = modality;
  if (given(raw.filter)) params.filter = parseFilter(raw.filter, 'filter');
  if (boolean(raw.group, 'group') === false) params.group = false;
  if (boolean(raw.collapse, 'collapse') === true) params.collapse = true;
  return params;
}

/** "score", or a metadata key with an optional leading "-" (descending). */
function parseSort(value: unknown): SortOrder {
  if (!given(value) || value === 'score') return BY_SCORE;
  const expected = '"score", or a metadata key with an optional leading "-" ("taken_at", "-taken_at")';
  if (typeof value !== 'string') throw invalid('sort', expected, value);
  const descending = value.startsWith('-');
  const key = descending ? value.slice(1) : value;
  if (key === 'score') throw invalid('sort', `${expected}; results are best first already, "-score" has no meaning`, value);
  if (!METADATA_KEY.test(key)) throw invalid('sort', expected, value);
  return { key, descending };
}

/** "auto" or {"relative": r} with 0 < r <= 1. */
function parseCutoff(value: unknown): Cutoff {
  if (value === 'auto') return { kind: 'auto' };
  const expected = '"auto" or {"relative": r} with r from 0 (exclusive) to 1, a share of the best hit\'s score';
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw invalid('cutoff', expected, value);
  const keys = Object.keys(value);
  if (keys.length !== 1 || keys[0] !== 'relative') throw invalid('cutoff', expected, value);
  const ratio = (value as { relative: unknown }).relative;
  if (typeof ratio !== 'number' || !Number.isFinite(ratio) || ratio <= 0 || ratio > 1) throw invalid('cutoff.relative', 'a number greater than 0 and at most 1', ratio);
  return { kind: 'relative', ratio };
}

/** A flag's text as a number for parseSearchParameters ("10" -> 10; "ten" stays a string and is refused there). */
export function numberFlag(text: string | undefined): number | string | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  return text.trim() !== '' && Number.isFinite(n) ? n : text;
}
