/**
 * The load-time graph rewrite: fuses the subgraphs ONNX Runtime's own optimisers do not
 * recognise in these models (see the passes) into com.microsoft contrib ops, which the standard
 * onnxruntime-node build runs. The rewritten model is cached beside the original, keyed by the
 * original's hash (and its external data's) and the rewrite's version; a graph in which no
 * pass matches anything is left as it is, and that is said once in the log.
 *
 * Files, for a model `onnx/vision_model.onnx` and a set of passes (<set>, a hash of their names):
 *   onnx/vision_model.onnx.rewrite-<set>.json            what was done (the report below) and
 *                                                        the stats that make it valid
 *   onnx/vision_model.rewrite-v1-<set>-<key>.onnx        the rewritten graph; its weights are
 *                                                        references into vision_model.onnx
 *   onnx/vision_model.rewrite-v1-<set>-<key>.onnx_data   tensors the rewrite made (merged weights)
 * "Beside" means beside the file's real path: ONNX Runtime refuses external data outside the
 * real folder of the model it loads, so for a Hugging Face cache snapshot (symlinks into
 * blobs/) the rewrite goes into blobs/ and names the blobs. When that folder is not writable,
 * or the files do not share one, they go to $XDG_CACHE_HOME/tessera/rewrite/<folder hash>/, next
 * to hard links to the original files (copies for files under 64 MiB on another file system;
 * larger ones are not copied, and the model then runs as it is).
 */
