/**
 * Finding FFmpeg and running its tools as child processes that can always be stopped.
 *
 * tessera does not link FFmpeg: it runs the `ffmpeg` and `ffprobe` programs, so a crash or a
 * hang on a hostile file stays in a child that is killed, never in the server. Every run has a
 * deadline and an AbortSignal; stopping one sends SIGKILL (FFmpeg may be stuck in a decoder
 * that never looks at signals it could catch) and then waits for the child's exit, so no
 * process and no zombie outlives the call.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import type { Readable } from 'node:stream';

export interface FfmpegTools {
  ffmpeg: string;
  ffprobe: string;
}

export const FFMPEG_HINT = 'install FFmpeg (Debian/Ubuntu: apt-get install ffmpeg) or name its folder with --ffmpeg DIR / TESSERA_FFMPEG';

/** `-version` must answer within this; a binary that does not is treated as missing. */
const VERSION_DEADLINE_MS = 10_000;

const found = new Map<string, FfmpegTools>();
/** Per ffmpeg binary: whether it takes `-fps_mode` (5.1 and later) or only the older `-vsync`. */
const fpsModeSupport = new Map<string, boolean>();

/**
 * ffmpeg and ffprobe from `dir` (--ffmpeg DIR; when not given, the folder in TESSERA_FFMPEG),
 * or else from PATH. Undefined when either is missing or does not run (`-version` fails).
 * A success is cached per folder; a miss is looked for again next time (FFmpeg may have been
 * installed meanwhile, and looking is cheap).
 */
export async function findFfmpeg(dir?: string): Promise<FfmpegTools | undefined> {
  const folder = dir ?? (process.env.TESSERA_FFMPEG || undefined);
  const key = folder ?? '';
  const cached = found.get(key);
  if (cached) return cached;
  const ffmpeg = await locate('ffmpeg', folder);
  const ffprobe = await locate('ffprobe', folder);
  if (ffmpeg === undefined || ffprobe === undefined) return undefined;
  const [ffmpegVersion, ffprobeVersion] = await Promise.all([version(ffmpeg), version(ffprobe)]);
  if (ffmpegVersion === undefined || ffprobeVersion === undefined) return undefined;
  fpsModeSupport.set(ffmpeg, takesFpsMode(ffmpegVersion));
  const tools = { ffmpeg, ffprobe };
  found.set(key, tools);
  return tools;
}

/** How ffmpeg times output frames: `-fps_mode MODE` (5.1 and later) or, before, the same as `-vsync MODE`. */
export function fpsModeArgs(tools: FfmpegTools, mode: 'passthrough' | 'vfr' | 'cfr'): string[] {
  // Tools not found by findFfmpeg (built by hand) are taken to be current.
  return [fpsModeSupport.get(tools.ffmpeg) === false ? '-vsync' : '-fps_mode', mode];
}

/** Parses "ffmpeg version 5.1.9-0+deb12u1", "n6.1.1", "7.0"; git builds ("N-112233-g...") are current. */
function takesFpsMode(versionLine: string): boolean {
  const m = /version n?(\d+)\.(\d+)/.exec(versionLine);
  if (!m) return true;
  const [major, minor] = [Number(m[1]), Number(m[2])];
  return major > 5 || (major === 5 && minor >= 1);
}

