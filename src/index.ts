/**
 * The package's public surface (`import ... from 'tessera'`): the embedder, the error
 * registry, the server factory and its model loading, and the store and classifier
 * interfaces. Nothing else is importable: package.json's `exports` names this file only.
 */
export { Embedder, type EmbedItem, type EmbedOptions, type Embedding, type EmbedderOptions } from './engine/embedder.ts';
export { ERRORS, TesseraError, type ErrorCode } from './errors.ts';
export { createServer, type ServerOptions, type TesseraServer } from './api/server.ts';
export { loadModels, modelSpecs, type ModelSpec, type ServedEmbedder } from './api/models.ts';
export { parseServerConfig, SERVER_OPTIONS, type ServerConfig } from './api/config.ts';
export { openStore, storeLocation, defaultStoreLocation, type StoreOptions } from './store/open.ts';
export type {
  CollectionInfo,
  CollectionSpec,
  DocumentRecord,
  Filter,
  Metadata,
  ModelRef,
  NearCondition,
  SearchHit,
  StoredDocument,
  TextSearch,
  VectorSearch,
  VectorStore,
  WithinCondition,
} from './store/store.ts';
export { parseFilter } from './store/filter.ts';
export type { ClassifierAccess, ClassifierRecord, ClassifierStore } from './store/classifiers.ts';
