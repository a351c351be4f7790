import { parseArgs } from 'node:util';
import { Embedder } from '../engine/embedder.ts';
import { TesseraError } from '../errors.ts';
import { fetchImage } from '../image/fetch.ts';
import { parseDtype } from '../model/dtype.ts';
import { requireCollection } from '../search/collection.ts';
import { numberFlag, parseSearchParameters } from '../search/params.ts';
import { isoUtc } from '../store/filter.ts';
import { parseQueryWords, splitWeight, type QueryTerm } from '../search/query.ts';
import { searchCollection } from '../search/search.ts';
import { frameTime, pageNumber, type GroupedHit } from '../search/group.ts';
import { openStore } from '../store/open.ts';
import { validateDocumentId } from '../store/validate.ts';
import { modelSettings } from './options.ts';

const HELP = `usage: tessera search [QUERY...] --collection NAME [--image PATH]... [--like ID]... [options]

Searches a collection with its own model (the one it was indexed with).

  QUERY           a text; words "+" and "-" join several (rclip style: tessera search cat - dog),
                  and "W:" weighs one (tessera search 2:red + 0.5:car)
  --collection N  the collection (required)
  --image P       search by an image: a path or an http(s) URL; "W:P" weighs it (repeatable;
                  a negative weight as --image=-1:P)
  --like ID       "more like this": a document of the collection, itself left out; "W:ID" weighs it (repeatable)
  --k N           results (default 10, at most 1000)
  --offset N      skip the first N results (paging)
  --min-score S   only results at least this cosine-similar (-1..1)
  --modality M    only text or only image documents
  --mode M        vector (default) or hybrid: full-text (BM25) and vector results fused by rank (needs a text)
  --filter JSON   metadata filter, e.g. '{"year": {"$gte": 2020}, "camera_model": {"$in": ["X100V", "GR III"]}}',
                  and places: '{"$near": {"lat": 38.72, "lon": -9.14, "km": 25}}' or
                  '{"$within": {"south": 36, "west": -10, "north": 42, "east": -6}}'
  --after D       only photos taken at or after D (taken_at): a date (midnight UTC) or a date-time
  --before D      only photos taken before D (exclusive), e.g. --after 2021-06-01 --before 2021-09-01
  --near LAT,LON,KM  only photos taken within KM kilometres of LAT,LON (gps_lat, gps_lon)
  --sort KEY      order the results by a metadata key instead of relevance: taken_at (oldest
                  first), -taken_at (newest first), any key with an optional leading "-";
                  documents without the key come last. Sorts the hits that pass the cut-offs
                  (at most the best 1000): use it with --cutoff
  --cutoff C      keep only the hits that stand out for this query: auto (where the score curve
                  drops) or relative:R (at least R times the best hit's score, 0 < R <= 1)
  --no-group      every video frame and PDF page a result of its own (default: one result per
                  video, its best frame with up to 3 other matching moments; one per PDF, its
                  best page with up to 3 other matching pages)
  --collapse      near-identical documents (the same content, or the same photo re-encoded or
                  resized) as one result, the others listed under it
  --store DIR|URL the store: a folder or postgres://... (default: TESSERA_STORE, else
                  $XDG_DATA_HOME/tessera)
  --threads N     ONNX Runtime intra-op threads per session (default: all cores)
  --json          print {"data": [{"id", "score", "text" | "image", "metadata"}]}, best first, with
                  "moments": [{"id", "t", "score"}] on a video's result, "pages": [{"id", "page",
                  "score"}] on a PDF's and "collapsed": [{"id", "score"}] on a collapsed one
                  (the table shows id, score, kind and the start of the text or the image's place;
                  a video's result as "clips/a.mp4 at 0:03.2 (+2 moments)", a PDF's as
                  "docs/x.pdf page 3 (+1 page)")`;

function parseFilterFlag(text: string | undefined): unknown {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new TesseraError('FILTER_INVALID', `--filter: expected JSON but ${(err as Error).message}`);
  }
}

/** Flags whose value may start with "-" (--sort -taken_at, --near -33.9,151.2,5): joined as --flag=value for parseArgs. */
const SIGNED_VALUES = new Set(['--sort', '--near', '--after', '--before', '--cutoff']);

export function joinSignedValues(args: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (SIGNED_VALUES.has(arg) && i + 1 < args.length) out.push(`${arg}=${args[++i]}`);
    else out.push(arg);
  }
  return out;
}

