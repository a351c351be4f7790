// Shared by the int8 tests: forged tiny models (fp32, the forge's q8 and the hub-like q8), and
// running a graph from bytes on fixed inputs.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { forgeModel } from '../../src/forge/index.ts';
import { cosine } from '../../src/engine/vectors.ts';
import { tempDir } from '../helpers/models.ts';

const built = new Map<string, Promise<string>>();

/** A forged tiny model with its q8 variant (`forge` or `hub-like`), once per test file. */
export function forgedTiny(style: 'forge' | 'hub-like'): Promise<string> {
  if (!built.has(style)) {
    built.set(style, (async () => {
      const dir = await tempDir(`tessera-int8-${style}-`);
      await forgeModel({ preset: 'tiny', outDir: dir, quantized: true, q8Style: style });
      return dir;
    })());
  }
  return built.get(style)!;
}

export type Tower = 'vision' | 'text';

export async function graphBytes(dir: string, tower: Tower, quantized: boolean): Promise<Uint8Array> {
  return readFile(join(dir, 'onnx', `${tower}_model${quantized ? '_quantized' : ''}.onnx`));
}

/** Fixed inputs: 3 images of smooth patterns (normalised range) or 3 token sequences. */
export function feeds(tower: Tower): { feeds: Record<string, ort.Tensor>; items: number } {
  if (tower === 'vision') {
    const n = 3;
    const size = 3 * 224 * 224;
    const data = new Float32Array(n * size);
    for (let k = 0; k < n; k++) for (let i = 0; i < size; i++) data[k * size + i] = 1.8 * Math.sin((i % 224) * (0.02 + 0.01 * k) + Math.floor(i / 224) * 0.013 * (k + 1));
    return { feeds: { pixel_values: new ort.Tensor('float32', data, [n, 3, 224, 224]) }, items: n };
  }
  const rows = [[101, 7, 42, 99, 5, 102], [101, 300, 12, 8, 102, 0], [101, 999, 4, 102, 0, 0]];
  const ids = BigInt64Array.from(rows.flat(), BigInt);
  const mask = BigInt64Array.from(rows.flat(), (v, i) => (v !== 0 || i % 6 === 0 ? 1n : 0n));
  return { feeds: { input_ids: new ort.Tensor('int64', ids, [3, 6]), attention_mask: new ort.Tensor('int64', mask, [3, 6]) }, items: 3 };
}

/** Runs a graph (bytes) on the tower's fixed inputs: one output vector per item. */
export async function run(bytes: Uint8Array, tower: Tower): Promise<Float32Array[]> {
  const session = await ort.InferenceSession.create(bytes, { graphOptimizationLevel: 'basic', intraOpNumThreads: 1 });
  try {
    const { feeds: f, items } = feeds(tower);
    const out = (await session.run(f))[session.outputNames[0]!]!.data as Float32Array;
    const dim = out.length / items;
    return Array.from({ length: items }, (_, k) => out.slice(k * dim, (k + 1) * dim));
  } finally {
    await session.release();
  }
}

export function minCosine(a: Float32Array[], b: Float32Array[]): number {
  return Math.min(...a.map((x, k) => cosine(x, b[k]!)));
}

export function identical(a: Float32Array[], b: Float32Array[]): boolean {
  return a.length === b.length && a.every((x, k) => x.length === b[k]!.length && x.every((v, i) => Object.is(v, b[k]![i])));
}
