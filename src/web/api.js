// The few API calls the page makes, with the API key (when one is saved) as a Bearer token.

const KEY_STORAGE = 'tessera.apiKey';

/** An error answer of the API: its `detail` is what the page shows. */
export class ApiError extends Error {
  /** @param {number} status @param {string} code @param {string} detail */
  constructor(status, code, detail) {
    super(detail);
    this.detail = detail;
    this.status = status;
    this.code = code;
  }
}

export function savedKey() {
  try {
    return localStorage.getItem(KEY_STORAGE) ?? '';
  } catch {
    return ''; // storage blocked (private mode, policies): the page works without a key
  }
}

/** @param {string} key an empty key forgets the saved one */
export function saveKey(key) {
  try {
    if (key) localStorage.setItem(KEY_STORAGE, key);
    else localStorage.removeItem(KEY_STORAGE);
  } catch {
    // see savedKey
  }
}

function headers(extra = {}) {
  const key = savedKey();
  return key ? { ...extra, authorization: `Bearer ${key}` } : extra;
}

/** @param {Response} response */
async function failure(response) {
  let code = '';
  let detail = `${response.status} ${response.statusText}`;
  try {
    const body = await response.json();
    if (typeof body.detail === 'string') detail = body.detail;
    if (typeof body.code === 'string') code = body.code;
  } catch {
    // not JSON (a proxy's error page): keep the status line
  }
  return new ApiError(response.status, code, detail);
}

async function call(method, path, body, signal) {
  const init = { method, headers: headers(body === undefined ? {} : { 'content-type': 'application/json' }), signal };
  if (body !== undefined) init.body = JSON.stringify(body);
  const response = await fetch(path, init);
  if (!response.ok) throw await failure(response);
  return response;
}

/**
 * `model` is the model as the collection records it; `model_name` the name the server serves
 * it as, or null when the server does not serve that model (the collection cannot be searched).
 * @returns {Promise<{name: string, model: string, model_name: string | null, dimensions: number, count: number}[]>}
 */
export async function listCollections() {
  const response = await call('GET', '/v1/collections');
  return (await response.json()).data;
}

/**
 * @param {string} collection
 * @param {object} body
 * @param {AbortSignal} signal
 * @returns {Promise<{data: {id: string, score: number, text?: string, image?: string, metadata?: object}[], serverMs: number | null}>}
 */
export async function search(collection, body, signal) {
  const response = await call('POST', `/v1/collections/${encodeURIComponent(collection)}/search`, body, signal);
  const total = Number(response.headers.get('x-total-time'));
  const json = await response.json();
  return { data: json.data, serverMs: Number.isFinite(total) && response.headers.has('x-total-time') ? total : null };
}

/** @param {string} collection @param {string} id */
export function thumbnailPath(collection, id) {
  return `/v1/collections/${encodeURIComponent(collection)}/documents/${encodeURIComponent(id)}/thumbnail`;
}

/**
 * Sets an <img>'s source to a document's thumbnail. Without a key the browser loads it
 * (lazily); with one, an <img> cannot send the header, so it is fetched and shown as a blob.
 * @param {HTMLImageElement} img
 * @returns {() => void} releases what it holds
 */
export function showThumbnail(img, collection, id) {
  const path = thumbnailPath(collection, id);
  if (!savedKey()) {
    img.loading = 'lazy';
    img.src = path;
    return () => {};
  }
  let url = '';
  let released = false;
  fetch(path, { headers: headers() })
    .then((response) => (response.ok ? response.blob() : Promise.reject(new Error(String(response.status)))))
    .then((blob) => {
      if (released) return;
      url = URL.createObjectURL(blob);
      img.src = url;
    })
    .catch(() => img.dispatchEvent(new Event('error')));
  return () => {
    released = true;
    if (url) URL.revokeObjectURL(url);
  };
}

/**
 * A document's own file: the video behind a frame, the PDF behind a page (a frame's or a
 * page's id serves its file). Served with byte ranges, so players seek without loading it all.
 * @param {string} collection @param {string} id
 */
