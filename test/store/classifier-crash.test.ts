/**
 * SIGKILL a process in the middle of training a classifier, many times, in each store: every time, the stored
 * classifier is one whole version (its weights are exactly those of replaying that many
 * trainings, which the learner makes deterministic), never older than the last version the
 * process reported, and training resumes from it.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runAndKill } from '../helpers/kill.ts';
import { openStore } from '../../src/store/open.ts';
import { startPostgres, type PgServer } from '../helpers/postgres.ts';
import { expectedWeights } from './classifier-crash-docs.ts';

const dir = mkdtempSync(join(tmpdir(), 'tessera-classifier-crash-'));
let pg: PgServer | undefined;
after(async () => {
  await pg?.close();
  rmSync(dir, { recursive: true, force: true });
});
const child = fileURLToPath(new URL('./classifier-crash-child.ts', import.meta.url));

async function killRepeatedly(location: string, idFile: string, log: (line: string) => void): Promise<void> {
  let last = 0;
  for (let run = 0; run < 8; run++) {
    const committed = await runAndKill(child, [location, idFile], 50 + Math.floor(Math.random() * 700));
    assert.ok(committed.length > 0);
    const store = await openStore(location);
    const id = readFileSync(idFile, 'utf8');
    const record = await store.classifiers.get(id);
    assert.ok(record, 'the classifier is there');
    const reported = committed.at(-1)!;
    // The version after the last report may have committed before the kill: at most one more.
    assert.ok(record.version === reported || record.version === reported + 1, `version ${record.version}, last reported ${reported}`);
    assert.ok(record.version > last, 'training went on from where it was');
    assert.equal(record.samples, 64 * record.version, 'its counters are of the same version');
    assert.deepEqual(Array.from(record.weights), Array.from(await expectedWeights(record.version)), `version ${record.version}: whole, bit for bit`);
    assert.equal((await store.classifiers.list('crash')).length, 1);
    log(`run ${run}: killed at version ${record.version} (${committed.length} reported)`);
    last = record.version;
    await store.close();
  }
}

test('a trainer SIGKILLed at random moments leaves a whole version of the classifier (embedded store)', { timeout: 240_000 }, async (t) => {
  const store = join(dir, 'store');
  const idFile = join(dir, 'lance-id');
  await killRepeatedly(store, idFile, (line) => t.diagnostic(line));
  // What the kills leave behind is temporary files only, never a second version beside the
  // current one and the previous.
  const versions = readdirSync(join(store, 'classifiers', readFileSync(idFile, 'utf8'))).filter((f) => f.startsWith('v'));
  assert.ok(versions.length <= 3, versions.join(' '));
});

test('a trainer SIGKILLed at random moments leaves a whole version of the classifier (PostgreSQL)', { timeout: 240_000 }, async (t) => {
  pg = await startPostgres();
  await killRepeatedly(await pg.createDatabase(), join(dir, 'pg-id'), (line) => t.diagnostic(line));
});
