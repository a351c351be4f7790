/**
 * `tessera index` killed with SIGKILL while it reads videos (FFmpeg running) and after some have
 * been written: each video and PDF is then wholly indexed, exactly as a clean run indexes it,
 * or absent; no FFmpeg it started outlives it; the next run completes the rest.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { openStore } from '../../src/store/open.ts';
import type { VectorStore } from '../../src/store/store.ts';
import { childProcesses, makeVideo } from '../helpers/media.ts';
import { tempDir } from '../helpers/models.ts';
import { makePdf } from '../helpers/pdf.ts';
import { until } from '../helpers/wait.ts';

const ROOT = new URL('../..', import.meta.url).pathname;
const VIDEOS = ['a.mp4', 'b.mkv', 'c.webm', 'd.mp4'];

function index(dir: string, storeDir: string, collection: string) {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), 'index', dir, '--collection', collection, '--model', 'demo', '--store', storeDir, '--video-interval', '0.5', '--batch', '4', '--json'], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
  return { child, done };
}

/** Document ids by the file they belong to. */
async function byFile(store: VectorStore, collection: string): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  if (!(await store.getCollection(collection))) return out;
  const ids: string[] = [];
  for await (const page of store.scan(collection)) ids.push(...page.map((r) => r.id));
  assert.equal(new Set(ids).size, ids.length, 'no duplicate ids');
  for (const doc of await store.get(collection, ids)) {
    const file = String(doc.metadata.video ?? doc.metadata.pdf);
    out.set(file, [...(out.get(file) ?? []), doc.id].sort());
  }
  return out;
}

/** FFmpeg processes reading a file of `dir`, wherever their parent is (an orphan's is init). */
async function ffmpegReading(dir: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (/ff(mpeg|probe)/.test(cmdline.split('\0')[0] ?? '') && cmdline.includes(dir)) pids.push(Number(entry));
  }
  return pids;
}

test('killed with SIGKILL mid-video and between files, every video and PDF is whole or absent, and the next run completes', { timeout: 600_000 }, async () => {
  const dir = await tempDir('tessera-media-crash-');
  for (const [i, name] of VIDEOS.entries()) {
    const colours = ['red', 'blue', 'green', 'yellow', 'purple', 'orange'];
    await makeVideo(join(dir, name), [0, 1, 2, 3].map((k) => ({ colour: colours[(i + k) % colours.length]!, seconds: 1.5 })));
  }
  await makePdf(join(dir, 'e.pdf'), [1, 2, 3, 4].map((p) => ({ colour: [p * 50, 100, 200 - p * 40] as [number, number, number], text: `page ${p} in colour` })));
  const storeDir = await tempDir('tessera-media-crash-store-');
  const store = await openStore(storeDir);
  try {
    // What a clean run writes: the reference every file is held to.
    const clean = await index(dir, storeDir, 'clean').done;
    assert.equal(clean.code, 0, clean.stderr);
    const expected = await byFile(store, 'clean');
    assert.deepEqual([...expected.keys()].sort(), [...VIDEOS, 'e.pdf'].sort());

    const wholeOrAbsent = async () => {
      const found = await byFile(store, 'crash');
      for (const [file, ids] of found) assert.deepEqual(ids, expected.get(file), `${file}: whole, as a clean run writes it`);
      return found.size;
    };

    // 1. While FFmpeg reads the first video, before anything is written.
    {
      const { child, done } = index(dir, storeDir, 'crash');
      await until('the indexer runs FFmpeg', async () => (await childProcesses(child.pid)).some((p) => p.comm === 'ffmpeg'), 120_000, 5);
      child.kill('SIGKILL');
      assert.equal((await done).signal, 'SIGKILL');
      await wholeOrAbsent();
      await until('no FFmpeg of the killed indexer is left', async () => (await ffmpegReading(dir)).length === 0, 10_000);
    }
    // 2. Once a file has been written, while the others are read.
    let written: number;
    {
      const { child, done } = index(dir, storeDir, 'crash');
      let ended = false;
      void done.then(() => (ended = true));
      await until('a file is written', async () => ended || (await byFile(store, 'crash')).size >= 1, 120_000, 5);
      child.kill('SIGKILL');
      const result = await done;
      assert.equal(result.signal, 'SIGKILL', `killed mid-run (exit ${result.code}: ${result.stderr})`);
      written = await wholeOrAbsent();
      assert.ok(written >= 1 && written < expected.size, `${written} of ${expected.size} files written when killed`);
      await until('no FFmpeg of the killed indexer is left', async () => (await ffmpegReading(dir)).length === 0, 10_000);
    }
    // 3. The run that completes: skips what was written, adds the rest.
    const last = await index(dir, storeDir, 'crash').done;
    assert.equal(last.code, 0, last.stderr);
    assert.deepEqual(JSON.parse(last.stdout), { added: expected.size - written, updated: 0, skipped: written, removed: 0, failed: 0 });
    assert.equal(await wholeOrAbsent(), expected.size);
  } finally {
    await store.close();
  }
});
