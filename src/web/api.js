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
