import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, realpath, rm, stat, writeFile } from 'node:fs/promises';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, relative, sep } from 'node:path';
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import { TesseraError, type ErrorCode } from '../../src/errors.ts';
import {
  downloadModel,
  externalDataFiles,
  findCachedModel,
  hubSettings,
  modelFilesFor,
  repoCacheFolder,
} from '../../src/model/hub.ts';
import { gitBlobSha1, sha256, startHubServer, type HubServer, type HubServerOptions } from '../helpers/hub-server.ts';

const REPO = 'tessera-test/jina-clip-v1';
const FP32_ONLY = 'tessera-test/jina-clip-v1-fp32';
const CONFIGS = ['config.json', 'preprocessor_config.json', 'special_tokens_map.json', 'tokenizer.json', 'tokenizer_config.json', 'vocab.txt'];

/** Deterministic bytes standing in for ONNX graphs: the download does not look inside them. */
function bytes(seed: string, length: number): Buffer {
  const out = Buffer.alloc(length);
  let block = createHash('sha256').update(seed).digest();
  for (let at = 0; at < length; at += block.length) {
    block.copy(out, at);
    block = createHash('sha256').update(block).digest();
  }
  return out;
}

/** A folder shaped like jinaai/jina-clip-v1 (small files), optionally without some dtypes. */
async function makeRepoFolder(dir: string, dtypes: { fp16: boolean; q8: boolean }): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  const json = (v: unknown) => Buffer.from(JSON.stringify(v, null, 2));
  files.set('config.json', json({ model_type: 'jina_clip', projection_dim: 768, vision_config: { image_size: 224, patch_size: 16 } }));
  files.set('preprocessor_config.json', json({ size: 224, resize_mode: 'shortest', interpolation: 'bicubic', mean: [0.48145466, 0.4578275, 0.40821073], std: [0.26862954, 0.26130258, 0.27577711] }));
  files.set('tokenizer.json', json({ version: '1.0', model: { type: 'WordPiece', vocab: Object.fromEntries(Array.from({ length: 3000 }, (_, i) => [`tok${i}`, i])) } }));
  files.set('tokenizer_config.json', json({ do_lower_case: true, model_max_length: 8192 }));
  files.set('special_tokens_map.json', json({ cls_token: '[CLS]', sep_token: '[SEP]', pad_token: '[PAD]', unk_token: '[UNK]', mask_token: '[MASK]' }));
  files.set('vocab.txt', Buffer.from(['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', 'red', 'car'].join('\n') + '\n'));
  files.set('README.md', Buffer.from('# jina-clip-v1 (stand-in)\n'));
  files.set('.gitattributes', Buffer.from('*.onnx filter=lfs diff=lfs merge=lfs -text\n'));
  files.set('onnx/text_model.onnx', bytes('text fp32', 300_000));
  files.set('onnx/vision_model.onnx', bytes('vision fp32', 200_000));
  files.set('onnx/text_model_int8.onnx', bytes('text int8', 90_000));
  if (dtypes.q8) {
    files.set('onnx/text_model_quantized.onnx', bytes('text q8', 120_000));
    files.set('onnx/vision_model_quantized.onnx', bytes('vision q8', 80_000));
  }
  if (dtypes.fp16) {
    files.set('onnx/text_model_fp16.onnx', bytes('text fp16', 40_000));
    files.set('onnx/text_model_fp16.onnx_data', bytes('text fp16 data', 150_000));
    files.set('onnx/vision_model_fp16.onnx', bytes('vision fp16', 100_000));
  }
  for (const [path, data] of files) {
    await mkdir(dirname(join(dir, path)), { recursive: true });
    await writeFile(join(dir, path), data);
  }
  return files;
}

const ENV_KEYS = [
  'HF_HUB_CACHE', 'HUGGINGFACE_HUB_CACHE', 'HF_HOME', 'XDG_CACHE_HOME', 'HF_ENDPOINT', 'HF_TOKEN', 'HUGGING_FACE_HUB_TOKEN',
  'HF_TOKEN_PATH', 'HF_HUB_OFFLINE', 'HF_HUB_ETAG_TIMEOUT', 'HF_HUB_DOWNLOAD_TIMEOUT', 'HF_HUB_DISABLE_PROGRESS_BARS',
];

