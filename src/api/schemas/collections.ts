/**
 * Collections, documents, search and duplicates: /v1/collections/... Bodies refuse unknown
 * fields (a typo such as "top_k" is an error, not ignored). The search knobs are checked here,
 * each failure SEARCH_PARAMETER_INVALID naming the field as src/search/params.ts words it;
 * the query (a union of terms), cut-off, filter contents, sort semantics and the documents
 * (src/index/document.ts, shared with the JSONL reader) by the route's parsers.
 */
import { MAX_DUPLICATE_GROUPS_PAGE, DEFAULT_DUPLICATE_GROUPS_PAGE } from '../../search/duplicates.ts';
import { MAX_K, MAX_OFFSET } from '../../store/store.ts';
import { duplicateJob } from './shared.ts';
import { ALWAYS, AUTH, BODY, IMAGES, ITEMS, KEYED, MODEL, RATE, STORE, collectionName, documentId, errorResponses, ref, type Schema } from './common.ts';

const COLLECTION: readonly ('COLLECTION_NAME_INVALID' | 'COLLECTION_NOT_FOUND')[] = ['COLLECTION_NAME_INVALID', 'COLLECTION_NOT_FOUND'];
const SEARCH_PARAMETER = 'SEARCH_PARAMETER_INVALID';

const nameParams: Schema = { type: 'object', required: ['name'], properties: { name: collectionName } };
const documentParams: Schema = { type: 'object', required: ['name', 'id'], properties: { name: collectionName, id: documentId } };
const jobParams: Schema = {
  type: 'object',
  required: ['name', 'job'],
  properties: { name: collectionName, job: { type: 'string', description: 'The job id (the Location of POST .../duplicates).' } },
};

const common = { tags: ['collections'], security: KEYED };

/** A name in a body is named `name` in messages, not "collection" as in paths. */
const { 'x-field': _pathField, ...newName } = collectionName;

export const listCollectionsSchema: Schema = {
  ...common,
  summary: 'The collections of the store',
  response: {
    200: { description: 'Every collection with its count.', type: 'object', required: ['data'], properties: { data: { type: 'array', items: ref('Collection') } } },
    ...errorResponses(ALWAYS, AUTH, STORE),
  },
};

export const createCollectionSchema: Schema = {
  ...common,
  summary: 'Create a collection',
  body: {
    type: 'object',
    'x-messages': 'expected',
    required: ['name'],
    properties: {
      name: { ...newName, description: 'A new collection: 1-63 letters, digits, "_" or "-" starting with a letter or digit.' },
      model: { type: ['string', 'null'], description: 'The served model whose vectors it holds (a served name or alias; default: the first served).' },
      dtype: { type: ['string', 'null'], description: "Only the dtype the model is served in (400 MODEL_MISMATCH otherwise)." },
    },
    additionalProperties: false,
    examples: [{ name: 'notes' }],
  },
  response: {
    200: { description: 'The collection, as listed.', ...ref('Collection') },
    ...errorResponses(ALWAYS, AUTH, BODY, STORE, ['COLLECTION_NAME_INVALID', 'COLLECTION_EXISTS', 'MODEL_MISMATCH', 'NOT_READY', 'INFERENCE_THREAD_DIED']),
  },
};

export const deleteCollectionSchema: Schema = {
  ...common,
  summary: 'Drop a collection',
  params: nameParams,
  response: {
    200: { description: 'Dropped.', type: 'object', required: ['name', 'deleted'], properties: { name: { type: 'string' }, deleted: { type: 'boolean', enum: [true] } } },
    ...errorResponses(ALWAYS, AUTH, STORE, COLLECTION),
  },
};

export const upsertDocumentsSchema: Schema = {
  ...common,
  summary: 'Add or replace documents',
  description: 'All or nothing: one bad document and nothing is written. Billed as the embeddings API bills.',
  params: nameParams,
  body: {
    type: 'object',
    'x-messages': 'expected',
    required: ['documents'],
    properties: {
      documents: {
        type: 'array',
        minItems: 1,
        items: ref('DocumentInput'),
        description: 'The documents, each id once (at most --max-items per request).',
        'x-handler-checked': true,
      },
    },
    additionalProperties: false,
    examples: [{ documents: [{ id: 'a', text: 'a red car', metadata: { year: 2021 } }, { id: 'b', image: 'https://example.com/cat.jpg' }] }],
  },
  response: {
    200: {
      description: 'Written.',
      type: 'object',
      required: ['ids', 'added', 'updated', 'count', 'usage'],
      properties: {
        ids: { type: 'array', items: { type: 'string' } },
        added: { type: 'integer' },
        updated: { type: 'integer', description: 'Ids that existed, now replaced.' },
        count: { type: 'integer', description: 'Documents in the collection now.' },
        usage: ref('Usage'),
      },
    },
    ...errorResponses(ALWAYS, AUTH, BODY, RATE, MODEL, ITEMS, STORE, COLLECTION, [
      'COLLECTION_MODEL_MISMATCH',
      'DOCUMENT_INVALID',
      'DOCUMENT_ID_INVALID',
      'DOCUMENT_ID_DUPLICATE',
      'METADATA_INVALID',
      'VECTOR_DIMENSIONS_MISMATCH',
    ]),
  },
};

