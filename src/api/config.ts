import { parseArgs } from 'node:util';
import { TesseraError } from '../errors.ts';

/**
 * Every server setting, declared once: its flag, its environment variable, its default and
 * what it means. Flags win over environment variables, which win over defaults.
 */
export const SERVER_OPTIONS = {
  model: { type: 'list', env: 'TESSERA_MODEL', default: 'jinaai/jina-clip-v1', help: 'hub repository id, local folder in the hub layout, "demo" or "demo-v2"; repeat the flag (or separate by commas) to serve several models, the first being the default' },
  dtype: { type: 'string', env: 'TESSERA_DTYPE', default: 'fp32', help: 'fp32 | fp16 | q8, for every model served' },
  host: { type: 'string', env: 'TESSERA_HOST', default: '127.0.0.1', help: 'address to listen on (0.0.0.0 for all interfaces)' },
  port: { type: 'integer', env: 'TESSERA_PORT', default: 8080, help: 'port to listen on (0: any free port)' },
  'served-model-name': { type: 'list', env: 'TESSERA_SERVED_MODEL_NAME', default: '', help: 'the name clients put in "model" (default: the model\'s name, e.g. jina-clip-v1); with several models one name per model, in the order of --model (repeated or comma-separated)' },
  'api-keys': { type: 'string', env: 'TESSERA_API_KEYS_FILE', default: '', help: 'file of API keys, one per line; TESSERA_API_KEYS may also hold comma-separated keys. No keys: no auth' },
  'rate-limit-rpm': { type: 'integer', env: 'TESSERA_RATE_LIMIT_RPM', default: 0, help: 'requests per minute per key (0: unlimited)' },
  'rate-limit-tpm': { type: 'integer', env: 'TESSERA_RATE_LIMIT_TPM', default: 0, help: 'tokens per minute per key (0: unlimited)' },
  'rate-limit-concurrency': { type: 'integer', env: 'TESSERA_RATE_LIMIT_CONCURRENCY', default: 0, help: 'requests in flight per key (0: unlimited)' },
  queue: { type: 'string', env: 'TESSERA_QUEUE', default: '', help: 'redis://[:password@]host[:port][/db], the Redis of tessera index/worker --queue: the per-key rate limits are kept there, shared by every replica given it (without it each replica applies them alone)' },
  'max-items': { type: 'integer', env: 'TESSERA_MAX_ITEMS', default: 2048, help: 'input items per request' },
  'max-text-chars': { type: 'integer', env: 'TESSERA_MAX_TEXT_CHARS', default: 200_000, help: 'characters of one text, checked before tokenizing, truncate or not (8,192 tokens are about 40,000 characters of English)' },
  'classifier-max-classes': { type: 'integer', env: 'TESSERA_CLASSIFIER_MAX_CLASSES', default: 16, help: 'classes (distinct labels) of one few-shot classifier' },
  'classifier-max-per-key': { type: 'integer', env: 'TESSERA_CLASSIFIER_MAX_PER_KEY', default: 16, help: 'few-shot classifiers one API key may have' },
  'classifier-max-inputs': { type: 'integer', env: 'TESSERA_CLASSIFIER_MAX_INPUTS', default: 1024, help: 'examples of one /v1/train call, and items of one /v1/classify call by classifier_id' },
  'max-body-bytes': { type: 'integer', env: 'TESSERA_MAX_BODY_BYTES', default: 64 * 1024 * 1024, help: 'request body size (413 beyond)' },
  'max-image-bytes': { type: 'integer', env: 'TESSERA_MAX_IMAGE_BYTES', default: 8 * 1024 * 1024, help: 'size of one downloaded image' },
  'max-image-pixels': { type: 'integer', env: 'TESSERA_MAX_IMAGE_PIXELS', default: 100_000_000, help: 'pixels of one image, checked before decoding' },
  'fetch-timeout-ms': { type: 'integer', env: 'TESSERA_FETCH_TIMEOUT_MS', default: 10_000, help: 'time to download one image URL' },
  'max-redirects': { type: 'integer', env: 'TESSERA_MAX_REDIRECTS', default: 5, help: 'redirects followed per image URL' },
  'fetch-concurrency': { type: 'integer', env: 'TESSERA_FETCH_CONCURRENCY', default: 8, help: 'image URLs fetched at once per request' },
  'allow-private-urls': { type: 'boolean', env: 'TESSERA_ALLOW_PRIVATE_URLS', default: false, help: 'UNSAFE on shared networks: let image URLs reach loopback, private and link-local addresses' },
  'max-pending-items': { type: 'integer', env: 'TESSERA_MAX_PENDING_ITEMS', default: 4096, help: 'items in flight across all requests, per model (429 beyond)' },
  'batch-wait-ms': { type: 'integer', env: 'TESSERA_BATCH_WAIT_MS', default: 2, help: 'how long an idle model waits for concurrent requests to join a batch' },
  'max-text-batch': { type: 'integer', env: 'TESSERA_MAX_TEXT_BATCH', default: 32, help: 'texts per batch' },
  'max-image-batch': { type: 'integer', env: 'TESSERA_MAX_IMAGE_BATCH', default: 16, help: 'images per batch' },
  'request-timeout-ms': { type: 'integer', env: 'TESSERA_REQUEST_TIMEOUT_MS', default: 120_000, help: 'deadline of a request; work not started by then is dropped' },
  threads: { type: 'integer', env: 'TESSERA_THREADS', default: 0, help: 'ONNX Runtime threads per session (0: all cores)' },
  store: { type: 'string', env: 'TESSERA_STORE', default: '', help: 'the store whose collections and classifiers are served: a folder, or a postgres:// URL shared by replicas (default: $XDG_DATA_HOME/tessera, i.e. ~/.local/share/tessera)' },
  watch: { type: 'list', env: 'TESSERA_WATCH', default: '', help: 'PATH=COLLECTION: keep the folder PATH indexed into COLLECTION of the store as files come, change and go (repeat the flag, or separate by commas); a new collection is made for the first served model' },
  'watch-settle-ms': { type: 'integer', env: 'TESSERA_WATCH_SETTLE_MS', default: 1000, help: 'with --watch: how long a changed file must stay the same (size, mtime) with no event before it is indexed' },
  int8: { type: 'string', env: 'TESSERA_INT8', default: 'auto', help: 'with --dtype q8: the form of the int8 weights to run, auto (chosen for this CPU: the signed form on VNNI/AMX, measured on AVX2 and cached) | as-is | signed | unsigned | signed-7bit' },
  'execution-providers': { type: 'string', env: 'TESSERA_EXECUTION_PROVIDERS', default: 'cpu', help: 'ONNX Runtime execution providers in order of preference, comma-separated, e.g. cuda,cpu' },
  'mcp-allow-writes': { type: 'boolean', env: 'TESSERA_MCP_ALLOW_WRITES', default: false, help: 'offer the MCP tools that write at /mcp: index_path (a folder or file on this machine, into a collection) and add_documents' },
} as const;

