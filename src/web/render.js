// Result cards. Built with DOM calls and textContent only: document texts, ids and metadata
// come from whoever indexed them and are never parsed as HTML.

import { showThumbnail } from './api.js';

const SNIPPET_CHARS = 320;

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const ISO_DATE = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/i;
/** Words that end makers' names in EXIF ("NIKON CORPORATION", "RICOH IMAGING COMPANY, LTD."). */
const MAKER_SUFFIX = /(?:[\s,]+(?:imaging|camera|optical|techwin|co|corp|corporation|company|ltd|inc|ag|gmbh)\.?)+$/i;
/** Keys the card shows as the photo's date, camera and place. */
const PHOTO_KEYS = ['taken_at', 'taken_at_offset_known', 'camera_make', 'camera_model', 'lens', 'gps_lat', 'gps_lon', 'gps_alt'];
/** Keys of the file a photo was indexed from: on a photo's card, in the metadata's tooltip only. */
const FILE_KEYS = ['width', 'height', 'orientation', 'mtime', 'bytes', 'ext'];
/** Generic metadata rows shown on a card (all of them are in its tooltip). */
const METADATA_ROWS = 4;

/**
 * @typedef {{id: string, score: number, text?: string, image?: string, metadata?: Record<string, string | number | boolean>}} Hit
 */

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** The words of a text query, for highlighting (at least two letters, regex-escaped). */
export function queryTerms(text) {
  return [...new Set(text.toLowerCase().split(/[^\p{L}\p{N}]+/u).filter((w) => w.length >= 2))]
    .map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
}

/** Appends `text` to `parent`, wrapping the query's words in <mark>. */
function appendHighlighted(parent, text, terms) {
  if (terms.length === 0) {
    parent.append(text);
    return;
  }
  const pattern = new RegExp(`(${terms.join('|')})`, 'giu');
  text.split(pattern).forEach((piece, i) => {
    if (piece === '') return;
    // split() with one capture group puts the matches at odd positions
    parent.append(i % 2 === 1 ? element('mark', '', piece) : piece);
  });
}

function snippet(text) {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > SNIPPET_CHARS ? `${flat.slice(0, SNIPPET_CHARS - 1)}…` : flat;
}

const pad = (n) => String(n).padStart(2, '0');

/**
 * When a photo was taken, for people: "14 Jul 2021 18:03 UTC". Always in UTC (or as written,
 * when the time has no zone), never moved into the browser's time zone. `datetime` is the
 * machine-readable form for <time>; `note` says what the time is. Null when `value` is not
 * an ISO 8601 date.
 * @param {unknown} value metadata `taken_at`
 * @param {unknown} offsetKnown metadata `taken_at_offset_known`: false when the camera recorded
 *   no time zone, so the time is its clock's
 * @returns {{text: string, datetime: string, note: string} | null}
 */
export function takenAt(value, offsetKnown) {
  const m = typeof value === 'string' ? ISO_DATE.exec(value.trim()) : null;
  if (!m) return null;
  const [, y, mo, d, h, mi, sec = '00', zone] = m;
  const date = new Date(0);
  date.setUTCFullYear(Number(y), Number(mo) - 1, Number(d));
  if (date.getUTCMonth() !== Number(mo) - 1) return null;
  const day = (t) => `${t.getUTCDate()} ${MONTHS[t.getUTCMonth()]} ${t.getUTCFullYear()}`;
  if (h === undefined) return { text: day(date), datetime: `${y}-${mo}-${d}`, note: String(value) };
  date.setUTCHours(Number(h), Number(mi), Number(sec));
  if (zone && zone.toUpperCase() !== 'Z') {
    const digits = zone.replace(':', '');
    const minutes = Number(digits.slice(1, 3)) * 60 + Number(digits.slice(3, 5));
    date.setTime(date.getTime() - (zone[0] === '-' ? -1 : 1) * minutes * 60_000);
  }
  const clock = `${day(date)} ${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}`;
  const iso = date.toISOString().slice(0, 19);
  if (!zone || offsetKnown === false) {
    return { text: `${clock} (zone unknown)`, datetime: iso, note: `${value}: no time zone was recorded, this is the time the camera's clock showed` };
  }
  return { text: `${clock} UTC`, datetime: `${iso}Z`, note: `${value} (UTC)` };
}

/**
 * The camera, for people: make and model, the make left out when the model starts with it
 * ("Canon" + "Canon EOS R5": "Canon EOS R5"; "NIKON CORPORATION" + "NIKON D750": "NIKON D750";
 * "FUJIFILM" + "X-T3": "FUJIFILM X-T3"). '' when neither is set.
 * @param {unknown} make @param {unknown} model
 */
export function cameraName(make, model) {
  const maker = typeof make === 'string' ? make.trim().replace(MAKER_SUFFIX, '') : '';
  const name = typeof model === 'string' ? model.trim() : '';
  if (maker === '' || name === '') return maker || name;
  const brand = maker.split(/\s+/)[0].toLowerCase();
  const rest = name.slice(brand.length);
  return name.toLowerCase().startsWith(brand) && !/^[\p{L}\p{N}]/u.test(rest) ? name : `${maker} ${name}`;
}

