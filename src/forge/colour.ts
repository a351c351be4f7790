/**
 * Hand-set weights for the `colour` preset: a tiny jina-clip that knows colour words and the
 * colours of images, so end-to-end tests have answers known in advance. How it works is
 * explained in docs/colour-model.md; in short:
 *
 * - text: colour c's words embed as +a on dim 2c and -a on dim 2c+1, every other token as
 *   zero; all layers pass their input through, and mean pooling gives a multiple of
 *   t_c = e_2c - e_2c+1 (zero for a text without colour words).
 * - vision: the patch embedding writes each patch's mean normalised RGB n and a constant K
 *   as [n, K, -n, -K]; after LayerNorm that is the unit vector u = (n, K) / |(n, K)|. Block 0's
 *   SwiGLU scores u against each colour's prototype q_c, keeps s_c = q_c . u above a threshold
 *   (silu(g(s_c - tau)) * g(s_c - tau), roughly g^2 (s_c - tau)^2 for s_c > tau and ~0 below),
 *   and writes it as a +/- pair into the residual stream; mean pooling over patches and the
 *   head turn that into sum_c w_c t_c, so the nearest colour (largest s_c) dominates.
 */
import { elementCount, type ParamSpec, type WeightSource } from './graph.ts';
import { IMAGE_MEAN, IMAGE_STD } from './hub-files.ts';
import { visionMlpHidden, type Preset, type VisionDims } from './presets.ts';

export interface Colour {
  name: string;
  /** The prototype, sRGB 0-255: a solid image of exactly this colour is the clearest case. */
  rgb: readonly [number, number, number];
  /** Words that name it (the first is the canonical one). */
  words: readonly string[];
}

/** The colours the colour model knows, in the order of their embedding dimensions. */
export const COLOURS: readonly Colour[] = [
  { name: 'red', rgb: [255, 0, 0], words: ['red'] },
  { name: 'green', rgb: [0, 128, 0], words: ['green'] },
  { name: 'blue', rgb: [0, 0, 255], words: ['blue'] },
  { name: 'yellow', rgb: [255, 255, 0], words: ['yellow'] },
  { name: 'orange', rgb: [255, 165, 0], words: ['orange'] },
  { name: 'purple', rgb: [128, 0, 128], words: ['purple'] },
  { name: 'white', rgb: [255, 255, 255], words: ['white'] },
  { name: 'black', rgb: [0, 0, 0], words: ['black'] },
  { name: 'gray', rgb: [128, 128, 128], words: ['gray', 'grey'] },
];

/** The design constants; see docs/colour-model.md. */
export const COLOUR_MODEL = {
  /** Size of a colour word's embedding entries (LayerNorm removes it anyway). */
  wordAmplitude: 1,
  /** The brightness reference the patch embedding adds beside the three channel means. */
  brightness: 1,
  /** Slope g of the per-colour score g(q_c . u - tau). */
  gain: 20,
  /** Similarity below which a colour does not fire. */
  threshold: 0.4,
  /** Input of the constant SwiGLU units that steady the inner LayerNorm. */
  steadyInput: 10,
  /** Weight from the inner LayerNorm's colour units to the residual stream. */
  outputGain: 2,
  /** Residual dims 0-7 hold the pixel code [n, K, -n, -K]; colour c uses 8 + 2c and 9 + 2c. */
  pixelDims: 8,
} as const;

/** A pixel's normalised value, channel by channel, as the image processor produces it. */
export function normalisePixel(rgb: readonly number[]): [number, number, number] {
  return [0, 1, 2].map((c) => (rgb[c]! / 255 - IMAGE_MEAN[c]!) / IMAGE_STD[c]!) as [number, number, number];
}

/** The unit vector (n, K) / |(n, K)| the vision tower's block 0 sees for a patch of one colour. */
export function patchCode(normalised: readonly number[]): number[] {
  const v = [...normalised, COLOUR_MODEL.brightness];
  const length = Math.hypot(...v);
  return v.map((x) => x / length);
}

/** The token ids of each colour's words in `vocab`. */
export function colourTokenIds(vocab: readonly string[]): number[][] {
  const ids = new Map(vocab.map((token, id) => [token, id]));
  return COLOURS.map((colour) =>
    colour.words.map((word) => {
      const id = ids.get(word);
      if (id === undefined) throw new Error(`the vocabulary lacks the colour word "${word}"`);
      return id;
    }),
  );
}

export function colourWeights(preset: Preset, vocab: readonly string[]): WeightSource {
  return handSetWeights(handSetTensors(preset, vocab));
}

/** A weight source giving the hand-set tensors by name, and for every other param zero (LayerNorm gains: one). */
export function handSetWeights(set: ReadonlyMap<string, Float32Array>): WeightSource {
  return (param: ParamSpec) => {
    const data = set.get(param.name);
    if (data) return data;
    const out = new Float32Array(elementCount(param.dims));
    return param.init === 'scale' ? out.fill(1) : out;
  };
}

