/**
 * int8 at load: what the loader (load.ts) runs on a q8 graph before the graph rewrite.
 *
 * prepareInt8(file): the form of a quantised graph best for this CPU (choose.ts's plan):
 *   - VNNI / AMX: the signed form (uint8 weights as w - 128: the same products, exact there and
 *     the fastest kernel); fixed, nothing measured.
 *   - AVX2 / AVX512BW without VNNI: measured. The file as it is, its unsigned form (when it has
 *     int8 weights) and its 7-bit signed form run the probe (probe.ts) interleaved; each is held
 *     to cosine >= MIN_COSINE on every item, to the fp32 graph of the same folder when there is
 *     one, else to the file as it is; the fastest that holds is chosen, the file as it is
 *     unless a form is MIN_GAIN faster. The measurement is cached: keyed by the file's contents,
 *     the CPU's model and int8 flags, and INT8_LOAD_VERSION, so later loads only stat files.
 *   - arm64, no AVX2, no 8-bit weights: the file as it is.
 *   A setting (--int8, TESSERA_INT8) other than `auto` forces a form.
 *
 * prepareQuantized(fp32 file): `--dtype q8` for a folder that has only fp32 graphs: quantizeMatMuls
 * (int8 per output column), with the layers that cost the most accuracy left in float until every
 * probe item keeps cosine >= MIN_COSINE to fp32 (selectFloatWeights); cached the same way. Its
 * result is then a q8 file like any other: prepareInt8 runs on it.
 *
 * The derived files go where src/model/derived.ts puts them (beside the model, or in
 * $XDG_CACHE_HOME/tessera/int8-load/), stamped, written to temporary names and renamed.
 */
import { readFile, rm } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve } from 'node:path';
import {
  derivedCacheRoot,
  derivedHome,
  escapeRegExp,
  fileStamp,
  findStamp,
  partialPath,
  placeDerived,
  removeStale,
  sha256File,
  shortHash,
  syncFile,
  writeChunksAtomically,
  writeStamp,
  type DerivedHome,
  type FileStamp,
} from '../derived.ts';
import { invalidArgument } from '../../errors.ts';
import { OnnxModel } from '../rewrite/model.ts';
import { createSession, planOutput, type Session, type SessionSettings } from '../session.ts';
import { measureVariants, MIN_COSINE, outputCosine, pickVariant, planInt8, type MeasuredVariant } from './choose.ts';
import { applyVariant, INT8_VARIANTS, summarizeInt8, type Int8Variant } from './convert.ts';
import { detectCpuInt8Features, int8KernelClass, type CpuInt8Features, type Int8KernelClass } from './cpu.ts';
import { OnnxFile } from './onnx-file.ts';
import type { ProbeBatch } from './probe.ts';
import { floatMatMulWeights, QUANTIZE_VERSION, quantizeCacheKey, quantizeMatMuls, selectFloatWeights } from './quantize.ts';

/** Bump when what prepareInt8 decides or writes changes: cached decisions of older versions are remade. */
export const INT8_LOAD_VERSION = 2;

/** `auto` (by the CPU, measured where that is needed) or a form to run whatever the CPU. */
export type Int8Setting = 'auto' | Int8Variant;
export const INT8_SETTINGS: readonly Int8Setting[] = ['auto', ...INT8_VARIANTS];

/**
 * The setting in force: `setting` when given (--int8), else the environment's TESSERA_INT8, else
 * `auto`. Throws INVALID_ARGUMENT on anything else.
 */
export function int8Setting(setting?: string, env: NodeJS.ProcessEnv = process.env): Int8Setting {
  const [name, raw] = setting !== undefined ? ['int8', setting] : ['TESSERA_INT8', env.TESSERA_INT8];
  const value = raw?.trim().toLowerCase();
  if (value === undefined || value === '') return 'auto';
  if ((INT8_SETTINGS as readonly string[]).includes(value)) return value as Int8Setting;
  throw invalidArgument(name, INT8_SETTINGS.join(' | '), raw);
}

