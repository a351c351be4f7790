// The container image, built from the Dockerfile as it is and run: as `docker run -v
// tessera-data:/data tessera ...` does (local store, FFmpeg and Poppler indexing a video and a
// PDF, /ready, embeddings, the HEALTHCHECK, SIGTERM), and as compose.yaml wires it to
// PostgreSQL + pgvector and Redis (server and worker).
//
// No Docker here: buildah builds and runs it (`--isolation chroot`; podman's runtime cannot
// start containers on these machines: "cgroups in hybrid mode not supported"), and Docker Hub
// cannot be reached, so the FROM image, node:20-bookworm-slim, is a stand-in made by
// scripts/container-base.sh (debootstrap from Debian's mirror, plus this machine's Node 20).
// Everything lives in a storage of its own under TESSERA_CONTAINER_CACHE (default
// ~/.cache/tessera-test/container), never in the machine's image store; the stand-in and the
// build's layers are kept there, so a second run rebuilds only what changed. The key of that
// storage (Node's version, the month, the script's hash) renews the stand-in monthly; older
// keys are deleted; one run at a time uses the cache (a lock folder). Timings are printed (cold
// on a 2-core machine: about 2 min for the stand-in, 5 for the image; warm: under a minute in
// all). Chroot isolation shares the host's network: the server listens on a free
// host port (TESSERA_PORT, as `docker run -e` would set it) and PostgreSQL and Redis are the
// test's own, on loopback, in place of compose's `postgres` and `redis` hosts.
//
// Needs root, buildah, debootstrap and docker-compose (only to validate and resolve
// compose.yaml, no daemon); .ci/run installs them. Missing, the test fails: it never skips.
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { chown, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { makeVideo } from '../helpers/media.ts';
import { makePdf } from '../helpers/pdf.ts';
import { solidImage } from '../helpers/images.ts';
import { startPostgres, type PgServer } from '../helpers/postgres.ts';
import { freePort, startRedis, type RedisServer } from '../helpers/redis.ts';
import { until } from '../helpers/wait.ts';

const run = promisify(execFile);
const ROOT = new URL('../../', import.meta.url).pathname;
const IMAGE = 'localhost/tessera:test';
const BASE_NAMES = ['docker.io/library/node:20-bookworm-slim', 'localhost/node:20-bookworm-slim'];
/** The image's user, as the Dockerfile creates it. */
const UID = 10001;

const CACHE = process.env.TESSERA_CONTAINER_CACHE ?? join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'tessera-test', 'container');
const BASE_SCRIPT = join(ROOT, 'scripts/container-base.sh');
const KEY = `bookworm-node${process.versions.node}-${new Date().toISOString().slice(0, 7)}-${createHash('sha256').update(readFileSync(BASE_SCRIPT)).digest('hex').slice(0, 8)}`;
const HOME = join(CACHE, KEY);
const BASE_TAG = `localhost/tessera-test-base:${KEY.replace(/[^a-zA-Z0-9_.-]/g, '_')}`;

const LOCK = join(CACHE, 'lock');
let locked = false;

/** Takes the cache's lock if it is free or its owner is gone; false while another live process holds it. */
async function lock(): Promise<boolean> {
  try {
    await mkdir(LOCK);
  } catch {
    const owner = Number(await readFile(join(LOCK, 'pid'), 'utf8').catch(() => '0'));
    let alive = owner > 0;
    try { if (alive) process.kill(owner, 0); } catch { alive = false; }
    if (alive || owner === 0 && Date.now() - (await stat(LOCK).catch(() => ({ mtimeMs: 0 }))).mtimeMs < 10_000) return false;
    await rm(LOCK, { recursive: true, force: true });
    return false;
  }
  await writeFile(join(LOCK, 'pid'), String(process.pid));
  locked = true;
  return true;
}

let env: NodeJS.ProcessEnv = process.env;
let runroot = '';
const cleanups: (() => Promise<unknown>)[] = [];

