/**
 * For the index-build crash test: fills a collection past the ANN threshold (index trained on
 * 4000 rows), then doubles it, which starts a retrain in the background, and prints
 * "building"; "built" once that retrain is in. The test SIGKILLs it in between.
 */
import { openLanceStore } from '../../src/store/lance.ts';
import { textDoc, unitVector } from './contract.ts';

const dir = process.argv[2]!;
const writer = { model: 'demo', dtype: 'fp32' };
const store = await openLanceStore(dir, { annThreshold: 2000 });
await store.createCollection({ name: 'big', ...writer, dimensions: 128 });
const docs = (from: number, n: number) => Array.from({ length: n }, (_, i) => textDoc(`d${from + i}`, `text ${from + i}`, unitVector(from + i + 1, 128)));
await store.upsert('big', docs(0, 4000), writer);
await store.indexBuilt('big');
await store.upsert('big', docs(4000, 4000), writer);
process.stdout.write('building\n');
await store.indexBuilt('big');
process.stdout.write('built\n');
await store.close();