/** Timed rounds of the measurement (after one warm-up run of each form). */
export const MEASURE_ROUNDS = 3;

export interface VariantFigures {
  variant: Int8Variant | 'fp32';
  /** Least and median CPU time of one pass over the probe, ms (what the choice compares; see runProbe). */
  bestMs: number;
  medianMs: number;
  /** Least wall time of one pass over the probe, ms. */
  wallMs: number;
  /** Least cosine of any probe item to the reference (1 for the reference itself). */
  minCosine: number;
  passes: boolean;
}

/** What prepareInt8 chose for one graph file, and why. */
export interface Int8Report {
  version: number;
  /** The graph file as given. */
  source: string;
  /** The file loaded instead (the chosen form), or null when the source runs as it is. */
  file: string | null;
  setting: Int8Setting;
  kernel: Int8KernelClass;
  cpu: { model: string; flags: string[] };
  /** fixed: by the CPU alone; measured: by measurement; forced: by the setting. */
  decision: 'fixed' | 'measured' | 'forced';
  variant: Int8Variant;
  reason: string;
  /** 8-bit weights of the integer ops in the source. */
  weights: { uint8: number; int8: number };
  /** Measured decisions: what the cosines were taken against ('fp32': the folder's fp32 graph). */
  reference?: 'fp32' | 'as-is';
  /** Measured decisions: each form (and the reference), as measured. */
  measured?: VariantFigures[];
  /** Probe items and timed rounds of the measurement. */
  items?: number;
  rounds?: number;
  /** Seconds the decision took when it was made (measurement and conversion). */
  seconds?: number;
  /** True when read from the cache (nothing parsed or measured this time). */
  cached: boolean;
}

/** What the int8 steps need besides the file. */
export interface Int8Options {
  setting?: Int8Setting;
  /** The CPU's features (default: this machine's, from /proc/cpuinfo). */
  cpu?: CpuInt8Features;
  /** The fp32 graph of the same model, when the folder has it: the reference of the measurement. */
  reference?: string;
  /** The measuring inputs (probe.ts). */
  probe: readonly ProbeBatch[];
  /** Settings of the measuring sessions (threads, optimisation level): those the model will run with. */
  session?: SessionSettings;
  /** Where derived files go when the model's folder cannot take them (default $XDG_CACHE_HOME/tessera/int8-load). */
  cacheRoot?: string;
  /** Use the cache folder even when the model's folder is writable (tests). */
  forceCacheRoot?: boolean;
  rounds?: number;
}

interface Int8Stamp {
  version: number;
  setting: Int8Setting;
  cpu: { model: string; flags: string[] };
  /** The source, its external data and the reference: relative to the source's folder. */
  files: FileStamp[];
  /** The chosen form's file, relative to the stamp's folder. */
  derived: FileStamp[];
  report: Omit<Int8Report, 'file' | 'source' | 'cached'> & { file: string | null };
}

function cpuOf(features: CpuInt8Features): { model: string; flags: string[] } {
  return { model: features.model, flags: [...features.flags] };
}

/** External data files a graph references (relative to its folder). */
function externalLocations(path: string): string[] {
  const m = new OnnxModel(path);
  try {
    return m.externalLocations();
  } finally {
    m.close();
  }
}

/** Stamps of a graph and its external data, named relative to `dir` (the folder the stamp reads them from). */
async function graphStamps(dir: string, path: string): Promise<{ stamps: FileStamp[]; names: string[] }> {
  const names = [relative(dir, path), ...externalLocations(path).map((l) => relative(dir, join(dirname(path), l)))];
  return { stamps: await Promise.all(names.map((n) => fileStamp(dir, n))), names };
}

function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/**
 * Runs the probe on a session: one output vector per item (in probe order), and the time it
 * took: `ms` the process's CPU time (user + system, every thread: ONNX Runtime's too), which
 * other jobs on the machine disturb far less than wall time (a thread descheduled adds wall
 * time, not CPU time; the measuring sessions do not spin), and `wallMs`.
 */
