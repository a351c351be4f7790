/**
 * SIGKILL a writer at random moments, several times: the collection never holds a duplicate
 * id or a half-written document, every batch is all there or not at all (its new documents and
 * its rewrite of the previous batch alike), and every batch reported committed is there.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runAndKill } from '../helpers/kill.ts';
import { openLanceStore } from '../../src/store/lance.ts';
import type { VectorStore } from '../../src/store/store.ts';
import { cosineOf } from './contract.ts';
import { crashDoc, crashId, CRASH_BATCH, CRASH_COLLECTION, CRASH_WRITER } from './crash-docs.ts';

const dir = mkdtempSync(join(tmpdir(), 'tessera-crash-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const child = fileURLToPath(new URL('./crash-child.ts', import.meta.url));

async function check(store: VectorStore, runs: { first: number; committed: number[] }[]): Promise<void> {
  const hashes = await store.hashes(CRASH_COLLECTION);
  const ids: string[] = [];
  for await (const page of store.scan(CRASH_COLLECTION, 500)) ids.push(...page.map((r) => r.id));
  assert.equal(new Set(ids).size, ids.length, 'no duplicate ids');
  assert.equal(ids.length, hashes.size);
  assert.equal(await store.count(CRASH_COLLECTION), ids.length);
  const docs = await store.get(CRASH_COLLECTION, ids, { vectors: true });
  const byId = new Map(docs.map((d) => [d.id, d]));
  // Every stored document is whole: all its fields from one generation.
  for (const doc of docs) {
    const { batch, generation } = doc.metadata as { batch: number; generation: number };
    const want = crashDoc(batch, Number(doc.id.split('-')[1]), generation);
    assert.equal(doc.id, want.id);
    assert.equal(doc.text, want.text, doc.id);
    assert.equal(doc.hash, want.hash, doc.id);
    assert.ok(cosineOf(doc.vector!, want.vector) > 0.99999, `${doc.id}: its vector is its own`);
  }
  for (const { first, committed } of runs) {
    const last = committed.at(-1) ?? first - 1;
    // Batches after the last reported one may have committed before the kill (the report had
    // not been read yet): at most one.
    for (let b = first; b <= last + 1; b++) {
      const present = Array.from({ length: CRASH_BATCH }, (_, i) => byId.has(crashId(b, i)));
      const all = present.every(Boolean);
      assert.ok(all || present.every((p) => !p), `batch ${b}: all or nothing (${present.filter(Boolean).length}/${CRASH_BATCH})`);
      if (b <= last) assert.ok(all, `batch ${b} was reported committed`);
      if (b > first) {
        // Its rewrite of batch b-1 happened exactly when its own documents did.
        const gens = Array.from({ length: CRASH_BATCH }, (_, i) => byId.get(crashId(b - 1, i))?.metadata.generation);
        assert.ok(gens.every((g) => g === (all ? b : b - 1)), `batch ${b - 1}'s rewrite by batch ${b} is all or nothing: ${gens.join(',')}`);
      }
    }
  }
}

test('a writer SIGKILLed at random moments leaves whole batches only', { timeout: 240_000 }, async (t) => {
  const runs: { first: number; committed: number[] }[] = [];
  for (let r = 0; r < 6; r++) {
    const first = r * 1000;
    const committed = await runAndKill(child, [dir, String(first)], 150 + Math.floor(Math.random() * 1500));
    assert.ok(committed.length > 0);
    runs.push({ first, committed });
    t.diagnostic(`run ${r}: killed after ${committed.length} reported batches`);
    const store = await openLanceStore(dir);
    await check(store, runs);
    await store.close();
  }
  // The store still works for reads and writes after all that.
  const store = await openLanceStore(dir);
  const [doc] = await store.get(CRASH_COLLECTION, [crashId(0, 0)], { vectors: true });
  const hits = await store.search(CRASH_COLLECTION, { vector: doc!.vector!, k: 1 });
  assert.equal(hits[0]?.id, crashId(0, 0));
  await store.upsert(CRASH_COLLECTION, [crashDoc(99_999, 0, 99_999)], CRASH_WRITER);
  assert.equal((await store.get(CRASH_COLLECTION, [crashId(99_999, 0)])).length, 1);
  await store.close();
});