/** A coordinate rounded to 2 decimals (about a kilometre), no "-0.00". @param {number} n */
const degrees = (n) => n.toFixed(2).replace(/^-(0\.00)$/, '$1');

/**
 * Where a photo was taken, for people: "38.72, -9.14" (latitude, longitude). '' without both.
 * @param {unknown} lat @param {unknown} lon
 */
export function placeText(lat, lon) {
  const ok = (n) => typeof n === 'number' && Number.isFinite(n);
  return ok(lat) && ok(lon) ? `${degrees(/** @type {number} */ (lat))}, ${degrees(/** @type {number} */ (lon))}` : '';
}

/** One row of a <dl>: a term (hidden when the value speaks for itself) and its value. */
function factRow(term, value, className, title) {
  const row = element('div', `fact fact-${className}`);
  const dd = element('dd', className);
  dd.append(value);
  if (title) dd.title = title;
  row.append(element('dt', 'visually-hidden', term), dd);
  return row;
}

/**
 * A photo's date, camera and place, when its metadata has them; null when it has none.
 * @param {Record<string, string | number | boolean>} metadata
 */
function photoFacts(metadata) {
  const rows = [];
  const taken = takenAt(metadata.taken_at, metadata.taken_at_offset_known);
  if (taken) {
    const time = element('time', '', taken.text);
    time.setAttribute('datetime', taken.datetime);
    rows.push(factRow('Taken', time, 'taken', taken.note));
  }
  const camera = cameraName(metadata.camera_make, metadata.camera_model);
  if (camera) rows.push(factRow('Camera', camera, 'camera', typeof metadata.lens === 'string' && metadata.lens ? `${camera}\nLens: ${metadata.lens}` : ''));
  const place = placeText(metadata.gps_lat, metadata.gps_lon);
  if (place) {
    const alt = typeof metadata.gps_alt === 'number' ? `, ${Math.round(metadata.gps_alt)} m` : '';
    rows.push(factRow('Place', place, 'place', `${metadata.gps_lat}, ${metadata.gps_lon}${alt}`));
  }
  if (rows.length === 0) return null;
  const list = element('dl', 'facts');
  list.append(...rows);
  return list;
}

/**
 * One result: a button (click or Enter: more like this) holding the thumbnail or the text
 * snippet, then the score, the id and the metadata.
 * @param {Hit} hit
 * @param {number} rank 1-based
 * @param {{collection: string, terms: string[], release: (() => void)[]}} context
 */
export function resultCard(hit, rank, context) {
  const isImage = typeof hit.image === 'string' && typeof hit.text !== 'string';
  const card = element('li', `card ${isImage ? 'card-image' : 'card-text'}`);
  card.dataset.id = hit.id;
  card.dataset.score = String(hit.score);
  card.dataset.rank = String(rank);
  card.dataset.modality = isImage ? 'image' : 'text';

  const button = element('button', 'hit');
  button.type = 'button';
  button.title = 'More like this';
  button.setAttribute('aria-label', `Result ${rank}: ${hit.id}, score ${hit.score.toFixed(3)}. More like this`);
  if (isImage) {
    const frame = element('span', 'thumb');
    const img = element('img');
    img.alt = hit.id;
    img.decoding = 'async';
    img.addEventListener('error', () => frame.classList.add('thumb-missing'), { once: true });
    context.release.push(showThumbnail(img, context.collection, hit.id));
    frame.append(img);
    button.append(frame);
  } else {
    const p = element('p', 'snippet');
    appendHighlighted(p, snippet(hit.text ?? ''), context.terms);
    button.append(p);
  }
  card.append(button);

  const footer = element('div', 'card-footer');
  footer.append(element('span', 'score', hit.score.toFixed(3)), element('span', 'doc-id', hit.id));
  footer.lastChild.title = hit.id;
  card.append(footer);

  const metadata = hit.metadata ?? {};
  const entries = Object.entries(metadata);
  const everything = entries.map(([k, v]) => `${k}: ${v}`).join('\n');
  const facts = photoFacts(metadata);
  if (facts) {
    facts.title = everything;
    card.append(facts);
  }
  // A photo's card shows its facts in place of the keys they come from, and not its file's.
  const rows = facts ? entries.filter(([key]) => !PHOTO_KEYS.includes(key) && !FILE_KEYS.includes(key)) : entries;
  if (rows.length > 0) {
    const list = element('dl', 'metadata');
    for (const [key, value] of rows.slice(0, METADATA_ROWS)) {
      const row = element('div');
      row.append(element('dt', '', key), element('dd', '', String(value)));
      list.append(row);
    }
    if (rows.length > METADATA_ROWS || rows.length < entries.length) list.title = everything;
    card.append(list);
  }
  return card;
}