/** buildah in the test's own storage. Rejects with its stderr. */
async function buildah(args: string[]): Promise<string> {
  try {
    const { stdout } = await run('buildah', args, { env, maxBuffer: 256 << 20 });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`buildah ${args.join(' ')}: ${e.stderr?.slice(-4000) || e.message}`);
  }
}

/** A long command, its output to `log` (kept in the cache folder for a failure's post-mortem). */
function logged(command: string, args: string[], log: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env, cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const keep = (chunk: Buffer) => { out = (out + chunk.toString()).slice(-200_000); };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.on('error', reject);
    child.on('exit', async (code) => {
      await writeFile(log, out);
      if (code === 0) resolve();
      else reject(new Error(`${command} ${args.join(' ')} exited with ${code} (log: ${log}):\n${out.slice(-6000)}`));
    });
  });
}

/** Runs `command` with `input` on its stdin; resolves with its stdout, rejects with its stderr. */
function output(command: string, args: string[], input: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c));
    child.stderr.on('data', (c: Buffer) => (stderr += c));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(stdout) : reject(new Error(`${command} exited with ${code}: ${stderr}`))));
    child.stdin.end(input);
  });
}

interface ImageConfig {
  User: string;
  Env: string[];
  Entrypoint: string[];
  Cmd: string[];
  WorkingDir: string;
  ExposedPorts?: Record<string, object>;
  Volumes?: Record<string, object>;
  Healthcheck?: { Test: string[]; Interval: number; Timeout: number; StartPeriod: number; Retries: number };
}

async function imageConfig(name: string): Promise<ImageConfig> {
  const info = JSON.parse(await buildah(['inspect', '--type', 'image', name])) as { Docker: { config: ImageConfig } };
  return info.Docker.config;
}

/** Process table: parent and argv of every process, for finding what runs inside a container. */
async function processes(): Promise<Map<number, { ppid: number; argv: string[] }>> {
  const table = new Map<number, { ppid: number; argv: string[] }>();
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = await readFile(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const argv = (await readFile(`/proc/${name}/cmdline`, 'utf8')).split('\0').filter(Boolean);
      table.set(Number(name), { ppid, argv });
    } catch {
      // gone meanwhile
    }
  }
  return table;
}

function descendants(table: Map<number, { ppid: number }>, pid: number): number[] {
  const found: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    const parent = queue.shift()!;
    for (const [child, { ppid }] of table) if (ppid === parent) { found.push(child); queue.push(child); }
  }
  return found;
}

async function killTree(pid: number): Promise<void> {
  const all = [pid, ...descendants(await processes(), pid)];
  for (const p of all) try { process.kill(p, 'SIGKILL'); } catch { /* gone */ }
}

interface Running {
  child: ChildProcess;
  exited: Promise<number | null>;
  output(): string;
  /** The container's first process (PID 1 under Docker: the entrypoint, bin/tessera's watcher). */
  entrypoint(): Promise<number>;
}

/** A working container of the image, with `env` set on it as `docker run -e` sets it. */
class Container {
  private constructor(readonly name: string, readonly config: ImageConfig) {}

