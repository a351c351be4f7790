// Downloads by several processes into one cache (two workers on one machine): real child
// processes running the hub code against the stand-in hub. Two at once share one download of
// each file and both get working model files; a downloader killed mid-file leaves a partial
// file that is never used as the model, and the next process takes its lock over and resumes.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Embedder } from '../../src/engine/embedder.ts';
import { findCachedModel, repoCacheFolder } from '../../src/model/hub.ts';
import { isRewriteCache, sha256, startHubServer, type HubServer } from '../helpers/hub-server.ts';
import { forged, maxAbsDiff, tempDir } from '../helpers/models.ts';

const REPO = 'forge/tiny-clip';
const CHILD = new URL('./hub-download-child.ts', import.meta.url).pathname;
const GRAPHS = ['onnx/text_model.onnx', 'onnx/vision_model.onnx'];

let modelDir: string;
let hub: HubServer;
let cache: string;
let expected: number[];
const children: ChildProcess[] = [];

before(async () => {
  modelDir = await forged('tiny');
  const local = await Embedder.load(modelDir);
  expected = Array.from((await local.embedTexts(['a photo of a cat']))[0]!.embedding);
  await local.close();
});

beforeEach(async () => {
  await hub?.close();
  hub = await startHubServer({ repos: [{ id: REPO, dir: modelDir }] });
  cache = await tempDir('tessera-hub-processes-');
});

after(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await hub?.close();
});

interface Run {
  child: ChildProcess;
  stderr: () => string;
  /** Resolves with the snapshot folder the process printed, rejects if it failed. */
  done: Promise<string>;
}

