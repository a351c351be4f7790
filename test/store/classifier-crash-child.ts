/**
 * The trainer the classifier crash test SIGKILLs: trains one classifier over and over with the
 * same examples (CLASSIFIER_CRASH in classifier-crash-docs.ts) and prints "committed <version>"
 * after each training returns. Arguments: the store (a folder or a postgres:// URL), classifier
 * id file.
 */
import { readFileSync, writeFileSync, existsSync, renameSync } from 'node:fs';
import { Classifiers } from '../../src/classifier/classifiers.ts';
import { openStore } from '../../src/store/open.ts';
import { CRASH_EXAMPLES, CRASH_LIMITS, CRASH_MODEL, CRASH_OWNER, zeroShotVectors } from './classifier-crash-docs.ts';

const [dir, idFile] = process.argv.slice(2);
const store = await openStore(dir!);
const classifiers = new Classifiers(store.classifiers, CRASH_LIMITS);
const options = { owner: CRASH_OWNER, served: CRASH_MODEL, examples: CRASH_EXAMPLES, numIters: 1, embedLabels: zeroShotVectors };
let id: string;
if (existsSync(idFile!)) id = readFileSync(idFile!, 'utf8');
else {
  id = (await classifiers.create({ ...options, access: 'private' })).id;
  writeFileSync(`${idFile}.tmp`, id);
  renameSync(`${idFile}.tmp`, idFile!);
  process.stdout.write('committed 1\n');
}
for (;;) {
  const record = await classifiers.train(id, options);
  process.stdout.write(`committed ${record.version}\n`);
}