/** --cutoff's text as the API's value: "auto" or {"relative": R}. */
export function cutoffFlag(text: string | undefined): unknown {
  if (text === undefined) return undefined;
  const relative = /^relative:(.*)$/.exec(text);
  if (relative) return { relative: numberFlag(relative[1]) };
  if (text === 'auto') return text;
  throw new TesseraError('SEARCH_PARAMETER_INVALID', `--cutoff: expected auto or relative:R (0 < R <= 1) but received ${JSON.stringify(text)}`);
}

/** --filter's JSON with --after, --before and --near folded in. */
export function filterFromFlags(values: { filter?: string; after?: string; before?: string; near?: string }): unknown {
  const filter = parseFilterFlag(values.filter);
  if (values.after === undefined && values.before === undefined && values.near === undefined) return filter;
  if (filter !== undefined && (filter === null || typeof filter !== 'object' || Array.isArray(filter))) return filter; // parseFilter says what is wrong
  const out = { ...(filter as Record<string, unknown> | undefined) };
  if (values.after !== undefined || values.before !== undefined) {
    if ('taken_at' in out) throw new TesseraError('FILTER_INVALID', '--after/--before: --filter has a taken_at condition already; give the dates in one place');
    const range: Record<string, string> = {};
    for (const [flag, op, text] of [['--after', '$gte', values.after], ['--before', '$lt', values.before]] as const) {
      if (text === undefined) continue;
      range[op] = isoUtc(text) ?? fail(`${flag}: expected a date (2021-06-01) or a date-time (2021-06-01T18:00:00+02:00) but received ${JSON.stringify(text)}`);
    }
    out.taken_at = range;
  }
  if (values.near !== undefined) {
    if ('$near' in out) throw new TesseraError('FILTER_INVALID', '--near: --filter has a $near condition already; give the place in one place');
    const parts = values.near.split(',').map((p) => p.trim());
    const numbers = parts.map(Number);
    if (parts.length !== 3 || parts.some((p) => p === '') || numbers.some((n) => !Number.isFinite(n))) {
      fail(`--near: expected LAT,LON,KM (e.g. 38.72,-9.14,25) but received ${JSON.stringify(values.near)}`);
    }
    out.$near = { lat: numbers[0], lon: numbers[1], km: numbers[2] };
  }
  return out;
}

function fail(message: string): never {
  throw new TesseraError('FILTER_INVALID', message);
}

