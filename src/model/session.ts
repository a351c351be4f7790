import { availableParallelism } from 'node:os';
import * as ort from 'onnxruntime-node';
import { TesseraError } from '../errors.ts';

export type GraphOptimizationLevel = 'disabled' | 'basic' | 'extended' | 'all';

export interface SessionSettings {
  /** Threads one session may use for one operator. Default: all cores. */
  intraOpThreads?: number;
  /**
   * Default 'basic': a production user of the real jina-clip-v1 graphs found that
   * aggressive fusions (SimplifiedLayerNormFusion) broke them (REFERENCE section 1).
   */
  graphOptimizationLevel?: GraphOptimizationLevel;
  /** ONNX Runtime execution providers in order of preference, e.g. ['cuda', 'cpu']. */
  executionProviders?: string[];
}

export async function createSession(path: string, settings: SessionSettings): Promise<ort.InferenceSession> {
  try {
    return await ort.InferenceSession.create(path, {
      intraOpNumThreads: settings.intraOpThreads ?? availableParallelism(),
      interOpNumThreads: 1,
      graphOptimizationLevel: settings.graphOptimizationLevel ?? 'basic',
      executionProviders: settings.executionProviders ?? ['cpu'],
    });
  } catch (err) {
    const message = (err as Error).message;
    const code = /no such file|not exist|ENOENT|Load model from .* failed:.*(open|exist)/i.test(message) ? 'MODEL_FILE_MISSING' : 'MODEL_FILE_INVALID';
    throw new TesseraError(code, `${path}: ONNX Runtime cannot load it (${message.split('\n')[0]})`, { cause: err });
  }
}

/** How an embedding is read off a session's outputs. */
export interface OutputPlan {
  name: string;
  /** 'pooled': [batch, dim] already; 'mean' / 'cls': [batch, seq, dim], pooled by us. */
  pooling: 'pooled' | 'mean' | 'cls';
  /** The graph normalises already (l2norm_* outputs), so unnormalised vectors are not available. */
  normalized: boolean;
}

/**
 * Picks the embedding output by name, in the order real exports use: `text_embeds` /
 * `image_embeds`, then `*_embeddings`, then `l2norm_*`, then a `last_hidden_state` to pool.
 */
export function planOutput(session: ort.InferenceSession, modality: 'text' | 'image', file: string): OutputPlan {
  const names = session.outputNames;
  const prefer = [`${modality}_embeds`, `${modality}_embeddings`, 'embeddings', 'sentence_embedding', 'pooler_output'];
  for (const name of prefer) {
    if (names.includes(name)) return { name, pooling: 'pooled', normalized: false };
  }
  const embeds = names.find((n) => /_embed(s|dings)$/.test(n) && !n.startsWith('l2norm'));
  if (embeds) return { name: embeds, pooling: 'pooled', normalized: false };
  const normalized = names.find((n) => n.startsWith('l2norm') && n.includes(modality)) ?? names.find((n) => n.startsWith('l2norm'));
  if (normalized) return { name: normalized, pooling: 'pooled', normalized: true };
  if (names.includes('last_hidden_state')) {
    return { name: 'last_hidden_state', pooling: modality === 'text' ? 'mean' : 'cls', normalized: false };
  }
  throw new TesseraError('MODEL_FILE_INVALID', `${file}: no embedding output among [${names.join(', ')}]; expected ${modality}_embeds, *_embeddings, l2norm_* or last_hidden_state`);
}

/** Names of the input a session needs, checked against what the modality can feed. */
export function requireInputs(session: ort.InferenceSession, known: readonly string[], required: string, file: string): void {
  const names = session.inputNames;
  if (!names.includes(required)) {
    throw new TesseraError('MODEL_FILE_INVALID', `${file}: expected an input named ${required} but the graph takes [${names.join(', ')}]`);
  }
  const unknown = names.filter((n) => !known.includes(n));
  if (unknown.length > 0) {
    throw new TesseraError('MODEL_FILE_INVALID', `${file}: cannot feed input(s) [${unknown.join(', ')}]; supported inputs are [${known.join(', ')}]`);
  }
}
