// The search page: wires the form, the URL, drop/paste/pick of images and the result grid.
//
// The URL's query string holds the search (q, collection, like, modality, mode, sort, cutoff,
// min_score, from, to, filter, collapse, group), so it can be shared, reloaded, and walked with
// back/forward.
// An image query is too big for a URL: it rides in history.state, which survives reload and
// back/forward in this tab but is not part of a shared link.
//
// The Duplicates view (a button beside the collection picker) takes the results' place: it
// scans the chosen collection for duplicates as a job on the server and lists the groups.

import { ApiError, cancelDuplicates, duplicateJobs, duplicatesJob, fileUrl, getDocument, listCollections, saveKey, savedKey, search, startDuplicates, usesKey } from './api.js';
import { InputError, PAGE_SIZE, defaultCutoff, duplicatesBody, effectiveCutoff, emptyState, hasQuery, paramsFromState, searchBody, stateFromParams } from './query.js';
import { DUPLICATE_KINDS, clockTime, duplicateGroup, queryTerms, resultCard, scanProgress } from './render.js';

/** Larger images are scaled down before sending: the model sees 224 px anyway. */
const MAX_IMAGE_SIDE = 1024;

const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));
const form = /** @type {HTMLFormElement} */ ($('search'));
const q = /** @type {HTMLInputElement} */ ($('q'));
const collectionSelect = /** @type {HTMLSelectElement} */ ($('collection'));
const collectionModel = $('collection-model');
const modalitySelect = /** @type {HTMLSelectElement} */ ($('modality'));
const modeSelect = /** @type {HTMLSelectElement} */ ($('mode'));
const sortSelect = /** @type {HTMLSelectElement} */ ($('sort'));
const cutoffSelect = /** @type {HTMLSelectElement} */ ($('cutoff'));
const minScoreInput = /** @type {HTMLInputElement} */ ($('min_score'));
const fromInput = /** @type {HTMLInputElement} */ ($('from'));
const toInput = /** @type {HTMLInputElement} */ ($('to'));
const filterInput = /** @type {HTMLInputElement} */ ($('filter'));
const collapseBox = /** @type {HTMLInputElement} */ ($('collapse'));
const everyPartBox = /** @type {HTMLInputElement} */ ($('every-part'));
const fileInput = /** @type {HTMLInputElement} */ ($('image-file'));
const keyInput = /** @type {HTMLInputElement} */ ($('api-key'));
const results = $('results');
const statusLine = $('status');
const errorLine = $('error');
const moreButton = /** @type {HTMLButtonElement} */ ($('more'));

/** What the form shows beside its inputs: the example document and the image query. */
let like = '';
/** @type {string | null} data URI or URL */
let image = null;
/** Whether the cut-off shown was chosen (by the user or the URL); else it follows the sort. */
let cutoffChosen = false;
/** Per shown result: releases its thumbnail. */
let releases = [];
/** The search in flight: a newer one aborts it. */
let inFlight = null;
/** The last search run, for "Show more". */
let shown = { state: emptyState(), image: /** @type {string | null} */ (null), count: 0 };
let collectionsLoaded = false;
/** The form's state at the last search run, so a change event that changes nothing is ignored. */
let lastRun = '';
/** The collection the URL names, until the list of collections has arrived. */
let pendingCollection = '';
/** The listed collections by name: which model each uses. */
let collections = new Map();

// ---------------------------------------------------------------- state <-> form

function readForm() {
  return {
    q: q.value,
    collection: collectionSelect.value,
    like,
    modality: modalitySelect.value,
    mode: modeSelect.value,
    sort: sortSelect.value,
    cutoff: cutoffChosen ? cutoffSelect.value : '',
    min_score: minScoreInput.value,
    from: fromInput.value,
    to: toInput.value,
    filter: filterInput.value,
    collapse: collapseBox.checked ? '' : 'off',
    group: everyPartBox.checked ? 'off' : '',
  };
}

function selectValue(select, value, label = value) {
  if (value && ![...select.options].some((o) => o.value === value)) {
    // A value this page does not offer (a collection that is gone, a future mode, another
    // sort key): keep it so the search runs and the API says what is wrong with it.
    select.append(new Option(label, value));
  }
  select.value = value;
}

/** A cut-off as the picker words it: a fraction is "80% of the best". @param {string} value */
function cutoffLabel(value) {
  const n = Number(value);
  return value !== '' && Number.isFinite(n) ? `${Math.round(n * 1000) / 10}% of the best` : value;
}

