/**
 * Few-shot classifiers as a service over a ClassifierStore: who may see, use, train and delete
 * which classifier, the limits, and training with compare-and-swap retries. Knows nothing of
 * HTTP: the API (api/classifiers.ts) and the CLI (cli/train.ts) both call it.
 */
import { randomUUID } from 'node:crypto';
import { KeyedSerializer } from '../concurrency.ts';
import { TesseraError } from '../errors.ts';
import type { ClassifierAccess, ClassifierRecord, ClassifierStore } from '../store/classifiers.ts';
import type { ModelRef } from '../store/store.ts';
import { emptyModel, labelsOf, predict, startsZeroShot, train, withLabels, isWordLabel, type Example, type LinearModel } from './learn.ts';
import type { Classification } from '../engine/classify.ts';

export interface ClassifierLimits {
  /** Classes (distinct labels) per classifier. */
  maxClasses: number;
  /** Classifiers per owner. */
  maxPerOwner: number;
}

/** The model a server or CLI runs: what classifiers are trained on and checked against. */
export interface ServedModel extends ModelRef {
  /** What clients call it (`model_name`), e.g. jina-clip-v1. */
  name: string;
  dimensions: number;
}

/** Text embeddings (L2-normalised) of labels, for the zero-shot start. */
export type EmbedLabels = (labels: string[]) => Promise<Float32Array[]>;

/** How many times a training re-reads and recomputes after losing a compare-and-swap. */
const MAX_ATTEMPTS = 200;

const notFound = (id: string) =>
  new TesseraError('CLASSIFIER_NOT_FOUND', `no classifier ${JSON.stringify(id)} that this API key may use; GET /v1/classifiers lists the key's own`);

function classLimit(count: number, max: number): TesseraError {
  return new TesseraError('CLASSIFIER_CLASS_LIMIT', `the classifier would have ${count} classes (distinct labels) but a classifier may have at most ${max}; train a separate classifier for the others`);
}

export class Classifiers {
  /** In-process queue per classifier: trainings through one server wait here instead of racing. */
  readonly #queues = new KeyedSerializer();

  constructor(readonly store: ClassifierStore, readonly limits: ClassifierLimits) {}

  /** The classifier, if `caller` may use it: its own, or a public one. CLASSIFIER_NOT_FOUND otherwise. */
  async usable(id: string, caller: string): Promise<ClassifierRecord> {
    const record = await this.store.get(id);
    if (!record || (record.access === 'private' && record.owner !== caller)) throw notFound(id);
    return record;
  }

  /** The classifier, if `caller` may train or delete it: CLASSIFIER_NOT_FOUND, CLASSIFIER_FORBIDDEN. */
  async owned(id: string, caller: string): Promise<ClassifierRecord> {
    const record = await this.usable(id, caller);
    if (record.owner !== caller) {
      throw new TesseraError('CLASSIFIER_FORBIDDEN', `classifier ${id} is public: any key may classify with it, but only the key that made it may train or delete it`);
    }
    return record;
  }

  /** CLASSIFIER_MODEL_MISMATCH unless `record` was trained on `served`. */
  checkModel(record: ClassifierRecord, served: ServedModel): void {
    if (record.model !== served.model || record.dtype !== served.dtype || record.dimensions !== served.dimensions) {
      throw new TesseraError(
        'CLASSIFIER_MODEL_MISMATCH',
        `classifier ${record.id} was trained on ${JSON.stringify(record.model)} (${record.dtype}, ${record.dimensions} dimensions) but this server runs ${JSON.stringify(served.model)} (${served.dtype}, ${served.dimensions} dimensions); use a server of that model or train a new classifier`,
      );
    }
  }

  /** Checks before any embedding work: the limits a new classifier of `labels` would break. */
  async checkCreate(owner: string, labels: readonly string[]): Promise<void> {
    if (labels.length > this.limits.maxClasses) throw classLimit(labels.length, this.limits.maxClasses);
    const count = await this.store.countByOwner(owner);
    if (count >= this.limits.maxPerOwner) {
      throw new TesseraError('CLASSIFIER_COUNT_LIMIT', `the key ${JSON.stringify(owner)} has ${count} classifiers already, the most it may have is ${this.limits.maxPerOwner}; delete one (DELETE /v1/classifiers/{id}) first`);
    }
  }

  /** Checks before any embedding work, for training classifier `id`: ownership, model, class limit. */
  async checkUpdate(id: string, owner: string, labels: readonly string[], served: ServedModel): Promise<ClassifierRecord> {
    const record = await this.owned(id, owner);
    this.checkModel(record, served);
    const count = new Set([...record.labels, ...labels]).size;
    if (count > this.limits.maxClasses) throw classLimit(count, this.limits.maxClasses);
    return record;
  }

