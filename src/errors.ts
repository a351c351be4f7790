/**
 * One registry of every error tessera reports to users: a stable code, the HTTP status the
 * server answers with, and the message. Library, CLI and server all throw TesseraError.
 */
export const ERRORS = {
  MODEL_NOT_FOUND: { status: 400, summary: 'the model could not be found' },
  MODEL_FILE_MISSING: { status: 500, summary: 'a file the model needs is missing' },
  MODEL_FILE_INVALID: { status: 500, summary: 'a model file is unreadable or malformed' },
  HUB_OFFLINE: { status: 503, summary: 'the model is not in the local cache and the hub is not reachable or offline mode is on' },
  HUB_DOWNLOAD_FAILED: { status: 502, summary: 'downloading from the model hub failed' },
  TEXT_TOO_LONG: { status: 422, summary: 'a text is longer than the model accepts and truncate is off' },
  TEXT_INVALID: { status: 422, summary: 'a text item is not a string' },
  IMAGE_SOURCE_INVALID: { status: 422, summary: 'an image item is not a path, buffer, base64 string or data URI' },
  IMAGE_NOT_FOUND: { status: 422, summary: 'an image file does not exist' },
  IMAGE_UNDECODABLE: { status: 422, summary: 'an image could not be decoded' },
  IMAGE_TOO_LARGE: { status: 422, summary: 'an image has more pixels, or a download more bytes, than the limit' },
  IMAGE_FORMAT_UNSUPPORTED: { status: 422, summary: 'an image is in a format that is not accepted' },
  VIDEO_UNDECODABLE: { status: 422, summary: 'a video could not be read by FFmpeg (truncated, no video stream, no frames, or not a video)' },
  VIDEO_TOO_LARGE: { status: 422, summary: 'a video claims more pixels per frame than the limit' },
  VIDEO_TIMEOUT: { status: 422, summary: 'reading a video took longer than its deadline; FFmpeg was stopped' },
  FFMPEG_MISSING: { status: 422, summary: 'FFmpeg (ffmpeg and ffprobe) is not installed or not where --ffmpeg / TESSERA_FFMPEG says' },
  PDF_UNREADABLE: { status: 422, summary: 'a PDF could not be read (corrupt, truncated, or not a PDF)' },
  PDF_ENCRYPTED: { status: 422, summary: 'a PDF is encrypted with a password' },
  PDF_TIMEOUT: { status: 422, summary: 'rendering a PDF took longer than its deadline; Poppler was stopped' },
  POPPLER_MISSING: { status: 422, summary: 'Poppler (pdfinfo, pdftoppm, pdftotext) is not installed' },
  INVALID_ARGUMENT: { status: 422, summary: 'an argument has the wrong type or value' },
  IMAGE_URL_INVALID: { status: 422, summary: 'an image URL is malformed or not http(s)' },
  IMAGE_URL_BLOCKED: { status: 422, summary: 'an image URL points to a loopback, private, link-local or metadata address' },
  IMAGE_FETCH_FAILED: { status: 422, summary: 'an image URL could not be fetched (unreachable, error status, too many redirects, not an image)' },
  IMAGE_FETCH_TIMEOUT: { status: 422, summary: 'an image download took longer than the timeout' },
  DIMENSIONS_INVALID: { status: 422, summary: 'dimensions is outside the sizes the model\'s vectors can be cut to' },
  TASK_UNSUPPORTED: { status: 422, summary: 'the model has task instructions and the request names a task it has none for' },
  LATE_CHUNKING_UNSUPPORTED: { status: 422, summary: 'late_chunking is true but the model cannot do late chunking (no jina-clip model can)' },
  REQUEST_INVALID: { status: 422, summary: 'the request body is malformed or a field has the wrong type or value' },
  MODEL_MISMATCH: { status: 400, summary: 'the request names a model this server does not serve' },
  PAYLOAD_TOO_LARGE: { status: 413, summary: 'the request body is larger than the limit' },
  TOO_MANY_ITEMS: { status: 422, summary: 'the request has more input items than the limit' },
  AUTH_API_KEY_MISSING: { status: 401, summary: 'no API key was sent (Authorization: Bearer <key>)' },
  AUTH_API_KEY_INVALID: { status: 401, summary: 'the API key is not valid' },
  RATE_REQUEST_LIMIT_EXCEEDED: { status: 429, summary: 'the key sent more requests per minute than its limit' },
  RATE_TOKEN_LIMIT_EXCEEDED: { status: 429, summary: 'the key used more tokens per minute than its limit' },
  RATE_CONCURRENCY_LIMIT_EXCEEDED: { status: 429, summary: 'the key has more requests in flight than its limit' },
  QUEUE_FULL: { status: 429, summary: 'the server has more work queued than it accepts; retry shortly' },
  REQUEST_CANCELLED: { status: 499, summary: 'the client disconnected or its deadline passed before the work ran' },
  COLLECTION_NOT_FOUND: { status: 404, summary: 'no collection of that name in the store' },
  COLLECTION_EXISTS: { status: 409, summary: 'a collection of that name exists already' },
  COLLECTION_NAME_INVALID: { status: 422, summary: 'a collection name is not 1-63 letters, digits, "_" or "-" starting with a letter or digit' },
  COLLECTION_MODEL_MISMATCH: { status: 409, summary: 'the collection holds vectors of another model or dtype than the one writing or querying it (on a server: of a model it does not serve)' },
  VECTOR_DIMENSIONS_MISMATCH: { status: 422, summary: 'a vector does not have the collection\'s number of dimensions' },
  DOCUMENT_NOT_FOUND: { status: 404, summary: 'no document of that id in the collection' },
  DUPLICATES_JOB_NOT_FOUND: { status: 404, summary: 'no duplicates job of that id for the collection on this server (unknown, deleted, expired, or started on another replica)' },
  RANGE_NOT_SATISFIABLE: { status: 416, summary: 'a Range header asks for bytes past the end of the file' },
  DOCUMENT_INVALID: { status: 422, summary: 'a document is malformed (it needs exactly one of text or image)' },
  DOCUMENT_ID_INVALID: { status: 422, summary: 'a document id is not a non-empty string of at most 512 UTF-8 bytes' },
  DOCUMENT_ID_DUPLICATE: { status: 422, summary: 'the same document id appears twice in one request' },
  METADATA_INVALID: { status: 422, summary: 'metadata is not a flat object of strings, finite numbers and booleans with simple keys' },
  FILTER_INVALID: { status: 422, summary: 'a filter is malformed: unknown operator, bad field name, or a value of the wrong type' },
  QUERY_INVALID: { status: 422, summary: 'a search query is empty, too long, or malformed' },
  QUERY_DOCUMENT_NOT_FOUND: { status: 422, summary: 'a query refers to a document id the collection does not hold' },
  SEARCH_PARAMETER_INVALID: { status: 422, summary: 'k, offset, min_score, modality or mode is out of range' },
  STORE_INVALID: { status: 500, summary: 'the store cannot be opened, is damaged, or has a schema newer than this tessera knows' },
  STORE_UNAVAILABLE: { status: 503, summary: 'the store (PostgreSQL) cannot be reached or did not answer in time; retry shortly' },
  QUEUE_UNAVAILABLE: { status: 503, summary: 'the job queue (Redis) cannot be reached or did not answer in time' },
  CLASSIFIER_NOT_FOUND: { status: 404, summary: 'no classifier of that id that this key may use (unknown, deleted, or another key\'s private one)' },
  CLASSIFIER_FORBIDDEN: { status: 403, summary: 'a public classifier can be used by any key but trained or deleted only by the key that made it' },
  CLASSIFIER_CLASS_LIMIT: { status: 422, summary: 'the training would give a classifier more classes (distinct labels) than the limit' },
  CLASSIFIER_COUNT_LIMIT: { status: 409, summary: 'the key has as many classifiers as it may have; delete one first' },
  CLASSIFIER_INPUT_LIMIT: { status: 413, summary: 'a /v1/train or classifier /v1/classify request has more inputs than the limit' },
  CLASSIFIER_MODEL_MISMATCH: { status: 409, summary: 'the classifier was trained on a model (or dimensions) that this server does not serve, so it cannot take these items' },
  INFERENCE_THREAD_DIED: { status: 503, summary: 'the inference thread (ONNX Runtime) died; it is being restarted with the model, retry shortly' },
  SHUTTING_DOWN: { status: 503, summary: 'this server is stopping; retry on another replica' },
  NOT_READY: { status: 503, summary: 'the model is still loading or warming up' },
  NOT_FOUND: { status: 404, summary: 'no such route' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, summary: 'the body is not sent as application/json' },
  INTERNAL_ERROR: { status: 500, summary: 'an unexpected failure; the request id finds it in the server log' },
} as const;

