/**
 * `tessera mcp`'s host: one user's store on their own machine, for an assistant that started
 * the process. Models are loaded on first use and kept: the --model one for embed, classify and
 * new collections, and each collection's (or classifier's) own model to search (write, use) it,
 * as `tessera search` and `tessera classify` do. Nothing loads at start, so the assistant sees
 * the tools at once.
 */
import { SERVER_OPTIONS } from '../api/config.ts';
import { servedName } from '../api/models.ts';
import { Classifiers } from '../classifier/classifiers.ts';
import { CLI_CLASSIFIER_LIMITS } from '../cli/train.ts';
import { Embedder, type EmbedderOptions } from '../engine/embedder.ts';
import { TesseraError } from '../errors.ts';
import { parseDtype } from '../model/dtype.ts';
import { modelRefOf } from '../search/collection.ts';
import { ThumbnailCache } from '../search/thumbnail.ts';
import type { ModelRef, VectorStore } from '../store/store.ts';
import type { McpHost, McpModel } from './host.ts';

export interface LocalHostOptions {
  store?: VectorStore;
  /** --model as given (a hub id, a folder, demo) and --dtype: embed, classify, new collections. */
  model: string;
  dtype: string;
  /** Session settings of every model loaded (--threads, --no-graph-rewrite, --int8), as modelSettings gives them. */
  session: Pick<EmbedderOptions, 'intraOpThreads' | 'graphRewrite' | 'int8'>;
  allowWrites: boolean;
  defaultCollection?: string;
  /** Let image URLs reach loopback and private addresses (--allow-private-urls). */
  allowPrivateUrls: boolean;
}

export interface LocalHost extends McpHost {
  /** Closes the models loaded (the store is the caller's). */
  close(): Promise<void>;
}

export function localHost(options: LocalHostOptions): LocalHost {
  const loaded = new Map<string, Promise<McpModel>>();
  const fallback = modelRefOf(options.model, options.dtype);
  const names = new Set([options.model, fallback.model, servedName(options.model)]);

  /** The model of `ref`, loaded once (a failed load is tried again by the next call). */
  function load(ref: ModelRef): Promise<McpModel> {
    const key = `${ref.model}\0${ref.dtype}`;
    let model = loaded.get(key);
    if (!model) {
      model = (async () => {
        // Paths are fine here: the images are the user's own (an image argument may be a file).
        const engine = await Embedder.load(ref.model, { ...options.session, dtype: parseDtype(ref.dtype), progress: true, allowPaths: true });
        return { name: servedName(ref.model), ref, engine, dimensions: engine.info.dimensions };
      })();
      loaded.set(key, model);
      model.catch(() => loaded.delete(key));
    }
    return model;
  }

  const classifiers = options.store && new Classifiers(options.store.classifiers, CLI_CLASSIFIER_LIMITS);
  return {
    store: options.store,
    classifiers,
    allowWrites: options.allowWrites,
    defaultCollection: options.defaultCollection,
    local: true,
    limits: {
      maxItems: SERVER_OPTIONS['max-items'].default,
      maxTextChars: SERVER_OPTIONS['max-text-chars'].default,
      maxClassifierInputs: SERVER_OPTIONS['classifier-max-inputs'].default,
    },
    fetchPolicy: { allowPrivate: options.allowPrivateUrls },
    fetchConcurrency: SERVER_OPTIONS['fetch-concurrency'].default,
    maxPixels: SERVER_OPTIONS['max-image-pixels'].default,
    thumbnails: new ThumbnailCache(),
    async model(requested) {
      if (requested !== undefined && !names.has(requested)) {
        throw new TesseraError('MODEL_MISMATCH', `model ${JSON.stringify(requested)} is not served here; tessera mcp serves ${JSON.stringify(servedName(options.model))} (--model ${options.model}); leave model out to use it`);
      }
      return load(fallback);
    },
    collectionModel: (info) => load({ model: info.model, dtype: info.dtype }),
    async classifierModel(record) {
      const model = await load({ model: record.model, dtype: record.dtype });
      classifiers!.checkModel(record, { ...model.ref, name: model.name, dimensions: model.dimensions });
      return model;
    },
    internalError(err) {
      console.error('tessera mcp: a tool failed unexpectedly:', err);
      return err instanceof Error ? err.message : String(err);
    },
    async close() {
      const models = await Promise.allSettled(loaded.values());
      await Promise.all(models.flatMap((m) => (m.status === 'fulfilled' ? [m.value.engine.close()] : [])));
    },
  };
}
