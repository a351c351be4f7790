/**
 * The embedded store's classifiers: JSON files in the store folder, beside the LanceDB tables
 * (LanceDB lists only `*.lance` folders, so it never sees them).
 *
 *   classifiers/<id>/v<version>.json   one file per version; the highest one is the classifier
 *   classifiers/<id>/used.json         use counters (not versioned: a use is not a training)
 *   classifiers/.tmp/                  files being written
 *
 * A version is written whole to .tmp, fsynced, then hard-linked to its name: link() fails
 * with EEXIST when that version exists already, which makes it a compare-and-swap between
 * processes as well as within one, and a version file is never seen half-written (a SIGKILL
 * before the link leaves only a temporary file, after it the whole version). Versions older
 * than the previous one are removed after each update (the previous one stays for readers
 * that listed the folder a moment before).
 * Deleting renames the folder away (one step) and then removes it.
 */
import { randomUUID } from 'node:crypto';
import { link, mkdir, open, readdir, readFile, rename, rm, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { KeyedSerializer } from '../concurrency.ts';
import { TesseraError } from '../errors.ts';
import { CLASSIFIER_ID, weightsFromBytes, weightsToBytes, type ClassifierRecord, type ClassifierStore } from './classifiers.ts';

const VERSION_FILE = /^v(\d+)\.json$/;
const versionName = (v: number) => `v${String(v).padStart(10, '0')}.json`;

type Stored = Omit<ClassifierRecord, 'weights' | 'usedNumber' | 'usedAt'> & { weights: string };

export class FileClassifierStore implements ClassifierStore {
  readonly #root: string;
  readonly #tmp: string;
  /** Creates of one owner, one at a time (count, then write). */
  readonly #owners = new KeyedSerializer();
  /** Use counters of one classifier, one writer at a time. */
  readonly #uses = new KeyedSerializer();

  constructor(storeDir: string) {
    this.#root = join(storeDir, 'classifiers');
    this.#tmp = join(this.#root, '.tmp');
  }

  #dir(id: string): string {
    return join(this.#root, id);
  }

  /** `durable`: fsynced before it is linked or renamed into place (versions; use counters need not be). */
  async #writeTemp(content: string, durable = true): Promise<string> {
    await mkdir(this.#tmp, { recursive: true });
    const path = join(this.#tmp, `${randomUUID()}.json`);
    const handle = await open(path, 'wx');
    try {
      await handle.writeFile(content, 'utf8');
      if (durable) await handle.sync();
    } finally {
      await handle.close();
    }
    return path;
  }

  async #syncDir(dir: string): Promise<void> {
    const handle = await open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  }

  /** Links `content` in as version `version` of `id`: false when that version exists or the classifier is gone. */
  async #commit(id: string, version: number, content: string): Promise<boolean> {
    const temp = await this.#writeTemp(content);
    try {
      await link(temp, join(this.#dir(id), versionName(version)));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EEXIST' || code === 'ENOENT') return false;
      throw err;
    } finally {
      await unlink(temp).catch(() => {});
    }
    await this.#syncDir(this.#dir(id));
    return true;
  }

  async #versions(id: string): Promise<number[] | undefined> {
    try {
      return (await readdir(this.#dir(id)))
        .flatMap((name) => {
          const m = VERSION_FILE.exec(name);
          return m ? [Number(m[1])] : [];
        })
        .sort((a, b) => b - a);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  async create(record: ClassifierRecord, maxPerOwner: number): Promise<void> {
    if (!CLASSIFIER_ID.test(record.id)) throw new Error(`classifier ids are UUIDs, got ${JSON.stringify(record.id)}`);
    await this.#owners.run(record.owner, async () => {
      const count = await this.countByOwner(record.owner);
      if (count >= maxPerOwner) throw countLimit(record.owner, maxPerOwner);
      await mkdir(this.#root, { recursive: true });
      await mkdir(this.#dir(record.id));
      // A crash before the link leaves an empty folder: no classifier (list and get skip it).
      if (!(await this.#commit(record.id, record.version, serializeRecord(record)))) throw new Error(`classifier ${record.id} exists already`);
    });
  }

  async get(id: string): Promise<ClassifierRecord | undefined> {
    if (typeof id !== 'string' || !CLASSIFIER_ID.test(id)) return undefined;
    // A concurrent update may remove the version just listed: list again.
    for (let attempt = 0; attempt < 20; attempt++) {
      const versions = await this.#versions(id);
      if (!versions || versions.length === 0) return undefined;
      let text: string;
      try {
        text = await readFile(join(this.#dir(id), versionName(versions[0]!)), 'utf8');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw err;
      }
      return { ...parseRecord(text, id), ...(await this.#readUses(id)) };
    }
    throw new TesseraError('STORE_UNAVAILABLE', `classifier ${id}: its versions kept changing while it was read; retry`);
  }

  async #readUses(id: string): Promise<{ usedNumber: number; usedAt: string | null }> {
    try {
      const used = JSON.parse(await readFile(join(this.#dir(id), 'used.json'), 'utf8')) as { usedNumber: number; usedAt: string | null };
      return { usedNumber: used.usedNumber, usedAt: used.usedAt };
    } catch {
      return { usedNumber: 0, usedAt: null };
    }
  }

  async #all(): Promise<ClassifierRecord[]> {
    let names: string[];
    try {
      names = await readdir(this.#root);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const found = await Promise.all(names.filter((n) => CLASSIFIER_ID.test(n)).map((id) => this.get(id)));
    return found.filter((r): r is ClassifierRecord => r !== undefined);
  }

  async list(owner: string): Promise<ClassifierRecord[]> {
    return (await this.#all())
      .filter((r) => r.owner === owner)
      .sort((a, b) => (a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : a.id < b.id ? -1 : 1));
  }

  async countByOwner(owner: string): Promise<number> {
    return (await this.list(owner)).length;
  }

  async update(record: ClassifierRecord, expectedVersion: number): Promise<boolean> {
    if (record.version !== expectedVersion + 1) throw new Error(`an update writes version ${expectedVersion + 1}, got ${record.version}`);
    const versions = await this.#versions(record.id);
    if (!versions || versions[0] !== expectedVersion) return false;
    if (!(await this.#commit(record.id, record.version, serializeRecord(record)))) return false;
    // A writer that stalled between its listing and its link can find its version's name free
    // again (removed as too old by later updates): a higher version exists then, and it lost.
    const after = await this.#versions(record.id);
    if (after && after[0]! > record.version) {
      await unlink(join(this.#dir(record.id), versionName(record.version))).catch(() => {});
      return false;
    }
    for (const old of versions.slice(1)) await unlink(join(this.#dir(record.id), versionName(old))).catch(() => {});
    return true;
  }

  recordUse(id: string, at: string): Promise<void> {
    if (!CLASSIFIER_ID.test(id)) return Promise.resolve();
    return this.#uses.run(id, async () => {
      const used = await this.#readUses(id);
      const temp = await this.#writeTemp(JSON.stringify({ usedNumber: used.usedNumber + 1, usedAt: at }), false);
      try {
        await rename(temp, join(this.#dir(id), 'used.json'));
      } catch (err) {
        await unlink(temp).catch(() => {});
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    });
  }

  async delete(id: string): Promise<boolean> {
    if (typeof id !== 'string' || !CLASSIFIER_ID.test(id)) return false;
    const versions = await this.#versions(id);
    if (!versions || versions.length === 0) return false;
    await mkdir(this.#tmp, { recursive: true });
    const away = join(this.#tmp, `deleted-${id}-${randomUUID()}`);
    try {
      await rename(this.#dir(id), away);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
    await rm(away, { recursive: true, force: true });
    return true;
  }
}

function countLimit(owner: string, max: number): TesseraError {
  return new TesseraError('CLASSIFIER_COUNT_LIMIT', `the key ${JSON.stringify(owner)} has ${max} classifiers already, the most it may have; delete one (DELETE /v1/classifiers/{id}) first`);
}
export { countLimit as classifierCountLimit };

function serializeRecord(record: ClassifierRecord): string {
  const { weights, usedNumber: _n, usedAt: _a, ...rest } = record;
  const stored: Stored = { ...rest, labels: [...rest.labels], weights: weightsToBytes(weights).toString('base64') };
  return JSON.stringify(stored);
}

function parseRecord(text: string, id: string): Omit<ClassifierRecord, 'usedNumber' | 'usedAt'> {
  let stored: Stored;
  try {
    stored = JSON.parse(text) as Stored;
  } catch (cause) {
    throw new TesseraError('STORE_INVALID', `classifier ${id}: its file is not JSON`, { cause });
  }
  const weights = weightsFromBytes(Buffer.from(stored.weights, 'base64'));
  if (weights.length !== stored.labels.length * stored.dimensions) throw new TesseraError('STORE_INVALID', `classifier ${id}: its weights do not fit its labels and dimensions`);
  return { ...stored, weights };
}
