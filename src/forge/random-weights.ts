/** The weight source of the random presets: seeded normals, std 0.02, one stream per tensor. */
import { elementCount, type WeightSource } from './graph.ts';
import { fillNormal, tensorSeed } from './random.ts';

export const RANDOM_STD = 0.02;

export function randomWeights(seed: number, std = RANDOM_STD): WeightSource {
  return (param) => {
    const out = new Float32Array(elementCount(param.dims));
    // LayerNorm gains around one; everything else, biases included, around zero.
    return fillNormal(out, tensorSeed(seed, param.name), std, param.init === 'scale' ? 1 : 0);
  };
}
