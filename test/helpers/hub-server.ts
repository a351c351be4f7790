/**
 * A stand-in for the Hugging Face hub on 127.0.0.1, serving model repos from local folders
 * through the endpoints @huggingface/hub (and Python's huggingface_hub) call:
 *
 *   GET  /api/models/{repo}/revision/{rev}            model info (sha, siblings)
 *   GET  /api/models/{repo}/tree/{rev}[/{path}]       listing (?recursive, ?expand)
 *   POST /api/models/{repo}/paths-info/{rev}          details of given paths (JSON or form body)
 *   GET|HEAD /{repo}/resolve/{rev}/{path}             file bytes; LFS files redirect to /cdn/...
 *   GET|HEAD /cdn/{repo}/{sha256}                     LFS bytes
 *
 * with the hub's headers (ETag, X-Repo-Commit, X-Linked-Etag, X-Linked-Size, Content-Range,
 * X-Error-Code), Range requests, and knobs for tests: a request log, cutting a file's
 * response off (or stalling it) after N bytes, serving it slowly, and requiring a token.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { after, before } from 'node:test';
import type { AddressInfo } from 'node:net';
import { join, relative, sep } from 'node:path';

export interface StandInRepo {
  /** owner/name */
  id: string;
  /** Folder whose files (read at start) are the repo's contents. */
  dir: string;
  /** Commit sha the repo is at; default derived from the id. */
  commit?: string;
}

export interface HubServerOptions {
  repos: StandInRepo[];
  /** When set, API and resolve requests must carry `Authorization: Bearer <token>` (else 401). */
  token?: string;
  /** Files this big or bigger, and every *.onnx* file, are stored as LFS (sha256 oid). Default 10 kB. */
  lfsFrom?: number;
  /** Answer resolve requests of LFS files with a redirect to /cdn/..., as the hub does. Default true. */
  redirectLfs?: boolean;
}

export interface HubRequest {
  method: string;
  /** Decoded path, without the query. */
  path: string;
  query: string;
  kind: 'info' | 'tree' | 'paths-info' | 'resolve' | 'cdn' | 'other';
  /** Repo file a resolve or cdn request is for. */
  file?: string;
  range?: string;
  authorization?: string;
}

export interface HubServer {
  /** Base URL, e.g. http://127.0.0.1:41234 (what HF_ENDPOINT should be). */
  url: string;
  requests: HubRequest[];
  /** Resolve and CDN requests made for one repo file. */
  fileRequests(path: string): HubRequest[];
  /** The commit sha a repo is served at. */
  commitOf(repoId: string): string;
  /** The next `times` GETs of `path` that send more than `afterBytes` bytes stop after `afterBytes` and drop the connection. */
  cut(path: string, afterBytes: number, times?: number): void;
  /** Like cut, but the connection stays open and silent (a stalled transfer). */
  stall(path: string, afterBytes: number, times?: number): void;
  /** The next `times` GETs of `path` serve its bytes with one of them flipped. */
  corrupt(path: string, times?: number): void;
  /** From now on, GETs of `path` send its bytes at about `bytesPerSecond` (a slow link), in 10 pieces a second. */
  throttle(path: string, bytesPerSecond: number): void;
  /** Clears the request log. */
  reset(): void;
  close(): Promise<void>;
}

interface ServedFile {
  path: string;
  data: Buffer;
  /** git blob sha1 of what git stores: the content, or the LFS pointer text. */
  oid: string;
  lfs?: { oid: string; size: number; pointerSize: number };
}

interface ServedRepo {
  id: string;
  commit: string;
  files: Map<string, ServedFile>;
  dirs: Set<string>;
}

export function gitBlobSha1(data: Buffer | string): string {
  const bytes = typeof data === 'string' ? Buffer.from(data) : data;
  return createHash('sha1').update(`blob ${bytes.length}\0`).update(bytes).digest('hex');
}

export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

