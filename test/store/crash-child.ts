/**
 * The writer the crash test SIGKILLs: upserts batches in a loop, each batch adding BATCH new
 * documents and rewriting the previous batch's documents, and prints "committed <b>" after
 * each upsert returns. Arguments: store folder, first batch number.
 * A low ANN threshold and fragment limit make it compact and build indexes often, so kills
 * land in those too.
 */
import { openLanceStore } from '../../src/store/lance.ts';
import { crashDoc, CRASH_BATCH, CRASH_COLLECTION, CRASH_DIMS, CRASH_WRITER } from './crash-docs.ts';

const [dir, firstArg] = process.argv.slice(2);
const store = await openLanceStore(dir!, { annThreshold: 600, maxFragments: 4, keepVersionsMs: 0, ann: { type: 'IVF_PQ', rowsPerPartition: 100, dimsPerSubVector: 4, nprobes: 4, refineFactor: 5 } });
if (!(await store.getCollection(CRASH_COLLECTION))) {
  await store.createCollection({ name: CRASH_COLLECTION, ...CRASH_WRITER, dimensions: CRASH_DIMS });
}
for (let b = Number(firstArg); ; b++) {
  const fresh = Array.from({ length: CRASH_BATCH }, (_, i) => crashDoc(b, i, b));
  const rewritten = b > Number(firstArg) ? Array.from({ length: CRASH_BATCH }, (_, i) => crashDoc(b - 1, i, b)) : [];
  await store.upsert(CRASH_COLLECTION, [...fresh, ...rewritten], CRASH_WRITER);
  process.stdout.write(`committed ${b}\n`);
}
