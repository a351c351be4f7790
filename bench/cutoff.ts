/**
 * How well relevance cut-offs pick a query's relevant set, measured on a labelled set the
 * colour model (`--model demo`) gives known answers for: per queried colour a relevant set of
 * its own size (3 reds, 12 blues, 40 greens, 7 yellows, 25 purples, 8 blacks: shades, brightness
 * and noise vary, a small patch of another colour may sit in a corner), mixed images where the
 * colour covers only a part (25-50%: they score in between and are not relevant), and
 * distractors of the colours nobody queries. As with real models, the scores of a relevant hit
 * differ from query to query: yellows score 0.55-0.8 for "yellow" (orange is close), while dark
 * grays score 0.88 for "black". Each method keeps a prefix of each query's ranking; precision,
 * recall and F1 are averaged over the queries of several seeded sets.
 */
import sharp from 'sharp';
import type { Embedder } from '../src/engine/embedder.ts';
import { cosine } from '../src/engine/vectors.ts';
import { COLOURS } from '../src/forge/colour.ts';
import { xorshift32 } from '../src/random.ts';
import { applyCutoff, type Cutoff } from '../src/search/cutoff.ts';

/** Queried colour -> size of its relevant set. */
export const RELEVANT_SIZES: Readonly<Record<string, number>> = { red: 3, blue: 12, green: 40, yellow: 7, purple: 25, black: 8 };
const MIXED_PER_QUERY = 8;
const DISTRACTORS_PER_COLOUR = 15;
const SIZE = 64;

interface LabelledImage {
  id: string;
  /** The colour it is relevant to, if any. */
  relevantTo?: string;
  bytes: Buffer;
}

const rgbOf = (name: string) => COLOURS.find((c) => c.name === name)!.rgb;

/**
 * An image whose left `share` of columns is `main` (shade scaled by `brightness`) and the rest
 * `other`, each pixel with uniform noise of +-`noise`; `patch` puts a square of `patchColour`
 * covering about that share of the area in a corner.
 */
async function painted(random: () => number, main: string, share: number, other: string, brightness: number, noise: number, patch?: { colour: string; share: number }): Promise<Buffer> {
  const data = Buffer.alloc(SIZE * SIZE * 3);
  const side = patch ? Math.round(SIZE * Math.sqrt(patch.share)) : 0;
  for (let y = 0; y < SIZE; y++) {
    for (let x = 0; x < SIZE; x++) {
      const inPatch = patch && x >= SIZE - side && y >= SIZE - side;
      const rgb = inPatch ? rgbOf(patch.colour) : x < share * SIZE ? rgbOf(main).map((v) => v * brightness) : rgbOf(other);
      for (let c = 0; c < 3; c++) data[(y * SIZE + x) * 3 + c] = Math.max(0, Math.min(255, Math.round(rgb[c]! + (random() * 2 - 1) * noise)));
    }
  }
  return sharp(data, { raw: { width: SIZE, height: SIZE, channels: 3 } }).png().toBuffer();
}

export async function labelledImages(seed: number): Promise<LabelledImage[]> {
  // xorshift32: the set is the same on every machine.
  const random = xorshift32(seed);
  const queried = Object.keys(RELEVANT_SIZES);
  const others = COLOURS.map((c) => c.name).filter((n) => !queried.includes(n));
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(random() * xs.length)]!;
  const out: LabelledImage[] = [];
  for (const [colour, n] of Object.entries(RELEVANT_SIZES)) {
    for (let i = 0; i < n; i++) {
      const patch = random() < 0.5 ? { colour: pick(others), share: 0.05 + random() * 0.15 } : undefined;
      out.push({ id: `${colour}-${i}`, relevantTo: colour, bytes: await painted(random, colour, 1, colour, 0.55 + random() * 0.45, 10 + random() * 50, patch) });
    }
    // The rest of a mixed image is a colour nobody queries, so it is relevant to no query.
    for (let i = 0; i < MIXED_PER_QUERY; i++) {
      out.push({ id: `${colour}-mixed-${i}`, bytes: await painted(random, colour, 0.25 + random() * 0.25, pick(others), 0.8 + random() * 0.2, 10 + random() * 40) });
    }
  }
  for (const colour of others) {
    for (let i = 0; i < DISTRACTORS_PER_COLOUR; i++) {
      out.push({ id: `other-${colour}-${i}`, bytes: await painted(random, colour, 1, colour, 0.7 + random() * 0.3, 10 + random() * 50) });
    }
  }
  return out;
}

