/**
 * Folders kept indexed as they change: a real folder, real file operations, the colour model
 * on ONNX Runtime and a LanceDB store on disk. In-process through watchFolder, then as
 * `tessera index --watch` with SIGTERM and SIGKILL.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFile, mkdir, open, readFile, rename, rm, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Embedder } from '../../src/engine/embedder.ts';
import { contentHash } from '../../src/index/document.ts';
import { resolveSource } from '../../src/index/sources.ts';
import { watchFolder, type FolderWatch, type WatchOptions } from '../../src/index/watch.ts';
import { openStore } from '../../src/store/open.ts';
import type { DocumentRecord, ModelRef, VectorStore } from '../../src/store/store.ts';
import { noiseImage, solidImage } from '../helpers/images.ts';
import { forged, tempDir } from '../helpers/models.ts';
import { until as waitUntil } from '../helpers/wait.ts';

const ROOT = new URL('../..', import.meta.url).pathname;
/** The promise: searchable (or gone) within 5 s of the change settling. */
const DEADLINE_MS = 5000;
/** Waits for `check`, by default within the deadline the issue sets for a change to be searchable. */
const until = (what: string, check: () => boolean | Promise<boolean>, ms = DEADLINE_MS) => waitUntil(what, check, ms);
const SETTLE_MS = 500;

let embedder: Embedder;
let writer: ModelRef;
let store: VectorStore;
/** Every upsert, by id: when and with which hash (a spy around the real store). */
const writes: { id: string; hash: string; at: number }[] = [];
let spied: VectorStore;

before(async () => {
  const model = await forged('colour');
  embedder = await Embedder.load(model);
  writer = { model, dtype: 'fp32' };
  store = await openStore(await tempDir('tessera-watch-store-'));
  spied = new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === 'upsert') {
        return async (collection: string, docs: readonly DocumentRecord[], w: ModelRef) => {
          await target.upsert(collection, docs, w);
          const at = Date.now();
          for (const d of docs) writes.push({ id: d.id, hash: d.hash, at });
        };
      }
      const value = Reflect.get(target, prop, receiver) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
});

after(async () => {
  await store.close();
  await embedder.close();
});

let collections = 0;
async function newCollection(): Promise<string> {
  const name = `w${++collections}`;
  await store.createCollection({ name, ...writer, dimensions: embedder.info.dimensions });
  return name;
}

const watches: FolderWatch[] = [];
after(async () => {
  await Promise.all(watches.map((w) => w.close()));
});

async function startWatch(dir: string, collection: string, extra: Partial<WatchOptions> = {}): Promise<{ watch: FolderWatch; notes: string[] }> {
  const notes: string[] = [];
  const watch = watchFolder({ store: spied, collection, embedder, writer, source: await resolveSource(dir), settleMs: SETTLE_MS, onNote: (l) => notes.push(l), ...extra });
  watches.push(watch);
  await watch.ready;
  return { watch, notes };
}

async function topHit(collection: string, query: string): Promise<string | undefined> {
  const [q] = await embedder.embedTexts([query]);
  return (await store.search(collection, { vector: q!.embedding, k: 1, modality: 'image' }))[0]?.id;
}

const ids = async (collection: string) => [...(await store.hashes(collection)).keys()].sort();