  static async create(env: Record<string, string>): Promise<Container> {
    const name = `tessera-test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
    await buildah(['from', '--pull-never', '--name', name, IMAGE]);
    const container = new Container(name, await imageConfig(IMAGE));
    cleanups.push(() => buildah(['rm', name]).catch(() => undefined));
    // buildah run (1.28) mounts a fresh anonymous volume on each of the image's VOLUMEs even
    // where `-v DIR:/data` names the same path (Docker lets -v win): the test mounts its own.
    const volumes = Object.keys(container.config.Volumes ?? {}).flatMap((v) => ['--volume', `${v}-`]);
    await buildah(['config', ...volumes, ...Object.entries(env).flatMap(([k, v]) => ['--env', `${k}=${v}`]), name]);
    return container;
  }

  #args(argv: string[], volumes: string[]): string[] {
    return ['run', '--isolation', 'chroot', ...volumes.flatMap((v) => ['-v', v]), this.name, '--', ...argv];
  }

  /** Runs `argv` to its end: `docker run` / `docker exec` of one command. */
  exec(argv: string[], volumes: string[] = []): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve, reject) => {
      const child = spawn('buildah', this.#args(argv, volumes), { env, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => (stdout += c));
      child.stderr.on('data', (c: Buffer) => (stderr += c));
      child.on('error', reject);
      child.on('exit', (code) => resolve({ code, stdout, stderr }));
    });
  }

  /** Starts `argv` and leaves it running. */
  start(argv: string[], volumes: string[] = []): Running {
    const child = spawn('buildah', this.#args(argv, volumes), { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (c: Buffer) => (out += c));
    child.stderr!.on('data', (c: Buffer) => (out += c));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    cleanups.unshift(() => killTree(child.pid!));
    const entrypoint = async () => {
      // buildah run -> buildah-chroot-runtime -> buildah-chroot-exec, which starts the command:
      // the first process under buildah run that is not buildah's own.
      const table = await processes();
      const first = descendants(table, child.pid!).find((pid) => !/buildah/.test(table.get(pid)!.argv[0] ?? 'buildah'));
      assert.ok(first, `no process of the container under buildah run (${child.pid})`);
      assert.ok(table.get(first)!.argv.some((a) => a.endsWith('/tessera')), `the container's first process runs tessera: ${table.get(first)!.argv.join(' ')}`);
      return first;
    };
    return { child, exited, output: () => out, entrypoint };
  }
}

/** Waits for `/ready` on `port` (the container's server); fails early, with its output, if it exits. */
async function waitReady(server: Running, port: number, ms = 120_000): Promise<number> {
  let code: number | null | undefined;
  void server.exited.then((c) => (code = c));
  return until('the server in the container answers /ready', async () => {
    if (code !== undefined) assert.fail(`the server exited with ${code}:\n${server.output()}`);
    try {
      return (await fetch(`http://127.0.0.1:${port}/ready`)).ok;
    } catch {
      return false;
    }
  }, ms, 200);
}

async function post<T>(port: number, path: string, body: unknown): Promise<T> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const text = await res.text();
  assert.ok(res.ok, `POST ${path}: ${res.status} ${text}`);
  return JSON.parse(text) as T;
}

interface Embeddings { model: string; data: { index: number; embedding: number[] }[] }

const dot = (a: number[], b: number[]) => a.reduce((s, x, i) => s + x * b[i]!, 0);

/** A host folder mounted as /data, owned by the image's user (as a named volume made from the image's /data is). */
async function dataVolume(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tessera-container-data-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  await chown(dir, UID, UID);
  return dir;
}

async function chownTree(dir: string): Promise<void> {
  await chown(dir, UID, UID);
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) await chownTree(join(dir, entry.name));
    else await chown(join(dir, entry.name), UID, UID);
  }
}