async function runProbe(session: Session, file: string, probe: readonly ProbeBatch[]): Promise<{ ms: number; wallMs: number; outputs: Float32Array[] }> {
  const outputs: Float32Array[] = [];
  let ms = 0;
  let wallMs = 0;
  for (const batch of probe) {
    const feeds = Object.fromEntries(Object.entries(batch.feeds).filter(([name]) => session.inputNames.includes(name)));
    const output = planOutput(session, batch.modality, file).name;
    const started = performance.now();
    const cpu = process.cpuUsage();
    const result = await session.run(feeds, [output]);
    const used = process.cpuUsage(cpu);
    ms += (used.user + used.system) / 1000;
    wallMs += performance.now() - started;
    const data = result[output]!.data as Float32Array;
    const dim = data.length / batch.items;
    for (let k = 0; k < batch.items; k++) outputs.push(data.slice(k * dim, (k + 1) * dim));
  }
  return { ms, wallMs, outputs };
}

/** A session for measuring: as the model will run, without the graph rewrite (it runs on the result). */
function measuringSession(path: string, settings: SessionSettings = {}): Promise<Session> {
  return createSession(path, { ...settings, executionProviders: ['cpu'], graphRewrite: false, spinning: false, log: () => undefined });
}

/**
 * The form of the quantised graph at `path` to run on this CPU (see the top of this file), made
 * and cached when it is not the file itself. Throws when the file cannot be read or a form
 * cannot be made (the caller then runs the file as it is).
 */
export async function prepareInt8(path: string, options: Int8Options): Promise<Int8Report> {
  const setting = options.setting ?? 'auto';
  const features = options.cpu ?? detectCpuInt8Features();
  const kernel = int8KernelClass(features);
  const cpu = cpuOf(features);
  if (setting === 'as-is') {
    return { version: INT8_LOAD_VERSION, source: path, file: null, setting, kernel, cpu, decision: 'forced', variant: 'as-is', reason: 'the setting asks for the file as it is', weights: { uint8: -1, int8: -1 }, cached: false };
  }
  const at = await derivedHome(path, options.cacheRoot ?? derivedCacheRoot('int8-load'));
  // One decision per setting and CPU: a folder shared by machines keeps one for each.
  const tag = shortHash(`${INT8_LOAD_VERSION}\n${setting}\n${cpu.model}\n${cpu.flags.join(',')}`, 8);
  const stampName = `${basename(at.real)}.int8-${tag}.json`;
  const found = await findStamp<Int8Stamp>(at, stampName, (s) =>
    s.version === INT8_LOAD_VERSION && s.setting === setting && s.cpu?.model === cpu.model && s.cpu?.flags?.join(',') === cpu.flags.join(',') && typeof s.report === 'object' && s.report !== null,
  );
  if (found) {
    const { report } = found.stamp;
    return { ...report, source: path, file: report.file && join(found.where, report.file), cached: true };
  }

  const started = performance.now();
  const source = await graphStamps(at.dir, at.source);
  const reference = options.reference ? await graphStamps(at.dir, options.reference) : undefined;
  const hashes = await Promise.all(source.names.map((n) => sha256File(resolve(at.dir, n))));
  const contentKey = shortHash(`${INT8_LOAD_VERSION}\n${hashes.join('\n')}`);
  const bytes = await readFile(at.source);
  const summary = summarizeInt8(OnnxFile.parse(bytes, at.dir));
  const weights = { uint8: summary.uint8, int8: summary.int8 };
  const stem = basename(at.real).replace(/\.onnx$/, '');
  const formName = (variant: Int8Variant): string => `${stem}.int8-v${INT8_LOAD_VERSION}-${variant}-${contentKey}.onnx`;
  let placement: { where: string } | undefined;
  const place = async (): Promise<string> => {
    placement ??= await placeDerived(at, externalLocations(at.source), { keepNames: true, forceCacheRoot: options.forceCacheRoot });
    return placement.where;
  };
  /** Writes `variant` of the source (skipping it when nothing converts); returns its path, or null. */
  const makeForm = async (variant: Int8Variant, candidate = false): Promise<string | null> => {
    if (variant === 'as-is') return null;
    const model = OnnxFile.parse(bytes, at.dir);
    const converted = applyVariant(model, variant);
    if (converted.converted.length === 0) return null;
    const out = join(await place(), formName(variant));
    // Candidates are synced to disk only once chosen (below): the others are deleted.
    await writeChunksAtomically(out, model.chunks(), !candidate);
    return out;
  };

  const base = { version: INT8_LOAD_VERSION, setting, kernel, cpu, weights };
  let report: Omit<Int8Report, 'source' | 'cached'>;
  if (setting !== 'auto') {
    const file = await makeForm(setting);
    report = { ...base, file, decision: 'forced', variant: file ? setting : 'as-is', reason: file ? `the setting asks for ${setting}` : `the setting asks for ${setting}, which changes no weight of this graph` };
  } else {
    const plan = planInt8(features, summary);
    if (plan.decision === 'fixed') {
      const file = await makeForm(plan.variant!);
      report = { ...base, file, decision: 'fixed', variant: file ? plan.variant! : 'as-is', reason: plan.reason };
    } else {
      report = await measure(at, plan.candidates, (v) => makeForm(v, true), options, base);
      if (report.file) await syncFile(report.file);
    }
  }
  report = { ...report, seconds: round((performance.now() - started) / 1000, 2) };

  // The stamp goes with the derived file (or beside the model when there is none and it can).
  const where = report.file ? await place() : placement?.where ?? (await place().catch(() => at.fallback));
  const derived = report.file ? [await fileStamp(where, basename(report.file))] : [];
  const stamp: Int8Stamp = {
    version: INT8_LOAD_VERSION,
    setting,
    cpu,
    files: [...source.stamps, ...(reference?.stamps ?? [])],
    derived,
    report: { ...report, file: report.file && basename(report.file) },
  };
  await writeStamp(join(where, stampName), stamp);
  // Forms of older versions or older contents of this file; those of other forms may be another setting's.
  await removeStale(where, new RegExp(`^${escapeRegExp(stem)}\\.int8-v\\d+-${escapeRegExp(report.variant)}-[0-9a-f]+\\.onnx$`), report.file ? [basename(report.file)] : []);
  return { ...report, source: path, cached: false };
}

