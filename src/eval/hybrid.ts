/**
 * The lexical half of hybrid text retrieval in evaluations: the corpus in a temporary
 * collection of the real store, so the harness measures the BM25 that `mode: "hybrid"`
 * searches with, not a look-alike.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { contentHash } from '../index/document.ts';
import { openStore } from '../store/open.ts';
import type { VectorStore } from '../store/store.ts';

export interface LexicalIndex {
  /** Ids of the best `n` documents for `text` by BM25, best first, `skipId` left out. */
  search(text: string, n: number, skipId?: string): Promise<string[]>;
  close(): Promise<void>;
}

const COLLECTION = 'corpus';
const WRITER = { model: 'tessera-eval', dtype: 'fp32' };
const BATCH = 2000;

/** Indexes `corpus` (with its vectors, which the store requires) in a temporary store. */
export async function lexicalIndex(corpus: readonly { id: string; text: string }[], vectors: readonly Float32Array[]): Promise<LexicalIndex> {
  const dir = await mkdtemp(join(tmpdir(), 'tessera-eval-bm25-'));
  let store: VectorStore | undefined;
  try {
    store = await openStore(dir);
    await store.createCollection({ name: COLLECTION, ...WRITER, dimensions: vectors[0]?.length ?? 1 });
    for (let start = 0; start < corpus.length; start += BATCH) {
      const docs = corpus.slice(start, start + BATCH).map((d, k) => ({
        id: d.id,
        modality: 'text' as const,
        text: d.text,
        metadata: {},
        hash: contentHash(d.text),
        vector: vectors[start + k]!,
      }));
      await store.upsert(COLLECTION, docs, WRITER);
    }
  } catch (err) {
    await store?.close();
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  const opened = store;
  return {
    async search(text, n, skipId) {
      if (text.trim() === '') return [];
      const hits = await opened.fullTextSearch(COLLECTION, { text, k: Math.min(n, 1000), excludeIds: skipId === undefined ? undefined : [skipId] });
      return hits.map((h) => h.id);
    },
    async close() {
      await opened.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
