/**
 * Waiting in tests on a condition, not on the clock: poll it until it holds, with a deadline, so
 * a faster CPU (or a GPU) cannot break a test and a slow one only waits longer.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';

/** Polls `check` every `every` ms until it is true; fails naming `what` after `ms`. Resolves with the ms it took. */
export async function until(what: string, check: () => boolean | Promise<boolean>, ms = 60_000, every = 50): Promise<number> {
  const started = Date.now();
  for (;;) {
    if (await check()) return Date.now() - started;
    if (Date.now() - started > ms) assert.fail(`timed out waiting until ${what} (${ms} ms)`);
    await sleep(every);
  }
}

/** Runs `check` until it stops throwing; rethrows its last error after `ms`. */
export async function eventually(check: () => Promise<void>, ms = 3000, every = 25): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return await check();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(every);
    }
  }
}
