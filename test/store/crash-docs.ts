/** Documents of the crash test: every field derives from (batch, index, generation). */
import type { DocumentRecord } from '../../src/store/store.ts';
import { unitVector } from './contract.ts';

export const CRASH_COLLECTION = 'crash';
export const CRASH_BATCH = 40;
export const CRASH_DIMS = 16;
export const CRASH_WRITER = { model: 'demo', dtype: 'fp32' };

export const crashId = (batch: number, i: number) => `b${batch}-${i}`;

/** Document i of `batch`, as written by batch `generation` (itself, or the next one rewriting it). */
export function crashDoc(batch: number, i: number, generation: number): DocumentRecord {
  const id = crashId(batch, i);
  return {
    id,
    modality: 'text',
    text: `document ${id} generation ${generation}`,
    metadata: { batch, generation },
    hash: `${id}@${generation}`,
    vector: unitVector(batch * 1000 + i + generation * 7919, CRASH_DIMS),
  };
}