function download(): Run {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, REPO, 'fp32'], {
    env: { ...process.env, HF_ENDPOINT: hub.url, HF_HUB_CACHE: cache, HF_HOME: join(cache, 'home'), HF_HUB_OFFLINE: '', HF_TOKEN: '', HF_HUB_DOWNLOAD_TIMEOUT: '30' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const done = once(child, 'exit').then(([code, signal]) => {
    const dir = /^snapshot (.+)$/m.exec(stdout)?.[1];
    if (code !== 0 || !dir) throw new Error(`the downloader ended with ${code ?? signal}:\n${stderr}`);
    return dir;
  });
  done.catch(() => undefined); // looked at by the test that needs it
  return { child, stderr: () => stderr, done };
}

const blobOf = async (path: string) => join(repoCacheFolder(cache, REPO), 'blobs', sha256(await readFile(join(modelDir, path))));

/** GETs of a file's bytes, on the hub's resolve URL and the CDN it redirects LFS files to. */
const gets = (path: string, kind: 'resolve' | 'cdn') => hub.fileRequests(path).filter((r) => r.method === 'GET' && r.kind === kind);

async function embedsAsTheForgedModel(dir: string): Promise<void> {
  const embedder = await Embedder.load(dir);
  try {
    const [got] = await embedder.embedTexts(['a photo of a cat']);
    assert.ok(maxAbsDiff(got!.embedding, expected) <= 1e-6, `${dir} embeds as the model does`);
  } finally {
    await embedder.close();
  }
}

describe('downloads by several processes into one cache', () => {
  test('two processes at once: each file is downloaded once, and both get working model files', async () => {
    // A slow link, so that the two downloads overlap whatever the start-up time of each.
    for (const path of GRAPHS) hub.throttle(path, 100_000);
    const [first, second] = [download(), download()];
    const [dirA, dirB] = await Promise.all([first.done, second.done]);
    assert.equal(dirA, dirB);

    const files = (await readdir(modelDir, { recursive: true, withFileTypes: true })).filter((e) => e.isFile() && !isRewriteCache(e.name)).map((e) => join(e.parentPath, e.name).slice(modelDir.length + 1));
    for (const path of files) {
      assert.equal(gets(path, 'resolve').length, 1, `${path}: one download between the two processes`);
      assert.ok(gets(path, 'cdn').length <= 1, `${path}: one download from the CDN`);
      assert.deepEqual(await readFile(join(dirA, path)), await readFile(join(modelDir, path)), `${path} bytes`);
    }
    // Started together, each may take some files first and wait for the other's: at least one waits.
    const waited = [first, second].filter((run) => /is downloading it; waiting for it/.test(run.stderr()));
    assert.ok(waited.length >= 1, `a process waited for the other:\n${first.stderr()}\n---\n${second.stderr()}`);
    assert.deepEqual((await readdir(join(repoCacheFolder(cache, REPO), 'blobs'))).filter((f) => !/^[0-9a-f]+$/.test(f)), [], 'no .incomplete left');
    await embedsAsTheForgedModel(dirA);
  });

  test('a downloader killed mid-file: its partial file is never the model; the next process takes over and resumes it', async () => {
    const path = GRAPHS[0]!;
    hub.throttle(path, 60_000);
    const killed = download();
    const incomplete = `${await blobOf(path)}.incomplete`;
    const deadline = Date.now() + 30_000;
    while (((await stat(incomplete).catch(() => undefined))?.size ?? 0) < 40_000) {
      assert.ok(Date.now() < deadline, `no partial ${path} appeared:\n${killed.stderr()}`);
      await sleep(20);
    }
    killed.child.kill('SIGKILL');
    await once(killed.child, 'exit');
    const partial = (await stat(incomplete)).size;
    const size = (await stat(join(modelDir, path))).size;
    assert.ok(partial > 0 && partial < size, `a partial file of ${partial} of ${size} bytes`);

    // The cache does not offer the partial model: no snapshot with its graphs.
    const saved = { ...process.env };
    try {
      process.env.HF_HUB_CACHE = cache;
      assert.equal(await findCachedModel(REPO, { dtype: 'fp32' }), null);
    } finally {
      process.env = saved;
    }

    hub.reset();
    const next = download();
    const dir = await next.done;
    assert.match(next.stderr(), new RegExp(`${path}: taking over its download \\(process ${killed.child.pid} that held it is gone\\)`));
    assert.deepEqual(await readFile(join(dir, path)), await readFile(join(modelDir, path)));
    const ranges = gets(path, 'cdn').map((r) => r.range);
    assert.deepEqual(ranges, [`bytes=${partial}-${size - 1}`], 'resumed where the killed process stopped');
    await assert.rejects(stat(incomplete), 'the .incomplete file became the blob');
    await embedsAsTheForgedModel(dir);
  });

  test('the resumed bytes are checked: a partial file with wrong bytes is downloaded again, never used', async () => {
    // As above, but what the killed process left is damaged (a disk error, another tool).
    const path = GRAPHS[1]!;
    hub.throttle(path, 60_000);
    const killed = download();
    const incomplete = `${await blobOf(path)}.incomplete`;
    const deadline = Date.now() + 30_000;
    while (((await stat(incomplete).catch(() => undefined))?.size ?? 0) < 20_000) {
      assert.ok(Date.now() < deadline, `no partial ${path} appeared:\n${killed.stderr()}`);
      await sleep(20);
    }
    killed.child.kill('SIGKILL');
    await once(killed.child, 'exit');
    const { open } = await import('node:fs/promises');
    const file = await open(incomplete, 'r+');
    await file.write(Buffer.from('damaged'), 0, 7, 100);
    await file.close();

    hub.reset();
    const dir = await download().done;
    assert.deepEqual(await readFile(join(dir, path)), await readFile(join(modelDir, path)));
    assert.deepEqual(gets(path, 'cdn').map((r) => r.range?.replace(/=\d+-/, '=N-')), [`bytes=N-${(await stat(join(modelDir, path))).size - 1}`, undefined], 'resumed, failed its sha256, downloaded whole');
    await embedsAsTheForgedModel(dir);
  });
});