let root: string;
let source: Map<string, Buffer>;
let repoDir: string;
let fp32OnlyDir: string;

let saved: Record<string, string | undefined>;
let tmp: string;
let cache: string;
let servers: HubServer[];

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'tessera-hub-'));
  repoDir = join(root, 'repo');
  fp32OnlyDir = join(root, 'repo-fp32');
  source = await makeRepoFolder(repoDir, { fp16: true, q8: true });
  await makeRepoFolder(fp32OnlyDir, { fp16: false, q8: false });
});

after(async () => {
  await rm(root, { recursive: true, force: true });
});

beforeEach(async () => {
  saved = Object.fromEntries(ENV_KEYS.map((k) => [k, process.env[k]]));
  for (const k of ENV_KEYS) delete process.env[k];
  tmp = await mkdtemp(join(root, 'case-'));
  cache = join(tmp, 'cache');
  process.env.HF_HUB_CACHE = cache;
  process.env.HF_HOME = join(tmp, 'hf-home'); // no token file from the real home
  servers = [];
});

afterEach(async () => {
  for (const s of servers) await s.close();
  for (const k of ENV_KEYS) {
    if (saved[k] === undefined) delete process.env[k];
    else process.env[k] = saved[k];
  }
});

async function serve(options: Partial<HubServerOptions> = {}): Promise<HubServer> {
  const server = await startHubServer({
    repos: [
      { id: REPO, dir: repoDir },
      { id: FP32_ONLY, dir: fp32OnlyDir },
    ],
    ...options,
  });
  servers.push(server);
  process.env.HF_ENDPOINT = server.url;
  return server;
}

/** Files under a snapshot folder (relative, '/'-separated), whatever their kind. */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => !e.isDirectory())
    .map((e) => relative(dir, join(e.parentPath, e.name)).split(sep).join('/'))
    .sort();
}

