// The page's search state, and how it maps to the page URL and to a search request.
// Pure functions (no DOM), so the URL <-> state <-> request rules live in one place.

/** Names in the page URL's query string, in the order they are written. */
export const URL_FIELDS = ['q', 'collection', 'like', 'modality', 'mode', 'min_score', 'filter'];

/** Results asked for per page ("Show more" asks for the next page). */
export const PAGE_SIZE = 24;

/**
 * @typedef {object} SearchState
 * @property {string} q          text query
 * @property {string} collection collection name
 * @property {string} like       id of the example document ("more like this")
 * @property {string} modality   '' | 'text' | 'image'
 * @property {string} mode       '' (vector) | 'hybrid'
 * @property {string} min_score  as typed; a number or ''
 * @property {string} filter     metadata filter, JSON as typed, or ''
 */

/** @returns {SearchState} */
export function emptyState() {
  return { q: '', collection: '', like: '', modality: '', mode: '', min_score: '', filter: '' };
}

/** @param {URLSearchParams} params @returns {SearchState} */
export function stateFromParams(params) {
  const state = emptyState();
  for (const name of URL_FIELDS) state[name] = params.get(name) ?? '';
  return state;
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
  const minScore = state.min_score.trim();
  if (minScore !== '') {
    const n = Number(minScore);
    if (!Number.isFinite(n)) throw new InputError(`min score: expected a number, got ${JSON.stringify(minScore)}`);
    body.min_score = n;
  }
  const filter = state.filter.trim();
  if (filter !== '') {
    try {
      body.filter = JSON.parse(filter);
    } catch (err) {
      throw new InputError(`metadata filter: expected JSON such as {"year": {"$gte": 2020}}, got ${JSON.stringify(filter)} (${err instanceof Error ? err.message : err})`);
    }
  }
  return body;
}