/** The terms a command line asks for: its texts, then --image, then --like. */
export function termsFromFlags(words: readonly string[], images: readonly string[], likes: readonly string[]): QueryTerm[] {
  const terms = parseQueryWords(words);
  for (const arg of images) {
    const { weight, rest } = splitWeight(arg);
    if (rest.trim() === '') throw new TesseraError('QUERY_INVALID', `--image ${JSON.stringify(arg)}: no image given`);
    const field = `--image ${JSON.stringify(rest)}`;
    terms.push(/^https?:\/\//i.test(rest) ? { kind: 'url', url: rest, weight, field } : { kind: 'image', image: rest, weight, field });
  }
  for (const arg of likes) {
    const { weight, rest } = splitWeight(arg);
    terms.push({ kind: 'id', id: validateDocumentId(rest, '--like'), weight, field: `--like ${JSON.stringify(rest)}` });
  }
  return terms;
}

function snippet(hit: GroupedHit, width: number): string {
  const text = (hit.modality === 'text' ? hit.text ?? '' : hit.image ?? '').replace(/\s+/g, ' ');
  const shown = hit.modality === 'image' && /^data:/i.test(text) ? '(image data)' : text;
  return shown.length > width ? `${shown.slice(0, width - 1)}…` : shown;
}

/** Seconds as m:ss.s (h:mm:ss.s past an hour), tenths truncated: 3.25 -> "0:03.2". */
export function clock(seconds: number): string {
  const tenths = Math.floor(seconds * 10 + 1e-6);
  const s = (tenths % 600) / 10;
  const minutes = Math.floor(tenths / 600);
  const ss = s.toFixed(1).padStart(4, '0');
  return minutes >= 60 ? `${Math.floor(minutes / 60)}:${String(minutes % 60).padStart(2, '0')}:${ss}` : `${minutes}:${ss}`;
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

/**
 * How the table names a result: a video's as its file at the moment ("clips/a.mp4 at 0:03.2
 * (+2 moments)"), a PDF's as its file and page ("docs/x.pdf page 3 (+1 page)"), a document
 * with near-identical ones collapsed under it with their count ("a.png (+1 near-identical)").
 */
export function resultLabel(hit: GroupedHit): string {
  let label = hit.id;
  const { video, pdf } = hit.metadata;
  if (typeof video === 'string') {
    const t = frameTime(hit);
    label = t === null ? video : `${video} at ${clock(t)}`;
  } else if (typeof pdf === 'string') {
    const page = pageNumber(hit);
    label = page === null ? pdf : `${pdf} page ${page}`;
  }
  const more = [
    hit.moments?.length ? `+${plural(hit.moments.length, 'moment')}` : '',
    hit.pages?.length ? `+${plural(hit.pages.length, 'page')}` : '',
    hit.collapsed?.length ? `+${hit.collapsed.length} near-identical` : '',
  ].filter((x) => x !== '');
  return more.length > 0 ? `${label} (${more.join(', ')})` : label;
}

export function table(hits: readonly GroupedHit[]): string {
  if (hits.length === 0) return 'no results';
  const labels = hits.map(resultLabel);
  const idWidth = Math.min(48, Math.max(2, ...labels.map((l) => l.length)));
  // Photos: when they were taken (UTC), the column shown only when some hit has a date.
  const dated = hits.some((h) => typeof h.metadata.taken_at === 'string');
  const taken = (h: GroupedHit) => (typeof h.metadata.taken_at === 'string' ? h.metadata.taken_at.replace('T', ' ').replace(/Z$/, '') : '').padEnd(19);
  const rows = hits.map((h, i) => {
    const label = labels[i]!;
    const id = label.length > idWidth ? `${label.slice(0, idWidth - 1)}…` : label;
    return `${String(i + 1).padStart(3)}  ${h.score.toFixed(4).padStart(7)}  ${h.modality.padEnd(5)}  ${id.padEnd(idWidth)}  ${dated ? `${taken(h)}  ` : ''}${snippet(h, 60)}`;
  });
  return [`  #    score  kind   ${'id'.padEnd(idWidth)}  ${dated ? `${'taken (UTC)'.padEnd(19)}  ` : ''}content`, ...rows].join('\n');
}

export async function main(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: joinSignedValues(args),
    allowPositionals: true,
    options: {
      collection: { type: 'string' },
      image: { type: 'string', multiple: true },
      like: { type: 'string', multiple: true },
      k: { type: 'string' },
      offset: { type: 'string' },
      'min-score': { type: 'string' },
      modality: { type: 'string' },
      mode: { type: 'string' },
      filter: { type: 'string' },
      after: { type: 'string' },
      before: { type: 'string' },
      near: { type: 'string' },
      sort: { type: 'string' },
      cutoff: { type: 'string' },
      'no-group': { type: 'boolean' },
      collapse: { type: 'boolean' },
      store: { type: 'string' },
      threads: { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return console.log(HELP);
  if (!values.collection) throw new TesseraError('INVALID_ARGUMENT', '--collection is required: the collection to search');
  const terms = termsFromFlags(positionals, values.image ?? [], values.like ?? []);
  if (terms.length === 0) throw new TesseraError('QUERY_INVALID', 'nothing to search for: give a QUERY text, --image or --like');
  const params = parseSearchParameters({
    k: numberFlag(values.k),
    offset: numberFlag(values.offset),
    min_score: numberFlag(values['min-score']),
    modality: values.modality,
    mode: values.mode,
    filter: filterFromFlags(values),
    sort: values.sort,
    cutoff: cutoffFlag(values.cutoff),
    group: values['no-group'] ? false : undefined,
    collapse: values.collapse ? true : undefined,
  });

  const store = await openStore(values.store);
  let embedder: Embedder | undefined;
  try {
    const info = await requireCollection(store, values.collection);
    const model = { model: info.model, dtype: info.dtype };
    // Documents alone ("more like this") need no model: their vectors are stored.
    if (terms.some((t) => t.kind !== 'id')) {
      embedder = await Embedder.load(info.model, { ...modelSettings({ threads: values.threads }), dtype: parseDtype(info.dtype), progress: true, allowPaths: true });
    }
    const { hits } = await searchCollection(
      // The user's own machine: private addresses are theirs to fetch from.
      { store, embedder, model, fetchImage: (url, signal) => fetchImage(url, { allowPrivate: true }, signal) },
      values.collection,
      { ...params, terms },
    );
    if (values.json) {
      const data = hits.map((h) => ({
        id: h.id,
        score: h.score,
        ...(h.modality === 'text' ? { text: h.text } : { image: h.image }),
        metadata: h.metadata,
        ...(h.moments && { moments: h.moments }),
        ...(h.pages && { pages: h.pages }),
        ...(h.collapsed && { collapsed: h.collapsed }),
      }));
      process.stdout.write(JSON.stringify({ data }) + '\n');
    } else {
      console.log(table(hits));
    }
  } finally {
    await embedder?.close();
    await store.close();
  }
}
