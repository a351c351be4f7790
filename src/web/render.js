// Result cards. Built with DOM calls and textContent only: document texts, ids and metadata
// come from whoever indexed them and are never parsed as HTML.

import { fileUrl, filePath, showThumbnail, usesKey } from './api.js';

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
/** Keys of a video's frame and a PDF's page: the card says them in words, they are not listed. */
const PART_KEYS = ['video', 't', 'duration', 'pdf', 'page', 'page_count', 'title', 'author'];

/**
 * A search result. A video's is its best frame, with other matching frames in `moments`; a
 * PDF's is its best page, with other matching pages in `pages`; with collapsing, a result
 * stands for the near-identical documents in `collapsed`.
 * @typedef {{id: string, t: number | null, score: number}} Moment
 * @typedef {{id: string, page: number | null, score: number}} PageMatch
 * @typedef {{id: string, score: number, text?: string, image?: string, metadata?: Record<string, string | number | boolean>,
 *   moments?: Moment[], pages?: PageMatch[], collapsed?: {id: string, score: number}[]}} Hit
 */

/**
 * What the page does for a card beyond showing it: play a video from a moment.
 * @typedef {object} CardContext
 * @property {string} collection
 * @property {string[]} terms the query's words, to highlight
 * @property {(() => void)[]} release collects what each card holds (thumbnails, blobs)
 * @property {(video: {file: string, moments: Moment[], t: number | null, id: string}) => void} play
 *   plays the video (`file`: its id) from moment `id` at `t` seconds; `moments` are those the card lists
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
 * A time into a video as a clock reads it: "0:03", "12:05", "1:02:09" (whole seconds, rounded
 * down, so a moment is never labelled after it happens). '' when not a time.
 * @param {unknown} seconds
 */
export function clockTime(seconds) {
  if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds < 0) return '';
  const whole = Math.floor(seconds);
  const h = Math.floor(whole / 3600);
  const m = Math.floor((whole % 3600) / 60);
  const s = pad(whole % 60);
  return h > 0 ? `${h}:${pad(m)}:${s}` : `${m}:${s}`;
}

/**
 * "page 2 of 5", or "page 2" when the page count is unknown; '' without a page number.
 * @param {unknown} page @param {unknown} count
 */
export function pageText(page, count) {
  if (typeof page !== 'number' || !Number.isInteger(page)) return '';
  return typeof count === 'number' && Number.isInteger(count) && count >= page ? `page ${page} of ${count}` : `page ${page}`;
}

/** A frame's time: its `t`, else its id's `#t=SECONDS`. @param {Hit} hit @returns {number | null} */
export function frameTime(hit) {
  const t = hit.metadata?.t;
  if (typeof t === 'number' && Number.isFinite(t)) return t;
  const m = /#t=(\d+(?:\.\d+)?)$/.exec(hit.id);
  return m ? Number(m[1]) : null;
}

/** A page's number: its `page`, else its id's `#page=N`. @param {Hit} hit @returns {number | null} */
export function pageNumber(hit) {
  const page = hit.metadata?.page;
  if (typeof page === 'number' && Number.isInteger(page)) return page;
  const m = /#page=(\d+)(?:&text)?$/.exec(hit.id);
  return m ? Number(m[1]) : null;
}

