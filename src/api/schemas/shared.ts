/**
 * The schemas several routes use, published as components.schemas in /openapi.json (each
 * named by its `$id`) and referenced from the routes' schemas with ref('Name').
 */
import { ENCODINGS } from '../../encoding/encode.ts';
import { MAX_QUERY_TERMS } from '../../search/query.ts';
import type { Schema } from './common.ts';

const usage: Schema = {
  $id: 'Usage',
  type: 'object',
  description: 'Tokens billed, as Jina bills them: text tokens plus image tile tokens (prompt_tokens includes image_tokens).',
  required: ['total_tokens', 'prompt_tokens', 'image_tokens'],
  properties: {
    total_tokens: { type: 'integer' },
    prompt_tokens: { type: 'integer' },
    image_tokens: { type: 'integer' },
  },
};

const image = { type: 'string', description: 'An http(s) URL, raw base64 or a data URI.' };

const inputItem: Schema = {
  $id: 'InputItem',
  description: 'A text (a string or {"text"}), an image ({"image"}), or the older {"url"} and {"bytes"} forms of an image.',
  anyOf: [
    { type: 'string', description: 'A text.' },
    { type: 'object', required: ['text'], properties: { text: { type: 'string' } } },
    { type: 'object', required: ['image'], properties: { image } },
    { type: 'object', required: ['url'], properties: { url: { type: 'string', description: 'An http(s) URL of an image.' } } },
    { type: 'object', required: ['bytes'], properties: { bytes: { type: 'string', description: 'An image as base64 or a data URI.' } } },
  ],
};

const input: Schema = {
  $id: 'Input',
  description: 'One item or a non-empty list of them; texts and images mix freely.',
  anyOf: [{ $ref: 'InputItem#' }, { type: 'array', minItems: 1, items: { $ref: 'InputItem#' } }],
};

const encodedVector: Schema = {
  anyOf: [
    { type: 'array', items: { type: 'number' }, description: '`float`: the vector; `binary`/`ubinary`: its packed sign bits as bytes.' },
    { type: 'string', description: '`base64`: the float32 vector, little-endian, as base64.' },
  ],
};

const embedding: Schema = {
  $id: 'Embedding',
  type: 'object',
  required: ['object', 'index', 'embedding'],
  properties: {
    object: { type: 'string', enum: ['embedding'] },
    index: { type: 'integer', description: 'Position in `input`.' },
    embedding: {
      description: 'The vector in the encoding asked for; a list of encodings gives an object keyed by encoding name.',
      anyOf: [
        ...(encodedVector.anyOf as Schema[]),
        { type: 'object', properties: Object.fromEntries(ENCODINGS.map((e) => [e, encodedVector])), additionalProperties: false },
      ],
    },
  },
};

const classification: Schema = {
  $id: 'Classification',
  type: 'object',
  required: ['object', 'index', 'prediction', 'score', 'predictions'],
  properties: {
    object: { type: 'string', enum: ['classification'] },
    index: { type: 'integer', description: 'Position in `input`.' },
    prediction: { type: 'string', description: 'The best label.' },
    score: { type: 'number', description: "The best label's probability." },
    predictions: {
      type: 'array',
      description: 'Every label with its probability (they sum to 1), in the order of the labels.',
      items: { type: 'object', required: ['label', 'score'], properties: { label: { type: 'string' }, score: { type: 'number' } } },
    },
  },
};

const metadataValue = { type: ['string', 'number', 'boolean'] };

const metadata: Schema = {
  $id: 'Metadata',
  type: 'object',
  description: 'A flat object: keys of 1-64 letters, digits or "_" starting with a letter or "_", values strings, finite numbers or booleans.',
  additionalProperties: metadataValue,
};

const documentInput: Schema = {
  $id: 'DocumentInput',
  type: 'object',
  description: 'A document to upsert: an id, exactly one of text or image, and optional metadata.',
  required: ['id'],
  properties: {
    id: { type: 'string', minLength: 1, description: 'At most 512 UTF-8 bytes.' },
    text: { type: 'string' },
    image,
    metadata: { $ref: 'Metadata#' },
  },
  additionalProperties: false,
};

const document: Schema = {
  $id: 'Document',
  type: 'object',
  required: ['id', 'modality', 'metadata', 'hash'],
  properties: {
    id: { type: 'string' },
    modality: { type: 'string', enum: ['text', 'image'] },
    text: { type: 'string', description: 'A text document: its text.' },
    image: { type: 'string', description: "An image document: its URL or data URI as stored, or (from an indexed folder) its id, never the server's path." },
    metadata: { $ref: 'Metadata#' },
    hash: { type: 'string', description: "sha256 (hex) of the content: the text's UTF-8 bytes or the image's bytes." },
  },
};

const scored = (idDescription: string, extra: Schema = {}): Schema => ({
  type: 'object',
  required: ['id', ...Object.keys(extra), 'score'],
  properties: { id: { type: 'string', description: idDescription }, ...extra, score: { type: 'number' } },
});

const moment: Schema = { $id: 'Moment', ...scored("The frame's document id (PATH#t=SECONDS).", { t: { type: ['number', 'null'], description: 'Seconds into the video.' } }) };
const pageMatch: Schema = { $id: 'PageMatch', ...scored("The page's document id (PATH#page=N).", { page: { type: ['integer', 'null'], description: '1-based.' } }) };
const collapsedMatch: Schema = { $id: 'CollapsedMatch', ...scored('A near-identical document this result stands for.') };

