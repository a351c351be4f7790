/**
 * ONNX Runtime's own profile of a graph (enableProfiling), summed by op type: where the time
 * goes before and after the load-time graph rewrite. `tessera bench` puts it under
 * `rewrite.profile`; scripts/measure-rewrite.ts under each scenario's `profile`.
 */
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import type { Embedder } from '../src/engine/embedder.ts';
import type { TensorData } from '../src/model/session.ts';
import { round } from './stats.ts';

export type Feeds = Record<string, ort.Tensor>;

export interface OpProfile {
  /** Wall time of each profiled run (the warm-up left out), ms. */
  runs_ms: number[];
  /** Kernel time over all ops, ms (each op at its smallest over the runs). */
  kernels_ms: number;
  /** MatMul + MatMulInteger over all kernels: the share no fusion changes. */
  matmul_share: number;
  /** Per op type, slowest first: kernel ms, share of kernels_ms, calls per run. */
  by_op: Record<string, { ms: number; share: number; calls: number }>;
}

export interface ProfileOptions {
  threads: number;
  /** Profiled runs after one warm-up (default 2); each op's figure is its smallest over them. */
  runs?: number;
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
}

interface ProfileEvent {
  cat: string;
  name: string;
  ts: number;
  dur: number;
  args?: { op_name?: string };
}

/**
 * Profiled runs of the graph at `path` on `feeds`, summed by op type. Each op's figure is its
 * smallest over the runs: a run slowed by another job on a shared machine moves the others less.
 */