/** What file a result is part of: a video's frame, a PDF's page, or neither. @param {Hit} hit */
export function partOf(hit) {
  const metadata = hit.metadata ?? {};
  if (typeof metadata.video === 'string') return { kind: 'video', file: metadata.video };
  if (typeof metadata.pdf === 'string') return { kind: 'pdf', file: metadata.pdf };
  if (Array.isArray(hit.moments)) return { kind: 'video', file: hit.id.replace(/#t=[^#]*$/, '') };
  if (Array.isArray(hit.pages)) return { kind: 'pdf', file: hit.id.replace(/#page=[^#]*$/, '') };
  return null;
}

/** A thumbnail in a frame that says when it is missing. */
function thumbnail(hit, context) {
  const frame = element('span', 'thumb');
  const img = element('img');
  img.alt = hit.id;
  img.decoding = 'async';
  img.addEventListener('error', () => frame.classList.add('thumb-missing'), { once: true });
  context.release.push(showThumbnail(img, context.collection, hit.id));
  frame.append(img);
  return frame;
}

/**
 * A video's moments: the result's own frame first (a play button), then the other matching
 * ones; each plays the video from its time.
 * @param {Hit} hit @param {string} file the video's id @param {CardContext} context
 */
function momentList(hit, file, context) {
  const own = { id: hit.id, t: frameTime(hit), score: hit.score };
  const moments = [own, ...(hit.moments ?? []).filter((m) => m && typeof m.id === 'string')];
  const group = element('div', 'parts moments');
  group.setAttribute('role', 'group');
  group.setAttribute('aria-label', `Moments of ${file}`);
  moments.forEach((moment, i) => {
    const time = clockTime(moment.t);
    const button = element('button', i === 0 ? 'part play' : 'part', i === 0 ? `▶ ${time || 'Play'}` : time || '?');
    button.type = 'button';
    button.dataset.t = moment.t === null || moment.t === undefined ? '' : String(moment.t);
    button.dataset.doc = moment.id;
    button.setAttribute('aria-label', `Play ${file}${time ? ` from ${time}` : ''} (score ${moment.score.toFixed(3)})`);
    button.title = `${moment.id}, score ${moment.score.toFixed(3)}`;
    button.addEventListener('click', () => context.play({ file, moments, t: moment.t, id: moment.id }));
    if (i === 1) group.append(element('span', 'parts-label', 'also'));
    group.append(button);
  });
  return group;
}

/**
 * A PDF's pages as links that open it at that page in a new tab: the result's own page
 * first, then the other matching ones. Without a key a link is the file route with
 * `#page=N`; with one, the PDF is fetched on the first click (the key cannot ride on a link)
 * and every link of the card then points at the blob.
 * @param {Hit} hit @param {string} file the PDF's id @param {CardContext} context
 */
function pageLinks(hit, file, context) {
  const own = { id: hit.id, page: pageNumber(hit), score: hit.score };
  const pages = [own, ...(hit.pages ?? []).filter((p) => p && typeof p.id === 'string')];
  const group = element('div', 'parts pages');
  group.setAttribute('role', 'group');
  group.setAttribute('aria-label', `Pages of ${file}`);
  const path = filePath(context.collection, hit.id);
  /** @type {Promise<string> | null} */
  let blob = null;
  const links = pages.map((p, i) => {
    const fragment = p.page ? `#page=${p.page}` : '';
    const label = p.page ? (i === 0 ? `Open page ${p.page}` : String(p.page)) : 'Open';
    const a = /** @type {HTMLAnchorElement} */ (element('a', i === 0 ? 'part open-page' : 'part', label));
    a.href = path + fragment;
    a.target = '_blank';
    a.rel = 'noopener';
    a.dataset.doc = p.id;
    a.dataset.fragment = fragment;
    a.setAttribute('aria-label', `Open ${file}${p.page ? ` at page ${p.page}` : ''} in a new tab (score ${p.score.toFixed(3)})`);
    a.title = `${p.id}, score ${p.score.toFixed(3)}`;
    return a;
  });
  if (usesKey()) {
    for (const a of links) {
      a.addEventListener('click', (event) => {
        if (a.dataset.ready === 'true') return;
        event.preventDefault();
        blob ??= fileUrl(context.collection, hit.id).then(({ url, release }) => {
          context.release.push(release);
          return url;
        });
        blob.then((url) => {
          for (const link of links) {
            link.href = url + (link.dataset.fragment ?? '');
            link.dataset.ready = 'true';
          }
          a.click(); // still within the click's activation for a typical PDF; else a second click opens it
        }, (err) => {
          blob = null;
          a.title = `the PDF could not be fetched: ${err instanceof Error ? err.message : err}`;
          a.classList.add('part-failed');
        });
      });
    }
  }
  links.forEach((a, i) => {
    if (i === 1) group.append(element('span', 'parts-label', 'also'));
    group.append(a);
  });
  return group;
}

/**
 * "+N near-identical", opening on demand to list the documents the result stands for.
 * @param {{id: string, score: number}[]} collapsed
 */
function collapsedList(collapsed) {
  const details = element('details', 'collapsed');
  const summary = element('summary', '', `+${collapsed.length} near-identical`);
  summary.title = 'Copies of this result (re-encoded, resized) shown as one; turn off "Collapse near-identical" to see each';
  const list = element('ul');
  for (const other of collapsed) {
    const item = element('li');
    item.dataset.doc = other.id;
    const id = element('span', 'doc-id', other.id);
    id.title = other.id;
    item.append(element('span', 'score', other.score.toFixed(3)), id);
    list.append(item);
  }
  details.append(summary, list);
  return details;
}

/**
 * One result: a button (click or Enter: more like this) holding the thumbnail or the text
 * snippet, then the score, the id and the metadata. A video's frame shows its time and the
 * moments to play it from; a PDF's page its number and links opening the PDF there; a
 * result standing for near-identical documents says how many, and lists them on demand.
 * @param {Hit} hit
 * @param {number} rank 1-based
 * @param {CardContext} context
 */
export function resultCard(hit, rank, context) {
  const part = partOf(hit);
  // A PDF page's text document shows the page too (its thumbnail is the page's picture).
  const isImage = part !== null || (typeof hit.image === 'string' && typeof hit.text !== 'string');
  const kind = part ? `card-image card-${part.kind}` : isImage ? 'card-image' : 'card-text';
  const card = element('li', `card ${kind}`);
  card.dataset.id = hit.id;
  card.dataset.score = String(hit.score);
  card.dataset.rank = String(rank);
  card.dataset.modality = typeof hit.text === 'string' ? 'text' : 'image';
  if (part) card.dataset.file = part.file;

  const button = element('button', 'hit');
  button.type = 'button';
  button.title = 'More like this';
  button.setAttribute('aria-label', `Result ${rank}: ${hit.id}, score ${hit.score.toFixed(3)}. More like this`);
  if (isImage) {
    const frame = thumbnail(hit, context);
    // A frame says when it is in its video, over the picture, as players do.
    const time = part?.kind === 'video' ? clockTime(frameTime(hit)) : '';
    if (time) {
      const badge = element('span', 'badge time', time);
      const duration = clockTime(hit.metadata?.duration);
      if (duration) badge.title = `${time} of ${duration}`;
      frame.append(badge);
    }
    button.append(frame);
  } else {
    const p = element('p', 'snippet');
    appendHighlighted(p, snippet(hit.text ?? ''), context.terms);
    button.append(p);
  }
  card.append(button);

  if (part?.kind === 'pdf') {
    const metadata = hit.metadata ?? {};
    const caption = element('p', 'part-caption');
    const title = typeof metadata.title === 'string' ? metadata.title.trim() : '';
    if (title) caption.append(element('span', 'pdf-title', title), ' · ');
    caption.append(element('span', 'page-of', pageText(pageNumber(hit), metadata.page_count) || 'a page'));
    if (typeof metadata.author === 'string' && metadata.author.trim()) caption.title = `${title || part.file}, by ${metadata.author.trim()}`;
    card.append(caption);
    // The words found on a page whose text matched.
    if (typeof hit.text === 'string' && hit.text.trim()) {
      const excerpt = element('p', 'part-text');
      appendHighlighted(excerpt, snippet(hit.text), context.terms);
      card.append(excerpt);
    }
    card.append(pageLinks(hit, part.file, context));
  } else if (part?.kind === 'video') {
    card.append(momentList(hit, part.file, context));
  }
  if (Array.isArray(hit.collapsed) && hit.collapsed.length > 0) card.append(collapsedList(hit.collapsed));

  const footer = element('div', 'card-footer');
  const shownId = part ? part.file : hit.id;
  footer.append(element('span', 'score', hit.score.toFixed(3)), element('span', 'doc-id', shownId));
  /** @type {HTMLElement} */ (footer.lastChild).title = hit.id;
  card.append(footer);

  const metadata = hit.metadata ?? {};
  const entries = Object.entries(metadata);
  const everything = entries.map(([k, v]) => `${k}: ${v}`).join('\n');
  const facts = photoFacts(metadata);
  if (facts) {
    facts.title = everything;
    card.append(facts);
  }
  // A photo's card shows its facts in place of the keys they come from, and not its file's;
  // a frame's or a page's card says its video's or PDF's keys above.
  let rows = facts ? entries.filter(([key]) => !PHOTO_KEYS.includes(key) && !FILE_KEYS.includes(key)) : entries;
  if (part) rows = rows.filter(([key]) => !PART_KEYS.includes(key));
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

// ---------------------------------------------------------------- duplicate groups

/** What each kind of duplicate group is called on the page, in the API's order. */
export const DUPLICATE_KINDS = {
  exact: 'Exact copies',
  near_identical: 'Near-identical',
  similar: 'Similar',
};

/** What each kind means, for its tooltip. */
const KIND_NOTES = {
  exact: 'The same file content (the same content hash)',
  near_identical: 'The same picture re-encoded or resized',
  similar: 'Alike, but not the same picture: a neighbouring shot, a crop, another take',
};

/** Members shown at first; the others on demand. */
const GROUP_MEMBERS_SHOWN = 12;

/** A kind's label: "Exact copies"; a kind this page does not know, as the API spells it. @param {string} kind */
export function kindLabel(kind) {
  return Object.hasOwn(DUPLICATE_KINDS, kind) ? DUPLICATE_KINDS[kind] : String(kind);
}

/** "1 video", "3 PDFs", "2 documents". */
function memberCount(n, fileKind) {
  const [one, many] = fileKind === 'video' ? ['video', 'videos'] : fileKind === 'pdf' ? ['PDF', 'PDFs'] : ['document', 'documents'];
  return `${n.toLocaleString()} ${n === 1 ? one : many}`;
}

/**
 * How far a scan has got, for people: "Waiting for another scan to finish", "Scanning… 120
 * of 1,000 documents, 3 groups so far".
 * @param {{status: string, scanned: number, total: number, groups: number}} job
 */
export function scanProgress(job) {
  if (job.status === 'queued') return 'Waiting for another scan to finish…';
  const found = job.groups > 0 ? `, ${job.groups.toLocaleString()} ${job.groups === 1 ? 'group' : 'groups'} so far` : '';
  return `Scanning… ${job.scanned.toLocaleString()} of ${job.total.toLocaleString()} documents${found}`;
}

/**
 * What a duplicates view does beyond showing a group.
 * @typedef {object} GroupContext
 * @property {string} collection
 * @property {(() => void)[]} release collects what each member holds (thumbnails)
 * @property {(id: string) => Promise<{text?: string} | null>} describe a member without a
 *   picture (a text document): its document, to show its words instead
 */

/**
 * One member of a group: its thumbnail (a button: more like this), its id, and for a video's
 * frame or a PDF's page the file's name with the moment or page.
 * @param {string} id @param {string | undefined} file @param {'video' | 'pdf' | null} fileKind @param {GroupContext} context
 */
function groupMember(id, file, fileKind, context) {
  const item = element('li', fileKind ? `dup-member dup-${fileKind}` : 'dup-member');
  item.dataset.doc = id;
  if (file) item.dataset.file = file;
  const button = element('button', 'hit');
  button.type = 'button';
  button.title = 'More like this';
  button.setAttribute('aria-label', `${file ?? id}: more like this`);
  const frame = thumbnail({ id, score: 0 }, context);
  const time = fileKind === 'video' ? clockTime(frameTime({ id, score: 0 })) : '';
  if (time) frame.append(element('span', 'badge time', time));
  // No picture: a text document, shown by its words.
  frame.querySelector('img')?.addEventListener('error', () => {
    context.describe(id).then((doc) => {
      if (typeof doc?.text !== 'string') return;
      const words = element('p', 'snippet', snippet(doc.text));
      frame.replaceWith(words);
    }, () => {});
  }, { once: true });
  button.append(frame);
  item.append(button);
  const name = element('span', 'doc-id', file ?? id);
  name.title = id;
  item.append(name);
  if (fileKind) {
    const page = fileKind === 'pdf' ? pageText(pageNumber({ id, score: 0 }), undefined) : '';
    item.append(element('span', 'dup-part', fileKind === 'video' ? (time ? `frame at ${time}` : 'a frame') : page || 'a page'));
  }
  return item;
}

/**
 * A group of duplicates: its kind as a label ("Exact copies", "Near-identical", "Similar"),
 * its score (every member is at least this similar to another), and its members. Videos and
 * PDFs are compared as whole files: such a group's members are their files, each shown by
 * its best matching frame or page.
 * @param {import('./api.js').DuplicateGroup} group
 * @param {number} index 0-based, in the order of the API
 * @param {GroupContext} context
 */
export function duplicateGroup(group, index, context) {
  const fileKind = Array.isArray(group.videos) ? 'video' : Array.isArray(group.pdfs) ? 'pdf' : null;
  const files = group.videos ?? group.pdfs ?? [];
  const item = element('li', 'dup-group');
  item.dataset.kind = group.kind;
  item.dataset.score = String(group.score);
  const headingId = `dup-group-${index}`;
  item.setAttribute('aria-labelledby', headingId);

  const head = element('div', 'dup-head');
  head.id = headingId;
  const label = element('span', `dup-label kind-${String(group.kind).replace(/[^a-z_]/g, '')}`, kindLabel(group.kind));
  if (Object.hasOwn(KIND_NOTES, group.kind)) label.title = KIND_NOTES[group.kind];
  const score = element('span', 'score', group.score.toFixed(3));
  score.title = `Every member is at least ${group.score.toFixed(4)} similar to another`;
  head.append(label, element('span', 'dup-count', memberCount(group.ids.length, fileKind)), element('span', 'visually-hidden', ', similarity'), score);
  item.append(head);

  const list = element('ul', 'dup-members');
  const members = group.ids.map((id, i) => () => groupMember(id, files[i], fileKind, context));
  list.append(...members.slice(0, GROUP_MEMBERS_SHOWN).map((make) => make()));
  item.append(list);
  if (members.length > GROUP_MEMBERS_SHOWN) {
    const more = element('button', 'part dup-all', `Show all ${members.length}`);
    more.type = 'button';
    more.addEventListener('click', () => {
      list.append(...members.slice(GROUP_MEMBERS_SHOWN).map((make) => make()));
      /** @type {HTMLElement | null} */ (list.children[GROUP_MEMBERS_SHOWN]?.querySelector('button'))?.focus();
      more.remove();
    });
    item.append(more);
  }
  return item;
}