const DOCUMENT = ['DOCUMENT_ID_INVALID', 'DOCUMENT_NOT_FOUND'] as const;

export const getDocumentSchema: Schema = {
  ...common,
  summary: 'One document',
  params: documentParams,
  response: {
    200: { description: 'The document.', ...ref('Document') },
    ...errorResponses(ALWAYS, AUTH, STORE, COLLECTION, DOCUMENT),
  },
};

export const deleteDocumentSchema: Schema = {
  ...common,
  summary: 'Delete a document',
  params: documentParams,
  response: {
    200: { description: 'Deleted.', type: 'object', required: ['id', 'deleted'], properties: { id: { type: 'string' }, deleted: { type: 'boolean', enum: [true] } } },
    ...errorResponses(ALWAYS, AUTH, STORE, COLLECTION, DOCUMENT),
  },
};

const MEDIA = ['VIDEO_UNDECODABLE', 'VIDEO_TOO_LARGE', 'VIDEO_TIMEOUT', 'FFMPEG_MISSING', 'PDF_UNREADABLE', 'PDF_ENCRYPTED', 'PDF_TIMEOUT', 'POPPLER_MISSING', 'IMAGE_NOT_FOUND'] as const;
const binary = { type: 'string', format: 'binary' };

export const thumbnailSchema: Schema = {
  ...common,
  summary: "A document's thumbnail",
  description: 'A WebP of at most 256 px of an image document (a video frame: that frame; a PDF page: the page), made once and cached.',
  params: documentParams,
  response: {
    200: { description: 'The thumbnail.', content: { 'image/webp': { schema: binary } } },
    304: { description: 'Not modified (If-None-Match).', type: 'null' },
    ...errorResponses(ALWAYS, AUTH, STORE, COLLECTION, DOCUMENT, IMAGES, MEDIA, ['REQUEST_CANCELLED']),
  },
};

export const fileSchema: Schema = {
  ...common,
  summary: "A document's file",
  description:
    'The file behind a folder document (the video of a frame, the PDF of a page, a photo), only while it is still inside the folder it was indexed from; one byte range (`Range: bytes=...`) is honoured.',
  params: documentParams,
  response: {
    200: { description: 'The whole file (its type by its extension).', content: { 'application/octet-stream': { schema: binary } } },
    206: { description: 'The range asked for.', content: { 'application/octet-stream': { schema: binary } } },
    304: { description: 'Not modified (If-None-Match).', type: 'null' },
    ...errorResponses(ALWAYS, AUTH, STORE, COLLECTION, DOCUMENT, ['RANGE_NOT_SATISFIABLE']),
  },
};

const nullableBoolean = (description: string): Schema => ({ type: ['boolean', 'null'], description, 'x-error-code': SEARCH_PARAMETER });
const modality: Schema = {
  type: ['string', 'null'],
  enum: ['text', 'image', null],
  description: 'Only documents of this kind.',
  'x-error-code': SEARCH_PARAMETER,
};

export const searchSchema: Schema = {
  ...common,
  tags: ['search'],
  summary: 'Search a collection',
  description: 'A text, an image, a stored document or a weighted mix of them; with filters, sorting and cut-offs. Billed for what it embeds.',
  params: nameParams,
  body: {
    type: 'object',
    'x-messages': 'expected',
    required: ['query'],
    properties: {
      query: { ...ref('Query'), 'x-handler-checked': true },
      k: { type: ['integer', 'null'], minimum: 1, maximum: MAX_K, description: 'Results wanted (default 10).', 'x-error-code': SEARCH_PARAMETER },
      offset: { type: ['integer', 'null'], minimum: 0, maximum: MAX_OFFSET, description: 'Results skipped, for paging (default 0).', 'x-error-code': SEARCH_PARAMETER },
      min_score: {
        type: ['number', 'null'],
        minimum: -1,
        maximum: 1,
        description: 'Drop results below this cosine similarity.',
        'x-error-code': SEARCH_PARAMETER,
        'x-expected': 'a number from -1 to 1 (cosine similarity)',
      },
      filter: { ...ref('Filter'), 'x-handler-checked': true },
      modality,
      mode: { type: ['string', 'null'], enum: ['vector', 'hybrid', null], description: 'vector (default), or hybrid: vectors and full text fused (needs a text term).', 'x-error-code': SEARCH_PARAMETER },
      sort: {
        type: ['string', 'null'],
        pattern: '^-?[A-Za-z_][A-Za-z0-9_]{0,63}$',
        description: '"score" (default), or a metadata key with an optional leading "-" for descending ("-taken_at").',
        'x-error-code': SEARCH_PARAMETER,
        'x-expected': '"score", or a metadata key with an optional leading "-" ("taken_at", "-taken_at")',
      },
      cutoff: {
        description: 'A cut-off relative to the best hit: "auto", or {"relative": r} with 0 < r <= 1.',
        anyOf: [
          { type: 'string', enum: ['auto'] },
          { type: 'object', required: ['relative'], properties: { relative: { type: 'number', exclusiveMinimum: 0, maximum: 1 } }, additionalProperties: false },
          { type: 'null' },
        ],
        'x-handler-checked': true,
      },
      group: nullableBoolean("true (default): a video's frames and a PDF's pages as one result, its best part; false: each a result of its own."),
      collapse: nullableBoolean('true: near-identical documents as one result, the others listed under it (default false).'),
    },
    additionalProperties: false,
    examples: [{ query: [{ text: 'a car', weight: 1 }, { id: 'b', weight: -0.5 }], k: 5, filter: { year: { $gte: 2020 } } }],
  },
  response: {
    200: {
      description: 'The results, best first (or in `sort` order).',
      type: 'object',
      required: ['data', 'usage'],
      properties: { data: { type: 'array', items: ref('SearchHit') }, usage: ref('Usage') },
    },
    ...errorResponses(ALWAYS, AUTH, BODY, RATE, MODEL, STORE, COLLECTION, IMAGES, [
      'COLLECTION_MODEL_MISMATCH',
      'QUERY_INVALID',
      'QUERY_DOCUMENT_NOT_FOUND',
      'SEARCH_PARAMETER_INVALID',
      'FILTER_INVALID',
      'TEXT_TOO_LONG',
    ]),
  },
};