  /** Makes a classifier from `examples` (its labels in order of first appearance) and returns it. */
  async create(options: { owner: string; access: ClassifierAccess; served: ServedModel; examples: readonly Example[]; numIters: number; embedLabels: EmbedLabels }): Promise<ClassifierRecord> {
    const { owner, served, examples } = options;
    const labels = labelsOf(examples);
    await this.checkCreate(owner, labels);
    const zeroShot = startsZeroShot(labels);
    const initial = zeroShot ? await initialVectors(labels, options.embedLabels) : undefined;
    const model = train(withLabels(emptyModel(served.dimensions), labels, initial), examples, options.numIters);
    const now = new Date().toISOString();
    const record: ClassifierRecord = {
      id: randomUUID(),
      owner,
      access: options.access,
      model: served.model,
      dtype: served.dtype,
      modelName: served.name,
      dimensions: served.dimensions,
      labels: model.labels,
      weights: model.weights,
      zeroShot,
      version: 1,
      samples: examples.length,
      usedNumber: 0,
      createdAt: now,
      updatedAt: now,
      usedAt: null,
    };
    await this.store.create(record, this.limits.maxPerOwner);
    return record;
  }

  /**
   * Trains classifier `id` on `examples` and returns the version stored. Concurrent trainings
   * are serialised: in this process by a queue per classifier, across processes by the store's
   * compare-and-swap (a training that loses re-reads the winner's weights and trains on them).
   */
  train(id: string, options: { owner: string; served: ServedModel; examples: readonly Example[]; numIters: number; embedLabels: EmbedLabels }): Promise<ClassifierRecord> {
    return this.#queues.run(id, async () => {
      const vectors = new Map<string, Float32Array>();
      for (let attempt = 1; ; attempt++) {
        const current = await this.checkUpdate(id, options.owner, labelsOf(options.examples), options.served);
        const added = labelsOf(options.examples).filter((l) => !current.labels.includes(l));
        const words = current.zeroShot ? added.filter((l) => isWordLabel(l) && !vectors.has(l)) : [];
        if (words.length > 0) (await initialVectors(words, options.embedLabels)).forEach((v, l) => vectors.set(l, v));
        const start: LinearModel = { labels: current.labels, weights: current.weights, dimensions: current.dimensions };
        const model = train(withLabels(start, added, vectors), options.examples, options.numIters);
        const next: ClassifierRecord = {
          ...current,
          labels: model.labels,
          weights: model.weights,
          version: current.version + 1,
          samples: current.samples + options.examples.length,
          updatedAt: new Date().toISOString(),
        };
        if (await this.store.update(next, current.version)) return next;
        if (attempt >= MAX_ATTEMPTS) {
          throw new TesseraError('STORE_UNAVAILABLE', `classifier ${id} kept changing under ${MAX_ATTEMPTS} attempts to train it (other writers); retry`);
        }
        await new Promise((r) => setTimeout(r, Math.random() * Math.min(50, attempt * 2)));
      }
    });
  }

  /** Classifies embeddings with classifier `record` and counts the use. */
  async classify(record: ClassifierRecord, vectors: readonly Float32Array[]): Promise<Classification[]> {
    const model: LinearModel = { labels: record.labels, weights: record.weights, dimensions: record.dimensions };
    const out = vectors.map((v) => predict(model, v));
    await this.store.recordUse(record.id, new Date().toISOString());
    return out;
  }

  list(owner: string): Promise<ClassifierRecord[]> {
    return this.store.list(owner);
  }

  /** Deletes classifier `id` if `caller` owns it: CLASSIFIER_NOT_FOUND, CLASSIFIER_FORBIDDEN. */
  async delete(id: string, caller: string): Promise<void> {
    await this.owned(id, caller);
    if (!(await this.store.delete(id))) throw notFound(id);
  }
}

async function initialVectors(labels: string[], embed: EmbedLabels): Promise<Map<string, Float32Array>> {
  const vectors = await embed(labels);
  return new Map(labels.map((l, i) => [l, vectors[i]!]));
}

/** Jina's listing of a classifier (GET /v1/classifiers). */
export function describeClassifier(record: ClassifierRecord) {
  return {
    classifier_id: record.id,
    model_name: record.modelName,
    labels: record.labels,
    access: record.access,
    updated_number: record.version,
    used_number: record.usedNumber,
    created_at: record.createdAt,
    updated_at: record.updatedAt,
    used_at: record.usedAt,
    num_samples: record.samples,
    metadata: {},
  };
}
