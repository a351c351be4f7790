/**
 * Which form of a quantised graph to run on this CPU.
 *
 * planInt8 decides from the CPU's features (cpu.ts) and the graph's weights (convert.ts):
 *   - VNNI / AMX ('exact-s8'): int8 weights, always: exact there and the fastest kernel. A
 *     uint8 file (the hub's vision towers, jina-clip-v2's whole graph) is made signed
 *     (toSigned: w - 128, the same products to the bit).
 *   - AVX2 or AVX512BW without VNNI ('saturating-s8'): no form is both fastest and exact, so
 *     it is measured: the file as it is, its exact unsigned form where it has int8 weights,
 *     its 7-bit signed form (never saturates), and (allowSaturating) its 8-bit signed form.
 *     measureVariants times them interleaved against fp32 and pickVariant takes the fastest
 *     whose every item keeps cosine >= minCosine (0.99) to fp32.
 *   - arm64 and anything else: the file as it is.
 */
import type { Int8Summary, Int8Variant } from './convert.ts';
import { int8KernelClass, type CpuInt8Features, type Int8KernelClass } from './cpu.ts';

/** Every q8 variant must keep at least this cosine to fp32 on every item measured. */
export const MIN_COSINE = 0.99;

/**
 * A rewrite must be this much faster than the file as it is to be chosen: on a loaded machine
 * two sessions of one file differed by up to 9% (docs/measurements/int8.json, its noise pairs).
 */
export const MIN_GAIN = 0.1;

export interface Int8Plan {
  kernel: Int8KernelClass;
  /** `fixed`: apply `variant`; `measure`: time `candidates` (measureVariants, pickVariant). */
  decision: 'fixed' | 'measure';
  /** The variant to apply (fixed plans). */
  variant?: Int8Variant;
  /** The variants to measure (measure plans), the file as it is first. */
  candidates: Int8Variant[];
  reason: string;
}

export interface PlanOptions {
  /**
   * On CPUs whose s8 kernel saturates, also measure the 8-bit signed form (default false: its
   * error depends on the inputs, so a few items measured cannot bound it; 7-bit can't saturate).
   */
  allowSaturating?: boolean;
}

export function planInt8(features: CpuInt8Features, weights: Int8Summary, options: PlanOptions = {}): Int8Plan {
  const kernel = int8KernelClass(features);
  const fixed = (variant: Int8Variant, reason: string): Int8Plan => ({ kernel, decision: 'fixed', variant, candidates: [variant], reason });
  if (weights.uint8 + weights.int8 === 0) return fixed('as-is', 'the graph has no 8-bit weights on integer ops');
  switch (kernel) {
    case 'exact-s8':
      return weights.uint8 > 0
        ? fixed('signed', `${features.flags.filter((f) => /vnni|amx/.test(f)).join(', ')}: int8 weights are exact and the fastest; ${weights.uint8} uint8 weights made int8 (w - 128, the same products)`)
        : fixed('as-is', 'VNNI/AMX and the weights are int8 already');
    case 'saturating-s8': {
      const candidates: Int8Variant[] = ['as-is'];
      if (weights.int8 > 0) candidates.push('unsigned');
      if (options.allowSaturating && weights.uint8 > 0) candidates.push('signed');
      candidates.push('signed-7bit');
      return {
        kernel,
        decision: 'measure',
        candidates,
        reason: 'no VNNI/AMX: the int8 kernel (vpmaddubsw) saturates pairs of products in 16 bits and uint8 weights take the slower exact kernel; measured',
      };
    }
    case 'arm':
      return fixed('as-is', 'arm64: the int8 dot-product kernels are exact for either weight type');
    case 'other':
      return fixed('as-is', 'no AVX2: the plain int8 kernels');
  }
}

/** One timed run of a variant (or of fp32, the reference) on the measuring items. */
export interface VariantRun {
  /** Wall time of the run, ms. */
  ms: number;
  /** One embedding per item, in the same order for every variant. */
  outputs: Float32Array[];
}

/** Runs `variant` (or 'fp32') once; `round` counts from 0. */
export type VariantRunner<V extends string = Int8Variant> = (variant: V | 'fp32', round: number) => Promise<VariantRun>;

export interface MeasuredVariant<V extends string = Int8Variant> {
  variant: V | 'fp32';
  /** Fastest run, ms (on a shared machine the best of N is the least disturbed). */
  bestMs: number;
  medianMs: number;
  runsMs: number[];
  /** Cosine to fp32 of each item, and the least of them (1 for fp32 itself). */
  cosines: number[];
  minCosine: number;
  passes: boolean;
}