function isError(code: ErrorCode, ...patterns: RegExp[]) {
  return (err: unknown) => {
    assert.ok(err instanceof TesseraError, `expected a TesseraError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    for (const p of patterns) assert.match(err.message, p);
    return true;
  };
}

const storage = () => repoCacheFolder(cache, REPO);
const blobOf = (path: string) => join(storage(), 'blobs', sha256(source.get(path)!));

describe('downloadModel', () => {
  test('fp32: the dtype files land in the standard cache layout (blobs, snapshots/<commit>, refs/main)', async () => {
    const server = await serve();
    const commit = server.commitOf(REPO);
    const dir = await downloadModel(REPO, { dtype: 'fp32' });

    assert.equal(dir, join(cache, 'models--tessera-test--jina-clip-v1', 'snapshots', commit));
    assert.equal(await readFile(join(storage(), 'refs', 'main'), 'utf8'), commit);
    const expected = [...CONFIGS, 'onnx/text_model.onnx', 'onnx/vision_model.onnx'].sort();
    assert.deepEqual(await filesUnder(dir), expected);

    for (const path of expected) {
      const link = join(dir, path);
      assert.ok((await lstat(link)).isSymbolicLink(), `${path} is a symlink`);
      assert.ok(!(await readlink(link)).startsWith('/'), `${path} links relatively, as huggingface_hub does`);
      const data = source.get(path)!;
      // LFS files (the stand-in's rule: *.onnx*, or 10 kB and more, which makes tokenizer.json one)
      // are named by sha256, others by their git blob sha1 (what the hub's ETag says).
      const lfs = path.includes('.onnx') || data.length >= 10_000;
      const etag = lfs ? sha256(data) : gitBlobSha1(data);
      assert.equal(await realpath(link), await realpath(join(storage(), 'blobs', etag)));
      assert.deepEqual(await readFile(link), data, `${path} bytes`);
    }
    assert.equal((await readdir(join(storage(), 'blobs'))).length, expected.length, 'no other blobs, no .incomplete left');
    const fetched = new Set(server.requests.filter((r) => r.file).map((r) => r.file));
    assert.deepEqual([...fetched].sort(), expected, 'only the needed files are requested');
  });

  test('q8 fetches the _quantized pair and not the fp32 graphs', async () => {
    const server = await serve();
    const dir = await downloadModel(REPO, { dtype: 'q8' });
    assert.deepEqual(
      (await filesUnder(dir)).filter((f) => f.startsWith('onnx/')),
      ['onnx/text_model_quantized.onnx', 'onnx/vision_model_quantized.onnx'],
    );
    assert.deepEqual(await readFile(join(dir, 'onnx/text_model_quantized.onnx')), source.get('onnx/text_model_quantized.onnx'));
    assert.equal(server.fileRequests('onnx/text_model.onnx').length, 0);
    assert.equal(server.fileRequests('onnx/vision_model.onnx').length, 0);
  });

  test('fp16 brings the external-data file of its graph', async () => {
    await serve();
    const dir = await downloadModel(REPO, { dtype: 'fp16' });
    assert.deepEqual(
      (await filesUnder(dir)).filter((f) => f.startsWith('onnx/')),
      ['onnx/text_model_fp16.onnx', 'onnx/text_model_fp16.onnx_data', 'onnx/vision_model_fp16.onnx'],
    );
    assert.deepEqual(await readFile(join(dir, 'onnx/text_model_fp16.onnx_data')), source.get('onnx/text_model_fp16.onnx_data'));
  });

  test('a second dtype shares the config blobs and adds its own graphs to the same snapshot', async () => {
    const server = await serve();
    const first = await downloadModel(REPO, { dtype: 'fp32' });
    server.reset();
    const second = await downloadModel(REPO, { dtype: 'q8' });
    assert.equal(second, first);
    assert.deepEqual([...new Set(server.requests.filter((r) => r.file).map((r) => r.file))].sort(), [
      'onnx/text_model_quantized.onnx',
      'onnx/vision_model_quantized.onnx',
    ]);
  });

  test('once cached: one revision lookup online, no request offline, and the cache serves when the hub is gone', async () => {
    const server = await serve();
    const dir = await downloadModel(REPO, { dtype: 'fp32' });

    server.reset();
    assert.equal(await downloadModel(REPO, { dtype: 'fp32' }), dir);
    assert.deepEqual(server.requests.map((r) => r.kind), ['info'], 'only the revision lookup');

    server.reset();
    process.env.HF_HUB_OFFLINE = '1';
    assert.equal(await downloadModel(REPO, { dtype: 'fp32' }), dir);
    assert.equal(server.requests.length, 0);

    await server.close();
    assert.equal(await downloadModel(REPO, { dtype: 'fp32' }), dir, 'offline with the server stopped');

    delete process.env.HF_HUB_OFFLINE;
    assert.equal(await downloadModel(REPO, { dtype: 'fp32' }), dir, 'online but the hub refuses connections');
  });

  test('a commit-sha revision with a complete snapshot makes no request', async () => {
    const server = await serve();
    const commit = server.commitOf(REPO);
    const dir = await downloadModel(REPO, { dtype: 'q8', revision: commit });
    assert.equal(dir, join(storage(), 'snapshots', commit));
    server.reset();
    assert.equal(await downloadModel(REPO, { dtype: 'q8', revision: commit }), dir);
    assert.equal(server.requests.length, 0);
    assert.equal(await findCachedModel(REPO, { dtype: 'q8', revision: commit }), dir);
    assert.equal(await findCachedModel(REPO, { dtype: 'fp32', revision: commit }), null);
  });

  test('offline with nothing cached: HUB_OFFLINE with the way forward, and no request', async () => {
    const server = await serve();
    process.env.HF_HUB_OFFLINE = '1';
    await assert.rejects(
      downloadModel(REPO, { dtype: 'fp32' }),
      isError('HUB_OFFLINE', /tessera-test\/jina-clip-v1/, /HF_HUB_OFFLINE is set/, /no copy of .* at revision main/, /--model <dir>/, /--model demo/),
    );
    assert.equal(server.requests.length, 0);
  });

  test('offline with another dtype cached: HUB_OFFLINE names the missing graph', async () => {
    await serve();
    await downloadModel(REPO, { dtype: 'fp32' });
    process.env.HF_HUB_OFFLINE = 'true';
    await assert.rejects(
      downloadModel(REPO, { dtype: 'q8' }),
      isError('HUB_OFFLINE', /neither onnx\/text_model_quantized\.onnx \+ onnx\/vision_model_quantized\.onnx or onnx\/model_quantized\.onnx \(dtype q8\) is in the cached snapshot/, /--model demo/),
    );
  });

  test('hub unreachable and nothing cached: HUB_OFFLINE', async () => {
    const server = await serve();
    await server.close();
    await assert.rejects(
      downloadModel(REPO, { dtype: 'fp32' }),
      isError('HUB_OFFLINE', /is unreachable \(ECONNREFUSED\)/, /--model <dir>/, /--model demo/),
    );
  });

  test('a download cut off in every try fails, keeps the partial blob, and the next call resumes it exactly', async () => {
    const server = await serve();
    const path = 'onnx/text_model.onnx';
    server.cut(path, 64_000, 4); // as many cuts as tries
    await assert.rejects(downloadModel(REPO, { dtype: 'fp32' }), isError('HUB_DOWNLOAD_FAILED', /onnx\/text_model\.onnx/, /run again to resume/));

    const partial = (await stat(`${blobOf(path)}.incomplete`)).size;
    assert.ok(partial > 0 && partial < source.get(path)!.length, `partial blob of ${partial} bytes kept`);
    await assert.rejects(stat(blobOf(path)), 'no blob under the final name');
    const snapshot = join(storage(), 'snapshots', server.commitOf(REPO));
    await assert.rejects(lstat(join(snapshot, path)), 'no snapshot link to a partial file');
    process.env.HF_HUB_OFFLINE = '1';
    await assert.rejects(downloadModel(REPO, { dtype: 'fp32' }), isError('HUB_OFFLINE', /onnx\/text_model\.onnx/));
    delete process.env.HF_HUB_OFFLINE;

    server.reset();
    const dir = await downloadModel(REPO, { dtype: 'fp32' });
    assert.deepEqual(await readFile(join(dir, path)), source.get(path));
    const ranges = server.fileRequests(path).map((r) => r.range);
    assert.ok(ranges.includes(`bytes=${partial}-${source.get(path)!.length - 1}`), `resumed with a range request: ${ranges.join(', ')}`);
    assert.ok(!(await readdir(join(storage(), 'blobs'))).some((f) => f.endsWith('.incomplete')));
  });

  test('a connection cut once is resumed within the same call', async () => {
    const server = await serve();
    const path = 'onnx/vision_model.onnx';
    server.cut(path, 50_000);
    const dir = await downloadModel(REPO, { dtype: 'fp32' });
    assert.deepEqual(await readFile(join(dir, path)), source.get(path));
    assert.deepEqual(
      server.fileRequests(path).filter((r) => r.kind === 'cdn').map((r) => r.range),
      [undefined, `bytes=50000-${source.get(path)!.length - 1}`],
    );
  });

  test('a transfer that stalls is abandoned after HF_HUB_DOWNLOAD_TIMEOUT and resumed', async () => {
    const server = await serve();
    process.env.HF_HUB_DOWNLOAD_TIMEOUT = '0.3';
    const path = 'onnx/text_model_quantized.onnx';
    server.stall(path, 30_000);
    const dir = await downloadModel(REPO, { dtype: 'q8' });
    assert.deepEqual(await readFile(join(dir, path)), source.get(path));
    assert.deepEqual(
      server.fileRequests(path).filter((r) => r.kind === 'cdn').map((r) => r.range),
      [undefined, `bytes=30000-${source.get(path)!.length - 1}`],
    );
  });

  test('a hub that accepts connections but never answers: the cache is used after HF_HUB_ETAG_TIMEOUT', async () => {
    await serve();
    const dir = await downloadModel(REPO, { dtype: 'fp32' });
    const silent = createNetServer(() => {});
    await new Promise<void>((ready) => silent.listen(0, '127.0.0.1', ready));
    try {
      process.env.HF_ENDPOINT = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`;
      process.env.HF_HUB_ETAG_TIMEOUT = '0.3';
      const started = Date.now();
      assert.equal(await downloadModel(REPO, { dtype: 'fp32' }), dir);
      assert.ok(Date.now() - started < 5_000);
      await assert.rejects(downloadModel(REPO, { dtype: 'q8' }), isError('HUB_OFFLINE', /unreachable \(timed out\)/, /text_model_quantized/));
    } finally {
      silent.close();
    }
  });

  test('two calls at once share the downloads', async () => {
    const server = await serve();
    const [a, b] = await Promise.all([downloadModel(REPO, { dtype: 'q8' }), downloadModel(REPO, { dtype: 'q8' })]);
    assert.equal(a, b);
    assert.deepEqual(await readFile(join(a, 'onnx/text_model_quantized.onnx')), source.get('onnx/text_model_quantized.onnx'));
    assert.equal(server.fileRequests('onnx/text_model_quantized.onnx').filter((r) => r.kind === 'cdn').length, 1);
  });

  test('a partial file with wrong bytes fails its sha256 and is downloaded again from the start', async () => {
    const server = await serve();
    const path = 'onnx/text_model.onnx';
    await mkdir(join(storage(), 'blobs'), { recursive: true });
    await writeFile(`${blobOf(path)}.incomplete`, bytes('garbage', 100_000));
    const dir = await downloadModel(REPO, { dtype: 'fp32' });
    assert.deepEqual(await readFile(join(dir, path)), source.get(path));
    assert.deepEqual(
      server.fileRequests(path).filter((r) => r.kind === 'cdn').map((r) => r.range),
      [`bytes=100000-${source.get(path)!.length - 1}`, undefined],
    );
  });

  test('bytes that do not match the listed hash are refused without filling the cache, and a later call succeeds', async () => {
    const server = await serve();
    const path = 'onnx/vision_model_quantized.onnx';
    server.corrupt(path);
    await assert.rejects(
      downloadModel(REPO, { dtype: 'q8' }),
      isError('HUB_DOWNLOAD_FAILED', new RegExp(`${path} does not match its sha256 \\(expected ${sha256(source.get(path)!)}, got [0-9a-f]{64}\\)$`)),
    );
    assert.equal(server.fileRequests(path).filter((r) => r.kind === 'cdn').length, 1, 'a whole file that fails its hash is not fetched again');
    assert.deepEqual((await readdir(join(storage(), 'blobs'))).filter((f) => f.startsWith(sha256(source.get(path)!))), []);
    const dir = await downloadModel(REPO, { dtype: 'q8' });
    assert.deepEqual(await readFile(join(dir, path)), source.get(path));
  });

  test('a cut-off blob under its final name (written by a tool that did not check) is not trusted', async () => {
    const server = await serve();
    const path = 'onnx/vision_model.onnx';
    await mkdir(join(storage(), 'blobs'), { recursive: true });
    await writeFile(blobOf(path), source.get(path)!.subarray(0, 70_000));
    const dir = await downloadModel(REPO, { dtype: 'fp32' });
    assert.deepEqual(await readFile(join(dir, path)), source.get(path));
    assert.deepEqual(
      server.fileRequests(path).filter((r) => r.kind === 'cdn').map((r) => r.range),
      [`bytes=70000-${source.get(path)!.length - 1}`],
      'resumed from the bytes it had',
    );
  });

  test('a snapshot link whose blob was removed is repaired', async () => {
    await serve();
    const dir = await downloadModel(REPO, { dtype: 'fp32' });
    await rm(blobOf('onnx/text_model.onnx'));
    assert.equal(await downloadModel(REPO, { dtype: 'fp32' }), dir);
    assert.deepEqual(await readFile(join(dir, 'onnx/text_model.onnx')), source.get('onnx/text_model.onnx'));
  });

  test('a repo the hub does not know: MODEL_NOT_FOUND naming it, the endpoint and HF_TOKEN', async () => {
    const server = await serve();
    await assert.rejects(
      downloadModel('nobody/no-such-model', { dtype: 'fp32' }),
      isError('MODEL_NOT_FOUND', /nobody\/no-such-model/, new RegExp(server.url.replace(/[.]/g, '\\.')), /HTTP 401/, /HF_TOKEN/),
    );
  });

  test('an unknown revision: MODEL_NOT_FOUND naming the revision', async () => {
    await serve();
    await assert.rejects(downloadModel(REPO, { dtype: 'fp32', revision: 'v9' }), isError('MODEL_NOT_FOUND', /revision v9/, /Invalid rev id: v9/));
  });

  test('a repo without the dtype: MODEL_FILE_MISSING naming the file, the dtype and what the repo offers', async () => {
    const server = await serve();
    await assert.rejects(
      downloadModel(FP32_ONLY, { dtype: 'q8' }),
      isError('MODEL_FILE_MISSING', /onnx\/text_model_quantized\.onnx/, /dtype q8/, /offers dtype fp32/),
    );
    assert.equal(server.requests.filter((r) => r.file).length, 0, 'nothing downloaded');
  });

  test('HF_TOKEN is sent as a Bearer token; without it a private repo is not found', async () => {
    const token = 'hf_standInSecret';
    const server = await serve({ token });
    await assert.rejects(downloadModel(REPO, { dtype: 'q8' }), isError('MODEL_NOT_FOUND', /HF_TOKEN/));

    server.reset();
    process.env.HF_TOKEN = token;
    const dir = await downloadModel(REPO, { dtype: 'q8' });
    assert.deepEqual(await readFile(join(dir, 'onnx/vision_model_quantized.onnx')), source.get('onnx/vision_model_quantized.onnx'));
    const hubRequests = server.requests.filter((r) => r.kind !== 'cdn');
    assert.ok(hubRequests.length >= 4);
    for (const r of hubRequests) assert.equal(r.authorization, `Bearer ${token}`, `${r.method} ${r.path}`);
  });

  test('the token file written by `huggingface-cli login` is used when HF_TOKEN is unset', async () => {
    const token = 'hf_fromTokenFile';
    const server = await serve({ token });
    await mkdir(process.env.HF_HOME!, { recursive: true });
    await writeFile(join(process.env.HF_HOME!, 'token'), `${token}\n`);
    await downloadModel(REPO, { dtype: 'q8' });
    assert.ok(server.requests.every((r) => r.kind === 'cdn' || r.authorization === `Bearer ${token}`));
  });

  test('progress off a terminal: one line per downloaded file on stderr', async () => {
    await serve();
    const lines: string[] = [];
    const write = process.stderr.write;
    const tty = process.stderr.isTTY;
    process.stderr.isTTY = false;
    process.stderr.write = ((chunk: string | Uint8Array) => {
      lines.push(String(chunk));
      return true;
    }) as typeof process.stderr.write;
    try {
      await downloadModel(REPO, { dtype: 'q8', progress: true });
    } finally {
      process.stderr.write = write;
      process.stderr.isTTY = tty;
    }
    assert.equal(lines.length, CONFIGS.length + 2, lines.join(''));
    assert.ok(lines.some((l) => l === 'tessera: downloading onnx/text_model_quantized.onnx (120.0 kB)\n'), lines.join(''));
  });

  test('rejects malformed repo ids and revisions before any request', async () => {
    const server = await serve();
    await assert.rejects(downloadModel('../etc', { dtype: 'fp32' }), isError('INVALID_ARGUMENT', /repo/));
    await assert.rejects(downloadModel('a/b/c', { dtype: 'fp32' }), isError('INVALID_ARGUMENT', /repo/));
    await assert.rejects(downloadModel(REPO, { dtype: 'fp32', revision: '../../x' }), isError('INVALID_ARGUMENT', /revision/));
    await assert.rejects(downloadModel(REPO, { dtype: 'int4' as 'q8' }), isError('INVALID_ARGUMENT', /dtype/));
    assert.equal(server.requests.length, 0);
  });
});