/** Measures the candidates (see the top of this file); keeps the chosen form's file and removes the others. */
async function measure(
  at: DerivedHome,
  candidates: readonly Int8Variant[],
  makeForm: (variant: Int8Variant) => Promise<string | null>,
  options: Int8Options,
  base: Pick<Int8Report, 'version' | 'setting' | 'kernel' | 'cpu' | 'weights'>,
): Promise<Omit<Int8Report, 'source' | 'cached'>> {
  const probe = options.probe;
  const files = new Map<Int8Variant, string>();
  const sessions = new Map<Int8Variant, Session>();
  const made: string[] = [];
  let keep: string | null = null;
  try {
    for (const variant of candidates) {
      const file = await makeForm(variant);
      if (file === null && variant !== 'as-is') continue; // converts nothing: the file as it is
      if (file) made.push(file);
      files.set(variant, file ?? at.source);
      sessions.set(variant, await measuringSession(file ?? at.source, options.session));
    }
    // The reference runs once (untimed but for that one cold run: only its outputs matter) and is
    // let go before the forms are timed, fp32 graphs being the largest. Without an fp32 graph,
    // the file as it is is the reference.
    let ref: { ms: number; wallMs: number; outputs: Float32Array[] };
    const referenceKind = options.reference ? 'fp32' : 'as-is';
    if (options.reference) {
      const session = await measuringSession(options.reference, options.session);
      try {
        ref = await runProbe(session, options.reference, probe);
      } finally {
        await session.release();
      }
    } else {
      ref = await runProbe(sessions.get('as-is')!, at.source, probe);
    }
    const measured = [...sessions.keys()];
    const wall = new Map<Int8Variant | 'fp32', number>([['fp32', ref.wallMs]]);
    const results = await measureVariants<Int8Variant>(measured, async (variant, round) => {
      if (variant === 'fp32') return ref;
      const run = await runProbe(sessions.get(variant)!, files.get(variant)!, probe);
      if (round >= 0) wall.set(variant, Math.min(wall.get(variant) ?? Infinity, run.wallMs));
      return run;
    }, { rounds: options.rounds ?? MEASURE_ROUNDS, warmup: 1, minCosine: MIN_COSINE });
    const choice = pickVariant(results);
    // No form holds the bound (the file itself does not, against fp32): run the file as it is,
    // as before, and say so.
    const variant: Int8Variant = choice.chosen === 'fp32' ? 'as-is' : choice.chosen;
    const figures = results.filter((r) => r.variant !== 'fp32' || referenceKind === 'fp32').map((r: MeasuredVariant<Int8Variant>): VariantFigures => ({
      variant: r.variant,
      bestMs: round(r.variant === 'fp32' ? ref.ms : r.bestMs, 1),
      medianMs: round(r.variant === 'fp32' ? ref.ms : r.medianMs, 1),
      wallMs: round(wall.get(r.variant)!, 1),
      minCosine: round(r.minCosine, 6),
      passes: r.passes,
    }));
    const chosenFile = variant === 'as-is' ? null : files.get(variant)!;
    keep = chosenFile;
    return {
      ...base,
      file: chosenFile,
      decision: 'measured',
      variant,
      reason: choice.chosen === 'fp32' ? `${choice.reason}; running the file as it is` : choice.reason,
      reference: referenceKind,
      measured: figures,
      items: probe.reduce((n, b) => n + b.items, 0),
      rounds: options.rounds ?? MEASURE_ROUNDS,
    };
  } finally {
    await Promise.all([...sessions.values()].map((s) => s.release().catch(() => undefined)));
    // Only the chosen form's file stays (the caller stamps it).
    for (const file of made) if (file !== keep) await rm(file, { force: true });
  }
}

