// The lock file between processes: one holder at a time, waiters told who holds it, stale
// locks (holder gone, or not refreshed) taken over, a refreshed lock never, and a holder whose
// lock was taken from it told so through its signal.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, readFile, utimes, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { acquireFileLock, type LockHolder } from '../../src/model/file-lock.ts';
import { tempDir } from '../helpers/models.ts';

const lockFile = async () => join(await tempDir('tessera-lock-'), 'deep', 'x.lock');

test('one holder at a time: a second waits, told who holds it, and gets it on release', async () => {
  const path = await lockFile();
  const first = await acquireFileLock(path);
  const holder = JSON.parse(await readFile(path, 'utf8')) as LockHolder;
  assert.equal(holder.pid, process.pid);
  assert.equal(holder.host, hostname());
  const told: (LockHolder | undefined)[] = [];
  let got = false;
  const second = acquireFileLock(path, { onWait: (h) => told.push(h), maxPollMs: 20 }).then((lock) => ((got = true), lock));
  await sleep(200);
  assert.equal(got, false);
  assert.deepEqual(told.map((h) => h?.token), [holder.token]);
  await first.release();
  await first.release(); // twice does nothing
  const lock = await second;
  assert.notEqual((JSON.parse(await readFile(path, 'utf8')) as LockHolder).token, holder.token);
  await lock.release();
  await assert.rejects(readFile(path), 'released: no lock file');
});

test('a lock whose holder process is gone is taken over at once', async () => {
  const path = await lockFile();
  const child = spawn(process.execPath, ['-e', '']);
  await once(child, 'exit');
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, JSON.stringify({ pid: child.pid, host: hostname(), token: 'dead', since: Date.now() }));
  const why: string[] = [];
  const started = Date.now();
  const lock = await acquireFileLock(path, { onTakeOver: (h, reason) => why.push(`${h?.token}: ${reason}`) });
  assert.ok(Date.now() - started < 1000);
  assert.deepEqual(why, [`dead: process ${child.pid} that held it is gone`]);
  await lock.release();
});

test('a lock of another host is stale only once not refreshed for staleMs', async () => {
  const path = await lockFile();
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, JSON.stringify({ pid: 1, host: 'elsewhere', token: 'far', since: Date.now() }));
  const old = new Date(Date.now() - 120_000);
  await utimes(path, old, old);
  const why: string[] = [];
  const lock = await acquireFileLock(path, { onTakeOver: (_h, reason) => why.push(reason) });
  assert.match(why[0]!, /^it was not refreshed for 12\d s$/);
  await lock.release();

  // Fresh: waited for, then stale after staleMs.
  await writeFile(path, JSON.stringify({ pid: 1, host: 'elsewhere', token: 'far', since: Date.now() }));
  const started = Date.now();
  const again = await acquireFileLock(path, { staleMs: 400, maxPollMs: 50 });
  assert.ok(Date.now() - started >= 350, 'waited until it went stale');
  await again.release();
});

test('a holder that refreshes its lock keeps it; one whose lock was taken from it is told', async () => {
  const path = await lockFile();
  const holder = await acquireFileLock(path, { refreshMs: 50 });
  // A waiter with a short stale time, as if on another host (the pid test does not apply there).
  let got = false;
  const waiter = acquireFileLock(path, { staleMs: 300, maxPollMs: 50 }).then((lock) => ((got = true), lock));
  await sleep(900);
  assert.equal(got, false, 'a refreshed lock is never stale');
  assert.equal(holder.signal.aborted, false);
  await holder.release();
  const lock = await waiter;

  // Someone judged this one stale and took it (here: replaced the file by hand).
  await writeFile(path, JSON.stringify({ pid: process.pid, host: hostname(), token: 'thief', since: Date.now() }));
  await lock.release(); // not ours any more: left in place
  assert.equal((JSON.parse(await readFile(path, 'utf8')) as LockHolder).token, 'thief');

  const robbed = await acquireFileLock(`${path}-2`, { refreshMs: 30 });
  await writeFile(`${path}-2`, JSON.stringify({ pid: process.pid, host: hostname(), token: 'thief', since: Date.now() }));
  const deadline = Date.now() + 2000;
  while (!robbed.signal.aborted) {
    assert.ok(Date.now() < deadline, 'the holder noticed its lock was taken');
    await sleep(20);
  }
  assert.match(String(robbed.signal.reason), /taken over by another process/);
  await robbed.release();
  assert.equal((JSON.parse(await readFile(`${path}-2`, 'utf8')) as LockHolder).token, 'thief');
});