describe('hubSettings', () => {
  test('cache folder: HF_HUB_CACHE, else HF_HOME/hub, else XDG_CACHE_HOME, else ~/.cache/huggingface/hub', () => {
    assert.equal(hubSettings({ HF_HUB_CACHE: '/a/hub', HF_HOME: '/b' }).cacheDir, '/a/hub');
    assert.equal(hubSettings({ HF_HOME: '/b' }).cacheDir, '/b/hub');
    assert.equal(hubSettings({ XDG_CACHE_HOME: '/x' }).cacheDir, '/x/huggingface/hub');
    assert.match(hubSettings({}).cacheDir, /\.cache\/huggingface\/hub$/);
  });

  test('endpoint, offline flag and token as huggingface_hub reads them', () => {
    const s = hubSettings({ HF_ENDPOINT: 'https://hf-mirror.example/', HF_HUB_OFFLINE: 'YES', HF_TOKEN: 'hf_x', HF_HOME: '/nonexistent' });
    assert.equal(s.endpoint, 'https://hf-mirror.example');
    assert.equal(s.offline, true);
    assert.equal(s.token, 'hf_x');
    const d = hubSettings({ HF_HOME: '/nonexistent' });
    assert.equal(d.endpoint, 'https://huggingface.co');
    assert.equal(d.offline, false);
    assert.equal(d.token, undefined);
    assert.equal(hubSettings({ HF_HUB_OFFLINE: '0', HF_HOME: '/nonexistent' }).offline, false);
    assert.throws(() => hubSettings({ HF_ENDPOINT: 'huggingface.co' }), isError('INVALID_ARGUMENT', /HF_ENDPOINT/));
  });
});

