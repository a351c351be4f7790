import { TesseraError } from '../errors.ts';
import type { ClassifierAccess } from '../store/classifiers.ts';
import { asObject, describe, invalid, parseItem, type RequestItem, type RequestLimits } from './request.ts';

export interface ClassifierRequestLimits extends RequestLimits {
  /** Examples per /v1/train call, items per /v1/classify call by classifier_id. */
  maxClassifierInputs: number;
}

export interface TrainRequest {
  /** Set when creating. */
  model?: string;
  /** Set when updating. */
  classifierId?: string;
  access: ClassifierAccess;
  numIters: number;
  items: RequestItem[];
  /** labels[i] is items[i]'s. */
  labels: string[];
}

const EXAMPLE_FIELDS = new Set(['text', 'image', 'url', 'bytes', 'label', 'id']);
/** Jina's playground allows 1-1000. */
export const MAX_NUM_ITERS = 1000;

function checkFields(body: Record<string, unknown>, allowed: ReadonlySet<string>, where: string): void {
  for (const key of Object.keys(body)) {
    if (!allowed.has(key)) throw invalid(`${where}${where ? '.' : ''}${key} is not a field of this request; expected ${[...allowed].join(', ')}`);
  }
}

function inputList(body: Record<string, unknown>, limits: ClassifierRequestLimits): unknown[] {
  const input = body.input;
  if (input === undefined || input === null) throw invalid('input is required: an item or a list of them');
  const list = Array.isArray(input) ? input : [input];
  if (list.length === 0) throw invalid('input must not be an empty list');
  if (list.length > limits.maxClassifierInputs) {
    throw new TesseraError('CLASSIFIER_INPUT_LIMIT', `input has ${list.length} items but a classifier takes at most ${limits.maxClassifierInputs} per request; split it`);
  }
  if (list.length > limits.maxItems) throw new TesseraError('TOO_MANY_ITEMS', `input has ${list.length} items but this server accepts at most ${limits.maxItems} per request; split it`);
  return list;
}

function classifierId(value: unknown): string {
  if (typeof value !== 'string' || value === '') throw invalid(`classifier_id must be a non-empty string, got ${describe(value)}`);
  return value;
}

/**
 * Reads a /v1/train body that its schema (schemas/classify.ts) let through: an object of
 * Jina's fields only, `model` a non-empty string, `access` private or public, `num_iters` an
 * integer from 1 to MAX_NUM_ITERS (each may be null: not given). Checked here: model or
 * classifier_id (one of them), and the examples.
 */
export function parseTrainRequest(rawBody: unknown, limits: ClassifierRequestLimits): TrainRequest {
  const body = asObject(rawBody);
  const has = (f: string) => body[f] !== undefined && body[f] !== null;
  if (has('model') && has('classifier_id')) throw invalid('model and classifier_id cannot both be given: model creates a classifier, classifier_id trains an existing one');
  if (!has('model') && !has('classifier_id')) throw invalid('model (to create a classifier) or classifier_id (to train one) is required');
  const access: ClassifierAccess = has('access') ? (body.access as ClassifierAccess) : 'private';
  const numIters = has('num_iters') ? (body.num_iters as number) : 10;
  const items: RequestItem[] = [];
  const labels: string[] = [];
  inputList(body, limits).forEach((value, i) => {
    const where = `input[${i}]`;
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw invalid(`${where} must be an object with "label" and one of "text", "image", "url" or "bytes", got ${describe(value)}`);
    }
    const example = value as Record<string, unknown>;
    checkFields(example, EXAMPLE_FIELDS, where);
    const { label, id: _id, ...item } = example;
    if (label === undefined || label === null) throw invalid(`${where}.label is required: the class this example belongs to`);
    if (typeof label !== 'string' || label.trim() === '') throw invalid(`${where}.label must be a non-empty string, got ${describe(label)}`);
    items.push(parseItem(item, where, limits));
    labels.push(label);
  });
  return {
    ...(has('model') ? { model: body.model as string } : { classifierId: classifierId(body.classifier_id) }),
    access,
    numIters,
    items,
    labels,
  };
}

export interface ClassifyByIdRequest {
  classifierId: string;
  items: RequestItem[];
}

/**
 * A /v1/classify body naming a classifier (instead of model and labels), or undefined when it
 * names none (a zero-shot request).
 */
export function parseClassifyByIdRequest(rawBody: unknown, limits: ClassifierRequestLimits): ClassifyByIdRequest | undefined {
  const body = asObject(rawBody);
  if (body.classifier_id === undefined || body.classifier_id === null) return undefined;
  const id = classifierId(body.classifier_id);
  if (body.model !== undefined && body.model !== null) throw invalid('model and classifier_id cannot both be given: a classifier knows its model');
  if (body.labels !== undefined && body.labels !== null) throw invalid('labels and classifier_id cannot both be given: a classifier knows its labels');
  checkFields(body, new Set(['classifier_id', 'input']), '');
  const items = inputList(body, limits).map((value, i) => parseItem(value, `input[${i}]`, limits));
  return { classifierId: id, items };
}