function handSetTensors(preset: Preset, vocab: readonly string[]): Map<string, Float32Array> {
  const { text, projectionDim } = preset;
  const n = COLOURS.length;
  if (text.hidden < 2 * n || projectionDim < 2 * n) {
    throw new Error(`the colour model needs room for ${n} colours: text hidden and projection >= ${2 * n}`);
  }
  const tensors = colourVisionTensors(preset.vision, projectionDim, '');

  // Text: colour words point along t_c; every other token is zero, which LayerNorm keeps zero
  // and zero attention / MLP weights pass through each post-LN layer unchanged.
  tensors.set('embeddings.word_embeddings.weight', colourWordEmbeddings(text.vocabSize, text.hidden, colourTokenIds(vocab)));
  return tensors;
}

/** The word embedding table: colour c's tokens (`idsPerColour[c]`) along t_c = +a e_2c - a e_2c+1, every other token zero. */
export function colourWordEmbeddings(vocabSize: number, hidden: number, idsPerColour: readonly (readonly number[])[]): Float32Array {
  const words = new Float32Array(vocabSize * hidden);
  idsPerColour.forEach((ids, c) => {
    for (const id of ids) {
      words[id * hidden + 2 * c] = COLOUR_MODEL.wordAmplitude;
      words[id * hidden + 2 * c + 1] = -COLOUR_MODEL.wordAmplitude;
    }
  });
  return words;
}

/**
 * The vision tower's hand-set tensors (names under `prefix`): the patch embedding's pixel
 * code, block 0's colour votes into residual dims 8 + 2c, 9 + 2c, and the head copying
 * them onto output dims 2c, 2c + 1. How the votes are pooled is the caller's: v1 pools the
 * mean over patches; v2 pools the CLS token and adds a gathering block (v2-colour.ts).
 */
export function colourVisionTensors(vision: VisionDims, projectionDim: number, prefix: string): Map<string, Float32Array> {
  const m = COLOUR_MODEL;
  const n = COLOURS.length;
  const width = vision.width;
  const hidden = visionMlpHidden(vision);
  const colourDim = (c: number): number => m.pixelDims + 2 * c;
  if (projectionDim < 2 * n || width < m.pixelDims + 2 * n || hidden < 2 + 2 * n) {
    throw new Error(`the colour model needs room for ${n} colours: projection >= ${2 * n}, vision width >= ${m.pixelDims + 2 * n}`);
  }
  const tensors = new Map<string, Float32Array>();
  const tensor = (name: string, size: number): Float32Array => {
    const t = new Float32Array(size);
    tensors.set(prefix + name, t);
    return t;
  };

  // Patch embedding: dims 0-2 the channel means of the normalised patch, 3 the constant K,
  // 4-7 their negatives (zero mean, so LayerNorm only rescales the code).
  const p = vision.patchSize;
  const kernel = tensor('patch_embed.proj.weight', width * 3 * p * p);
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < p * p; i++) {
      kernel[(c * 3 + c) * p * p + i] = 1 / (p * p);
      kernel[((4 + c) * 3 + c) * p * p + i] = -1 / (p * p);
    }
  }
  const kernelBias = tensor('patch_embed.proj.bias', width);
  kernelBias[3] = m.brightness;
  kernelBias[7] = -m.brightness;

  // Block 0's SwiGLU. LayerNorm turns the code into sqrt(width / 2) * [u, -u, 0...], so a
  // weight of +-g q / (2 sqrt(width / 2)) on those dims reads g (q . u).
  // Units: 0 and 1 are constants +-silu(steadyInput); 2 + c is colour c's score and
  // 2 + n + c its negative, so the inner LayerNorm sees zero mean and a floor on its scale.
  const w1 = tensor('blocks.0.mlp.w1.weight', width * hidden);
  const b1 = tensor('blocks.0.mlp.w1.bias', hidden);
  const w2 = tensor('blocks.0.mlp.w2.weight', width * hidden);
  const b2 = tensor('blocks.0.mlp.w2.bias', hidden);
  const w3 = tensor('blocks.0.mlp.w3.weight', hidden * width);
  b1[0] = m.steadyInput;
  b1[1] = m.steadyInput;
  b2[0] = 1;
  b2[1] = -1;
  const readScale = m.gain / (2 * Math.sqrt(width / 2));
  COLOURS.forEach((colour, c) => {
    const q = patchCode(normalisePixel(colour.rgb));
    for (const [unit, sign] of [[2 + c, 1], [2 + n + c, -1]] as const) {
      for (let i = 0; i < 4; i++) {
        w1[i * hidden + unit] = readScale * q[i]!;
        w1[(4 + i) * hidden + unit] = -readScale * q[i]!;
        w2[i * hidden + unit] = sign * readScale * q[i]!;
        w2[(4 + i) * hidden + unit] = -sign * readScale * q[i]!;
      }
      b1[unit] = -m.gain * m.threshold;
      b2[unit] = -sign * m.gain * m.threshold;
    }
    w3[(2 + c) * width + colourDim(c)] = m.outputGain;
    w3[(2 + c) * width + colourDim(c) + 1] = -m.outputGain;
  });

  // Head: colour c's residual pair onto the text's t_c dims.
  const head = tensor('head.weight', width * projectionDim);
  COLOURS.forEach((_, c) => {
    head[colourDim(c) * projectionDim + 2 * c] = 1;
    head[(colourDim(c) + 1) * projectionDim + 2 * c + 1] = 1;
  });
  return tensors;
}