/** The model the chosen collection uses, under the picker; a model the server does not serve is flagged. */
function showCollectionModel() {
  const c = collections.get(collectionSelect.value);
  collectionModel.textContent = !c ? '' : c.model_name ? `Model: ${c.model_name}` : `Model: ${c.model} (not served here)`;
  collectionModel.title = c ? `${c.model}, ${c.dimensions} dimensions` : '';
  collectionModel.classList.toggle('unserved', Boolean(c && !c.model_name));
}

function writeForm(state, nextImage) {
  q.value = state.q;
  if (collectionsLoaded) selectValue(collectionSelect, state.collection || collectionSelect.options[0]?.value || '');
  else pendingCollection = state.collection;
  showCollectionModel();
  selectValue(modalitySelect, state.modality);
  selectValue(modeSelect, state.mode);
  selectValue(sortSelect, state.sort);
  cutoffChosen = state.cutoff.trim() !== '';
  selectValue(cutoffSelect, effectiveCutoff(state), cutoffLabel(effectiveCutoff(state)));
  minScoreInput.value = state.min_score;
  fromInput.value = state.from; // a value that is not a date is refused by the input, and dropped
  toInput.value = state.to;
  filterInput.value = state.filter;
  collapseBox.checked = state.collapse !== 'off';
  everyPartBox.checked = state.group === 'off';
  setLike(state.like);
  setImage(nextImage);
}

function setLike(id) {
  like = id;
  $('like-chip').hidden = id === '';
  $('like-value').textContent = id;
  $('like-value').title = id;
}

function setImage(next) {
  image = next;
  $('image-chip').hidden = !next;
  const preview = /** @type {HTMLImageElement} */ ($('image-preview'));
  if (next) preview.src = next;
  else preview.removeAttribute('src');
}

// ---------------------------------------------------------------- URL and history

function urlFor(state) {
  const params = paramsFromState(state).toString();
  return params ? `${location.pathname}?${params}` : location.pathname;
}

/** Records the search in the address bar: a new history entry unless nothing changed. */
function remember(state, push) {
  const url = urlFor(state);
  const entry = { image };
  const same = url === location.pathname + location.search && (history.state?.image ?? null) === image;
  if (push && !same) history.pushState(entry, '', url);
  else history.replaceState(entry, '', url);
}

window.addEventListener('popstate', (event) => {
  const state = stateFromParams(new URLSearchParams(location.search));
  writeForm(state, event.state?.image ?? null);
  void run({ push: false });
});

// ---------------------------------------------------------------- searching

function showError(message) {
  errorLine.textContent = message;
  errorLine.hidden = false;
}

/** An API call's failure, as the page shows errors: the API's `detail` (a 401 opens the key field). */
function showFailure(err) {
  if (err instanceof ApiError) {
    showError(err.detail);
    if (err.status === 401) openKeySettings();
  } else {
    showError(`the server could not be reached: ${err instanceof Error ? err.message : err}`);
  }
}

function clearError() {
  errorLine.hidden = true;
  errorLine.textContent = '';
}

function clearResults() {
  for (const release of releases) release();
  releases = [];
  results.replaceChildren();
  moreButton.hidden = true;
}

function plural(n, one, many) {
  return `${n.toLocaleString()} ${n === 1 ? one : many}`;
}

/** How the results are ordered and cut, unless simply best match: " · newest first, cut off where the scores drop". */
function viewNote(state) {
  const parts = [];
  const sort = [...sortSelect.options].find((o) => o.value === state.sort);
  if (state.sort) parts.push(sort && sort.text !== state.sort ? sort.text.toLowerCase() : `sorted by ${state.sort}`);
  const cutoff = effectiveCutoff(state);
  if (cutoff === 'auto') parts.push('cut off where the scores drop');
  else if (cutoff !== 'off') parts.push(`cut off below ${cutoffLabel(cutoff)}`);
  return parts.length > 0 ? ` · ${parts.join(', ')}` : '';
}

/**
 * Runs the search the form shows. `push` records it as a new history entry; `append`
 * fetches the next page of the search already shown.
 */
