// The page's search state, and how it maps to the page URL and to a search request.
// Pure functions (no DOM), so the URL <-> state <-> request rules live in one place.

/** Names in the page URL's query string, in the order they are written. */
export const URL_FIELDS = ['q', 'collection', 'like', 'modality', 'mode', 'sort', 'cutoff', 'min_score', 'from', 'to', 'filter', 'collapse', 'group'];

/** The metadata key the date range filters on. */
export const DATE_KEY = 'taken_at';

/** Results asked for per page ("Show more" asks for the next page). */
export const PAGE_SIZE = 24;

/**
 * @typedef {object} SearchState
 * @property {string} q          text query
 * @property {string} collection collection name
 * @property {string} like       id of the example document ("more like this")
 * @property {string} modality   '' | 'text' | 'image'
 * @property {string} mode       '' (vector) | 'hybrid'
 * @property {string} sort       '' (best match) | '-taken_at' (newest first) | 'taken_at' (oldest
 *                               first), or another metadata key with an optional leading '-'
 * @property {string} cutoff     '' (the sort's default, see defaultCutoff) | 'off' | 'auto' |
 *                               a fraction of the best score such as '0.9'
 * @property {string} min_score  as typed; a number or ''
 * @property {string} from       first day taken, 'YYYY-MM-DD' (inclusive), or ''
 * @property {string} to         last day taken, 'YYYY-MM-DD' (inclusive: up to midnight UTC after it), or ''
 * @property {string} filter     metadata filter, JSON as typed, or ''
 * @property {string} collapse   '' (near-identical documents are one result, the page's default)
 *                               | 'off' (each is a result of its own)
 * @property {string} group      '' (a video or PDF is one result, its best frame or page: the
 *                               API's default) | 'off' (every matching frame and page)
 */

/** @returns {SearchState} */
export function emptyState() {
  return { q: '', collection: '', like: '', modality: '', mode: '', sort: '', cutoff: '', min_score: '', from: '', to: '', filter: '', collapse: '', group: '' };
}

/** @param {URLSearchParams} params @returns {SearchState} */
export function stateFromParams(params) {
  const state = emptyState();
  for (const name of URL_FIELDS) state[name] = params.get(name) ?? '';
  if (state.sort === 'score') state.sort = ''; // the API's default, spelled out
  // Only "off" means anything: the defaults are not written out.
  if (state.collapse !== 'off') state.collapse = '';
  if (state.group !== 'off') state.group = '';
  return state;
}

/**
 * The cut-off a search gets when none was chosen: sorted views (newest or oldest first) keep
 * only the hits above where the scores drop ('auto'), best match shows every hit ('off').
 * @param {string} sort
 */
export function defaultCutoff(sort) {
  return sort.trim() === '' ? 'off' : 'auto';
}

/** The cut-off a state searches with: the one chosen, else its sort's default. @param {SearchState} state */
export function effectiveCutoff(state) {
  return state.cutoff.trim() || defaultCutoff(state.sort);
}

/** Only the fields that are set, so shared URLs stay short. @param {SearchState} state */
export function paramsFromState(state) {
  const params = new URLSearchParams();
  for (const name of URL_FIELDS) {
    const value = state[name].trim();
    if (value !== '') params.set(name, value);
  }
  return params;
}

/** True when the state asks for something (a text, an example, or an image). */
export function hasQuery(state, image) {
  return state.q.trim() !== '' || state.like !== '' || Boolean(image);
}

/** A mistake found before asking the server; shown in the page like the API's `detail`. */
export class InputError extends Error {}

/**
 * The body of POST /v1/collections/{name}/search. Each part that is set (text, example
 * document, image) is one term of the query; several are combined with equal weights.
 * @param {SearchState} state
 * @param {string | null} image data URI or http(s) URL
 * @param {number} offset
 */
export function searchBody(state, image, offset = 0) {
  /** @type {object[]} */
  const parts = [];
  const text = state.q.trim();
  if (text !== '') parts.push({ text });
  if (image) parts.push({ image });
  if (state.like !== '') parts.push({ id: state.like });
  if (parts.length === 0) throw new InputError('type a query, or drop, paste or pick an image');
  const body = {
    query: parts.length === 1 ? (text !== '' ? text : parts[0]) : parts.map((p) => ({ ...p, weight: 1 })),
    k: PAGE_SIZE,
  };
  if (offset > 0) body.offset = offset;
  if (state.modality !== '') body.modality = state.modality;
  if (state.mode !== '') body.mode = state.mode;
  const sort = state.sort.trim();
  if (sort !== '') body.sort = sort;
  const cutoff = cutoffBody(effectiveCutoff(state));
  if (cutoff !== undefined) body.cutoff = cutoff;
  const minScore = state.min_score.trim();
  if (minScore !== '') {
    const n = Number(minScore);
    if (!Number.isFinite(n)) throw new InputError(`min score: expected a number, got ${JSON.stringify(minScore)}`);
    body.min_score = n;
  }
  const filter = withDateRange(typedFilter(state.filter), dateRange(state.from, state.to));
  if (filter !== undefined) body.filter = filter;
  // The page collapses near-identical documents (the same photo as PNG and WebP) unless told
  // not to; the API groups a video's frames and a PDF's pages unless told not to.
  if (state.collapse.trim() !== 'off') body.collapse = true;
  if (state.group.trim() === 'off') body.group = false;
  return body;
}