describe('modelFilesFor', () => {
  const listing = [
    'README.md', 'config.json', 'tokenizer.json', 'vocab.txt',
    'onnx/text_model.onnx', 'onnx/text_model.onnx_data', 'onnx/vision_model.onnx', 'onnx/vision_model.onnx.data',
    'onnx/text_model_fp16.onnx', 'onnx/text_model_fp16.onnx_data_1', 'onnx/text_model_fp16.onnx_data_2', 'onnx/vision_model_fp16.onnx',
  ];

  test('configs first, then external data, then the graphs', () => {
    assert.deepEqual(modelFilesFor('fp32', listing), [
      'config.json', 'tokenizer.json', 'vocab.txt',
      'onnx/text_model.onnx_data', 'onnx/vision_model.onnx.data',
      'onnx/text_model.onnx', 'onnx/vision_model.onnx',
    ]);
    assert.deepEqual(externalDataFiles('onnx/text_model_fp16.onnx', listing), ['onnx/text_model_fp16.onnx_data_1', 'onnx/text_model_fp16.onnx_data_2']);
  });

  test('a missing graph is MODEL_FILE_MISSING', () => {
    assert.throws(() => modelFilesFor('q8', listing, 'x/y'), isError('MODEL_FILE_MISSING', /^x\/y has neither onnx\/text_model_quantized\.onnx \+ onnx\/vision_model_quantized\.onnx nor onnx\/model_quantized\.onnx, which dtype q8 needs; it offers dtype fp32, fp16$/));
    assert.throws(() => modelFilesFor('fp32', ['config.json']), isError('MODEL_FILE_MISSING', /no onnx\/model\*\.onnx \(is it a jina-clip ONNX export\?\)/));
  });

  test("jina-clip-v2's combined graph: its external data, then the graph", () => {
    const v2 = ['config.json', 'preprocessor_config.json', 'tokenizer.json', 'onnx/model.onnx', 'onnx/model.onnx_data', 'onnx/model_fp16.onnx', 'onnx/model_fp16.onnx_data', 'onnx/model_quantized.onnx'];
    assert.deepEqual(modelFilesFor('fp32', v2), ['config.json', 'preprocessor_config.json', 'tokenizer.json', 'onnx/model.onnx_data', 'onnx/model.onnx']);
    assert.deepEqual(modelFilesFor('q8', v2), ['config.json', 'preprocessor_config.json', 'tokenizer.json', 'onnx/model_quantized.onnx']);
  });
});