async function run({ push = true, append = false } = {}) {
  if (duplicates.open) closeDuplicates({ search: false }); // a search brings the results back
  const state = append ? shown.state : readForm();
  const queryImage = append ? shown.image : image;
  if (!append) lastRun = JSON.stringify([state, queryImage]);
  if (!append) remember(state, push);
  inFlight?.abort();
  clearError();
  $('welcome').hidden = true;

  if (!hasQuery(state, queryImage)) {
    clearResults();
    statusLine.textContent = '';
    $('welcome').hidden = false;
    document.title = 'tessera search';
    return;
  }
  if (!state.collection) {
    clearResults();
    statusLine.textContent = '';
    showError(collectionsLoaded ? 'there are no collections yet: index some files first, e.g. tessera index ~/Pictures --collection photos' : 'the collections could not be listed');
    return;
  }

  const offset = append ? shown.count : 0;
  let body;
  try {
    body = searchBody(state, queryImage, offset);
  } catch (err) {
    if (!(err instanceof InputError)) throw err;
    clearResults();
    statusLine.textContent = '';
    showError(err.message);
    return;
  }

  const controller = new AbortController();
  inFlight = controller;
  document.body.classList.add('busy');
  results.setAttribute('aria-busy', 'true');
  const started = performance.now();
  try {
    const answer = await search(state.collection, body, controller.signal);
    if (controller.signal.aborted) return;
    const clientMs = performance.now() - started;
    if (!append) clearResults();
    const collection = state.collection;
    const context = { collection, terms: queryTerms(state.q), release: releases, play: (video) => void playVideo(collection, video) };
    const cards = answer.data.map((hit, i) => resultCard(hit, offset + i + 1, context));
    results.append(...cards);
    shown = { state, image: queryImage, count: offset + answer.data.length };
    moreButton.hidden = answer.data.length < PAGE_SIZE;
    const ms = answer.serverMs ?? clientMs;
    const filtered = state.min_score || state.filter || state.modality || state.from || state.to || effectiveCutoff(state) !== 'off';
    statusLine.textContent = shown.count === 0
      ? `No results in ${state.collection}${filtered ? ' with these filters' : ''} (${ms.toFixed(0)} ms)`
      : `${plural(shown.count, 'result', 'results')}${moreButton.hidden ? '' : ' so far'} in ${state.collection}${viewNote(state)} · ${ms.toFixed(ms < 10 ? 1 : 0)} ms`;
    statusLine.dataset.count = String(shown.count);
    statusLine.dataset.ms = ms.toFixed(1);
    document.title = `${state.q.trim() || (state.like ? `like ${state.like}` : 'image')} – tessera search`;
  } catch (err) {
    if (controller.signal.aborted) return;
    if (!append) clearResults();
    statusLine.textContent = '';
    showFailure(err);
  } finally {
    if (inFlight === controller) {
      inFlight = null;
      document.body.classList.remove('busy');
      results.removeAttribute('aria-busy');
    }
  }
}

// ---------------------------------------------------------------- images

/** Reads a dropped, pasted or picked file as a data URI, scaled down when it is large. */
async function imageFromFile(file) {
  const original = await new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(/** @type {string} */ (reader.result));
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
  let bitmap;
  try {
    bitmap = await createImageBitmap(file);
  } catch {
    return original; // a format this browser cannot decode: the server may (or will say why not)
  }
  const scale = MAX_IMAGE_SIDE / Math.max(bitmap.width, bitmap.height);
  if (scale >= 1) {
    bitmap.close();
    return original;
  }
  const canvas = document.createElement('canvas');
  canvas.width = Math.max(1, Math.round(bitmap.width * scale));
  canvas.height = Math.max(1, Math.round(bitmap.height * scale));
  canvas.getContext('2d').drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  bitmap.close();
  return canvas.toDataURL(file.type === 'image/png' ? 'image/png' : 'image/jpeg', 0.92);
}

function firstImageFile(files) {
  return [...(files ?? [])].find((f) => f.type.startsWith('image/') || f.type === '') ?? null;
}

/** Searches by an image: a new query (the text and the example are cleared). */
async function searchByImage(source) {
  try {
    const next = typeof source === 'string' ? source : await imageFromFile(source);
    q.value = '';
    setLike('');
    setImage(next);
    await run();
  } catch (err) {
    showError(`the image could not be read: ${err instanceof Error ? err.message : err}`);
  }
}

fileInput.addEventListener('change', () => {
  const file = firstImageFile(fileInput.files);
  fileInput.value = ''; // picking the same file again is a new search
  if (file) void searchByImage(file);
});

document.addEventListener('paste', (event) => {
  const file = firstImageFile(event.clipboardData?.files);
  if (!file) return; // a text paste goes where the user pasted it
  event.preventDefault();
  void searchByImage(file);
});

const overlay = $('drop-overlay');
let dragDepth = 0;
const carriesFiles = (event) => [...(event.dataTransfer?.types ?? [])].some((t) => t === 'Files' || t === 'text/uri-list');