const searchHit: Schema = {
  $id: 'SearchHit',
  type: 'object',
  required: ['id', 'score', 'metadata'],
  properties: {
    id: { type: 'string' },
    score: { type: 'number', description: 'Cosine similarity (hybrid: the fused score). Best first.' },
    text: { type: 'string', description: 'A text document: its text.' },
    image: { type: 'string', description: 'An image document: its URL or data URI, or its id (a file from an indexed folder).' },
    metadata: { $ref: 'Metadata#' },
    moments: { type: 'array', items: { $ref: 'Moment#' }, description: "A video's result: its other matching frames, best first." },
    pages: { type: 'array', items: { $ref: 'PageMatch#' }, description: "A PDF's result: its other matching pages, best first." },
    collapsed: { type: 'array', items: { $ref: 'CollapsedMatch#' }, description: 'With `collapse`: the near-identical documents this result stands for.' },
  },
};

const weight = { type: 'number', description: 'Default 1; negative pushes away from the term; never 0.' };

const queryTerm: Schema = {
  $id: 'QueryTerm',
  description: 'A text, an image, or a stored document ("more like this"), each with an optional weight.',
  anyOf: [
    { type: 'string', description: 'A text.' },
    { type: 'object', required: ['text'], properties: { text: { type: 'string' }, weight }, additionalProperties: false },
    { type: 'object', required: ['image'], properties: { image, weight }, additionalProperties: false },
    { type: 'object', required: ['id'], properties: { id: { type: 'string', description: "A document of the collection: its vector is the term's." }, weight }, additionalProperties: false },
  ],
};

const query: Schema = {
  $id: 'Query',
  description: `One term or a list of 1 to ${MAX_QUERY_TERMS} terms, combined by their weights.`,
  anyOf: [{ $ref: 'QueryTerm#' }, { type: 'array', minItems: 1, maxItems: MAX_QUERY_TERMS, items: { $ref: 'QueryTerm#' } }],
};

const filter: Schema = {
  $id: 'Filter',
  type: 'object',
  description:
    'A metadata filter: {"field": value} or {"field": {"$eq" | "$ne" | "$gt" | "$gte" | "$lt" | "$lte" | "$in": ...}}; every condition must hold; and the places {"$near": {"lat", "lon", "km"}} and {"$within": {"south", "west", "north", "east"}} (docs/search.md, Dates, places, sorting and cut-offs).',
  additionalProperties: true,
};

const duplicateGroup: Schema = {
  $id: 'DuplicateGroup',
  type: 'object',
  required: ['ids', 'score', 'kind'],
  properties: {
    ids: { type: 'array', items: { type: 'string' }, description: "Members, sorted (videos, PDFs: each one's best matching frame or page)." },
    score: { type: 'number', description: 'The weakest link that joined the group.' },
    kind: { type: 'string', enum: ['exact', 'near_identical', 'similar'] },
    videos: { type: 'array', items: { type: 'string' }, description: 'A group of videos: their ids.' },
    pdfs: { type: 'array', items: { type: 'string' }, description: 'A group of PDFs: their ids.' },
  },
};

const nullableTime = { type: ['string', 'null'], format: 'date-time' };

export const duplicateJob: Schema = {
  $id: 'DuplicateJob',
  type: 'object',
  required: ['id', 'collection', 'threshold', 'modality', 'status', 'scanned', 'total', 'groups', 'created_at', 'started_at', 'finished_at', 'error'],
  properties: {
    id: { type: 'string' },
    collection: { type: 'string' },
    threshold: { type: 'number' },
    modality: { type: ['string', 'null'], enum: ['text', 'image', null] },
    status: { type: 'string', enum: ['queued', 'running', 'done', 'failed', 'cancelled'] },
    scanned: { type: 'integer', description: 'Documents scanned so far.' },
    total: { type: 'integer', description: "The collection's documents when the scan began." },
    groups: { type: 'integer', description: 'Groups found so far.' },
    created_at: { type: 'string', format: 'date-time' },
    started_at: nullableTime,
    finished_at: nullableTime,
    error: { type: ['string', 'null'], description: 'Why a failed job failed.' },
  },
};

const collection: Schema = {
  $id: 'Collection',
  type: 'object',
  required: ['name', 'model', 'model_name', 'dimensions', 'count'],
  properties: {
    name: { type: 'string' },
    model: { type: 'string', description: 'The model whose vectors it holds, as recorded.' },
    model_name: { type: ['string', 'null'], description: 'The name this server serves that model as; null: not served here (listed, not searched or written).' },
    dimensions: { type: 'integer' },
    count: { type: 'integer', description: 'Documents it holds.' },
  },
};

/** Every shared schema, in the order they are added. */
export const SHARED_SCHEMAS: readonly Schema[] = [
  usage,
  inputItem,
  input,
  embedding,
  classification,
  metadata,
  documentInput,
  document,
  moment,
  pageMatch,
  collapsedMatch,
  searchHit,
  queryTerm,
  query,
  filter,
  duplicateGroup,
  duplicateJob,
  collection,
];
