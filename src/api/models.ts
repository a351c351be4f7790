/**
 * The models a server serves: which names pick which model, loading them (one after another,
 * each measured), and each model's state (loading, warmed up, its inference thread dead). One
 * process may serve several models; they share one inference thread and one batch gate, so
 * at most one batch of any of them runs at a time.
 */
import sharp from 'sharp';
import { Embedder, type EmbedderOptions, type ModelInfo } from '../engine/embedder.ts';
import { Semaphore } from '../engine/semaphore.ts';
import { TesseraError } from '../errors.ts';
import { publicModel } from '../model/source.ts';
import { modelRefOf } from '../search/collection.ts';
import { sameModel } from '../store/collections.ts';
import type { ModelRef } from '../store/store.ts';
import type { ServerConfig } from './config.ts';

/** One model as the server serves it. */
export interface ModelSpec {
  /** What clients put in `model` and what answers carry, e.g. jina-clip-v1. */
  name: string;
  /** Other names accepted in `model`: the --model string as given, a folder's absolute path. */
  aliases: readonly string[];
  /** The model as collections and classifiers record it (a folder as its absolute path, and the dtype). */
  ref: ModelRef;
  /** What Embedder.load is given: --model as typed (a hub id, a folder, or demo). */
  source: string;
}

/** A served, warmed-up model, ready for a request. */
export interface ModelHandle {
  name: string;
  ref: ModelRef;
  engine: Embedder;
  /** Length of its vectors. */
  dimensions: number;
}

/** What GET /v1/models tells of a model besides its name. */
export interface ModelFacts {
  dimensions: number;
  maxTokens: number;
  imageSize: number;
  dtype: string;
  int8: ModelInfo['int8'];
}

/** The name answers carry for a model: the hub repository's name, or the folder's. */
export function servedName(model: string): string {
  return model.replace(/[\\/]+$/, '').split(/[\\/]/).at(-1) ?? model;
}

/**
 * The models `tessera serve` was asked for: each --model (or TESSERA_MODEL entry) in order,
 * named by the --served-model-name entry at the same position, else by servedName(). The
 * first is the default (collections created without a model use it).
 */
export function modelSpecs(config: Pick<ServerConfig, 'model' | 'served-model-name' | 'dtype'>): ModelSpec[] {
  const models = config.model;
  const names = config['served-model-name'];
  if (models.length === 0) throw new TesseraError('INVALID_ARGUMENT', '--model names no model; give at least one (a hub id, a local folder, or demo)');
  if (names.length > 0 && names.length !== models.length) {
    throw new TesseraError(
      'INVALID_ARGUMENT',
      `--served-model-name gives ${names.length} name(s) for ${models.length} model(s); give one name per --model, in the same order (e.g. --served-model-name ${models.map((m) => servedName(m)).join(',')}), or none to use the models' own names`,
    );
  }
  return models.map((source, i) => {
    const ref = modelRefOf(source, config.dtype);
    return { name: names[i] ?? servedName(source), aliases: [...new Set([source, ref.model])], ref, source };
  });
}

/** A served model's state: its engine once loaded, and whether it answers now. */
export class ModelSlot {
  readonly name: string;
  readonly aliases: readonly string[];
  readonly ref: ModelRef;
  readonly source: string;
  private embedder: Embedder | undefined;
  /** Known once warmed up. */
  private facts: ModelFacts | undefined;
  /** When it was handed to the server, in Unix seconds (0 before): /v1/models' `created`. */
  created = 0;
  /** Why the model cannot answer now, or undefined when it can. */
  unavailable: TesseraError | undefined;
  /** Set by the first warm-up: from then on requests reach the engine, even while a dead inference thread restarts. */
  private warmed = false;

  constructor(spec: ModelSpec) {
    this.name = spec.name;
    this.aliases = spec.aliases;
    this.ref = spec.ref;
    this.source = spec.source;
    this.unavailable = new TesseraError('NOT_READY', `model ${JSON.stringify(spec.name)} is still loading or warming up`);
  }

  get ready(): boolean {
    return this.unavailable === undefined;
  }

  get loaded(): Embedder | undefined {
    return this.embedder;
  }

  /** Hands the loaded model to the slot; it answers after warmUp(). */
  set(embedder: Embedder): void {
    this.embedder = embedder;
    this.created = Math.floor(Date.now() / 1000);
  }

  /** One text and one image through the real path, so that ready means "answers now"; learns the model's facts. */
  async warmUp(): Promise<void> {
    const embedder = this.embedder!;
    const image = await sharp({ create: { width: 32, height: 32, channels: 3, background: '#808080' } }).png().toBuffer();
    await embedder.embed([{ text: 'warm-up' }, { image }]);
    const { dimensions, maxTokens, imageSize, dtype, int8 } = embedder.info;
    this.facts = { dimensions, maxTokens, imageSize, dtype, int8 };
  }

  /** The model answers (after a warm-up). */
  markReady(): void {
    this.warmed = true;
    this.unavailable = undefined;
  }

  /** The model cannot answer for now, and why. */
  markUnavailable(why: TesseraError): void {
    this.unavailable = why;
  }

  /** Its facts once warmed up; undefined before. */
  get known(): ModelFacts | undefined {
    return this.facts;
  }