document.addEventListener('dragenter', (event) => {
  if (!carriesFiles(event)) return;
  dragDepth++;
  overlay.hidden = false;
});
document.addEventListener('dragleave', () => {
  dragDepth = Math.max(0, dragDepth - 1);
  if (dragDepth === 0) overlay.hidden = true;
});
document.addEventListener('dragover', (event) => {
  if (!carriesFiles(event)) return;
  event.preventDefault(); // allows the drop
  if (event.dataTransfer) event.dataTransfer.dropEffect = 'copy';
});
document.addEventListener('drop', (event) => {
  dragDepth = 0;
  overlay.hidden = true;
  const transfer = event.dataTransfer;
  if (!transfer) return;
  const file = firstImageFile(transfer.files);
  // An image dragged from another page arrives as its URL; the server fetches it.
  const url = transfer.getData('text/uri-list').split(/\r?\n/).find((line) => /^https?:\/\//i.test(line));
  if (!file && !url) return;
  event.preventDefault();
  void searchByImage(file ?? url);
});

// ---------------------------------------------------------------- form and keys

form.addEventListener('submit', (event) => {
  event.preventDefault();
  void run();
});

q.addEventListener('keydown', (event) => {
  if (event.key !== 'Escape') return;
  event.preventDefault();
  q.value = '';
  setLike('');
  setImage(null);
  void run();
});

// Changing a filter re-runs what is shown; the text box waits for Enter.
// (Enter in a filter box both submits and fires change: only one search is run.)
function runIfChanged() {
  const state = readForm();
  if (!hasQuery(state, image)) remember(state, false);
  else if (JSON.stringify([state, image]) !== lastRun) void run();
}
// The cut-off follows the sort (auto when sorted by date, off for best match) until one is chosen.
sortSelect.addEventListener('change', () => {
  if (!cutoffChosen) cutoffSelect.value = defaultCutoff(sortSelect.value);
  runIfChanged();
});
cutoffSelect.addEventListener('change', () => {
  cutoffChosen = true;
  runIfChanged();
});
for (const select of [collectionSelect, modalitySelect, modeSelect]) {
  select.addEventListener('change', () => {
    if (select === collectionSelect) {
      setLike(''); // ids belong to one collection
      showCollectionModel();
      if (duplicates.open) {
        // The view follows the collection; the search waits until the view is closed.
        remember(readForm(), false);
        void showDuplicates(collectionSelect.value);
        return;
      }
    }
    runIfChanged();
  });
}
for (const input of [minScoreInput, fromInput, toInput, filterInput, collapseBox, everyPartBox]) input.addEventListener('change', runIfChanged);

$('like-remove').addEventListener('click', () => {
  setLike('');
  void run();
});
$('image-remove').addEventListener('click', () => {
  setImage(null);
  void run();
});

moreButton.addEventListener('click', () => void run({ append: true }));

// More like this: a click on any result.
results.addEventListener('click', (event) => {
  const button = /** @type {HTMLElement} */ (event.target).closest('button.hit');
  const card = button?.closest('[data-id]');
  if (!card) return;
  q.value = '';
  setImage(null);
  setLike(/** @type {HTMLElement} */ (card).dataset.id ?? '');
  window.scrollTo({ top: 0, behavior: 'smooth' });
  void run();
});

// ---------------------------------------------------------------- the video player

// One player for the page, in a modal dialog (Escape or × closes it, focus returns to the
// button that opened it): a card is too small to watch in.
const player = /** @type {HTMLDialogElement} */ ($('player'));
const video = /** @type {HTMLVideoElement} */ ($('player-video'));
const playerError = $('player-error');
/** The video loaded in the player (collection, file, key or not) and what frees its blob. */
let loaded = { key: '', release: () => {} };
/** The file being fetched for the player (with a key): a newer one aborts it. */
let playerLoad = /** @type {AbortController | null} */ (null);
/** Where to seek once the video's length is known (a media fragment the browser ignored). */
let pendingSeek = /** @type {number | null} */ (null);
/** What had focus when the player opened. */
let playerOpener = /** @type {Element | null} */ (null);

function showPlayerError(message) {
  playerError.textContent = message;
  playerError.hidden = false;
}

/** The moments listed under the video, the one playing marked. */
function showMoments(collection, file, moments, current) {
  const list = $('player-moments');
  list.replaceChildren();
  if (moments.length < 2) return;
  list.append(Object.assign(document.createElement('span'), { className: 'parts-label', textContent: 'Matching moments' }));
  for (const moment of moments) {
    const time = clockTime(moment.t);
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'part';
    button.textContent = time || '?';
    button.dataset.t = moment.t === null ? '' : String(moment.t);
    button.dataset.doc = moment.id;
    button.setAttribute('aria-label', `Play from ${time || 'its moment'} (score ${moment.score.toFixed(3)})`);
    if (moment.id === current) button.setAttribute('aria-current', 'true');
    button.addEventListener('click', () => void playVideo(collection, { file, moments, t: moment.t, id: moment.id }));
    list.append(button);
  }
}

function seek(t) {
  if (t === null) return;
  if (video.readyState >= HTMLMediaElement.HAVE_METADATA) video.currentTime = t;
  else pendingSeek = t;
}

function startPlaying() {
  video.play().catch(() => {
    // Refused (autoplay rules) or interrupted by another source: the controls are there.
  });
}

/**
 * Plays a video from a moment: `id` is the moment's frame, whose file route serves the video.
 * @param {string} collection
 * @param {{file: string, moments: {id: string, t: number | null, score: number}[], t: number | null, id: string}} moment
 */
async function playVideo(collection, { file, moments, t, id }) {
  if (!player.open) {
    playerOpener = document.activeElement;
    player.showModal();
  }
  $('player-title').textContent = t === null ? file : `${file} · ${clockTime(t)}`;
  player.dataset.file = file;
  showMoments(collection, file, moments, id);
  playerError.hidden = true;

  const key = JSON.stringify([collection, file, usesKey()]);
  if (loaded.key === key && video.getAttribute('src')) {
    seek(t);
    startPlaying();
    return;
  }
  unloadVideo();
  const controller = new AbortController();
  playerLoad = controller;
  loaded = { key, release: () => {} };
  let source;
  try {
    // Without a key: the file route itself, streamed with Range requests. With one: a blob.
    source = await fileUrl(collection, id, controller.signal);
  } catch (err) {
    if (controller.signal.aborted) return;
    showPlayerError(`the video could not be fetched: ${err instanceof ApiError ? err.detail : err instanceof Error ? err.message : err}`);
    return;
  }
  if (controller.signal.aborted) {
    source.release();
    return;
  }
  playerLoad = null;
  loaded.release = source.release;
  pendingSeek = t;
  // The media fragment starts the stream at the moment; loadedmetadata seeks where it did not.
  video.src = t === null ? source.url : `${source.url}#t=${t}`;
  startPlaying();
}

function unloadVideo() {
  playerLoad?.abort();
  playerLoad = null;
  pendingSeek = null;
  video.pause();
  if (video.getAttribute('src')) {
    video.removeAttribute('src');
    video.load(); // drops the old stream
  }
  loaded.release();
  loaded = { key: '', release: () => {} };
}

video.addEventListener('loadedmetadata', () => {
  const t = pendingSeek;
  pendingSeek = null;
  if (t !== null && Math.abs(video.currentTime - t) > 0.25) video.currentTime = Math.min(t, video.duration || t);
});
video.addEventListener('error', () => {
  if (!video.getAttribute('src')) return; // unloaded on purpose
  if (!playerError.hidden) return; // a more precise reason was given (the policy's)
  const code = video.error?.code;
  showPlayerError(code === MediaError.MEDIA_ERR_SRC_NOT_SUPPORTED
    ? 'this browser cannot play this video: its format is not supported here, or the file could not be served'
    : `the video could not be played (${video.error?.message || `error ${code}`})`);
});

// A server whose Content-Security-Policy forbids media: say so, not "cannot play".
document.addEventListener('securitypolicyviolation', (event) => {
  if (event.effectiveDirective !== 'media-src' || !player.open) return;
  showPlayerError(`the server's Content-Security-Policy does not let this page play media (${event.blockedURI || 'the video'} was blocked by ${event.effectiveDirective})`);
});

$('player-close').addEventListener('click', () => player.close());
// A click on the backdrop (outside the dialog's box) closes it too.
player.addEventListener('click', (event) => {
  if (event.target !== player) return;
  const box = player.getBoundingClientRect();
  const inside = event.clientX >= box.left && event.clientX <= box.right && event.clientY >= box.top && event.clientY <= box.bottom;
  if (!inside) player.close();
});
player.addEventListener('close', () => {
  unloadVideo();
  delete player.dataset.file;
  if (playerOpener instanceof HTMLElement && playerOpener.isConnected) playerOpener.focus();
  playerOpener = null;
});

// ---------------------------------------------------------------- duplicates

// The view scans the chosen collection as a job on the server (POST .../duplicates), polls it
// for its progress while it runs, and lists its groups once done. Only the job's id is kept
// here: opening the view again (or after a reload) shows the collection's latest scan on this
// server, finished or still running. Closing the view or choosing another collection stops
// polling (the scan goes on, and is shown again later); Stop cancels the scan (DELETE).

/** Groups asked for per page ("Show more groups" asks for the next). */
const GROUPS_PAGE = 60;
/** Polling: first after this many ms, then less and less often, up to the most. */
const POLL_FIRST_MS = 150;
const POLL_MAX_MS = 2000;

const dupToggle = /** @type {HTMLButtonElement} */ ($('duplicates-open'));
const dupSection = $('duplicates');
const dupTitle = $('duplicates-title');
const dupForm = /** @type {HTMLFormElement} */ ($('dup-form'));
const dupThreshold = /** @type {HTMLInputElement} */ ($('dup-threshold'));
const dupModality = /** @type {HTMLSelectElement} */ ($('dup-modality'));
const dupScan = /** @type {HTMLButtonElement} */ ($('dup-scan'));
const dupStop = /** @type {HTMLButtonElement} */ ($('dup-stop'));
const dupShowField = $('dup-show-field');
const dupShow = /** @type {HTMLSelectElement} */ ($('dup-show'));
const dupStatus = $('dup-status');
const dupProgress = /** @type {HTMLProgressElement} */ ($('dup-progress'));
const dupGroups = $('dup-groups');
const dupMore = /** @type {HTMLButtonElement} */ ($('dup-more'));

const duplicates = {
  open: false,
  /** The collection the view shows. */
  collection: '',
  /** The job shown (its id), or ''. */
  job: '',
  /** What the view is waiting for (a poll, a page of groups): a newer task aborts it. */
  task: /** @type {AbortController | null} */ (null),
  timer: /** @type {ReturnType<typeof setTimeout> | undefined} */ (undefined),
  /** Per shown member: releases its thumbnail. */
  releases: /** @type {(() => void)[]} */ ([]),
  /** Groups shown, the next page's offset (null: none), and how many of each kind. */
  loaded: 0,
  next: /** @type {number | null} */ (null),
  counts: /** @type {Record<string, number>} */ ({}),
  /** What the status line says of the finished scan. */
  summary: '',
};

function stopTask() {
  duplicates.task?.abort();
  duplicates.task = null;
  clearTimeout(duplicates.timer);
  duplicates.timer = undefined;
}

function newTask() {
  stopTask();
  const task = new AbortController();
  duplicates.task = task;
  return task;
}

function clearGroups() {
  for (const release of duplicates.releases) release();
  duplicates.releases = [];
  dupGroups.replaceChildren();
  dupMore.hidden = true;
  dupShowField.hidden = true;
  dupShow.value = '';
  duplicates.loaded = 0;
  duplicates.next = null;
  duplicates.counts = {};
  duplicates.summary = '';
}

/** The controls while a scan runs (Stop, the progress bar) or not (Scan). */
function showRunning(job) {
  const running = job !== null && (job.status === 'queued' || job.status === 'running');
  dupScan.disabled = running || !duplicates.collection;
  dupStop.hidden = !running;
  dupProgress.hidden = !running;
  dupSection.setAttribute('aria-busy', String(running));
  if (!running) return;
  dupStatus.textContent = scanProgress(job);
  if (job.status === 'queued' || job.total === 0) {
    dupProgress.removeAttribute('value'); // indeterminate
  } else {
    dupProgress.max = job.total;
    dupProgress.value = job.scanned;
  }
}

function openDuplicates() {
  duplicates.open = true;
  dupToggle.setAttribute('aria-expanded', 'true');
  document.body.classList.add('duplicates-open');
  dupSection.hidden = false;
  void showDuplicates(collectionSelect.value);
}

/** Back to the search; `search` runs it when the form changed meanwhile (another collection). */
function closeDuplicates({ search = true } = {}) {
  stopTask();
  clearGroups();
  duplicates.open = false;
  duplicates.job = '';
  dupToggle.setAttribute('aria-expanded', 'false');
  document.body.classList.remove('duplicates-open');
  dupSection.hidden = true;
  clearError();
  if (search) runIfChanged();
}

/** The view for `collection`: its latest scan on this server if there is one, else ready to scan. */
async function showDuplicates(collection) {
  const task = newTask();
  clearGroups();
  clearError();
  duplicates.collection = collection;
  duplicates.job = '';
  showRunning(null);
  dupTitle.textContent = collection ? `Duplicates in ${collection}` : 'Duplicates';
  if (!collection) {
    dupStatus.textContent = '';
    showError(collectionsLoaded ? 'there are no collections yet: index some files first, e.g. tessera index ~/Pictures --collection photos' : 'the collections could not be listed');
    return;
  }
  dupStatus.textContent = 'Scan to find exact copies, near-identical pictures and similar shots.';
  let jobs;
  try {
    jobs = await duplicateJobs(collection, task.signal);
  } catch (err) {
    if (task.signal.aborted) return;
    dupStatus.textContent = '';
    showFailure(err);
    return;
  }
  if (task.signal.aborted) return;
  const latest = jobs.filter((job) => job.status !== 'cancelled' && job.status !== 'failed').at(-1);
  if (!latest) return;
  dupThreshold.value = String(latest.threshold);
  dupModality.value = latest.modality ?? '';
  await follow(latest, task, 0);
}

/** Polls `job` until it is finished, then shows its groups; stops when `task` is aborted. */
async function follow(job, task, firstDelay) {
  const collection = duplicates.collection;
  duplicates.job = job.id;
  showRunning(job);
  let delay = POLL_FIRST_MS;
  const wait = (ms) => new Promise((resolve) => {
    duplicates.timer = setTimeout(resolve, ms);
  });
  if (firstDelay > 0) await wait(firstDelay);
  for (;;) {
    if (task.signal.aborted) return;
    let answer;
    try {
      answer = await duplicatesJob(collection, job.id, { limit: GROUPS_PAGE }, task.signal);
    } catch (err) {
      if (task.signal.aborted) return;
      showRunning(null);
      duplicates.job = '';
      dupStatus.textContent = '';
      showFailure(err);
      return;
    }
    if (task.signal.aborted) return;
    if (answer.status === 'queued' || answer.status === 'running') {
      showRunning(answer);
      await wait(delay);
      delay = Math.min(POLL_MAX_MS, Math.round(delay * 1.5));
      continue;
    }
    showRunning(null);
    if (answer.status === 'done') {
      showGroups(answer);
    } else if (answer.status === 'failed') {
      dupStatus.textContent = '';
      showError(`the scan failed: ${answer.error?.message ?? 'no reason given'}`);
    } else {
      dupStatus.textContent = 'The scan was stopped.';
    }
    return;
  }
}

/** A finished job's first page of groups, replacing what was shown. */
function showGroups(job) {
  clearGroups();
  const seconds = job.started_at && job.finished_at ? (Date.parse(job.finished_at) - Date.parse(job.started_at)) / 1000 : null;
  const took = seconds === null ? '' : seconds < 0.1 ? ' in under 0.1 s' : ` in ${seconds.toFixed(seconds < 10 ? 1 : 0)} s`;
  const scanned = `${plural(job.scanned, 'document', 'documents')} scanned${took}`;
  duplicates.summary = job.groups === 0
    ? `No duplicates in ${job.collection} at threshold ${job.threshold} (${scanned})`
    : `${plural(job.groups, 'group', 'groups')} of duplicates in ${job.collection} at threshold ${job.threshold} · ${scanned}`;
  appendGroups(job);
}

/** Shows a page of a finished job's groups after those shown. */
function appendGroups(job) {
  const collection = duplicates.collection;
  const context = {
    collection,
    release: duplicates.releases,
    describe: (id) => getDocument(collection, id).catch(() => null),
  };
  const groups = job.data ?? [];
  dupGroups.append(...groups.map((group, i) => duplicateGroup(group, duplicates.loaded + i, context)));
  for (const group of groups) duplicates.counts[group.kind] = (duplicates.counts[group.kind] ?? 0) + 1;
  duplicates.loaded += groups.length;
  duplicates.next = job.next_offset ?? null;
  dupMore.hidden = duplicates.next === null;
  // The kinds found, with their counts (of the groups shown).
  for (const option of dupShow.options) {
    const label = option.value === '' ? 'All groups' : DUPLICATE_KINDS[option.value] ?? option.value;
    const n = option.value === '' ? duplicates.loaded : duplicates.counts[option.value] ?? 0;
    option.textContent = `${label} (${n.toLocaleString()})`;
  }
  dupShowField.hidden = duplicates.loaded === 0;
  dupStatus.textContent = duplicates.summary + (duplicates.next === null ? '' : ` · ${duplicates.loaded.toLocaleString()} shown`);
  filterGroups();
}

/** Shows only the groups of the kind chosen under "Show". */
function filterGroups() {
  const kind = dupShow.value;
  for (const item of /** @type {HTMLElement[]} */ ([...dupGroups.children])) item.hidden = kind !== '' && item.dataset.kind !== kind;
}

dupToggle.addEventListener('click', () => {
  if (duplicates.open) closeDuplicates();
  else openDuplicates();
});

$('dup-close').addEventListener('click', () => {
  closeDuplicates();
  dupToggle.focus();
});

dupSection.addEventListener('keydown', (event) => {
  if (event.key !== 'Escape' || event.defaultPrevented) return;
  event.preventDefault();
  closeDuplicates();
  dupToggle.focus();
});

dupForm.addEventListener('submit', async (event) => {
  event.preventDefault();
  const collection = duplicates.collection;
  if (!collection || !dupStop.hidden) return; // none, or one is running
  let body;
  try {
    body = duplicatesBody(dupThreshold.value, dupModality.value);
  } catch (err) {
    if (!(err instanceof InputError)) throw err;
    showError(err.message);
    return;
  }
  const task = newTask();
  clearGroups();
  clearError();
  dupScan.disabled = true;
  dupStatus.textContent = 'Starting a scan…';
  let job;
  try {
    job = await startDuplicates(collection, body, task.signal);
  } catch (err) {
    if (task.signal.aborted) return;
    showRunning(null);
    dupStatus.textContent = '';
    showFailure(err);
    return;
  }
  if (task.signal.aborted) return; // the view moved on; the scan runs on, and is shown when back
  await follow(job, task, POLL_FIRST_MS);
});

dupStop.addEventListener('click', async () => {
  const { collection, job } = duplicates;
  if (!job) return;
  stopTask();
  duplicates.job = '';
  showRunning(null);
  dupScan.focus(); // Stop is gone
  dupStatus.textContent = 'Stopping the scan…';
  try {
    await cancelDuplicates(collection, job);
  } catch (err) {
    // Gone already (finished and expired, deleted elsewhere): stopped all the same.
    if (!(err instanceof ApiError && err.code === 'DUPLICATES_JOB_NOT_FOUND')) {
      if (duplicates.open && duplicates.collection === collection) {
        dupStatus.textContent = '';
        showFailure(err);
      }
      return;
    }
  }
  if (duplicates.open && duplicates.collection === collection && !duplicates.job) dupStatus.textContent = 'Scan stopped.';
});

dupShow.addEventListener('change', filterGroups);

dupMore.addEventListener('click', async () => {
  const { collection, job, next } = duplicates;
  if (!job || next === null) return;
  const task = newTask();
  dupMore.disabled = true;
  try {
    const page = await duplicatesJob(collection, job, { offset: next, limit: GROUPS_PAGE }, task.signal);
    if (!task.signal.aborted) appendGroups(page);
  } catch (err) {
    if (!task.signal.aborted) showFailure(err);
  } finally {
    dupMore.disabled = false;
  }
});

// A member's thumbnail: more like it, back in the search.
dupGroups.addEventListener('click', (event) => {
  const button = /** @type {HTMLElement} */ (event.target).closest('button.hit');
  const member = button?.closest('[data-doc]');
  if (!member) return;
  closeDuplicates({ search: false });
  q.value = '';
  setImage(null);
  setLike(/** @type {HTMLElement} */ (member).dataset.doc ?? '');
  window.scrollTo({ top: 0, behavior: 'smooth' });
  void run();
});

// ---------------------------------------------------------------- API key

function openKeySettings() {
  /** @type {HTMLDetailsElement} */ ($('settings')).open = true;
  keyInput.focus();
}

keyInput.value = savedKey();
function keyChanged() {
  const key = keyInput.value.trim();
  if (key === savedKey()) return;
  saveKey(key);
  void start();
}
keyInput.addEventListener('change', keyChanged);
$('settings-form').addEventListener('submit', (event) => {
  event.preventDefault();
  keyChanged();
});

// ---------------------------------------------------------------- start

async function loadCollections() {
  const previous = pendingCollection || collectionSelect.value;
  collectionSelect.replaceChildren();
  const list = await listCollections();
  collections = new Map(list.map((c) => [c.name, c]));
  for (const c of list) {
    const option = new Option(`${c.name} (${c.count.toLocaleString()}) · ${c.model_name ?? 'model not served'}`, c.name);
    option.title = `${c.model}, ${c.dimensions} dimensions, ${c.count} documents`;
    collectionSelect.append(option);
  }
  collectionsLoaded = true;
  selectValue(collectionSelect, previous || list[0]?.name || '');
  pendingCollection = '';
  showCollectionModel();
}

async function start() {
  clearError();
  try {
    await loadCollections();
  } catch (err) {
    collectionsLoaded = false;
    if (err instanceof ApiError && err.status === 404) showError('this server has no store of collections to search (start it with tessera serve --store DIR)');
    else showError(err instanceof ApiError ? err.detail : `the server could not be reached: ${err}`);
    if (err instanceof ApiError && err.status === 401) openKeySettings();
    return;
  }
  await run({ push: false });
}

writeForm(stateFromParams(new URLSearchParams(location.search)), history.state?.image ?? null);
document.documentElement.dataset.ready = 'false';
start().finally(() => {
  // A hook for scripts and tests: the first search (if any) has been answered.
  document.documentElement.dataset.ready = 'true';
});
