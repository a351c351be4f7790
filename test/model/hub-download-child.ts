// One process fetching a model through the hub code, for hub-processes.test.ts:
//   node --import tsx test/model/hub-download-child.ts REPO DTYPE
// with HF_ENDPOINT and HF_HUB_CACHE in the environment. Prints `snapshot DIR` once done;
// progress lines and notes (waiting for another process, taking over) go to stderr.
import { parseDtype } from '../../src/model/dtype.ts';
import { downloadModel } from '../../src/model/hub.ts';

const [repo, dtype] = process.argv.slice(2);
const dir = await downloadModel(repo!, { dtype: parseDtype(dtype ?? 'fp32'), progress: true });
console.log(`snapshot ${dir}`);
