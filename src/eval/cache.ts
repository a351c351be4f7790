import { createHash } from 'node:crypto';
import { closeSync, fstatSync, ftruncateSync, mkdirSync, openSync, readFileSync, writeSync, writeFileSync, existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

/** Default cache folder: $XDG_CACHE_HOME/tessera/eval, else ~/.cache/tessera/eval. */
export function defaultCacheDir(): string {
  return join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'tessera', 'eval');
}

/** What identifies a model's embeddings: the same key, the same vectors. */
export interface CacheIdentity {
  model: string;
  dtype: string;
  /** Anything else that changes the vectors (truncation, normalisation). */
  settings?: Record<string, unknown>;
}

const MAGIC = Buffer.from('TSEC0001');
const HEADER = MAGIC.length + 4;
const KEY_BYTES = 32;

/**
 * sha256 of an item: texts and images hash in separate namespaces, and a text embedded for a
 * task (jina-clip-v2 puts the task's instruction before it) apart from the same text without.
 */
export function itemKey(item: { text: string; task?: string } | { image: Uint8Array }): Buffer {
  const h = createHash('sha256');
  if ('text' in item) {
    if (item.task === undefined) h.update('text\0').update(item.text, 'utf8');
    else h.update('task\0').update(item.task, 'utf8').update('\0').update(item.text, 'utf8');
  } else h.update('image\0').update(item.image);
  return h.digest();
}

/**
 * An append-only file of embeddings for one model + dtype + settings: a header (magic, u32
 * dimension), then records of [32-byte sha256 of the item][dimension float32 LE]. A record
 * cut short by an interrupted run is dropped (and the file truncated back) on open, so a
 * run resumes from the last complete record. A JSON sidecar says what the file holds.
 */
export class EmbeddingCache {
  readonly path: string;
  readonly stats = { hits: 0, misses: 0, stored: 0 };
  private readonly vectors = new Map<string, Float32Array>();
  private fd: number | undefined;
  private dim: number | undefined;

  constructor(dir: string, identity: CacheIdentity) {
    mkdirSync(dir, { recursive: true });
    const modelId = isPathLike(identity.model) ? resolve(identity.model) : identity.model;
    const described = { model: modelId, dtype: identity.dtype, settings: identity.settings ?? {} };
    const name = createHash('sha256').update(JSON.stringify(described)).digest('hex').slice(0, 24);
    this.path = join(dir, `${name}.emb`);
    const sidecar = join(dir, `${name}.json`);
    if (!existsSync(sidecar)) writeFileSync(sidecar, JSON.stringify(described, null, 2) + '\n');
    this.load();
  }

  get size(): number {
    return this.vectors.size;
  }

  get(key: Buffer): Float32Array | undefined {
    const v = this.vectors.get(key.toString('hex'));
    if (v) this.stats.hits++;
    else this.stats.misses++;
    return v;
  }

  /** Appends one vector; written to disk at once, so a crash loses at most the record in flight. */
  put(key: Buffer, vector: Float32Array): void {
    const hex = key.toString('hex');
    if (this.vectors.has(hex)) return;
    if (this.dim === undefined) {
      this.dim = vector.length;
      const header = Buffer.alloc(HEADER);
      MAGIC.copy(header);
      header.writeUInt32LE(this.dim, MAGIC.length);
      this.fd ??= openSync(this.path, 'a');
      writeSync(this.fd, header);
    }
    if (vector.length !== this.dim) throw new Error(`embedding cache ${this.path}: vector of ${vector.length} dimensions, the file holds ${this.dim}`);
    this.fd ??= openSync(this.path, 'a');
    const record = Buffer.alloc(KEY_BYTES + 4 * this.dim);
    key.copy(record);
    Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength).copy(record, KEY_BYTES);
    writeSync(this.fd, record);
    this.vectors.set(hex, Float32Array.from(vector));
    this.stats.stored++;
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }

  private load(): void {
    if (!existsSync(this.path)) return;
    const bytes = readFileSync(this.path);
    if (bytes.length < HEADER || !bytes.subarray(0, MAGIC.length).equals(MAGIC)) {
      // Empty, cut inside the header, or not ours: start over.
      this.truncateTo(0);
      return;
    }
    const dim = bytes.readUInt32LE(MAGIC.length);
    const recordBytes = KEY_BYTES + 4 * dim;
    const count = Math.floor((bytes.length - HEADER) / recordBytes);
    for (let r = 0; r < count; r++) {
      const at = HEADER + r * recordBytes;
      const key = bytes.subarray(at, at + KEY_BYTES).toString('hex');
      const vector = new Float32Array(dim);
      Buffer.from(vector.buffer).set(bytes.subarray(at + KEY_BYTES, at + recordBytes));
      this.vectors.set(key, vector);
    }
    this.dim = dim;
    const valid = HEADER + count * recordBytes;
    if (valid !== bytes.length) this.truncateTo(valid);
  }

  private truncateTo(length: number): void {
    const fd = openSync(this.path, 'r+');
    try {
      if (fstatSync(fd).size !== length) ftruncateSync(fd, length);
    } finally {
      closeSync(fd);
    }
  }
}

function isPathLike(model: string): boolean {
  return model.startsWith('.') || model.startsWith('/') || existsSync(model);
}