describe('the container image (Dockerfile, compose.yaml)', { timeout: 20 * 60_000 }, () => {
  before(async () => {
    const started = Date.now();
    assert.equal(process.getuid?.(), 0, 'building and running the image needs root (debootstrap, buildah mount): run as root, as .ci/run does');
    for (const tool of ['buildah', 'debootstrap', 'docker-compose']) {
      await run('sh', ['-c', `command -v ${tool}`]).catch(() => assert.fail(`${tool} is missing: bash .ci/run installs it (apt-get install buildah debootstrap docker-compose)`));
    }
    // One run at a time per cache (two `npm test` on one machine): a lock folder holding the owner's pid.
    await mkdir(CACHE, { recursive: true });
    await until('no other run of this test holds the container cache', () => lock(), 15 * 60_000, 2000);
    // One storage per key; others are from an older month, Node or script: removed.
    for (const old of await readdir(CACHE)) if (old !== KEY && old !== 'lock') await rm(join(CACHE, old), { recursive: true, force: true });
    await mkdir(join(HOME, 'tmp'), { recursive: true });
    runroot = await mkdtemp(join(tmpdir(), 'tessera-buildah-run-'));
    const conf = join(runroot, 'storage.conf');
    await writeFile(conf, `[storage]\ndriver = "overlay"\ngraphroot = "${join(HOME, 'storage')}"\nrunroot = "${join(runroot, 'run')}"\n`);
    // TMPDIR: buildah's own temporary files and its RUN --mount=type=cache folders (npm's cache) go under the key too.
    env = { ...process.env, CONTAINERS_STORAGE_CONF: conf, TMPDIR: join(HOME, 'tmp') };
    // Working containers left by an interrupted run.
    await buildah(['rm', '--all']);

    // The stand-in for node:20-bookworm-slim, made once per key.
    const baseStarted = Date.now();
    const haveBase = await buildah(['inspect', '--type', 'image', BASE_TAG]).then(() => true, () => false);
    if (!haveBase) await logged('bash', [BASE_SCRIPT, BASE_TAG, ...BASE_NAMES], join(HOME, 'base.log'));
    else for (const name of BASE_NAMES) await buildah(['tag', BASE_TAG, name]);
    const baseSeconds = (Date.now() - baseStarted) / 1000;

    // The image, as `docker build -t tessera .` builds it. HEALTHCHECK needs the docker format
    // (OCI's has no field for it). Where npm's registry is reached through a proxy that
    // re-signs TLS (as on these machines), its CA goes in as the Dockerfile's npm_ca secret.
    const buildStarted = Date.now();
    const ca = [process.env.NODE_EXTRA_CA_CERTS, process.env.npm_config_cafile].find((f) => f && existsSync(f))
      ?? (await run('npm', ['config', 'get', 'cafile'], { cwd: ROOT }).then(({ stdout }) => stdout.trim(), () => '')).replace(/^(null|undefined)$/, '');
    await logged('buildah', [
      'build', '--isolation', 'chroot', '--layers', '--jobs', '2', '--pull=never', '--format', 'docker',
      ...(ca && existsSync(ca) ? ['--secret', `id=npm_ca,src=${ca}`] : []),
      '-t', IMAGE, '-f', join(ROOT, 'Dockerfile'), ROOT,
    ], join(HOME, 'build.log'));
    console.log(`container image: base ${haveBase ? 'cached' : 'built'} in ${baseSeconds.toFixed(0)} s, image built in ${((Date.now() - buildStarted) / 1000).toFixed(0)} s, ` +
      `set-up ${((Date.now() - started) / 1000).toFixed(0)} s (storage ${HOME})`);
  });

  after(async () => {
    for (const cleanup of cleanups) await cleanup().catch(() => undefined);
    if (runroot) {
      await buildah(['rm', '--all']).catch(() => undefined);
      await rm(runroot, { recursive: true, force: true });
    }
    if (locked) await rm(LOCK, { recursive: true, force: true });
  });

  test('the image: non-root, /data, port 8080, HEALTHCHECK on /ready, FFmpeg and Poppler, no sources', async () => {
    const config = await imageConfig(IMAGE);
    assert.equal(config.User, 'tessera');
    assert.deepEqual(config.Entrypoint, ['tessera']);
    assert.deepEqual(config.Cmd, ['serve']);
    assert.deepEqual(Object.keys(config.ExposedPorts ?? {}), ['8080/tcp']);
    assert.deepEqual(Object.keys(config.Volumes ?? {}), ['/data']);
    for (const v of ['TESSERA_HOST=0.0.0.0', 'TESSERA_PORT=8080', 'TESSERA_STORE=/data/store', 'HF_HOME=/data/huggingface', 'NODE_ENV=production']) {
      assert.ok(config.Env.includes(v), `${v} in the image's environment: ${config.Env.join(' ')}`);
    }
    assert.ok(config.Healthcheck, 'a HEALTHCHECK');
    assert.equal(config.Healthcheck.Test[0], 'CMD');
    assert.match(config.Healthcheck.Test.join(' '), /\/ready/);

    const c = await Container.create({});
    const probe = await c.exec(['sh', '-c', [
      'id -u', 'id -g', 'stat -c %u /data', 'ls /app', 'node --version',
      'ffmpeg -hide_banner -version | head -1', 'ffprobe -hide_banner -version | head -1',
      'pdfinfo -v 2>&1 | head -1', 'command -v pdftoppm', 'command -v pdftotext', 'tessera --version',
    ].join(' && ')]);
    assert.equal(probe.code, 0, probe.stderr);
    const lines = probe.stdout.trim().split('\n');
    assert.deepEqual(lines.slice(0, 3), [String(UID), String(UID), String(UID)], 'runs as tessera (uid and gid 10001), which owns /data');
    assert.deepEqual(lines.slice(3, 7), ['bin', 'dist', 'node_modules', 'package.json'], 'no src/ (bin/tessera runs dist/), no tests');
    assert.match(lines[7]!, /^v20\./);
    assert.match(lines[8]!, /^ffmpeg version/);
    assert.match(lines[9]!, /^ffprobe version/);
    assert.match(lines[10]!, /^pdfinfo version/);
    assert.deepEqual(lines.slice(11, 13), ['/usr/bin/pdftoppm', '/usr/bin/pdftotext']);
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    assert.ok(lines[13]!.includes(pkg.version), `tessera --version: ${lines[13]}`);
    // Production dependencies only, and onnxruntime-node's binaries for this platform only.
    const deps = await c.exec(['sh', '-c', 'ls node_modules; ls -d node_modules/onnxruntime-node/bin/napi-v*/*/*']);
    assert.equal(deps.code, 0, deps.stderr);
    const modules = deps.stdout.trim().split('\n');
    for (const dev of ['typescript', 'tsx', 'playwright-core', 'pdf-lib']) assert.ok(!modules.includes(dev), `${dev} (a dev dependency) in the image`);
    for (const dep of ['onnxruntime-node', 'sharp', '@lancedb', 'pg', 'ioredis']) assert.ok(modules.includes(dep), `${dep} in the image`);
    assert.ok(modules.at(-1)!.endsWith(`/linux/${process.arch}`), modules.at(-1));
    assert.ok(!modules.at(-2)!.includes('/napi-v'), `one platform's binaries: ${modules.filter((m) => m.includes('/napi-v')).join(' ')}`);
  });

  test('docker run -v tessera-data:/data tessera: index a video, a PDF and a photo, serve them, healthy, drains on SIGTERM', async () => {
    const data = await dataVolume();
    const docs = join(data, 'docs');
    await mkdir(docs);
    await makeVideo(join(docs, 'clip.mp4'), [{ colour: 'red', seconds: 1.5 }, { colour: 'blue', seconds: 1.5 }]);
    await makePdf(join(docs, 'leaflet.pdf'), [{ colour: [0, 160, 0], text: 'a green page' }, { colour: [255, 255, 0], text: 'a yellow page' }]);
    await writeFile(join(docs, 'photo.png'), await solidImage(64, 48, [128, 0, 128]));
    await chownTree(data);
    const port = await freePort();
    const c = await Container.create({ TESSERA_PORT: String(port) });
    const volume = [`${data}:/data`];

    // `docker run ... tessera index /data/docs --collection media --model demo`: FFmpeg and Poppler in the image.
    const index = await c.exec([...c.config.Entrypoint, 'index', '/data/docs', '--collection', 'media', '--model', 'demo', '--json'], volume);
    assert.equal(index.code, 0, `index: ${index.stderr}`);
    const indexed = JSON.parse(index.stdout) as Record<string, unknown>;
    console.log(`indexed in the container: ${index.stdout.trim()}`);

    // `docker run -p 8080:8080 -v tessera-data:/data tessera serve --model demo`.
    const server = c.start([...c.config.Entrypoint, 'serve', '--model', 'demo'], volume);
    const waited = await waitReady(server, port);
    console.log(`ready ${waited} ms after start`);
    const ready = await (await fetch(`http://127.0.0.1:${port}/ready`)).json() as { status: string; store: { status: string } };
    assert.equal(ready.status, 'ready');
    assert.equal(ready.store.status, 'available');

    const image = `data:image/png;base64,${(await solidImage(32, 32, [255, 0, 0])).toString('base64')}`;
    const emb = await post<Embeddings>(port, '/v1/embeddings', { model: 'demo', input: [{ text: 'red' }, { image }] });
    assert.equal(emb.data.length, 2);
    assert.ok(dot(emb.data[0]!.embedding, emb.data[1]!.embedding) > 0.9, '"red" and a red picture agree');

    const collections = await (await fetch(`http://127.0.0.1:${port}/v1/collections`)).json() as { data: { name: string; count: number }[] };
    const media = collections.data.find((x) => x.name === 'media');
    assert.ok(media && media.count >= 5, `frames, pages and the photo in the collection: ${JSON.stringify(collections)} (index said ${JSON.stringify(indexed)})`);
    for (const [query, source] of [['red', 'clip.mp4'], ['blue', 'clip.mp4'], ['green', 'leaflet.pdf'], ['purple', 'photo.png']] as const) {
      const found = await post<{ data: { id: string }[] }>(port, '/v1/collections/media/search', { query, k: 1 });
      assert.ok(found.data[0]?.id.includes(source), `"${query}" finds ${source}: ${JSON.stringify(found.data)}`);
    }

    // The image's HEALTHCHECK, run inside the container as Docker runs it.
    const health = c.config.Healthcheck!.Test.slice(1);
    assert.equal((await c.exec(health)).code, 0, 'healthy while ready');

    // `docker stop`: SIGTERM to the container's first process; the server drains and exits 0.
    process.kill(await server.entrypoint(), 'SIGTERM');
    assert.equal(await server.exited, 0, server.output());
    assert.notEqual((await c.exec(health)).code, 0, 'unhealthy once stopped');
    // What it wrote is in the volume, as the image's user.
    assert.ok(existsSync(join(data, 'store')), 'the store in /data/store');
    assert.ok((await readdir(join(data, 'store'))).length > 0);
  });

  test('compose.yaml: tessera and a worker on PostgreSQL + pgvector and Redis, with its settings', async () => {
    // docker-compose (v1, Debian's) validates the file against the Compose schema and resolves
    // its variables and anchors; no daemon involved. TESSERA_MODEL=demo: no hub here.
    const composeEnv: NodeJS.ProcessEnv = { ...process.env, TESSERA_MODEL: 'demo' };
    delete composeEnv.POSTGRES_PASSWORD;
    const { stdout: yaml } = await run('docker-compose', ['-f', join(ROOT, 'compose.yaml'), 'config'], { cwd: ROOT, env: composeEnv });
    const json = await output('python3', ['-c', 'import json, sys, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)'], yaml);
    interface Service { image?: string; build?: { context: string }; command?: string[]; environment?: Record<string, string>; ports?: { published: number; target: number }[]; volumes?: string[]; depends_on?: Record<string, { condition: string }> }
    const compose = JSON.parse(json) as { services: Record<string, Service> };
    const { tessera, worker, postgres, redis } = compose.services;
    assert.ok(tessera && worker && postgres && redis, `services: ${Object.keys(compose.services).join(', ')}`);
    assert.equal(tessera.build?.context.replace(/\/$/, ''), ROOT.replace(/\/$/, ''), 'tessera is built from this Dockerfile');
    assert.deepEqual(tessera.ports?.map((p) => [p.published, p.target]), [[8080, 8080]]);
    assert.ok(tessera.volumes?.some((v) => /^tessera-data:\/data(:rw)?$/.test(v)), `a volume on /data: ${tessera.volumes}`);
    assert.match(postgres.image ?? '', /^pgvector\/pgvector:pg1[5-7]/);
    assert.equal(worker.command?.[0], 'worker');
    assert.deepEqual(Object.keys(tessera.depends_on ?? {}).sort(), ['postgres', 'redis']);
    const store = new URL(tessera.environment!.TESSERA_STORE!);
    const queue = new URL(tessera.environment!.TESSERA_QUEUE!);
    assert.deepEqual([store.protocol, store.hostname, queue.protocol, queue.hostname], ['postgres:', 'postgres', 'redis:', 'redis']);
    const pgEnv = postgres.environment!;
    assert.deepEqual([store.username, decodeURIComponent(store.password), store.pathname.slice(1)], [pgEnv.POSTGRES_USER, pgEnv.POSTGRES_PASSWORD, pgEnv.POSTGRES_DB], 'the URL matches what the postgres service creates');

    // Their PostgreSQL and Redis, as the pgvector image's entrypoint makes them: POSTGRES_USER a
    // superuser with POSTGRES_PASSWORD, owning POSTGRES_DB.
    let pg: PgServer | undefined;
    let queueServer: RedisServer | undefined;
    cleanups.unshift(async () => { await pg?.close(); await queueServer?.stop(); });
    pg = await startPostgres();
    queueServer = await startRedis();
    await pg.query('postgres', `CREATE ROLE "${pgEnv.POSTGRES_USER}" LOGIN SUPERUSER PASSWORD '${pgEnv.POSTGRES_PASSWORD!.replaceAll("'", "''")}'`);
    await pg.query('postgres', `CREATE DATABASE "${pgEnv.POSTGRES_DB}" OWNER "${pgEnv.POSTGRES_USER}"`);
    // Compose's names resolve to their ports on loopback (chroot isolation shares the host's network).
    const resolve = (value: string) => value.replace('@postgres:5432/', `@127.0.0.1:${pg!.port}/`).replace('redis://redis:6379', `redis://127.0.0.1:${queueServer!.port}`);
    const serviceEnv = (s: Service) => Object.fromEntries(Object.entries(s.environment ?? {}).map(([k, v]) => [k, resolve(v)]));

    const port = await freePort();
    const server = await Container.create({ ...serviceEnv(tessera), TESSERA_PORT: String(port) });
    const data = await dataVolume();
    const running = server.start([...server.config.Entrypoint, ...(tessera.command ?? server.config.Cmd)], [`${data}:/data`]);
    await waitReady(running, port);
    const ready = await (await fetch(`http://127.0.0.1:${port}/ready`)).json() as { store: { status: string } };
    assert.equal(ready.store.status, 'available', 'PostgreSQL reached from the container');

    const workerContainer = await Container.create(serviceEnv(worker));
    const workerRun = workerContainer.start([...workerContainer.config.Entrypoint, ...worker.command!], [`${data}:/data`]);
    await until('the worker takes jobs', () => /taking jobs from redis:\/\//.test(workerRun.output()) || workerRun.child.exitCode !== null, 120_000, 200);
    assert.match(workerRun.output(), /taking jobs from redis:\/\/127\.0\.0\.1:\d+, writing to postgres:\/\/tessera:\*\*\*@127\.0\.0\.1/);

    // `docker compose exec tessera tessera index /data/colours.jsonl --collection colours --queue redis://redis:6379`:
    // the jobs go through Redis, the worker embeds them into PostgreSQL, the server finds them.
    await writeFile(join(data, 'colours.jsonl'), ['red', 'green', 'blue', 'yellow'].map((c) => JSON.stringify({ id: c, text: `something ${c}` })).join('\n') + '\n');
    await chownTree(data);
    const index = await server.exec([...server.config.Entrypoint, 'index', '/data/colours.jsonl', '--collection', 'colours', '--model', 'demo', '--queue', serviceEnv(tessera).TESSERA_QUEUE!], [`${data}:/data`]);
    assert.equal(index.code, 0, index.stderr);
    await until('the worker indexed the queued documents', async () => {
      const res = await fetch(`http://127.0.0.1:${port}/v1/collections`);
      const list = await res.json() as { data: { name: string; count: number }[] };
      return list.data.some((x) => x.name === 'colours' && x.count === 4);
    }, 120_000, 250);
    const found = await post<{ data: { id: string }[] }>(port, '/v1/collections/colours/search', { query: 'blue', k: 1 });
    assert.equal(found.data[0]?.id, 'blue');
    const tables = await pg.query<{ n: string }>(pgEnv.POSTGRES_DB!, "SELECT count(*) AS n FROM pg_extension WHERE extname = 'vector'");
    assert.equal(tables.rows[0]!.n, '1', 'pgvector in compose\'s database');

    for (const r of [workerRun, running]) {
      process.kill(await r.entrypoint(), 'SIGTERM');
      assert.equal(await r.exited, 0, r.output());
    }
  });
});