export const startDuplicatesSchema: Schema = {
  ...common,
  tags: ['duplicates'],
  summary: 'Start a scan for near-duplicates',
  description: 'A background job (one neighbour search per document): answers 202 with the job and its Location; poll it. The body is optional.',
  'x-body-optional': true,
  params: nameParams,
  body: {
    type: ['object', 'null'],
    'x-messages': 'expected',
    properties: {
      threshold: {
        type: ['number', 'null'],
        exclusiveMinimum: 0,
        maximum: 1,
        description: 'Cosine similarity that makes two documents duplicates (default 0.95).',
        'x-handler-checked': true,
      },
      modality,
    },
    additionalProperties: false,
  },
  response: {
    202: { description: 'The job, queued.', headers: { location: { type: 'string', description: 'The job: /v1/collections/{name}/duplicates/{job}.' } }, ...ref('DuplicateJob') },
    ...errorResponses(ALWAYS, AUTH, BODY, STORE, COLLECTION, ['SEARCH_PARAMETER_INVALID', 'QUEUE_FULL']),
  },
};

export const listDuplicatesSchema: Schema = {
  ...common,
  tags: ['duplicates'],
  summary: "The collection's duplicates jobs",
  description: 'On this replica, oldest first.',
  params: nameParams,
  response: {
    200: { description: 'The jobs.', type: 'object', required: ['data'], properties: { data: { type: 'array', items: ref('DuplicateJob') } } },
    ...errorResponses(ALWAYS, AUTH, STORE, COLLECTION),
  },
};

export const getDuplicatesSchema: Schema = {
  ...common,
  tags: ['duplicates'],
  summary: 'A duplicates job and its groups',
  description: 'The groups found so far (all of them once done), largest first, a page at a time.',
  params: jobParams,
  querystring: {
    type: 'object',
    'x-messages': 'expected',
    properties: {
      offset: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER, description: 'Groups skipped (default 0).', 'x-error-code': SEARCH_PARAMETER },
      limit: {
        type: 'integer',
        minimum: 1,
        maximum: MAX_DUPLICATE_GROUPS_PAGE,
        description: `Groups per page (default ${DEFAULT_DUPLICATE_GROUPS_PAGE}).`,
        'x-error-code': SEARCH_PARAMETER,
      },
    },
  },
  response: {
    200: {
      description: 'The job with a page of its groups.',
      type: 'object',
      required: [...(duplicateJob.required as string[]), 'data', 'offset', 'next_offset'],
      properties: {
        ...(duplicateJob.properties as Schema),
        data: { type: 'array', items: ref('DuplicateGroup') },
        offset: { type: 'integer' },
        next_offset: { type: ['integer', 'null'], description: 'The next page; null on the last.' },
      },
    },
    ...errorResponses(ALWAYS, AUTH, ['COLLECTION_NAME_INVALID', 'DUPLICATES_JOB_NOT_FOUND', 'SEARCH_PARAMETER_INVALID']),
  },
};

export const deleteDuplicatesSchema: Schema = {
  ...common,
  tags: ['duplicates'],
  summary: 'Stop and forget a duplicates job',
  params: jobParams,
  response: {
    200: { description: 'Deleted.', type: 'object', required: ['id', 'deleted'], properties: { id: { type: 'string' }, deleted: { type: 'boolean', enum: [true] } } },
    ...errorResponses(ALWAYS, AUTH, ['COLLECTION_NAME_INVALID', 'DUPLICATES_JOB_NOT_FOUND']),
  },
};