// ---- q8 from fp32 -------------------------------------------------------------------------------

/** What prepareQuantized did for one fp32 graph. */
export interface QuantizeReport {
  version: number;
  /** The fp32 graph. */
  source: string;
  /** The q8 graph made from it. */
  file: string;
  /** Weights quantised (int8, a scale per output column) and left in float. */
  quantized: number;
  keptFloat: string[];
  /** Least cosine of any probe item to the fp32 graph, and how many quantisations were measured to choose keptFloat. */
  minCosine: number;
  evaluations: number;
  /** False when even with every layer in float the bound was not reached (the last try is used). */
  holds: boolean;
  seconds?: number;
  cached: boolean;
}

interface QuantizeStamp {
  version: number;
  /** INT8_LOAD_VERSION: how the choice of float layers was measured. */
  loadVersion: number;
  files: FileStamp[];
  derived: FileStamp[];
  report: Omit<QuantizeReport, 'source' | 'cached' | 'file'> & { file: string };
}

/**
 * The layer a weight belongs to, for choosing what stays in float: its name up to the first
 * number (`blocks.3.attn.q_proj.weight` -> `blocks.3`, `encoder.layer.11...` ->
 * `encoder.layer.11`), or the weight itself when the name has none (heads, projections).
 */
export function layerOf(name: string): string {
  const m = /^(.*?[./_]\d+)(?=[./_])/.exec(name);
  return m ? m[1]! : name;
}

/**
 * q8 for an fp32 graph (see the top of this file), made once and cached. Throws when it cannot
 * be made (the caller says so and fails: q8 was asked for and there is none).
 */