  /**
   * The model for a request, or NOT_READY while it loads. Once warmed up, it is handed out
   * even while the inference thread restarts: its calls wait for the new thread (or fail
   * with INFERENCE_THREAD_DIED if it stays dead).
   */
  handle(): ModelHandle {
    if (!this.embedder || !this.warmed || !this.facts) {
      throw new TesseraError('NOT_READY', `model ${JSON.stringify(this.name)} is still loading; retry when GET /ready answers 200`);
    }
    return { name: this.name, ref: this.ref, engine: this.embedder, dimensions: this.facts.dimensions };
  }

  /** How messages show it: its name, and what it is. */
  describe(): string {
    return `${JSON.stringify(this.name)} (${publicModel(this.ref.model)}, ${this.ref.dtype})`;
  }
}

/** The served models by name; the first is the default. */
export class ModelRegistry {
  readonly slots: readonly ModelSlot[];
  private readonly byName = new Map<string, ModelSlot>();

  constructor(specs: readonly ModelSpec[]) {
    if (specs.length === 0) throw new TesseraError('INVALID_ARGUMENT', 'a server serves at least one model');
    this.slots = specs.map((spec) => new ModelSlot(spec));
    for (const slot of this.slots) {
      const twin = this.byName.get(slot.name);
      if (twin) {
        throw new TesseraError('INVALID_ARGUMENT', `two models are served as ${JSON.stringify(slot.name)} (${twin.source} and ${slot.source}); name them apart with --served-model-name, one name per --model`);
      }
      const same = this.slots.find((other) => other !== slot && sameModel(other.ref, slot.ref));
      if (same) throw new TesseraError('INVALID_ARGUMENT', `model ${slot.source} (${slot.ref.dtype}) is given twice; serve each model once`);
      this.byName.set(slot.name, slot);
    }
  }

  get default(): ModelSlot {
    return this.slots[0]!;
  }

  get names(): string[] {
    return this.slots.map((s) => s.name);
  }

  /** The slot served as `name` (served names only). */
  get(name: string): ModelSlot | undefined {
    return this.byName.get(name);
  }

  /** The slot `requested` names: a served name, else an alias (hub id, --model as given, a folder's path). */
  find(requested: string): ModelSlot | undefined {
    return this.byName.get(requested) ?? this.slots.find((s) => s.aliases.includes(requested));
  }

  /** As find(), or MODEL_MISMATCH listing every served name. */
  resolve(requested: string): ModelSlot {
    const slot = this.find(requested);
    if (!slot) throw new TesseraError('MODEL_MISMATCH', `model ${JSON.stringify(requested)} is not served here; this server serves ${this.listNames()}`);
    return slot;
  }

  /** The served model that collections and classifiers record as `ref`, if any. */
  serving(ref: ModelRef): ModelSlot | undefined {
    return this.slots.find((s) => sameModel(s.ref, ref));
  }

  listNames(): string {
    return this.slots.map((s) => JSON.stringify(s.name)).join(', ');
  }

  /** Every served model with what it is, for messages. */
  describe(): string {
    return this.slots.map((s) => s.describe()).join(', ');
  }

  /**
   * Why the server cannot answer everything now (what /ready reports), or undefined: the
   * first model that is not ready, named when several are served.
   */
  get unavailable(): TesseraError | undefined {
    const slot = this.slots.find((s) => !s.ready);
    if (!slot) return undefined;
    const why = slot.unavailable!;
    if (this.slots.length === 1 || why.message.includes(JSON.stringify(slot.name))) return why;
    return new TesseraError(why.code, `model ${JSON.stringify(slot.name)}: ${why.message}`, { cause: why });
  }
}

/** A model loaded for serving, and the process RSS growth while it loaded. */
export interface ServedEmbedder {
  spec: ModelSpec;
  embedder: Embedder;
  residentBytes: number;
}

/**
 * Loads the models one after another, sharing one batch gate (at most one batch of any of
 * them at a time), and measures each one's resident size as the growth of the process RSS
 * while it loaded: an estimate (the allocator keeps freed memory, and models loaded later
 * may reuse it). A model that fails to load fails the whole call, its name in the error,
 * and the models loaded before it are closed.
 */
export async function loadModels(specs: readonly ModelSpec[], options: EmbedderOptions = {}): Promise<ServedEmbedder[]> {
  const batchGate = new Semaphore(1);
  const loaded: ServedEmbedder[] = [];
  try {
    for (const spec of specs) {
      const before = process.memoryUsage().rss;
      const embedder = await Embedder.load(spec.source, { ...options, batchGate }).catch((err: unknown) => {
        throw namingModel(err, spec, specs.length);
      });
      loaded.push({ spec, embedder, residentBytes: Math.max(0, process.memoryUsage().rss - before) });
    }
  } catch (err) {
    await Promise.allSettled(loaded.map((m) => m.embedder.close()));
    throw err;
  }
  return loaded;
}

/** The load error with the model it is about in front (one model: unless it names it already). */
function namingModel(err: unknown, spec: ModelSpec, count: number): unknown {
  if (!(err instanceof Error) || (count === 1 && err.message.includes(spec.source))) return err;
  const prefix = count > 1 ? `model ${JSON.stringify(spec.name)} (--model ${spec.source})` : `model ${spec.source}`;
  const message = `${prefix}: ${err.message}`;
  return err instanceof TesseraError ? new TesseraError(err.code, message, { cause: err }) : new Error(message, { cause: err });
}
