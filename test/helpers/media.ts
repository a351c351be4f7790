/**
 * Test videos made with FFmpeg (which the tests need, as tessera does), and the
 * hostile variants of them: cut, patched to claim huge frames, turned like a phone video.
 */
import { execFile } from 'node:child_process';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { promisify } from 'node:util';

const exec = promisify(execFile);

/** Runs ffmpeg (from TESSERA_FFMPEG's folder when set, as findFfmpeg does; else PATH) quietly, stdin closed. */
export async function runFfmpeg(args: readonly string[]): Promise<void> {
  const folder = process.env.TESSERA_FFMPEG;
  await exec(folder ? join(folder, 'ffmpeg') : 'ffmpeg', ['-nostdin', '-hide_banner', '-loglevel', 'error', '-y', ...args]);
}

export interface VideoSegment {
  /** An FFmpeg colour: "red", "#336699", "0x336699". */
  colour: string;
  seconds: number;
  /**
   * A flat colour, nothing else (what videoFrames skips). By default a segment is its colour
   * under a grid of half-dark lines: a real picture with that colour as its mean hue, and the
   * same in every frame, so that only a change of segment is a cut.
   */
  plain?: boolean;
}

export interface VideoOptions {
  /** "WxH"; default 320x240. */
  size?: string;
  /** Frames per second as FFmpeg takes it ("25", "1/600"); default 25. */
  fps?: string;
  /** Container metadata (-metadata KEY=VALUE), e.g. creation_time, location. */
  metadata?: Record<string, string>;
  /** MP4/MOV: write metadata as mdta keys (-movflags use_metadata_tags), as iPhones do. */
  metadataTags?: boolean;
  /** MP4/MOV: moov first (-movflags faststart), as streaming sites do. */
  faststart?: boolean;
  /** MP4/MOV: a display matrix turning the picture a quarter (90) or more, as phones write. */
  rotate?: 90 | 180 | 270;
  /** Sample (pixel) aspect ratio, e.g. "8/9" for DV's narrow pixels; default square. */
  sar?: string;
}

/**
 * Makes a video of coloured segments at `path`; the container follows the extension (.mp4,
 * .mov, .mkv: H.264; .webm: VP8; .avi: MJPEG). Resolves with `path`.
 *
 * @example
 *   await makeVideo(join(dir, 'clip.mp4'), [{ colour: 'black', seconds: 1, plain: true }, { colour: 'red', seconds: 2 }]);
 */
export async function makeVideo(path: string, segments: readonly VideoSegment[], options: VideoOptions = {}): Promise<string> {
  if (segments.length === 0) throw new Error('makeVideo: no segments');
  const size = options.size ?? '320x240';
  const fps = options.fps ?? '25';
  const inputs = segments.flatMap((s) => {
    const source = `color=c=${s.colour}:s=${size}:r=${fps}:d=${s.seconds}`;
    return ['-f', 'lavfi', '-i', s.plain ? source : `${source},drawgrid=w=16:h=16:t=4:c=black@0.5`];
  });
  const joined = segments.map((_, i) => `[${i}:v]`).join('');
  const filter = `${joined}concat=n=${segments.length}:v=1:a=0,format=yuv420p${options.sar ? `,setsar=${options.sar}` : ''}`;
  const ext = extname(path).toLowerCase();
  const codec =
    ext === '.webm' ? ['-c:v', 'libvpx', '-deadline', 'realtime', '-cpu-used', '8', '-b:v', '400k']
    : ext === '.avi' ? ['-c:v', 'mjpeg', '-q:v', '3']
    : ['-c:v', 'libx264', '-preset', 'ultrafast'];
  const metadata = Object.entries(options.metadata ?? {}).flatMap(([key, value]) => ['-metadata', `${key}=${value}`]);
  const movflags = [options.metadataTags && 'use_metadata_tags', options.faststart && '+faststart'].filter(Boolean);
  await runFfmpeg([
    ...inputs, '-filter_complex', filter, ...codec, ...metadata,
    ...(movflags.length > 0 ? ['-movflags', movflags.join('')] : []),
    path,
  ]);
  if (options.rotate) await writeFile(path, rotateMp4(await readFile(path), options.rotate));
  return path;
}

/** An MP4/MOV whose video track's display matrix (tkhd) turns it by `degrees` clockwise, as a phone writes it. */
export function rotateMp4(bytes: Buffer, degrees: 90 | 180 | 270): Buffer {
  const out = Buffer.from(bytes);
  const at = out.indexOf('tkhd') - 4;
  if (at < 0) throw new Error('rotateMp4: no tkhd box');
  const version = out[at + 8]!;
  const matrix = at + 8 + 4 + (version === 1 ? 32 : 20) + 8 + 8;
  const one = 0x10000;
  const [a, b, c, d] = degrees === 90 ? [0, one, -one, 0] : degrees === 180 ? [-one, 0, 0, -one] : [0, -one, one, 0];
  for (const [i, v] of [a, b, 0, c, d, 0, 0, 0, 0x40000000].entries()) out.writeInt32BE(v, matrix + 4 * i);
  return out;
}

/** An AVI whose headers (avih and the stream's BITMAPINFOHEADER) claim `width` x `height` frames. */
export function patchAviSize(bytes: Buffer, width: number, height: number): Buffer {
  const out = Buffer.from(bytes);
  const avih = out.indexOf('avih');
  const strf = out.indexOf('strf');
  if (avih < 0 || strf < 0) throw new Error('patchAviSize: not an AVI');
  out.writeUInt32LE(width, avih + 8 + 32);
  out.writeUInt32LE(height, avih + 8 + 36);
  out.writeInt32LE(width, strf + 8 + 4);
  out.writeInt32LE(height, strf + 8 + 8);
  return out;
}

/** A raw-video AVI (BGR24, uncompressed): a decoder that trusts the header's frame size. */
export async function makeRawAvi(path: string, size = '16x16'): Promise<string> {
  await runFfmpeg(['-f', 'lavfi', '-i', `color=c=red:s=${size}:r=2:d=1`, '-c:v', 'rawvideo', '-pix_fmt', 'bgr24', path]);
  return path;
}

export interface ChildProcessInfo {
  pid: number;
  /** The program's name, as the kernel shows it (at most 15 characters). */
  comm: string;
  /** R running, S sleeping, Z zombie (exited, not yet reaped), ... */
  state: string;
}

/** The processes whose parent is `parent` (default: this one), from /proc (Linux). */
export async function childProcesses(parent = process.pid): Promise<ChildProcessInfo[]> {
  const out: ChildProcessInfo[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = await readFile(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // ended meanwhile
    }
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split at the last ')'.
    const close = stat.lastIndexOf(')');
    const [state, ppid] = stat.slice(close + 2).split(' ');
    if (Number(ppid) === parent) out.push({ pid: Number(entry), comm: stat.slice(stat.indexOf('(') + 1, close), state: state! });
  }
  return out;
}

/** This process's ffmpeg and ffprobe children, zombies included. */
export async function ffmpegChildren(): Promise<ChildProcessInfo[]> {
  return (await childProcesses()).filter((p) => p.comm === 'ffmpeg' || p.comm === 'ffprobe');
}
