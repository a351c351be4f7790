import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { TesseraError } from '../errors.ts';
import { isDemoModel } from '../model/source.ts';
import type { CollectionInfo, ModelRef, VectorStore } from '../store/store.ts';

/** The collection, or COLLECTION_NOT_FOUND naming it and the store. */
export async function requireCollection(store: VectorStore, name: string): Promise<CollectionInfo> {
  const info = await store.getCollection(name);
  if (!info) throw new TesseraError('COLLECTION_NOT_FOUND', `no collection ${JSON.stringify(name)} in the store at ${store.location}; see GET /v1/collections or create it first`);
  return info;
}

export function sameModel(a: ModelRef, b: ModelRef): boolean {
  return a.model === b.model && a.dtype === b.dtype;
}

/** COLLECTION_MODEL_MISMATCH unless the collection's vectors came from `model`: vectors of two models do not compare. */
export function checkCollectionModel(info: CollectionInfo, model: ModelRef): void {
  if (!sameModel(info, model)) {
    throw new TesseraError(
      'COLLECTION_MODEL_MISMATCH',
      `collection ${JSON.stringify(info.name)} holds vectors of ${info.model} (${info.dtype}) but this is ${model.model} (${model.dtype}); serve or search it with --model ${info.model} --dtype ${info.dtype}`,
    );
  }
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
