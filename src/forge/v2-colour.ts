/**
 * Hand-set weights for the `v2-colour` preset: the colour model of colour.ts in jina-clip-v2's
 * architecture, knowing its colour words in eight languages (v2-colour-words.ts). Explained
 * in docs/colour-model.md; in short:
 *
 * - text: every vocabulary piece meaning colour c embeds as +a on dim 2c and -a on dim 2c+1,
 *   every other piece as zero; all layers pass their input through (zero weights, post-LN
 *   keeps the pattern), and mean pooling over non-pad tokens gives a multiple of
 *   t_c = e_2c - e_2c+1, with or without the task instruction in front.
 * - vision: block 0 votes for each patch's colour exactly as v1 (colourVisionTensors), into
 *   residual dims 8 + 2c, 9 + 2c of every patch token. v2 pools the CLS token, not the mean
 *   of the patches, so the last block gathers the votes into it: its q and k are zero, so
 *   every token attends uniformly to all tokens, and its v and output projection copy the
 *   vote dims, which puts the mean of every token's votes into the CLS token. The head then
 *   copies them onto t_c as in v1.
 */
import { colourVisionTensors, colourWordEmbeddings, COLOUR_MODEL, COLOURS, handSetWeights } from './colour.ts';
import type { WeightSource } from './graph.ts';
import { colourPieces } from './v2-colour-words.ts';
import type { V2Preset } from './v2-presets.ts';
import { WORD_START, type ScoredPiece } from './v2-vocab.ts';

/** Token ids of the pieces meaning each colour, index = COLOURS index. */
export function v2ColourTokenIds(vocab: readonly ScoredPiece[]): number[][] {
  const ids = new Map(vocab.map(([piece], id) => [piece, id]));
  return colourPieces(WORD_START).map((pieces) =>
    pieces.map((piece) => {
      const id = ids.get(piece.normalize('NFKC'));
      if (id === undefined) throw new Error(`the vocabulary lacks the colour piece "${piece}"`);
      return id;
    }),
  );
}

export function v2ColourWeights(preset: V2Preset, vocab: readonly ScoredPiece[]): WeightSource {
  const { text, vision, projectionDim } = preset;
  const m = COLOUR_MODEL;
  const n = COLOURS.length;
  if (text.hidden < 2 * n) throw new Error(`the colour model needs room for ${n} colours: text hidden >= ${2 * n}`);
  if (vision.layers < 2) throw new Error('the v2 colour model needs a second vision block to gather the votes into the CLS token');
  const tensors = colourVisionTensors(vision, projectionDim, 'vision_model.');

  tensors.set('text_model.roberta.embeddings.word_embeddings.weight', colourWordEmbeddings(text.vocabSize, text.hidden, v2ColourTokenIds(vocab)));

  // The gathering block: identity on the vote dims in v and in the output projection.
  const width = vision.width;
  const gather = `vision_model.blocks.${vision.layers - 1}.attn`;
  const value = new Float32Array(width * width);
  const output = new Float32Array(width * width);
  for (let dim = m.pixelDims; dim < m.pixelDims + 2 * n; dim++) {
    value[dim * width + dim] = 1;
    output[dim * width + dim] = 1;
  }
  tensors.set(`${gather}.v_proj.weight`, value);
  tensors.set(`${gather}.proj.weight`, output);
  return handSetWeights(tensors);
}