export async function startHubServer(options: HubServerOptions): Promise<HubServer> {
  const lfsFrom = options.lfsFrom ?? 10_000;
  const redirectLfs = options.redirectLfs ?? true;
  const repos = new Map<string, ServedRepo>();
  for (const spec of options.repos) repos.set(spec.id, await loadRepo(spec, lfsFrom));

  const requests: HubRequest[] = [];
  const cuts = new Map<string, { afterBytes: number; times: number; stall: boolean }>();
  const corruptions = new Map<string, number>();
  const throttles = new Map<string, number>();
  const lastModified = '2024-06-05T12:00:00.000Z';

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) json(res, 500, { error: String(err) });
      else res.destroy();
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://stand-in');
    const path = decodeURIComponent(url.pathname);
    const record: HubRequest = {
      method: req.method ?? 'GET',
      path,
      query: url.search,
      kind: 'other',
      range: header(req, 'range'),
      authorization: header(req, 'authorization'),
    };
    requests.push(record);

    const cdn = /^\/cdn\/([^/]+\/[^/]+)\/([0-9a-f]{64})$/.exec(path);
    if (cdn) {
      record.kind = 'cdn';
      const file = [...(repos.get(cdn[1]!)?.files.values() ?? [])].find((f) => f.lfs?.oid === cdn[2]);
      if (!file) return json(res, 404, { error: 'Not found' });
      record.file = file.path;
      return sendBytes(req, res, file, { ETag: `"${file.lfs!.oid}"` });
    }

    const api = /^\/api\/models\/([^/]+\/[^/]+)\/(revision|tree|paths-info)\/([^/]+)(?:\/(.*))?$/.exec(path);
    const resolve = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(path);
    if (!api && !resolve) return json(res, 404, { error: 'Not found' });
    const repoId = (api ?? resolve)![1]!;
    const revision = (api ?? resolve)![api ? 3 : 2]!;

    if (options.token !== undefined && record.authorization !== `Bearer ${options.token}`) {
      return json(res, 401, { error: 'Invalid credentials in Authorization header' }, { 'X-Error-Code': 'RepoNotFound' });
    }
    const repo = repos.get(repoId);
    if (!repo) {
      // The hub answers 401 to anonymous requests for unknown repos, so as not to reveal private ones.
      return json(res, record.authorization ? 404 : 401, { error: 'Repository not found' }, { 'X-Error-Code': 'RepoNotFound' });
    }
    if (!['main', 'HEAD', repo.commit].includes(revision)) {
      return json(res, 404, { error: `Invalid rev id: ${revision}` }, { 'X-Error-Code': 'RevisionNotFound' });
    }

    if (resolve) {
      record.kind = 'resolve';
      const file = repo.files.get(resolve[3]!);
      if (!file) return json(res, 404, { error: 'Entry not found' }, { 'X-Error-Code': 'EntryNotFound', 'X-Repo-Commit': repo.commit });
      record.file = file.path;
      const common: Record<string, string> = { 'X-Repo-Commit': repo.commit };
      if (file.lfs) {
        Object.assign(common, { 'X-Linked-Etag': `"${file.lfs.oid}"`, 'X-Linked-Size': String(file.lfs.size) });
        if (redirectLfs) {
          res.writeHead(302, { ...common, ETag: `"${file.oid}"`, Location: `/cdn/${repo.id}/${file.lfs.oid}`, 'Content-Length': '0' });
          res.end();
          return;
        }
        return sendBytes(req, res, file, { ...common, ETag: `"${file.lfs.oid}"` });
      }
      return sendBytes(req, res, file, { ...common, ETag: `"${file.oid}"` });
    }

    switch (api![2]) {
      case 'revision': {
        record.kind = 'info';
        return json(res, 200, {
          _id: createHash('sha1').update(repo.id).digest('hex').slice(0, 24),
          id: repo.id,
          modelId: repo.id,
          sha: repo.commit,
          private: false,
          gated: false,
          disabled: false,
          downloads: 0,
          likes: 0,
          lastModified,
          pipeline_tag: 'feature-extraction',
          library_name: 'transformers.js',
          tags: ['onnx'],
          siblings: [...repo.files.keys()].sort().map((rfilename) => ({ rfilename })),
        });
      }
      case 'tree': {
        record.kind = 'tree';
        const under = api![4] ? api![4].replace(/\/$/, '') : '';
        if (under && !repo.dirs.has(under)) return json(res, 404, { error: 'Entry not found' }, { 'X-Error-Code': 'EntryNotFound' });
        const recursive = url.searchParams.get('recursive') === 'true';
        const expand = url.searchParams.get('expand') === 'true';
        const inside = (p: string) => (under ? p.startsWith(`${under}/`) : true);
        const direct = (p: string) => !p.slice(under ? under.length + 1 : 0).includes('/');
        const paths = [...repo.dirs, ...repo.files.keys()].filter((p) => p !== '' && inside(p) && (recursive || direct(p))).sort();
        return json(res, 200, paths.map((p) => entry(repo, p, expand)));
      }
      case 'paths-info': {
        record.kind = 'paths-info';
        if (req.method !== 'POST') return json(res, 405, { error: 'Method not allowed' });
        const body = await readBody(req);
        let paths: string[];
        let expand = false;
        if ((header(req, 'content-type') ?? '').includes('application/json')) {
          const parsed = JSON.parse(body.toString('utf8')) as { paths?: string[]; expand?: boolean };
          paths = parsed.paths ?? [];
          expand = parsed.expand === true;
        } else {
          const form = new URLSearchParams(body.toString('utf8'));
          paths = form.getAll('paths');
          expand = form.get('expand') === 'true' || form.get('expand') === 'True';
        }
        return json(res, 200, paths.filter((p) => repo.files.has(p) || repo.dirs.has(p)).map((p) => entry(repo, p, expand)));
      }
    }
    return json(res, 404, { error: 'Not found' });
  }

  function entry(repo: ServedRepo, path: string, expand: boolean): Record<string, unknown> {
    const lastCommit = expand ? { lastCommit: { id: repo.commit, title: 'Upload model', date: lastModified } } : {};
    const file = repo.files.get(path);
    if (!file) return { type: 'directory', oid: gitBlobSha1(`tree ${path}`), size: 0, path, ...lastCommit };
    return { type: 'file', oid: file.oid, size: file.data.length, path, ...(file.lfs ? { lfs: file.lfs } : {}), ...lastCommit };
  }

  function sendBytes(req: IncomingMessage, res: ServerResponse, file: ServedFile, headers: Record<string, string>): void {
    const size = file.data.length;
    const base: Record<string, string> = { ...headers, 'Accept-Ranges': 'bytes', 'Content-Type': 'application/octet-stream' };
    let start = 0;
    let end = size - 1;
    let status = 200;
    const range = header(req, 'range');
    if (range) {
      const m = /^bytes=(\d*)-(\d*)$/.exec(range.trim());
      if (m && (m[1] !== '' || m[2] !== '')) {
        if (m[1] === '') {
          start = Math.max(0, size - Number(m[2]));
        } else {
          start = Number(m[1]);
          if (m[2] !== '') end = Math.min(end, Number(m[2]));
        }
      }
      if (!m || start >= size || start > end) {
        res.writeHead(416, { ...base, 'Content-Range': `bytes */${size}`, 'Content-Length': '0' });
        res.end();
        return;
      }
      status = 206;
      base['Content-Range'] = `bytes ${start}-${end}/${size}`;
    }
    let body = file.data.subarray(start, end + 1);
    const corrupt = corruptions.get(file.path) ?? 0;
    if (req.method !== 'HEAD' && corrupt > 0 && body.length > 1) {
      corruptions.set(file.path, corrupt - 1);
      body = Buffer.from(body);
      body[body.length >> 1]! ^= 0xff;
    }
    res.writeHead(status, { ...base, 'Content-Length': String(body.length) });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    const cut = cuts.get(file.path);
    if (cut && cut.times > 0 && body.length > cut.afterBytes) {
      cut.times -= 1;
      res.write(body.subarray(0, cut.afterBytes), () => {
        // Cut a moment after the bytes are sent: a client stream torn down by the error drops
        // data it has received but not yet handed on, so an instant cut made the resume
        // offset depend on the machine's load.
        if (!cut.stall) setTimeout(() => res.socket?.destroy(), 100);
      });
      return;
    }
    const rate = throttles.get(file.path);
    if (rate !== undefined) {
      const piece = Math.max(1, Math.round(rate / 10));
      let at = 0;
      const next = (): void => {
        if (res.destroyed) return;
        if (at >= body.length) return void res.end();
        const part = body.subarray(at, at + piece);
        at += part.length;
        res.write(part, () => void setTimeout(next, 100));
      };
      next();
      return;
    }
    res.end(body);
  }

  await new Promise<void>((ready) => server.listen(0, '127.0.0.1', ready));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    fileRequests: (path) => requests.filter((r) => r.file === path),
    commitOf(repoId) {
      const repo = repos.get(repoId);
      if (!repo) throw new Error(`the stand-in hub serves no repo ${repoId}`);
      return repo.commit;
    },
    cut(path, afterBytes, times = 1) {
      cuts.set(path, { afterBytes, times, stall: false });
    },
    stall(path, afterBytes, times = 1) {
      cuts.set(path, { afterBytes, times, stall: true });
    },
    corrupt(path, times = 1) {
      corruptions.set(path, times);
    },
    throttle(path, bytesPerSecond) {
      throttles.set(path, bytesPerSecond);
    },
    reset() {
      requests.length = 0;
    },
    close() {
      server.closeAllConnections();
      return new Promise((done) => server.close(() => done()));
    },
  };
}