export interface MethodScore {
  method: string;
  precision: number;
  recall: number;
  f1: number;
  /** Per query: kept, relevant kept, relevant. */
  queries: Record<string, { kept: number; hits: number; relevant: number; f1: number }>;
}

export interface CutoffReport {
  /** Images in all the seeded sets together. */
  images: number;
  relevant: Readonly<Record<string, number>>;
  methods: MethodScore[];
  /** The fixed min_score with the best mean F1 over the queries, found by trying every score seen. */
  best_min_score: number;
}

/**
 * Queries each seeded set by the colour words, ranks its images (exact cosine, as the stores'
 * exact search does), and scores each method's cut of the best `k`.
 */
export async function measureCutoffs(embedder: Embedder, seeds: readonly number[] = [1, 2, 3, 4, 5, 6, 7, 8], k = 100): Promise<CutoffReport> {
  const colours = Object.keys(RELEVANT_SIZES);
  const queryVectors = (await embedder.embed(colours.map((q) => ({ text: q })))).map((e) => e.embedding);
  const queries: string[] = [];
  const rankings: { id: string; relevant: boolean; score: number }[][] = [];
  const relevantCount: number[] = [];
  let imageCount = 0;
  for (const seed of seeds) {
    const images = await labelledImages(seed);
    imageCount += images.length;
    const imageVectors = (await embedder.embed(images.map((i) => ({ image: i.bytes })))).map((e) => e.embedding);
    colours.forEach((q, qi) => {
      queries.push(`${q}#${seed}`);
      relevantCount.push(images.filter((i) => i.relevantTo === q).length);
      rankings.push(
        images
          .map((img, i) => ({ id: img.id, relevant: img.relevantTo === q, score: cosine(queryVectors[qi]!, imageVectors[i]!) }))
          .sort((a, b) => b.score - a.score)
          .slice(0, k),
      );
    });
  }

  const score = (method: string, keep: (ranking: (typeof rankings)[number]) => { relevant: boolean }[]): MethodScore => {
    const perQuery: MethodScore['queries'] = {};
    let p = 0, r = 0, f = 0;
    rankings.forEach((ranking, qi) => {
      const kept = keep(ranking);
      const hits = kept.filter((h) => h.relevant).length;
      const precision = kept.length === 0 ? 0 : hits / kept.length;
      const recall = hits / relevantCount[qi]!;
      const f1 = precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall);
      perQuery[queries[qi]!] = { kept: kept.length, hits, relevant: relevantCount[qi]!, f1: round(f1) };
      p += precision; r += recall; f += f1;
    });
    const n = rankings.length;
    return { method, precision: round(p / n), recall: round(r / n), f1: round(f / n), queries: perQuery };
  };
  const cut = (cutoff: Cutoff) => (ranking: (typeof rankings)[number]) => applyCutoff(ranking, cutoff);
  const fixed = (min: number) => (ranking: (typeof rankings)[number]) => ranking.filter((h) => h.score >= min);

  const thresholds = [...new Set(rankings.flat().map((h) => h.score))];
  let best = score('min_score', fixed(1));
  let bestMin = 1;
  for (const t of thresholds) {
    const s = score('min_score', fixed(t));
    if (s.f1 > best.f1) [best, bestMin] = [s, t];
  }
  best.method = `min_score ${round(bestMin)} (the best single value)`;
  return {
    images: imageCount,
    relevant: RELEVANT_SIZES,
    methods: [score('auto', cut({ kind: 'auto' })), score('relative 0.9', cut({ kind: 'relative', ratio: 0.9 })), score('relative 0.8', cut({ kind: 'relative', ratio: 0.8 })), best],
    best_min_score: round(bestMin),
  };
}

const round = (x: number) => Math.round(x * 10_000) / 10_000;