import { createHash } from 'node:crypto';
import { realpath, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { derivedCacheRoot, derivedHome, escapeRegExp, fileStamp, findStamp, placeDerived, readStamp, removeStale, sha256File, writeStamp, type FileStamp } from '../derived.ts';
import { fuseAttention } from './attention.ts';
import { fuseGelu, fuseQuickGelu } from './gelu.ts';
import { fuseSkipLayerNorm } from './layernorm.ts';
import type { Pass } from './match.ts';
import { mergeQuantizedSiblings, mergeSiblingMatMuls } from './merge-matmul.ts';
import { OnnxModel, type WriteLocations } from './model.ts';
import { ShapeInference } from './shapes.ts';

/** Bump when a pass changes what it writes: cached rewrites of older versions are redone. */
export const REWRITE_VERSION = 1;

/** Every pass, in the order they run: merged projections give attention its q, k, v. */
export const PASSES: readonly Pass[] = [mergeSiblingMatMuls, mergeQuantizedSiblings, fuseAttention, fuseSkipLayerNorm, fuseGelu, fuseQuickGelu];

/**
 * The passes that run unless told otherwise: those measured faster than the subgraphs they
 * replace on ONNX Runtime's CPU kernels (scripts/measure-rewrite.ts,
 * docs/measurements/rewrite.json). The others are exact too, and tested, but measured slower
 * there: SkipLayerNormalization's CPU kernel is a scalar loop, several times slower than Add +
 * LayerNormalization; merged projections pay a Split copy that outweighs the one fewer GEMM.
 */
export const DEFAULT_PASSES: readonly string[] = ['attention', 'gelu', 'quick-gelu'];

/** The passes named (in PASSES' order); throws on a name no pass has. */
export function passesNamed(names: readonly string[]): Pass[] {
  const unknown = names.filter((n) => !PASSES.some((p) => p.name === n));
  if (unknown.length > 0) throw new Error(`unknown graph rewrite pass ${unknown.join(', ')} (passes: ${PASSES.map((p) => p.name).join(', ')})`);
  return PASSES.filter((p) => names.includes(p.name));
}

export interface RewriteReport {
  version: number;
  /** The passes that ran. */
  passes: string[];
  /** The model file as given. */
  source: string;
  /** The file ONNX Runtime loads instead, or null when the graph is left as it is. */
  rewritten: string | null;
  /** How many of each op the rewrite made (merged projections count as MergedMatMul). */
  fused: Record<string, number>;
  /** Why the graph was left as it is, when it was. */
  note?: string;
  /** Seconds the rewrite took when it was made (not when read from the cache). */
  seconds?: number;
}

export interface RewriteResult {
  fused: Record<string, number>;
  written: string[];
  note?: string;
}

/**
 * Rewrites the model at `source` into `out` (and `${out}_data` when it makes tensors). Writes
 * nothing when no pass matches. Synchronous: it runs once per model, at load.
 */
export function rewriteModelFile(source: string, out: string, passes: readonly Pass[] = PASSES, locations: WriteLocations = {}): RewriteResult {
  const model = new OnnxModel(source);
  try {
    if (model.opset < 13) return { fused: {}, written: [], note: `opset ${model.opset} (the rewrite needs 13 or later)` };
    model.setOutput(out);
    const fused: Record<string, number> = {};
    for (const pass of passes) {
      const counts = pass.run({ model, shapes: new ShapeInference(model) });
      for (const [op, n] of Object.entries(counts)) if (n > 0) fused[op] = (fused[op] ?? 0) + n;
    }
    if (Object.keys(fused).length === 0) return { fused, written: [], note: 'no pattern the rewrite knows (attention, residual + LayerNorm, GELU, sibling projections)' };
    return { fused, written: model.write(out, locations) };
  } finally {
    model.close();
  }
}

interface Stamp {
  version: number;
  key: string;
  files: FileStamp[];
  report: RewriteReport;
}

export function rewriteCacheRoot(): string {
  return derivedCacheRoot('rewrite');
}

const logged = new Set<string>();

/** Logs `line` once per process. */
export function logOnce(log: (line: string) => void, line: string): void {
  if (logged.has(line)) return;
  logged.add(line);
  log(line);
}

export interface PrepareOptions {
  /** The passes to run, by name (default DEFAULT_PASSES). */
  passes?: readonly string[];
  /** Where the rewrite goes when the model's folder is read-only (default rewriteCacheRoot()). */
  cacheRoot?: string;
  /** Use the cache folder even when the model's folder is writable (tests). */
  forceCacheRoot?: boolean;
}

/**
 * The file to load for `path`: its cached rewrite when valid, else a fresh rewrite, else
 * `path` itself. Throws when `path` cannot be read or parsed (the caller then loads it as is).
 */
export async function prepareModel(path: string, options: PrepareOptions = {}): Promise<RewriteReport> {
  const at = await derivedHome(path, options.cacheRoot ?? rewriteCacheRoot());
  const passes = passesNamed(options.passes ?? DEFAULT_PASSES).map((p) => p.name);
  const set = passSetTag(passes);
  const stampName = `${basename(at.real)}.rewrite-${set}.json`;

  const found = await findStamp<Stamp>(at, stampName, (s) => s.version === REWRITE_VERSION && s.report?.passes?.join(',') === passes.join(','));
  if (found) {
    const report = { ...found.stamp.report, source: path };
    if (report.rewritten === null) return report;
    const rewritten = join(found.where, basename(report.rewritten));
    if (await stat(rewritten).then(() => true, () => false)) return { ...report, rewritten };
  }

  // No valid cache: key the rewrite by the contents of the model and of its external data.
  const started = performance.now();
  const locations = (() => {
    const m = new OnnxModel(at.source);
    try {
      return m.externalLocations();
    } finally {
      m.close();
    }
  })();
  const names = [basename(at.source), ...locations];
  const files = await Promise.all(names.map((n) => fileStamp(at.dir, n)));
  const hashes = await Promise.all(names.map((n) => sha256File(join(at.dir, n))));
  const key = createHash('sha256').update(`${REWRITE_VERSION}\n${passes.join(',')}\n${hashes.join('\n')}`).digest('hex').slice(0, 16);
  const stem = basename(at.real).replace(/\.onnx$/, '');
  const outName = `${stem}.rewrite-v${REWRITE_VERSION}-${set}-${key}.onnx`;

  // Where the rewrite goes, and what it calls the original files from there.
  const { where, named } = await placeDerived(at, locations, { forceCacheRoot: options.forceCacheRoot });
  const reals = await Promise.all(locations.map((l) => realpath(join(at.dir, l))));
  const out = join(where, outName);
  const result = rewriteModelFile(at.source, out, passesNamed(passes), {
    source: named.get(at.real)!,
    data: new Map(locations.map((l, i) => [l, named.get(reals[i]!)!])),
  });
  const report: RewriteReport = {
    version: REWRITE_VERSION,
    passes,
    source: path,
    rewritten: result.written.length > 0 ? out : null,
    fused: result.fused,
    ...(result.note ? { note: result.note } : {}),
    seconds: Math.round((performance.now() - started) / 10) / 100,
  };
  await writeStamp(join(where, stampName), { version: REWRITE_VERSION, key, files, report: { ...report, rewritten: report.rewritten && outName } } satisfies Stamp);
  // Rewrites by the same passes of older versions or of older contents of the same model.
  const stale = new RegExp(`^${escapeRegExp(stem)}\\.rewrite-v\\d+-${set}-[0-9a-f]+\\.onnx(_data)?$`);
  await removeStale(where, stale, result.written.map((w) => basename(w)));
  return report;
}

function passSetTag(passes: readonly string[]): string {
  return createHash('sha256').update(passes.join(',')).digest('hex').slice(0, 6);
}

/** Records that ONNX Runtime refused a rewrite: later loads go straight to the original. */
export async function markRefused(report: RewriteReport, reason: string): Promise<void> {
  if (!report.rewritten) return;
  const where = dirname(report.rewritten);
  const stampPath = join(where, `${basename(await realpath(resolve(report.source)))}.rewrite-${passSetTag(report.passes)}.json`);
  const stamp = await readStamp<Stamp>(stampPath);
  if (!stamp) return;
  await writeStamp(stampPath, { ...stamp, report: { ...stamp.report, rewritten: null, fused: {}, note: `ONNX Runtime refused the rewritten graph: ${reason}` } });
  await rm(report.rewritten, { force: true });
  await rm(`${report.rewritten}_data`, { force: true });
}