export function filePath(collection, id) {
  return `/v1/collections/${encodeURIComponent(collection)}/documents/${encodeURIComponent(id)}/file`;
}

/** Whether the page sends an API key, so media elements and links cannot fetch the API themselves. */
export function usesKey() {
  return savedKey() !== '';
}

/**
 * A URL a <video> or a new tab can load a document's file from. Without a key it is the file
 * route itself: the browser streams it with Range requests and seeks without loading it all.
 * A <video src> or a link cannot send the key's header, so with a key the file is fetched
 * whole (with the header) and shown from a blob: fine for typical clips and PDFs, slow for a
 * film of gigabytes, which is better searched on a server without keys or behind a proxy
 * that authenticates by cookie.
 * @param {string} collection @param {string} id @param {AbortSignal} [signal]
 * @returns {Promise<{url: string, release: () => void}>} `release` frees the blob, if one
 */
export async function fileUrl(collection, id, signal) {
  const path = filePath(collection, id);
  if (!usesKey()) return { url: path, release: () => {} };
  const response = await fetch(path, { headers: headers(), signal });
  if (!response.ok) throw await failure(response);
  const url = URL.createObjectURL(await response.blob());
  return { url, release: () => URL.revokeObjectURL(url) };
}

/**
 * A document as stored: `text` for a text document, `image` (an id or URL) for an image.
 * @param {string} collection @param {string} id @param {AbortSignal} [signal]
 * @returns {Promise<{id: string, modality: string, text?: string, image?: string, metadata?: Record<string, unknown>}>}
 */
export async function getDocument(collection, id, signal) {
  const response = await call('GET', `/v1/collections/${encodeURIComponent(collection)}/documents/${encodeURIComponent(id)}`, undefined, signal);
  return response.json();
}

// ---------------------------------------------------------------- duplicate scans

/**
 * A duplicates job as the API shows it; polled, it also carries a page of its groups (`data`:
 * the groups found so far while it runs, all of them once done, largest first).
 * @typedef {{ids: string[], score: number, kind: string, videos?: string[], pdfs?: string[]}} DuplicateGroup
 * @typedef {{id: string, collection: string, threshold: number, modality: string | null,
 *   status: 'queued' | 'running' | 'done' | 'failed' | 'cancelled', scanned: number, total: number, groups: number,
 *   created_at: string, started_at: string | null, finished_at: string | null, error: {code: string, message: string} | null,
 *   data?: DuplicateGroup[], offset?: number, next_offset?: number | null}} DuplicateJob
 */

const duplicatesPath = (collection) => `/v1/collections/${encodeURIComponent(collection)}/duplicates`;

/**
 * Starts a scan of the collection (a background job on the server).
 * @param {string} collection @param {{threshold?: number, modality?: string}} body @param {AbortSignal} [signal]
 * @returns {Promise<DuplicateJob>}
 */
export async function startDuplicates(collection, body, signal) {
  const response = await call('POST', duplicatesPath(collection), body, signal);
  return response.json();
}

/**
 * A job with a page of its groups.
 * @param {string} collection @param {string} id @param {{offset?: number, limit?: number}} page @param {AbortSignal} [signal]
 * @returns {Promise<DuplicateJob>}
 */
export async function duplicatesJob(collection, id, { offset = 0, limit = 100 } = {}, signal) {
  const query = new URLSearchParams({ offset: String(offset), limit: String(limit) });
  const response = await call('GET', `${duplicatesPath(collection)}/${encodeURIComponent(id)}?${query}`, undefined, signal);
  return response.json();
}

/**
 * The collection's jobs on this server, oldest first (without their groups).
 * @param {string} collection @param {AbortSignal} [signal] @returns {Promise<DuplicateJob[]>}
 */
export async function duplicateJobs(collection, signal) {
  const response = await call('GET', duplicatesPath(collection), undefined, signal);
  return (await response.json()).data;
}

/** Stops a job and has the server forget it. @param {string} collection @param {string} id */
export async function cancelDuplicates(collection, id) {
  await call('DELETE', `${duplicatesPath(collection)}/${encodeURIComponent(id)}`);
}