export async function profileGraph(path: string, feeds: Feeds, options: ProfileOptions): Promise<OpProfile> {
  const dir = await mkdtemp(join(tmpdir(), 'tessera-profile-'));
  try {
    const session = await ort.InferenceSession.create(path, {
      intraOpNumThreads: options.threads,
      interOpNumThreads: 1,
      graphOptimizationLevel: options.graphOptimizationLevel ?? 'basic',
      executionProviders: ['cpu'],
      enableProfiling: true,
      profileFilePrefix: join(dir, 'p'),
    });
    try {
      for (let i = 0; i <= (options.runs ?? 2); i++) await session.run(feeds);
    } finally {
      session.endProfiling();
      await session.release();
    }
    const file = (await readdir(dir)).find((f) => f.endsWith('.json'));
    if (!file) throw new Error(`ONNX Runtime wrote no profile for ${path}`);
    return summarize(JSON.parse(await readFile(join(dir, file), 'utf8')) as ProfileEvent[]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function summarize(events: readonly ProfileEvent[]): OpProfile {
  const runs = events.filter((e) => e.cat === 'Session' && e.name === 'model_run').slice(1);
  const ops = new Map<string, { ms: number; calls: number }>();
  for (const run of runs) {
    const inRun = new Map<string, { ms: number; calls: number }>();
    for (const e of events) {
      if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time') || e.ts < run.ts || e.ts > run.ts + run.dur) continue;
      const op = e.args?.op_name ?? '?';
      const entry = inRun.get(op) ?? { ms: 0, calls: 0 };
      entry.ms += e.dur / 1000;
      entry.calls++;
      inRun.set(op, entry);
    }
    for (const [op, v] of inRun) {
      const seen = ops.get(op);
      if (!seen || v.ms < seen.ms) ops.set(op, v);
    }
  }
  const total = [...ops.values()].reduce((s, v) => s + v.ms, 0);
  const matmul = (ops.get('MatMul')?.ms ?? 0) + (ops.get('MatMulInteger')?.ms ?? 0);
  return {
    runs_ms: runs.map((r) => round(r.dur / 1000, 1)),
    kernels_ms: round(total, 1),
    matmul_share: total > 0 ? round(matmul / total, 4) : 0,
    by_op: Object.fromEntries([...ops].sort((a, b) => b[1].ms - a[1].ms).map(([op, v]) => [op, { ms: round(v.ms, 1), share: total > 0 ? round(v.ms / total, 4) : 0, calls: v.calls }])),
  };
}

const tensor = (t: TensorData): ort.Tensor => new ort.Tensor(t.type, t.data as never, [...t.dims]);

/** Feeds for each tower of `engine`: a batch of preprocessed images, and of texts tokenised and padded as the engine pads them. */
function towerFeeds(engine: Embedder, pixels: Float32Array, images: number, texts: readonly string[]): { vision: Feeds; text: Feeds; input: Record<string, number> } {
  const { vision, text, image, tokenizer } = engine.model;
  const size = image.size;
  const placeholders = (of: typeof vision.placeholders, n: number): Feeds => Object.fromEntries(Object.entries(of(n)).map(([k, v]) => [k, tensor(v)]));
  const rows = texts.map((t) => tokenizer.encode(t, true).ids);
  const width = Math.max(...rows.map((r) => r.length));
  const ids = new BigInt64Array(rows.length * width).fill(BigInt(tokenizer.padId));
  const mask = new BigInt64Array(rows.length * width);
  rows.forEach((row, b) => row.forEach((id, s) => ((ids[b * width + s] = BigInt(id)), (mask[b * width + s] = 1n))));
  const dims = [rows.length, width];
  return {
    vision: { ...placeholders(vision.placeholders, images), pixel_values: new ort.Tensor('float32', pixels.subarray(0, images * 3 * size * size), [images, 3, size, size]) },
    text: {
      ...placeholders(text.placeholders, rows.length),
      input_ids: new ort.Tensor('int64', ids, dims),
      ...(text.takesAttentionMask ? { attention_mask: new ort.Tensor('int64', mask, dims) } : {}),
      ...(text.takesTokenTypeIds ? { token_type_ids: new ort.Tensor('int64', new BigInt64Array(ids.length), dims) } : {}),
    },
    input: { images, image_size: size, texts: rows.length, tokens_each_padded: width },
  };
}

/**
 * The engine's graphs profiled as loaded (`rewritten`, when the rewrite fused anything) and as
 * shipped (`original`), on the same feeds: a batch of the bench's preprocessed images and of its
 * texts. What each rewrite fused is beside them.
 */
export async function rewriteProfile(engine: Embedder, pixels: Float32Array, images: number, texts: readonly string[], options: ProfileOptions): Promise<Record<string, unknown>> {
  const feeds = towerFeeds(engine, pixels, images, texts);
  const out: Record<string, unknown> = { input: feeds.input, threads: options.threads };
  for (const tower of ['vision', 'text'] as const) {
    const { session, file } = engine.model[tower];
    const rewrite = session.rewrite;
    if (!rewrite?.rewritten) {
      out[tower] = { fused: null, note: rewrite?.note ?? 'the graph rewrite is off', original: await profileGraph(file, feeds[tower], options) };
      continue;
    }
    const original = await profileGraph(rewrite.source, feeds[tower], options);
    const rewritten = await profileGraph(rewrite.rewritten, feeds[tower], options);
    out[tower] = {
      fused: rewrite.fused,
      original,
      rewritten,
      kernel_speedup: rewritten.kernels_ms > 0 ? round(original.kernels_ms / rewritten.kernels_ms, 3) : null,
      // The most a rewrite that leaves the MatMuls as they are could give: every other kernel free.
      bound_without_faster_matmul: original.matmul_share > 0 ? round(1 / original.matmul_share, 3) : null,
    };
  }
  return out;
}

/**
 * A q8 engine's graphs profiled as the peer runs them (the q8 files as shipped) and as tessera
 * runs them (the int8 form chosen for this CPU, under the graph rewrite), on the same feeds.
 */
export async function q8Profile(engine: Embedder, pixels: Float32Array, images: number, texts: readonly string[], options: ProfileOptions): Promise<Record<string, unknown>> {
  const feeds = towerFeeds(engine, pixels, images, texts);
  const out: Record<string, unknown> = { input: feeds.input, threads: options.threads };
  for (const tower of ['vision', 'text'] as const) {
    const { session, file, int8 } = engine.model[tower];
    const loaded = session.rewrite?.rewritten ?? int8?.file ?? file;
    const shipped = await profileGraph(file, feeds[tower], options);
    const ran = loaded === file ? shipped : await profileGraph(loaded, feeds[tower], options);
    out[tower] = {
      int8_variant: int8?.variant ?? 'as-is',
      fused: session.rewrite?.rewritten ? session.rewrite.fused : null,
      shipped,
      tessera: ran,
      kernel_speedup: ran.kernels_ms > 0 ? round(shipped.kernels_ms / ran.kernels_ms, 3) : null,
    };
  }
  return out;
}