describe('watchFolder', () => {
  test('a new image is found by search within the deadline; a new text too', async () => {
    const dir = await tempDir('tessera-watch-new-');
    await writeFile(join(dir, 'blue.png'), await solidImage(24, 24, [0, 0, 255]));
    const name = await newCollection();
    const { watch } = await startWatch(dir, name);
    assert.deepEqual(await ids(name), ['blue.png'], 'the first scan indexed what was there');
    assert.equal(await topHit(name, 'red'), 'blue.png', 'no red picture yet');

    await writeFile(join(dir, 'red.png'), await solidImage(24, 24, [255, 0, 0]));
    const ms = await until('"red" finds red.png', async () => (await topHit(name, 'red')) === 'red.png', DEADLINE_MS + SETTLE_MS * 2);
    assert.ok(ms < DEADLINE_MS + SETTLE_MS * 2, `${ms} ms`);

    await mkdir(join(dir, 'notes', 'deep'), { recursive: true });
    await writeFile(join(dir, 'notes', 'deep', 'poem.md'), '# the sea');
    await until('a text in a new subfolder', async () => (await ids(name)).includes('notes/deep/poem.md'));
    const [poem] = await store.get(name, ['notes/deep/poem.md']);
    assert.equal(poem!.text, '# the sea');
    assert.equal(poem!.metadata._source, (await resolveSource(dir)).path);
    await until('nothing pending', () => watch.pending === 0);
    assert.equal(watch.totals.failed, 0);
  });

  test('a file written slowly is indexed once, whole, after it stops changing', async () => {
    const dir = await tempDir('tessera-watch-slow-');
    const name = await newCollection();
    // The default settle period: four times the writer's pauses, so a loaded machine does not
    // stretch a pause past it.
    const settleMs = 1000;
    const { watch } = await startWatch(dir, name, { settleMs });
    const png = await noiseImage(400, 300, 7); // a few hundred KB: a half file is not a picture
    const path = join(dir, 'slow.png');
    const chunks = 12;
    const handle = await open(path, 'w');
    let lastWrite = 0;
    try {
      for (let i = 0; i < chunks; i++) {
        await handle.write(png.subarray(Math.floor((i * png.length) / chunks), Math.floor(((i + 1) * png.length) / chunks)));
        await handle.sync();
        lastWrite = Date.now();
        await new Promise((r) => setTimeout(r, 250)); // 3 s in all, pauses well under the settle time
      }
    } finally {
      await handle.close();
    }
    await until('slow.png indexed', async () => (await ids(name)).includes('slow.png'));
    await until('nothing pending', () => watch.pending === 0);
    const mine = writes.filter((w) => w.id === 'slow.png' && w.at >= lastWrite - 60_000);
    assert.equal(mine.length, 1, `written once: ${JSON.stringify(mine)}`);
    assert.equal(mine[0]!.hash, contentHash(png), 'the whole file');
    assert.ok(mine[0]!.at >= lastWrite + settleMs, 'not before it stopped changing');
    assert.equal((await store.hashes(name)).get('slow.png'), contentHash(await readFile(path)));
    assert.equal(watch.totals.failed, 0, 'no half-written file was tried');
  });

  test('rename: the old id goes, the new one comes; delete: gone; folders moved and removed', async () => {
    const dir = await tempDir('tessera-watch-rename-');
    await mkdir(join(dir, 'album'));
    await writeFile(join(dir, 'green.png'), await solidImage(20, 20, [0, 255, 0]));
    await writeFile(join(dir, 'album', 'red.png'), await solidImage(20, 20, [255, 0, 0]));
    await writeFile(join(dir, 'album', 'note.txt'), 'a red note');
    const name = await newCollection();
    const { watch } = await startWatch(dir, name);
    assert.deepEqual(await ids(name), ['album/note.txt', 'album/red.png', 'green.png']);

    await rename(join(dir, 'green.png'), join(dir, 'leaf.png'));
    await until('green.png renamed leaf.png', async () => JSON.stringify(await ids(name)) === JSON.stringify(['album/note.txt', 'album/red.png', 'leaf.png']));
    assert.equal(await topHit(name, 'green'), 'leaf.png');

    await rename(join(dir, 'album'), join(dir, 'photos'));
    await until('a folder renamed', async () => JSON.stringify(await ids(name)) === JSON.stringify(['leaf.png', 'photos/note.txt', 'photos/red.png']));
    // Its files still report under the new name once moved.
    await appendFile(join(dir, 'photos', 'note.txt'), ', and more');
    await until('a file of the moved folder changed', async () => (await store.get(name, ['photos/note.txt']))[0]?.text === 'a red note, and more');

    await unlink(join(dir, 'leaf.png'));
    await until('leaf.png deleted', async () => !(await ids(name)).includes('leaf.png'));

    const outside = await tempDir('tessera-watch-outside-');
    await rename(join(dir, 'photos'), join(outside, 'photos'));
    await until('a folder moved out', async () => (await ids(name)).length === 0);
    await rename(join(outside, 'photos'), join(dir, 'back'));
    await until('a folder moved in', async () => JSON.stringify(await ids(name)) === JSON.stringify(['back/note.txt', 'back/red.png']));
    await rm(join(dir, 'back'), { recursive: true });
    await until('a folder removed', async () => (await ids(name)).length === 0);
    await until('nothing pending', () => watch.pending === 0);
    assert.equal(watch.totals.failed, 0);
  });

  test('a burst of a few hundred files is indexed in bounded batches', async () => {
    const dir = await tempDir('tessera-watch-burst-');
    const name = await newCollection();
    const runs: number[] = [];
    const { watch } = await startWatch(dir, name, { batchPaths: 64, onRun: (r) => r.kind === 'paths' && runs.push(r.paths) });
    const count = 300;
    await mkdir(join(dir, 'burst'));
    const pngs = await Promise.all(Array.from({ length: count }, (_, i) => solidImage(8, 8, [i % 256, (i * 7) % 256, (i * 13) % 256])));
    await Promise.all(pngs.map((png, i) => writeFile(join(dir, 'burst', `${String(i).padStart(3, '0')}.png`), png)));
    await until(`${count} files indexed`, async () => (await store.count(name)) === count, 60_000);
    await until('nothing pending', () => watch.pending === 0);
    assert.ok(runs.length >= Math.ceil(count / 64), `batches: ${runs.join(', ')}`);
    assert.ok(runs.every((n) => n <= 64), `at most 64 paths a run: ${runs.join(', ')}`);
    assert.ok(watch.totals.seen >= count, `seen ${watch.totals.seen}`);
    assert.equal(watch.totals.added, count);
  });

  test('more changes than it tracks: the folder is scanned whole instead', async () => {
    const dir = await tempDir('tessera-watch-overflow-');
    const name = await newCollection();
    const { watch, notes } = await startWatch(dir, name, { maxTracked: 10 });
    await Promise.all(Array.from({ length: 30 }, (_, i) => writeFile(join(dir, `t${i}.txt`), `text ${i}`)));
    await until('30 texts indexed', async () => (await store.count(name)) === 30, 20_000);
    assert.ok(notes.some((n) => /over 10 changed paths at once: scanning/.test(n)), notes.join(' | '));
    await until('nothing pending', () => watch.pending === 0);
  });

  test('closed, then started again: changes made meanwhile are caught up by the first scan', async () => {
    const dir = await tempDir('tessera-watch-restart-');
    await writeFile(join(dir, 'a.txt'), 'first');
    await writeFile(join(dir, 'b.txt'), 'second');
    const name = await newCollection();
    const first = await startWatch(dir, name);
    assert.deepEqual(await first.watch.close(), { seen: 2, added: 2, updated: 0, skipped: 0, removed: 0, failed: 0, pending: 0 });
    await writeFile(join(dir, 'a.txt'), 'first, changed');
    await unlink(join(dir, 'b.txt'));
    await writeFile(join(dir, 'c.txt'), 'third');
    const { watch } = await startWatch(dir, name);
    assert.deepEqual(await ids(name), ['a.txt', 'c.txt']);
    assert.equal((await store.get(name, ['a.txt']))[0]!.text, 'first, changed');
    assert.deepEqual({ ...watch.totals, seen: 0 }, { seen: 0, added: 1, updated: 1, skipped: 0, removed: 1, failed: 0 });
  });
});