async function locate(name: string, folder: string | undefined): Promise<string | undefined> {
  const file = process.platform === 'win32' ? `${name}.exe` : name;
  const candidates = folder !== undefined ? [join(folder, file)] : (process.env.PATH ?? '').split(delimiter).filter(Boolean).map((d) => join(d, file));
  for (const candidate of candidates) {
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** The first line of `-version`, or undefined when the binary does not run or fails. */
async function version(binary: string): Promise<string | undefined> {
  const run = await runTool(binary, ['-hide_banner', '-version'], { deadlineMs: VERSION_DEADLINE_MS, maxStdoutBytes: 64 * 1024 });
  if (run.spawnError || run.stopped || run.code !== 0) return undefined;
  return run.stdout.toString('utf8').split('\n')[0];
}

// ---- running a tool ----

export interface RunOptions {
  /** Wall-clock limit from the spawn; past it the child is killed and `stopped` is 'deadline'. */
  deadlineMs: number;
  /** Aborting kills the child; `stopped` is then 'abort'. */
  signal?: AbortSignal;
  /** stdout beyond this kills the child (`stopped`: 'overflow'): a tool's answer is never allowed to fill memory. */
  maxStdoutBytes: number;
  /** How much of the end of stderr to keep (for error messages). Default 8 KiB. */
  stderrTailBytes?: number;
}

export interface RunResult {
  stdout: Buffer;
  /** The last `stderrTailBytes` of stderr. */
  stderr: string;
  /** Exit code, null when ended by a signal or never started. */
  code: number | null;
  /** Set when tessera stopped the child: its deadline passed, the caller aborted, or stdout passed its cap. */
  stopped?: 'deadline' | 'abort' | 'overflow';
  /** Set when the child could not be started at all (ENOENT, EACCES). */
  spawnError?: Error;
}

/**
 * Runs `command args` (no shell; stdin closed) to its end and collects its output. Never
 * throws and never leaves the child running: on the deadline, an abort or too much stdout it
 * is SIGKILLed and its exit awaited before this resolves; the caller turns `stopped` or the
 * exit code into its own error.
 */
export async function runTool(command: string, args: readonly string[], options: RunOptions): Promise<RunResult> {
  const tool = startTool(command, args, { stderrTailBytes: options.stderrTailBytes });
  const chunks: Buffer[] = [];
  let bytes = 0;
  let stopped: RunResult['stopped'];
  const stop = (why: NonNullable<RunResult['stopped']>) => {
    stopped ??= why;
    void tool.kill();
  };
  tool.stdout.on('data', (chunk: Buffer) => {
    bytes += chunk.length;
    if (bytes > options.maxStdoutBytes) return stop('overflow');
    chunks.push(chunk);
  });
  const timer = setTimeout(() => stop('deadline'), options.deadlineMs);
  const onAbort = () => stop('abort');
  if (options.signal?.aborted) onAbort();
  else options.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const exit = await tool.closed;
    return { stdout: Buffer.concat(chunks), stderr: tool.stderrTail(), code: exit.code, stopped, spawnError: exit.error };
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener('abort', onAbort);
  }
}

export interface ToolExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  error?: Error;
}

/** A running tool whose stdout the caller reads at its own pace (see video frames). */
export interface ToolProcess {
  readonly child: ChildProcess;
  readonly stdout: Readable;
  /** Resolves when the child has exited and its stdout and stderr are closed (or it never started). */
  readonly closed: Promise<ToolExit>;
  /** SIGKILLs the child unless it has exited, and resolves once it has. Idempotent. */
  kill(): Promise<ToolExit>;
  /** The last bytes of stderr as text. */
  stderrTail(): string;
}

export interface StartOptions {
  stderrTailBytes?: number;
  /** Called with each complete line of stderr, in order (a trailing partial line at the end too). */
  onStderrLine?: (line: string) => void;
  /**
   * The caller reads stdout with `read(n)` at its own pace. A standing 'readable' listener is
   * then kept on it: when the child exits, Node resumes (and so discards) the unread output of
   * any stdio stream nobody listens to at that moment, which between two reads is this one.
   */
  readStdout?: boolean;
}

/** Spawns `command args` with stdin closed and stdout/stderr piped; see ToolProcess. */
export function startTool(command: string, args: readonly string[], options: StartOptions = {}): ToolProcess {
  const tailBytes = options.stderrTailBytes ?? 8 * 1024;
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], windowsHide: true });
  if (options.readStdout) child.stdout!.on('readable', () => {});
  let tail = '';
  let partial = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (text: string) => {
    tail = (tail + text).slice(-tailBytes);
    if (!options.onStderrLine) return;
    const lines = (partial + text).split(/\r?\n|\r/);
    partial = lines.pop()!;
    if (partial.length > 64 * 1024) partial = partial.slice(-64 * 1024); // a line without end is junk; keep memory bounded
    for (const line of lines) options.onStderrLine(line);
  });
  child.stderr!.on('end', () => {
    if (partial !== '' && options.onStderrLine) options.onStderrLine(partial);
    partial = '';
  });

  const closed = new Promise<ToolExit>((resolve) => {
    // 'close' comes after 'exit' once the pipes are drained; 'error' alone when spawning failed.
    child.once('error', (error) => {
      if (child.pid === undefined) resolve({ code: null, signal: null, error });
    });
    child.once('close', (code, signal) => resolve({ code, signal }));
  });
  // Resolves on the process's own end, without waiting for a reader of stdout to drain it.
  const exited = new Promise<ToolExit>((resolve) => {
    if (child.pid === undefined) child.once('error', (error) => resolve({ code: null, signal: null, error }));
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });

  let killing: Promise<ToolExit> | undefined;
  const kill = () => {
    killing ??= (async () => {
      if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) child.kill('SIGKILL');
      // Output nobody will read would keep the pipes (and 'close') open: close our ends now.
      child.stdout!.destroy();
      child.stderr!.destroy();
      return exited;
    })();
    return killing;
  };
  return { child, stdout: child.stdout!, closed, kill, stderrTail: () => tail };
}