export interface MeasureOptions {
  /** Timed rounds; each runs every variant once, in an order rotated per round (default 4). */
  rounds?: number;
  minCosine?: number;
  /** Untimed runs of each variant first (default 1). */
  warmup?: number;
}

/** Cosine of two outputs; two all-zero outputs agree (1). */
export function outputCosine(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    aa += a[i]! * a[i]!;
    bb += b[i]! * b[i]!;
  }
  return aa === 0 || bb === 0 ? (aa === bb ? 1 : 0) : dot / Math.sqrt(aa * bb);
}

function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/**
 * Times fp32 and `candidates` interleaved (round r runs them in an order rotated by r, so a
 * burst of load from elsewhere falls on all of them) and scores each against fp32's outputs.
 */
export async function measureVariants<V extends string = Int8Variant>(candidates: readonly V[], run: VariantRunner<V>, options: MeasureOptions = {}): Promise<MeasuredVariant<V>[]> {
  const rounds = options.rounds ?? 4;
  const minCosine = options.minCosine ?? MIN_COSINE;
  const all: (V | 'fp32')[] = ['fp32', ...candidates];
  const outputs = new Map<V | 'fp32', Float32Array[]>();
  const times = new Map<V | 'fp32', number[]>(all.map((v) => [v, []]));
  for (let w = 0; w < (options.warmup ?? 1); w++) {
    for (const v of all) {
      const r = await run(v, -1 - w);
      if (!outputs.has(v)) outputs.set(v, r.outputs);
    }
  }
  for (let round = 0; round < rounds; round++) {
    const order = all.map((_, k) => all[(k + round) % all.length]!);
    for (const v of order) {
      const r = await run(v, round);
      if (!outputs.has(v)) outputs.set(v, r.outputs);
      times.get(v)!.push(r.ms);
    }
  }
  const reference = outputs.get('fp32')!;
  return all.map((variant) => {
    const out = outputs.get(variant)!;
    if (out.length !== reference.length) throw new Error(`${variant} gave ${out.length} outputs, fp32 ${reference.length}`);
    const cosines = out.map((o, k) => outputCosine(reference[k]!, o));
    const minC = Math.min(...cosines);
    const runsMs = times.get(variant)!;
    return { variant, bestMs: Math.min(...runsMs), medianMs: median(runsMs), runsMs, cosines, minCosine: minC, passes: minC >= minCosine };
  });
}

export interface Int8Choice<V extends string = Int8Variant> {
  /** The variant to run; 'fp32' when no q8 variant holds the cosine bound. */
  chosen: V | 'fp32';
  reason: string;
}

export interface PickOptions {
  minCosine?: number;
  /**
   * A rewrite is chosen over the file as it is only when its best time is at least this much
   * faster (default MIN_GAIN).
   */
  minGain?: number;
}

/** The fastest q8 variant that holds the cosine bound (fp32 results are ignored but for the reason). */
export function pickVariant<V extends string = Int8Variant>(results: readonly MeasuredVariant<V>[], options: PickOptions = {}): Int8Choice<V> {
  const minCosine = options.minCosine ?? MIN_COSINE;
  const minGain = options.minGain ?? MIN_GAIN;
  const q8 = results.filter((r) => r.variant !== 'fp32');
  const passing = q8.filter((r) => r.minCosine >= minCosine).sort((a, b) => a.bestMs - b.bestMs);
  const fmt = (r: MeasuredVariant<V>): string => `${r.variant} ${r.bestMs.toFixed(0)} ms, min cosine ${r.minCosine.toFixed(4)}`;
  if (passing.length === 0) {
    return { chosen: 'fp32', reason: `no q8 variant keeps cosine >= ${minCosine} on every item (${q8.map(fmt).join('; ')})` };
  }
  const fastest = passing[0]!;
  const asIs = passing.find((r) => r.variant === 'as-is');
  if (asIs && asIs !== fastest && asIs.bestMs <= fastest.bestMs * (1 + minGain)) {
    return { chosen: asIs.variant, reason: `${fmt(asIs)}: within ${(minGain * 100).toFixed(0)}% of the fastest (${fmt(fastest)})` };
  }
  const rejected = q8.filter((r) => r.minCosine < minCosine);
  return {
    chosen: fastest.variant,
    reason: `${fmt(fastest)}: the fastest that keeps cosine >= ${minCosine}` + (rejected.length ? ` (rejected: ${rejected.map(fmt).join('; ')})` : ''),
  };
}