/** `tessera index DIR --watch` as a process: its stderr as it comes, its end. */
function cli(dir: string, storeDir: string, extra: string[] = []): { child: ChildProcess; stderr: () => string; done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string }> } {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), 'index', dir, '--collection', 'live', '--model', 'demo', '--store', storeDir, '--watch', '--settle-ms', '300', '--json', ...extra], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout })));
  return { child, stderr: () => stderr, done };
}

/** Every stored document holds its file's content, whole. */
async function checkStored(s: VectorStore, dir: string): Promise<number> {
  const hashes = await s.hashes('live');
  for (const [id, hash] of hashes) {
    const bytes = await readFile(join(dir, id));
    assert.equal(hash, contentHash(id.endsWith('.txt') ? bytes.toString('utf8') : bytes), id);
  }
  return hashes.size;
}

describe('tessera index --watch', () => {
  test('SIGTERM writes what is embedded and exits; what it says it added is stored', { timeout: 180_000 }, async () => {
    const dir = await tempDir('tessera-watch-cli-');
    await writeFile(join(dir, 'start.txt'), 'there from the start');
    const storeDir = await tempDir('tessera-watch-cli-store-');
    const run = cli(dir, storeDir, ['--batch', '4']);
    await until('watching', () => /watching .* for changes/.test(run.stderr()), 120_000);
    // Idle: everything noticed is written, exit 0.
    await writeFile(join(dir, 'red.png'), await solidImage(16, 16, [255, 0, 0]));
    const s = await openStore(storeDir);
    try {
      await until('red.png stored', async () => (await s.hashes('live')).has('red.png'), 20_000);
      await until('the run reported', () => /added 1, updated 0, skipped 0, removed 0, failed 0 \(0 pending\)/.test(run.stderr()), 10_000);
      run.child.kill('SIGTERM');
      const result = await run.done;
      assert.equal(result.code, 0, run.stderr());
      assert.deepEqual(JSON.parse(result.stdout), { added: 2, updated: 0, skipped: 0, removed: 0, failed: 0 });
      assert.match(run.stderr(), /everything noticed is written/);
      assert.equal(await checkStored(s, dir), 2);

      // Mid-burst: whatever it reports added is stored, whole; exit 0 or 130 (work left).
      const again = cli(dir, storeDir, ['--batch', '4']);
      await until('watching again', () => /watching .* for changes/.test(again.stderr()), 120_000);
      await Promise.all(Array.from({ length: 80 }, async (_, i) => writeFile(join(dir, `n${i}.png`), await solidImage(12, 12, [i * 3, 255 - i * 3, (i * 50) % 256]))));
      await until('some of the burst stored', async () => (await s.count('live')) > 2, 60_000);
      again.child.kill('SIGTERM');
      const stopped = await again.done;
      assert.ok(stopped.code === 0 || stopped.code === 130, `exit ${stopped.code}: ${again.stderr()}`);
      const summary = JSON.parse(stopped.stdout) as { added: number };
      const count = await checkStored(s, dir);
      assert.equal(count, 2 + summary.added, 'what it counted is what is stored');
      if (stopped.code === 0) assert.equal(count, 82);
    } finally {
      await s.close();
    }
  });

  test('SIGKILL, changes while it is down, restart: the first scan catches up, then it watches on', { timeout: 180_000 }, async () => {
    const dir = await tempDir('tessera-watch-kill-');
    await writeFile(join(dir, 'keep.txt'), 'kept');
    await writeFile(join(dir, 'change.txt'), 'before');
    await writeFile(join(dir, 'gone.png'), await solidImage(16, 16, [0, 255, 0]));
    const storeDir = await tempDir('tessera-watch-kill-store-');
    const s = await openStore(storeDir);
    try {
      const first = cli(dir, storeDir);
      await until('watching', () => /watching .* for changes/.test(first.stderr()), 120_000);
      await writeFile(join(dir, 'seen.png'), await solidImage(16, 16, [0, 0, 255]));
      await until('seen.png stored', async () => (await s.hashes('live')).has('seen.png'), 20_000);
      first.child.kill('SIGKILL');
      assert.equal((await first.done).signal, 'SIGKILL');
      assert.equal(await checkStored(s, dir), 4);

      await writeFile(join(dir, 'change.txt'), 'after');
      await unlink(join(dir, 'gone.png'));
      await writeFile(join(dir, 'new.png'), await solidImage(16, 16, [255, 0, 0]));
      const second = cli(dir, storeDir);
      await until('watching after the restart', () => /watching .* for changes/.test(second.stderr()), 120_000);
      assert.match(second.stderr(), /added 1, updated 1, skipped 2, removed 1, failed 0; watching/);
      assert.deepEqual([...(await s.hashes('live')).keys()].sort(), ['change.txt', 'keep.txt', 'new.png', 'seen.png']);
      assert.equal(await checkStored(s, dir), 4);
      await writeFile(join(dir, 'later.txt'), 'after the restart');
      await until('later.txt stored', async () => (await s.hashes('live')).has('later.txt'), 20_000);
      second.child.kill('SIGTERM');
      assert.equal((await second.done).code, 0, second.stderr());
    } finally {
      await s.close();
    }
  });

  test('--watch takes folders only, and not --queue', async () => {
    const dir = await tempDir('tessera-watch-args-');
    const list = join(dir, 'urls.txt');
    await writeFile(list, 'https://example.com/a.png\n');
    const run = cli(list, dir);
    const result = await run.done;
    assert.equal(result.code, 1);
    assert.match(run.stderr(), /--watch keeps folders indexed; .*urls\.txt is a URL list file/);
  });
});