type Spec = typeof SERVER_OPTIONS;
type ValueOf<S> = S extends { type: 'integer' } ? number : S extends { type: 'boolean' } ? boolean : S extends { type: 'list' } ? readonly string[] : string;
export type ServerConfig = { readonly [K in keyof Spec]: ValueOf<Spec[K]> };

type Value = string | number | boolean | readonly string[];

/**
 * Reads flags and environment into one frozen, validated configuration. A `list` option is a
 * repeatable flag whose values may also hold several entries separated by commas (its
 * environment variable too): `--model a --model b` and `TESSERA_MODEL=a,b` are the same.
 */
export function parseServerConfig(args: string[], env: NodeJS.ProcessEnv = process.env): ServerConfig {
  const options = Object.fromEntries(
    Object.entries(SERVER_OPTIONS).map(([name, spec]) => [name, spec.type === 'boolean' ? { type: 'boolean' } : { type: 'string', multiple: spec.type === 'list' }]),
  ) as Record<string, { type: 'string' | 'boolean'; multiple?: boolean }>;
  const { values } = parseArgs({ args, options, strict: true });
  const config: Record<string, Value> = {};
  for (const [name, spec] of Object.entries(SERVER_OPTIONS)) {
    const raw = values[name] ?? env[spec.env];
    config[name] = coerce(name, spec.type, raw ?? spec.default);
  }
  return Object.freeze(config) as ServerConfig;
}

function coerce(name: string, type: string, raw: string | boolean | number | (string | boolean)[]): Value {
  if (typeof raw === 'number') return raw; // a default
  if (type === 'list') {
    const entries = (Array.isArray(raw) ? raw : [raw]).flatMap((value) => String(value).split(','));
    return Object.freeze(entries.map((entry) => entry.trim()).filter((entry) => entry !== ''));
  }
  if (Array.isArray(raw)) raw = raw.at(-1)!;
  if (type === 'boolean') {
    if (typeof raw === 'boolean') return raw;
    if (/^(1|true|yes|on)$/i.test(raw)) return true;
    if (/^(0|false|no|off|)$/i.test(raw)) return false;
  } else if (type === 'integer') {
    const n = Number(raw);
    if (Number.isInteger(n) && n >= 0) return n;
  } else {
    return String(raw);
  }
  throw new TesseraError('INVALID_ARGUMENT', `--${name} expects ${type === 'integer' ? 'a non-negative integer' : 'true or false'}, got ${JSON.stringify(raw)}`);
}

export function serverHelp(): string {
  const rows = Object.entries(SERVER_OPTIONS).map(([name, spec]) => {
    const flag = `--${name}${spec.type === 'boolean' ? '' : ' V'}${spec.type === 'list' ? '...' : ''}`;
    return `  ${flag.padEnd(28)} ${spec.help} [${spec.env}; default ${JSON.stringify(spec.default)}]`;
  });
  return `usage: tessera serve [options]\n\n${rows.join('\n')}`;
}
