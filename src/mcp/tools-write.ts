/**
 * The tools that write, offered only with --mcp-allow-writes: index_path (a folder, JSONL or
 * URL list on the machine tessera runs on, through the indexing pipeline of `tessera index`)
 * and add_documents (documents given whole, as POST /v1/collections/{name}/documents takes
 * them: all or nothing). A collection that does not exist is made for the default model, as
 * `tessera index` makes one.
 */
import * as z from 'zod';
import { estimateTextTokens, IMAGE_TOKEN_ESTIMATE } from '../api/admission.ts';
import { TesseraError } from '../errors.ts';
import { embedDocuments, parseDocumentInput, type DocumentInput } from '../index/document.ts';
import { indexSources, type IndexFailure } from '../index/pipeline.ts';
import { resolveSource } from '../index/sources.ts';
import type { CollectionDescriptor, ModelRef, VectorStore } from '../store/store.ts';
import { validateCollectionName } from '../store/validate.ts';
import type { McpHost, McpModel } from './host.ts';
import { arg } from './schema.ts';
import { collectionRequired, jsonResult, optionalBoolean, requiredString, type ToolArgs, type ToolDef } from './tools.ts';

/** Failures an index_path answer lists (the counts cover them all). */
const LISTED_FAILURES = 20;

interface Target {
  name: string;
  /** Undefined when it does not exist yet. */
  info?: CollectionDescriptor;
  model: McpModel;
}

/** The collection to write and the model that writes it: its own, or the default one for a new collection. */
async function target(store: VectorStore, host: McpHost, args: ToolArgs): Promise<Target> {
  const given = args.collection ?? host.defaultCollection;
  if (given === undefined || given === null) throw new TesseraError('REQUEST_INVALID', 'collection is required: the collection to write (made if it does not exist)');
  const name = validateCollectionName(given, 'collection');
  const info = await store.requireCollection(name).catch((err: unknown) => {
    if (err instanceof TesseraError && err.code === 'COLLECTION_NOT_FOUND') return undefined;
    throw err;
  });
  return { name, info, model: info ? await host.collectionModel(info) : await host.model() };
}

/** Makes the collection if it is new (another writer may just have made it: then it must be of the same model). */
async function ensureCollection(store: VectorStore, t: Target): Promise<ModelRef> {
  if (t.info) return { model: t.info.model, dtype: t.info.dtype };
  try {
    await store.createCollection({ name: t.name, ...t.model.ref, dimensions: t.model.dimensions });
  } catch (err) {
    if (!(err instanceof TesseraError && err.code === 'COLLECTION_EXISTS')) throw err;
    await store.requireCollection(t.name, t.model.ref); // COLLECTION_MODEL_MISMATCH if of another model
  }
  return t.model.ref;
}

const documentTokens = (docs: readonly DocumentInput[]) =>
  docs.reduce((sum, d) => sum + ('text' in d ? estimateTextTokens(d.text) : IMAGE_TOKEN_ESTIMATE), 0);