export type ErrorCode = keyof typeof ERRORS;

export class TesseraError extends Error {
  readonly code: ErrorCode;
  /** Position of the offending item in the caller's input, when the error is about one item. */
  readonly item?: number;
  /** HTTP headers the server's answer carries (e.g. `Retry-After` and the rate-limit counters on 429). */
  readonly headers?: Record<string, string>;

  constructor(
    code: ErrorCode,
    message: string,
    options?: { item?: number; cause?: unknown; headers?: Record<string, string> },
  ) {
    super(options?.item === undefined ? message : `input[${options.item}]: ${message}`, { cause: options?.cause });
    this.name = 'TesseraError';
    this.code = code;
    this.item = options?.item;
    this.headers = options?.headers;
  }

  get status(): number {
    return ERRORS[this.code].status;
  }

  /** The same error, attributed to item `index` of the caller's input. */
  forItem(index: number): TesseraError {
    if (this.item !== undefined) return this;
    return new TesseraError(this.code, this.message, { item: index, cause: this.cause, headers: this.headers });
  }
}

/** A value as error messages show it: its kind, and a short form of a string or number. */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  return `${typeof value} ${String(value)}`;
}

/** sharp-style argument check: names the parameter, what was expected and what came. */
export function invalidArgument(name: string, expected: string, actual: unknown): TesseraError {
  const shown = typeof actual === 'string' ? JSON.stringify(actual) : String(actual);
  return new TesseraError('INVALID_ARGUMENT', `expected ${expected} for ${name} but received ${shown}`);
}