/** The metadata filter box's JSON, or undefined when empty. @param {string} text */
function typedFilter(text) {
  const filter = text.trim();
  if (filter === '') return undefined;
  try {
    return JSON.parse(filter);
  } catch (err) {
    throw new InputError(`metadata filter: expected JSON such as {"year": {"$gte": 2020}}, got ${JSON.stringify(filter)} (${err instanceof Error ? err.message : err})`);
  }
}

/**
 * The API's `cutoff` for a cut-off value: undefined (none), "auto", or {relative: n}.
 * @param {string} value 'off' | 'auto' | a fraction such as '0.9'
 */
export function cutoffBody(value) {
  if (value === 'off') return undefined;
  if (value === 'auto') return 'auto';
  const n = Number(value);
  if (value === '' || !Number.isFinite(n) || n <= 0 || n > 1) {
    throw new InputError(`cut-off: expected off, auto or a fraction of the best score from 0 to 1 such as 0.9, got ${JSON.stringify(value)}`);
  }
  return { relative: n };
}

const DAY = /^(\d{4})-(\d{2})-(\d{2})$/;

/**
 * `day` ('YYYY-MM-DD') moved by `days`, as 'YYYY-MM-DD'; an InputError when `day` is not a real date.
 * @param {string} day @param {number} days @param {string} what the field, for the error
 */
function shiftDay(day, days, what) {
  const m = DAY.exec(day);
  const date = new Date(0);
  if (m) date.setUTCFullYear(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
  if (!m || date.getUTCDate() !== Number(m[3]) || date.getUTCMonth() !== Number(m[2]) - 1) {
    throw new InputError(`${what}: expected a date such as 2021-06-01, got ${JSON.stringify(day)}`);
  }
  date.setUTCDate(date.getUTCDate() + days);
  return date.toISOString().slice(0, 10);
}

/**
 * The condition on `taken_at` for a range of days, both inclusive, in UTC: from midnight UTC
 * of `from` up to (not including) midnight UTC after `to`. Undefined when neither is set.
 * @param {string} from 'YYYY-MM-DD' or '' @param {string} to 'YYYY-MM-DD' or ''
 * @returns {{$gte?: string, $lt?: string} | undefined}
 */
export function dateRange(from, to) {
  const first = from.trim();
  const last = to.trim();
  /** @type {{$gte?: string, $lt?: string}} */
  const range = {};
  if (first !== '') range.$gte = shiftDay(first, 0, 'taken from');
  if (last !== '') range.$lt = shiftDay(last, 1, 'taken until');
  if (range.$gte && range.$lt && range.$gte >= range.$lt) {
    throw new InputError(`dates: "taken from" (${first}) is after "taken until" (${last})`);
  }
  return range.$gte || range.$lt ? range : undefined;
}

const isPlainObject = (value) => value !== null && typeof value === 'object' && !Array.isArray(value);

/**
 * The metadata filter with the date range added as a condition on `taken_at` (the filter's
 * fields are ANDed): operators of the filter's own `taken_at` are kept beside the range's,
 * but one bound cannot be given twice.
 * @param {unknown} filter parsed JSON of the filter box, or undefined
 * @param {{$gte?: string, $lt?: string} | undefined} range
 */
export function withDateRange(filter, range) {
  if (range === undefined) return filter;
  if (filter === undefined) return { [DATE_KEY]: range };
  if (!isPlainObject(filter)) throw new InputError(`metadata filter: expected a JSON object to add the dates to, got ${JSON.stringify(filter)}`);
  const own = /** @type {Record<string, unknown>} */ (filter)[DATE_KEY];
  if (own === undefined) return { ...filter, [DATE_KEY]: range };
  const clash = isPlainObject(own) ? Object.keys(range).find((op) => op in own) : 'a value';
  if (clash) throw new InputError(`the metadata filter's ${DATE_KEY} and the dates both set ${clash}: use one or the other`);
  return { ...filter, [DATE_KEY]: { ...own, ...range } };
}

/** The API's threshold for a duplicates scan when none is sent (src/search/duplicates.ts). */
export const DEFAULT_DUPLICATE_THRESHOLD = 0.95;

/**
 * The body of POST /v1/collections/{name}/duplicates: the threshold as typed (a number; the
 * API checks its range and says what is wrong), the API's default when empty; `modality` when
 * one kind of document only is scanned.
 * @param {string} threshold @param {string} modality '' | 'image' | 'text'
 */
export function duplicatesBody(threshold, modality = '') {
  /** @type {{threshold?: number, modality?: string}} */
  const body = {};
  const typed = threshold.trim();
  if (typed !== '') {
    const n = Number(typed);
    if (!Number.isFinite(n)) throw new InputError(`threshold: expected a similarity such as ${DEFAULT_DUPLICATE_THRESHOLD}, got ${JSON.stringify(typed)}`);
    body.threshold = n;
  }
  if (modality !== '') body.modality = modality;
  return body;
}
