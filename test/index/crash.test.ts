/**
 * `tessera index` killed with SIGKILL at several moments (while the model loads, and after
 * some batches have committed), then run again: the collection ends with every file once,
 * with the right hashes and whole vectors, and the rerun skips what had been written. Each
 * kill waits on an event (a model file asked of the hub, documents counted in the store),
 * never on a clock that a faster machine would outrun.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { contentHash } from '../../src/index/document.ts';
import { openStore } from '../../src/store/open.ts';
import type { VectorStore } from '../../src/store/store.ts';
import { startHubServer, type HubServer } from '../helpers/hub-server.ts';
import { solidImage } from '../helpers/images.ts';
import { forged, tempDir } from '../helpers/models.ts';

const ROOT = new URL('../..', import.meta.url).pathname;
const IMAGES = 240;
const TEXTS = 60;
const TOTAL = IMAGES + TEXTS;

async function makeFolder(): Promise<Map<string, string>> {
  const expected = new Map<string, string>();
  await Promise.all(
    Array.from({ length: IMAGES }, async (_, i) => {
      // Distinct colours: distinct bytes, distinct hashes.
      const png = await solidImage(12 + (i % 5), 12, [(i * 37) % 256, (i * 91) % 256, (i * 13) % 256]);
      const id = `img/${String(i).padStart(3, '0')}.png`;
      await writeFile(join(dir, id), png);
      expected.set(id, contentHash(png));
    }),
  );
  for (let i = 0; i < TEXTS; i++) {
    const text = `note number ${i}: ${'colour '.repeat(i % 7)}`;
    const id = `txt/${String(i).padStart(3, '0')}.txt`;
    await writeFile(join(dir, id), text);
    expected.set(id, contentHash(text));
  }
  return expected;
}

let dir: string;
let hub: HubServer | undefined;
after(async () => {
  await hub?.close();
});

function start(storeDir: string, options: { model?: string; env?: NodeJS.ProcessEnv } = {}): { child: ChildProcess; done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> } {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), 'index', dir, '--collection', 'crash', '--model', options.model ?? 'demo', '--store', storeDir, '--batch', '8', '--json'],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...options.env } },
  );
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { child, done };
}

async function countOf(store: VectorStore): Promise<number> {
  try {
    return await store.count('crash');
  } catch {
    return 0; // not created yet
  }
}

/** Every stored document is whole, once, and holds its file's content hash. */
async function check(store: VectorStore, expected: Map<string, string>): Promise<number> {
  if (!(await store.getCollection('crash'))) return 0;
  const ids: string[] = [];
  for await (const page of store.scan('crash', 64)) {
    for (const row of page) {
      ids.push(row.id);
      assert.equal(row.vector.length, 32, `${row.id}: a whole vector`);
      assert.ok(row.vector.every(Number.isFinite), `${row.id}: finite`);
    }
  }
  assert.equal(new Set(ids).size, ids.length, 'no duplicate ids');
  assert.equal(await store.count('crash'), ids.length);
  const hashes = await store.hashes('crash');
  for (const id of ids) {
    assert.ok(expected.has(id), `${id} is one of the files`);
    assert.equal(hashes.get(id), expected.get(id), `${id}: its file's hash`);
  }
  const docs = await store.get('crash', ids);
  for (const doc of docs) {
    if (doc.modality === 'text') assert.equal(contentHash(doc.text!), doc.hash);
    else assert.equal(contentHash(await readFile(doc.image!)), doc.hash);
  }
  return ids.length;
}

test('killed with SIGKILL at several moments, the next run completes the job without duplicates or redone work', { timeout: 300_000 }, async () => {
  dir = await tempDir('tessera-crash-folder-');
  const { mkdir } = await import('node:fs/promises');
  await mkdir(join(dir, 'img'));
  await mkdir(join(dir, 'txt'));
  const expected = await makeFolder();
  const storeDir = await tempDir('tessera-crash-store-');
  const store = await openStore(storeDir);
  try {
    // 1. While the model loads: killed once it asks the hub for a model file, which the hub
    // never finishes sending. Nothing written, nothing broken.
    {
      const model = await forged('tiny');
      hub = await startHubServer({ repos: [{ id: 'forge/crash-clip', dir: model }] });
      for (const file of (await readdir(model, { recursive: true })).filter((f) => /\.onnx/.test(f))) hub.stall(file, 1000, 100);
      const { child, done } = start(storeDir, { model: 'forge/crash-clip', env: { HF_ENDPOINT: hub.url, HF_HUB_CACHE: await tempDir('tessera-crash-hf-'), HF_HUB_OFFLINE: '' } });
      let ended = false;
      void done.then(() => (ended = true));
      const deadline = Date.now() + 60_000;
      while (!hub.requests.some((r) => (r.kind === 'resolve' || r.kind === 'cdn') && r.method === 'GET' && /\.onnx/.test(r.file ?? ''))) {
        if (ended) assert.fail(`the indexer ended before asking for a model file: ${(await done).stderr}`);
        assert.ok(Date.now() < deadline, 'the indexer never asked for a model file');
        await new Promise((r) => setTimeout(r, 5));
      }
      child.kill('SIGKILL');
      assert.equal((await done).signal, 'SIGKILL');
      assert.equal(await check(store, expected), 0);
    }
    // 2.-4. Once some batches have committed, at growing points of the run.
    let previous = 0;
    for (const target of [20, 110, 200]) {
      const { child, done } = start(storeDir);
      let finished = false;
      void done.then(() => (finished = true));
      const deadline = Date.now() + 120_000;
      while (!finished && (await countOf(store)) < target) {
        assert.ok(Date.now() < deadline, `${target} documents were not written in time`);
        await new Promise((r) => setTimeout(r, 5));
      }
      child.kill('SIGKILL');
      const result = await done;
      const count = await check(store, expected);
      assert.equal(result.signal, 'SIGKILL', `killed mid-run at ${target} (exit ${result.code}, stderr ${result.stderr})`);
      assert.ok(count >= target && count >= previous, `what was written stays written (${count} >= ${target}, ${previous})`);
      assert.ok(count < TOTAL, `killed before the end (${count})`);
      previous = count;
    }
    // 5. The run that completes: skips exactly what was written, adds the rest.
    const { done } = start(storeDir);
    const result = await done;
    assert.equal(result.code, 0, result.stderr);
    const summary = JSON.parse(result.stdout) as Record<string, number>;
    assert.deepEqual(summary, { added: TOTAL - previous, updated: 0, skipped: previous, removed: 0, failed: 0 });
    assert.equal(await check(store, expected), TOTAL);
  } finally {
    await store.close();
  }
});
