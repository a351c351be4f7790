/**
 * The hardware's ceiling as ONNX Runtime sees it: the best rate of large float32 MatMuls,
 * built with the forge's graph builder and run with the benchmark's thread count.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import '../src/model/ort-telemetry.ts';
import * as ort from 'onnxruntime-node';
import { GraphBuilder } from '../src/forge/graph.ts';
import { DataType } from '../src/forge/onnx-proto.ts';
import { randomWeights } from '../src/forge/random-weights.ts';
import { writeModel } from '../src/forge/writer.ts';

export interface CeilingResult {
  gflops: number;
  best_shape: string;
  shapes: { m: number; k: number; n: number; gflops: number }[];
}

async function matmulRate(dir: string, m: number, k: number, n: number, threads: number, seconds: number): Promise<number> {
  const g = new GraphBuilder('matmul');
  const a = g.input('a', DataType.FLOAT, [m, k]);
  const b = g.param('b', [k, n], 'weight');
  g.node('MatMul', [a, b], {}, 'c');
  g.output('c', DataType.FLOAT, [m, n]);
  const path = join(dir, `matmul-${m}x${k}x${n}.onnx`);
  await writeModel(path, g, randomWeights(1), { producerName: 'tessera-bench', producerVersion: '1', docString: '', metadata: {}, opsetVersion: 17, irVersion: 8 });
  const session = await ort.InferenceSession.create(path, { intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all' });
  try {
    const input = new ort.Tensor('float32', new Float32Array(m * k).fill(0.5), [m, k]);
    await session.run({ a: input });
    let runs = 0;
    const started = performance.now();
    let best = Infinity;
    while (performance.now() - started < seconds * 1000 || runs < 3) {
      const t = performance.now();
      await session.run({ a: input });
      best = Math.min(best, performance.now() - t);
      runs++;
    }
    return (2 * m * k * n) / (best / 1000) / 1e9;
  } finally {
    await session.release();
  }
}

/** Best GFLOP/s over a few shapes (the towers' own and a square one); `seconds` per shape. */
export async function measureCeiling(threads: number, seconds: number, square?: number): Promise<CeilingResult> {
  const dir = await mkdtemp(join(tmpdir(), 'tessera-ceiling-'));
  try {
    const shapes: CeilingResult['shapes'] = [];
    const list: (readonly [number, number, number])[] = square ? [[square, square, square]] : [[1576, 768, 2048], [2048, 768, 3072], [2048, 2048, 2048], [3072, 3072, 3072]];
    // Two rounds, best of each shape: this machine is shared and noisy.
    for (const [m, k, n] of [...list, ...list]) {
      const gflops = await matmulRate(dir, m, k, n, threads, seconds);
      const seen = shapes.find((s) => s.m === m && s.k === k && s.n === n);
      if (seen) seen.gflops = Math.max(seen.gflops, gflops);
      else shapes.push({ m, k, n, gflops });
    }
    const best = shapes.reduce((x, y) => (y.gflops > x.gflops ? y : x));
    return { gflops: best.gflops, best_shape: `${best.m}x${best.k}x${best.n}`, shapes };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
