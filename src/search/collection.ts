import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { isDemoModel } from '../model/source.ts';
import type { CollectionDescriptor, ModelRef, VectorStore } from '../store/store.ts';

/**
 * The collection, or COLLECTION_NOT_FOUND naming it and the store; with `model`,
 * COLLECTION_MODEL_MISMATCH unless that model wrote its vectors. Cached by the store: no
 * lookup and no count per call (see store/collections.ts).
 */
export function requireCollection(store: VectorStore, name: string, model?: ModelRef): Promise<CollectionDescriptor> {
  return store.requireCollection(name, model);
}

/**
 * How collections record a model (as `tessera index` does): a folder as its absolute path,
 * so the record means the same from any working directory; a hub id or a demo model as given.
 */
export function modelRefOf(model: string, dtype: string): ModelRef {
  if (isDemoModel(model)) return { model, dtype };
  const isFolder = (() => {
    try {
      return statSync(model).isDirectory();
    } catch {
      return false;
    }
  })();
  return { model: isFolder ? resolve(model) : model, dtype };
}
