// Result cards. Built with DOM calls and textContent only: document texts, ids and metadata
// come from whoever indexed them and are never parsed as HTML.

import { showThumbnail } from './api.js';

const SNIPPET_CHARS = 320;

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

  const entries = Object.entries(hit.metadata ?? {});
  if (entries.length > 0) {
    const list = element('dl', 'metadata');
    for (const [key, value] of entries.slice(0, 4)) {
      const row = element('div');
      row.append(element('dt', '', key), element('dd', '', String(value)));
      list.append(row);
    }
    if (entries.length > 4) list.title = entries.map(([k, v]) => `${k}: ${v}`).join('\n');
    card.append(list);
  }
  return card;
}