export function writeTools(host: McpHost, store: VectorStore): ToolDef[] {
  const collection = arg(z.string(), `The collection to write; made for the default model if it does not exist${host.defaultCollection ? ` (default ${JSON.stringify(host.defaultCollection)})` : ''}.`);
  return [
    {
      name: 'index_path',
      title: 'Index a folder or file',
      description:
        'Indexes a folder (recursively: images, videos, PDFs, .txt and .md files; ids are the paths under the folder), a .jsonl file of documents ' +
        `({"id", "text" | "image", "metadata"} per line) or a .txt file of image URLs, on the machine tessera runs on${host.local ? ' (this one)' : ' (the server)'}, ` +
        'into a collection. Incremental: unchanged documents are skipped, changed ones updated. A call that runs out of time stops with what it wrote; call it again to go on.',
      args: {
        path: arg(z.string(), 'The folder or file, as a path on the machine tessera runs on.'),
        collection,
        prune: arg(z.boolean(), 'Also remove the documents of this path whose file, line or URL is gone (default false).'),
      },
      required: ['path', ...collectionRequired(host)],
      annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: true, openWorldHint: false },
      async run(args, call) {
        const path = requiredString(args, 'path', 'a folder, a .jsonl file or a .txt file of image URLs');
        const prune = optionalBoolean(args, 'prune', false);
        const source = await resolveSource(path);
        const t = await target(store, host, args);
        await call.caller.admit(0);
        const writer = await ensureCollection(store, t);
        const failures: IndexFailure[] = [];
        const result = await indexSources({
          store,
          collection: t.name,
          embedder: t.model.engine,
          writer,
          sources: [source],
          prune,
          fetchPolicy: host.fetchPolicy,
          signal: call.signal,
          onFailure: (f) => {
            if (failures.length < LISTED_FAILURES) failures.push(f);
          },
          onProgress: (p) => call.progress(p.done, p.total || undefined, `${p.added} added, ${p.updated} updated, ${p.skipped} skipped, ${p.failed} failed`),
        });
        const { added, updated, skipped, removed, failed, interrupted } = result;
        return jsonResult({
          collection: t.name,
          added,
          updated,
          skipped,
          removed,
          failed,
          ...(failed > 0 && { failures }),
          ...(interrupted && { interrupted: 'stopped before the end (cancelled or out of time): what is written stays; call again to go on' }),
          count: await store.count(t.name),
        });
      },
    },
    {
      name: 'add_documents',
      title: 'Add documents',
      description: 'Adds (or replaces, by id) documents given whole to a collection: texts, and images as base64, data URIs or http(s) URLs, each with optional flat metadata. All or nothing: one bad document and none is written.',
      args: {
        collection,
        documents: arg(
          z.array(z.object({ id: z.string(), text: z.string().optional(), image: z.string().optional(), metadata: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).optional() })).min(1),
          'The documents: each {"id", "text"} or {"id", "image"}, and optional "metadata" (flat: strings, numbers, booleans; "taken_at" an ISO date).',
        ),
      },
      required: [...collectionRequired(host), 'documents'],
      annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: false },
      async run(args, call) {
        const list = args.documents;
        if (!Array.isArray(list) || list.length === 0) throw new TesseraError('REQUEST_INVALID', 'documents must be a non-empty list of documents');
        if (list.length > host.limits.maxItems) throw new TesseraError('TOO_MANY_ITEMS', `documents has ${list.length} entries but at most ${host.limits.maxItems} are accepted per call; split it`);
        const inputs = list.map((value, i) => parseDocumentInput(value, `documents[${i}]`));
        const seen = new Map<string, number>();
        inputs.forEach((doc, i) => {
          const first = seen.get(doc.id);
          if (first !== undefined) throw new TesseraError('DOCUMENT_ID_DUPLICATE', `documents[${i}].id: ${JSON.stringify(doc.id)} is also the id of documents[${first}]; an id appears once per call`);
          seen.set(doc.id, i);
          if ('text' in doc && doc.text.length > host.limits.maxTextChars) {
            throw new TesseraError('TEXT_TOO_LONG', `documents[${i}].text: text has ${doc.text.length} characters but at most ${host.limits.maxTextChars} are accepted; split it`);
          }
        });
        const t = await target(store, host, args);
        await call.caller.admit(documentTokens(inputs));
        // Files are named only by index_path (which records the folder they must stay in).
        const outcomes = await embedDocuments(t.model.engine, inputs, { allowPaths: false, fetchPolicy: host.fetchPolicy, signal: call.signal, concurrency: host.fetchConcurrency });
        for (const outcome of outcomes) {
          if (!outcome.ok) throw new TesseraError(outcome.error.code, `documents[${outcome.index}] (id ${JSON.stringify(outcome.id)}): ${outcome.error.message}`, { cause: outcome.error });
        }
        const done = outcomes.flatMap((o) => (o.ok ? [o] : []));
        const writer = await ensureCollection(store, t);
        const existing = new Set((await store.get(t.name, inputs.map((d) => d.id))).map((d) => d.id));
        await store.upsert(t.name, done.map((o) => o.record), writer);
        const usage = call.caller.bill(done.map((o) => o.embedding));
        return jsonResult({ collection: t.name, ids: inputs.map((d) => d.id), added: inputs.length - existing.size, updated: existing.size, count: await store.count(t.name), usage });
      },
    },
  ];
}
