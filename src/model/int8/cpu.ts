/**
 * The CPU's int8 features, as they decide which int8 kernel ONNX Runtime's MLAS runs for
 * DynamicQuantizeLinear's uint8 activations times 8-bit weights:
 *
 *   amx_int8                   AMX tiles: u8 x s8 accumulated in 32 bits (exact).
 *   avx512_vnni, avx_vnni      vpdpbusd: u8 x s8 accumulated in 32 bits (exact).
 *   avx2 / avx512bw, no VNNI   vpmaddubsw: u8 x s8 pairs added in 16 bits, saturating (the
 *                              fast kernel is not exact); u8 x u8 is widened first (exact, slower).
 *   arm64 (asimddp, i8mm)      sdot/udot/usmmla: exact; nothing to choose here.
 *
 * Read from /proc/cpuinfo (Linux); elsewhere only the architecture is known.
 */
import { readFileSync } from 'node:fs';
import { arch, cpus } from 'node:os';

export interface CpuInt8Features {
  arch: string;
  /** The first processor's model name, when known. */
  model: string;
  /** The int8-relevant flags present, sorted. */
  flags: string[];
  avx2: boolean;
  avx512bw: boolean;
  avx512vnni: boolean;
  avxVnni: boolean;
  amxInt8: boolean;
  /** arm64 dot products (asimddp) and int8 matrix multiply (i8mm). */
  armDot: boolean;
  armI8mm: boolean;
}

/** The flags that matter here, as /proc/cpuinfo spells them. */
export const INT8_FLAGS = ['avx2', 'avx512f', 'avx512bw', 'avx512_vnni', 'avx_vnni', 'avx_vnni_int8', 'amx_int8', 'amx_tile', 'asimddp', 'i8mm'] as const;

/** What the int8 kernels do on this CPU, for u8 activations times s8 weights. */
export type Int8KernelClass =
  /** VNNI or AMX: s8 weights are exact and the fastest. */
  | 'exact-s8'
  /** AVX2 or AVX512BW without VNNI: s8 weights run the fast kernel but may saturate. */
  | 'saturating-s8'
  /** arm64: the dot-product kernels are exact for either weight type. */
  | 'arm'
  /** No AVX2 (or an unknown architecture): the plain kernels; leave the file as it is. */
  | 'other';

/** Parses /proc/cpuinfo text (x86 `flags`, arm64 `Features`) into the features above. */
export function parseCpuInfo(text: string, architecture: string = arch()): CpuInt8Features {
  const line = (key: string): string | undefined => {
    const m = new RegExp(`^${key}\\s*:\\s*(.*)$`, 'm').exec(text);
    return m?.[1]?.trim();
  };
  const all = new Set((line('flags') ?? line('Features') ?? '').split(/\s+/).filter(Boolean));
  const has = (flag: string): boolean => all.has(flag);
  return {
    arch: architecture,
    model: line('model name') ?? line('CPU part') ?? '',
    flags: INT8_FLAGS.filter(has).sort(),
    avx2: has('avx2'),
    avx512bw: has('avx512bw'),
    avx512vnni: has('avx512_vnni'),
    avxVnni: has('avx_vnni'),
    amxInt8: has('amx_int8'),
    armDot: has('asimddp'),
    armI8mm: has('i8mm'),
  };
}

/** This machine's features (cached): /proc/cpuinfo where there is one, the architecture elsewhere. */
let detected: CpuInt8Features | undefined;
export function detectCpuInt8Features(): CpuInt8Features {
  if (detected) return detected;
  let text = '';
  try {
    text = readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    text = `model name : ${cpus()[0]?.model ?? ''}`;
  }
  detected = parseCpuInfo(text);
  return detected;
}

export function int8KernelClass(f: CpuInt8Features): Int8KernelClass {
  if (f.arch === 'arm64') return 'arm';
  if (f.arch !== 'x64' && f.arch !== 'ia32') return 'other';
  if (f.amxInt8 || f.avx512vnni || f.avxVnni) return 'exact-s8';
  if (f.avx2 || f.avx512bw) return 'saturating-s8';
  return 'other';
}