/** Files the load-time steps cache beside a model: the graph rewrite (`X.onnx.rewrite-<set>.json`, `X.rewrite-v<n>-...onnx[_data]`) and the int8 steps (`X.onnx.int8-<tag>.json`, `X.int8-v<n>-...onnx`, `X.onnx.q8-load.json`, `X.q8-load-v<n>-...onnx`). */
export const isRewriteCache = (name: string) => /\.(rewrite|int8|q8-load)[-.]/.test(name);

async function loadRepo(spec: StandInRepo, lfsFrom: number): Promise<ServedRepo> {
  const files = new Map<string, ServedFile>();
  const dirs = new Set<string>();
  for (const entry of await readdir(spec.dir, { recursive: true, withFileTypes: true })) {
    const path = relative(spec.dir, join(entry.parentPath, entry.name)).split(sep).join('/');
    if (entry.isDirectory()) {
      dirs.add(path);
      continue;
    }
    // A graph rewrite cached beside a forged model is this machine's, not part of the repo.
    if (!entry.isFile() || isRewriteCache(entry.name)) continue;
    const data = await readFile(join(spec.dir, path));
    if (data.length >= lfsFrom || /\.onnx/.test(path)) {
      const oid = sha256(data);
      const pointer = `version https://git-lfs.github.com/spec/v1\noid sha256:${oid}\nsize ${data.length}\n`;
      files.set(path, { path, data, oid: gitBlobSha1(pointer), lfs: { oid, size: data.length, pointerSize: Buffer.byteLength(pointer) } });
    } else {
      files.set(path, { path, data, oid: gitBlobSha1(data) });
    }
  }
  return { id: spec.id, commit: spec.commit ?? createHash('sha1').update(`commit ${spec.id}`).digest('hex'), files, dirs };
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { ...headers, 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': String(Buffer.byteLength(text)) });
  res.end(text);
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/**
 * For a test file: a stand-in hub serving `repos` (started before the tests), with
 * HF_ENDPOINT pointing at it and a fresh HF_HUB_CACHE; the environment is restored after.
 * Returns a getter, since the server exists only once `before` has run.
 */
export function useStandInHub(repos: () => Promise<StandInRepo[]>, cacheDir: () => Promise<string>): () => HubServer {
  const saved = { ...process.env };
  let hub: HubServer | undefined;
  before(async () => {
    hub = await startHubServer({ repos: await repos() });
    process.env.HF_ENDPOINT = hub.url;
    process.env.HF_HUB_CACHE = await cacheDir();
    delete process.env.HF_HUB_OFFLINE;
    delete process.env.HF_TOKEN;
  });
  after(async () => {
    process.env = saved;
    await hub?.close().catch(() => undefined); // a test may have closed it to prove offline loading
  });
  return () => hub!;
}