export async function prepareQuantized(path: string, options: Omit<Int8Options, 'setting' | 'cpu' | 'reference'> & { minCosine?: number }): Promise<QuantizeReport> {
  const at = await derivedHome(path, options.cacheRoot ?? derivedCacheRoot('int8-load'));
  const stampName = `${basename(at.real)}.q8-load.json`;
  const found = await findStamp<QuantizeStamp>(at, stampName, (s) => s.version === QUANTIZE_VERSION && s.loadVersion === INT8_LOAD_VERSION && typeof s.report === 'object' && s.report !== null && typeof s.report.file === 'string');
  if (found) return { ...found.stamp.report, source: path, file: join(found.where, found.stamp.report.file), cached: true };

  const started = performance.now();
  const source = await graphStamps(at.dir, at.source);
  const hashes = await Promise.all(source.names.map((n) => sha256File(resolve(at.dir, n))));
  const digest = shortHash(hashes.join('\n'), 64);
  const bytes = await readFile(at.source);
  const { where } = await placeDerived(at, externalLocations(at.source), { keepNames: true, forceCacheRoot: options.forceCacheRoot });
  const stem = basename(at.real).replace(/\.onnx$/, '');
  const minCosine = options.minCosine ?? MIN_COSINE;

  // The fp32 outputs, once.
  const fp32 = await measuringSession(at.source, options.session);
  let reference: Float32Array[];
  try {
    reference = (await runProbe(fp32, at.source, options.probe)).outputs;
  } finally {
    await fp32.release();
  }
  const weights = floatMatMulWeights(OnnxFile.parse(bytes, at.dir)).map((w) => w.name);
  const groups = new Map<string, string[]>();
  for (const w of weights) groups.set(layerOf(w), [...(groups.get(layerOf(w)) ?? []), w]);

  const nameFor = (keepFloat: readonly string[]): string => `${stem}.q8-load-v${QUANTIZE_VERSION}-${quantizeCacheKey(digest, { keepFloat })}.onnx`;
  const quantize = (keepFloat: readonly string[]): { model: OnnxFile; quantized: number } => {
    const model = OnnxFile.parse(bytes, at.dir);
    return { model, quantized: quantizeMatMuls(model, { keepFloat }).quantized.length };
  };
  // Each choice is measured in its unsigned form: the same products on every CPU (exact, as
  // VNNI runs the int8 one), so what is left in float answers for quantisation error alone,
  // not for AVX2's saturating kernel; prepareInt8 then picks the form to run on this CPU.
  // Named as a `.partial` of this process, so a load killed while measuring leaves nothing the
  // next load does not remove (derived.ts removes partials whose process is gone).
  const evaluating = partialPath(join(where, `${stem}.q8-load-evaluating.onnx`));
  let quantizedCount = 0;
  const selection = await (async () => {
    try {
      return await selectFloatWeights([...groups.values()], async (keepFloat) => {
        const { model, quantized } = quantize(keepFloat);
        quantizedCount = quantized;
        applyVariant(model, 'unsigned');
        await writeChunksAtomically(evaluating, model.chunks(), false);
        const session = await measuringSession(evaluating, options.session);
        try {
          const { outputs } = await runProbe(session, evaluating, options.probe);
          return Math.min(...outputs.map((o, k) => outputCosine(o, reference[k]!)));
        } finally {
          await session.release();
        }
      }, minCosine);
    } finally {
      await rm(evaluating, { force: true });
    }
  })();
  const chosen = join(where, nameFor(selection.keepFloat));
  const made = quantize(selection.keepFloat);
  quantizedCount = made.quantized;
  await writeChunksAtomically(chosen, made.model.chunks());
  const quantized = quantizedCount;

  const report: Omit<QuantizeReport, 'source' | 'cached'> = {
    version: QUANTIZE_VERSION,
    file: chosen,
    quantized,
    keptFloat: selection.keepFloat,
    minCosine: round(selection.minCosine, 6),
    evaluations: selection.evaluations.length,
    holds: selection.holds,
    seconds: round((performance.now() - started) / 1000, 2),
  };
  await writeStamp(join(where, stampName), {
    version: QUANTIZE_VERSION,
    loadVersion: INT8_LOAD_VERSION,
    files: source.stamps,
    derived: [await fileStamp(where, basename(chosen))],
    report: { ...report, file: basename(chosen) },
  } satisfies QuantizeStamp);
  await removeStale(where, new RegExp(`^${escapeRegExp(stem)}\\.q8-load-v\\d+-[0-9a-f]+\\.onnx$`), [basename(chosen)]);
  return { ...report, source: path, cached: false };
}
