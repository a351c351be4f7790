import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { TesseraError } from '../../src/errors.ts';
import { FFMPEG_HINT, findFfmpeg, runTool, type FfmpegTools } from '../../src/media/ffmpeg.ts';
import {
  DEFAULT_VIDEO_DEADLINE_MS,
  DEFAULT_VIDEO_INTERVAL,
  DEFAULT_VIDEO_MAX_FRAMES,
  frameAt,
  probeVideo,
  sniffVideo,
  VIDEO_SNIFF_BYTES,
  videoFrames,
  videoFrameSize,
  type FrameOptions,
  type VideoFrame,
  type VideoInfo,
} from '../../src/media/video.ts';
import { rejectsWith } from '../helpers/errors.ts';
import { ffmpegChildren, makeRawAvi, makeVideo, patchAviSize, runFfmpeg, type VideoSegment } from '../helpers/media.ts';

const LIMITS = { deadlineMs: 20_000 };
/** 1 s of black, then 2 s each of red, blue and green (textured): cuts at 1, 3 and 5 s. */
const COLOURS: VideoSegment[] = [
  { colour: 'black', seconds: 1, plain: true },
  { colour: 'red', seconds: 2 },
  { colour: 'blue', seconds: 2 },
  { colour: 'green', seconds: 2 },
];

let dir: string;
let tools: FfmpegTools;
let colours: string; // the COLOURS video, MP4 320x240

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tessera-video-'));
  const found = await findFfmpeg();
  assert.ok(found, `the tests need FFmpeg: ${FFMPEG_HINT}`);
  tools = found;
  colours = await makeVideo(join(dir, 'colours.mp4'), COLOURS);
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

let narrowMade: Promise<string> | undefined;
/** DV-style narrow pixels: 720x480 stored, 640x480 shown (made once, by whichever test first needs it). */
function narrowVideo(): Promise<string> {
  narrowMade ??= makeVideo(join(dir, 'narrow.mp4'), [{ colour: 'blue', seconds: 0.5 }], { size: '720x480', sar: '8/9' });
  return narrowMade;
}

async function collect(path: string, options: Partial<FrameOptions> = {}, info?: VideoInfo): Promise<VideoFrame[]> {
  const probed = info ?? (await probeVideo(tools, path, LIMITS));
  const frames: VideoFrame[] = [];
  for await (const frame of videoFrames(tools, path, probed, { interval: 100, maxFrames: 50, size: 224, ...LIMITS, ...options })) frames.push(frame);
  return frames;
}

/** The mean RGB of an encoded image, and its size. */
async function look(image: Buffer): Promise<{ rgb: number[]; width: number; height: number; format: string }> {
  const { channels } = await sharp(image).stats();
  const meta = await sharp(image).metadata();
  return { rgb: channels.slice(0, 3).map((c) => c.mean), width: meta.width!, height: meta.height!, format: meta.format! };
}

/** Which of red, green, blue an RGB mean is clearly dominated by. */
function hue([r, g, b]: number[]): string {
  if (r! > 100 && g! < 60 && b! < 60) return 'red';
  if (g! > 60 && r! < 40 && b! < 40) return 'green';
  if (b! > 100 && r! < 60 && g! < 60) return 'blue';
  return `rgb(${[r, g, b].map((v) => Math.round(v!)).join(',')})`;
}

async function noFfmpegLeft(): Promise<void> {
  assert.deepEqual(await ffmpegChildren(), [], 'an ffmpeg or ffprobe child (or zombie) of this process is left');
}

describe('findFfmpeg', () => {
  test('finds ffmpeg and ffprobe on PATH and in a named folder; a folder without them, or with broken ones, gives undefined', async () => {
    const onPath = await findFfmpeg();
    assert.ok(onPath && onPath.ffmpeg.endsWith('ffmpeg') && onPath.ffprobe.endsWith('ffprobe'));
    assert.equal(await findFfmpeg(), onPath, 'cached');
    const folder = onPath.ffmpeg.slice(0, -'/ffmpeg'.length);
    assert.deepEqual(await findFfmpeg(folder), { ffmpeg: join(folder, 'ffmpeg'), ffprobe: join(folder, 'ffprobe') });
    assert.equal(await findFfmpeg(join(dir, 'nowhere')), undefined);
    const broken = join(dir, 'broken-ffmpeg');
    await mkdir(broken);
    for (const name of ['ffmpeg', 'ffprobe']) {
      await writeFile(join(broken, name), '#!/bin/sh\nexit 1\n');
      await chmod(join(broken, name), 0o755);
    }
    assert.equal(await findFfmpeg(broken), undefined, 'binaries whose -version fails');
  });

  test('a missing binary is FFMPEG_MISSING naming the fix', async () => {
    const gone = { ffmpeg: join(dir, 'no-such-dir', 'ffmpeg'), ffprobe: join(dir, 'no-such-dir', 'ffprobe') };
    await assert.rejects(probeVideo(gone, colours, LIMITS), rejectsWith('FFMPEG_MISSING', /apt-get install ffmpeg.*--ffmpeg DIR/));
    const info = { duration: 7, width: 320, height: 240, metadata: {} };
    const frames = videoFrames(gone, colours, info, { interval: 1, maxFrames: 5, size: 32, ...LIMITS });
    await assert.rejects(frames.next(), rejectsWith('FFMPEG_MISSING', /no-such-dir.*ENOENT/));
  });

  test('runTool kills a child past its deadline and on abort, waits for its exit, and caps stdout', async () => {
    const started = Date.now();
    const slow = await runTool('sleep', ['30'], { deadlineMs: 100, maxStdoutBytes: 10 });
    assert.equal(slow.stopped, 'deadline');
    assert.ok(Date.now() - started < 5000);
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    const aborted = await runTool('sleep', ['30'], { deadlineMs: 30_000, maxStdoutBytes: 10, signal: controller.signal });
    assert.equal(aborted.stopped, 'abort');
    const chatty = await runTool('yes', [], { deadlineMs: 30_000, maxStdoutBytes: 100_000 });
    assert.equal(chatty.stopped, 'overflow');
    assert.ok(chatty.stdout.length <= 100_000);
    const fine = await runTool('sh', ['-c', 'echo out; echo err >&2; exit 3'], { deadlineMs: 30_000, maxStdoutBytes: 100 });
    assert.deepEqual([fine.stdout.toString(), fine.stderr, fine.code, fine.stopped], ['out\n', 'err\n', 3, undefined]);
    const none = await runTool(join(dir, 'no-such-program'), [], { deadlineMs: 1000, maxStdoutBytes: 10 });
    assert.equal((none.spawnError as NodeJS.ErrnoException | undefined)?.code, 'ENOENT');
  });
});

describe('sniffVideo', () => {
  test('recognises MP4, MOV, WebM, Matroska and AVI made by FFmpeg, from their first VIDEO_SNIFF_BYTES (and from 64)', async () => {
    assert.ok(VIDEO_SNIFF_BYTES >= 64);
    const short: VideoSegment[] = [{ colour: 'red', seconds: 0.2 }];
    const expected = { mp4: 'mp4', mov: 'mov', webm: 'webm', mkv: 'mkv', avi: 'avi' } as const;
    for (const [ext, format] of Object.entries(expected)) {
      const bytes = await readFile(await makeVideo(join(dir, `sniff.${ext}`), short, { size: '64x48' }));
      assert.equal(sniffVideo(bytes.subarray(0, VIDEO_SNIFF_BYTES)), format, ext);
      assert.equal(sniffVideo(bytes.subarray(0, 64)), format, `${ext}, 64 bytes`);
    }
  });

  test('images (PNG, JPEG, HEIC, AVIF, CR3), audio (M4A), other and short bytes are not videos', async () => {
    const ftyp = (major: string, ...compatible: string[]) => {
      const brands = [major, '\0\0\0\0', ...compatible].join('');
      const box = Buffer.alloc(8 + brands.length);
      box.writeUInt32BE(box.length, 0);
      box.write(`ftyp${brands}`, 4, 'latin1');
      return Buffer.concat([box, Buffer.alloc(64)]);
    };
    const png = await sharp({ create: { width: 8, height: 8, channels: 3, background: 'red' } }).png().toBuffer();
    const jpeg = await sharp(png).jpeg().toBuffer();
    const cases: [string, Uint8Array][] = [
      ['png', png],
      ['jpeg', jpeg],
      ['heic', ftyp('heic', 'mif1', 'heic')],
      ['heic, mif1 major', ftyp('mif1', 'heic')],
      ['heix', ftyp('heix', 'mif1')],
      ['avif', ftyp('avif', 'mif1', 'miaf', 'MA1B')],
      ['avis', ftyp('avis', 'msf1', 'iso8', 'mif1', 'miaf')],
      ['isom major but an image brand listed', ftyp('isom', 'mif1', 'avif')],
      ['cr3', ftyp('crx ', 'crx ', 'isom')],
      ['m4a', ftyp('M4A ', 'M4A ', 'mp42', 'isom')],
      ['unknown brand', ftyp('abcd', 'efgh')],
      ['empty', new Uint8Array(0)],
      ['short', Buffer.from('RIFF')],
      ['wav', Buffer.from('RIFF\x24\0\0\0WAVEfmt ', 'latin1')],
      ['ebml other doctype', Buffer.from([0x1a, 0x45, 0xdf, 0xa3, 0x88, 0x42, 0x82, 0x85, ...Buffer.from('other')])],
    ];
    for (const [name, bytes] of cases) assert.equal(sniffVideo(bytes), undefined, name);
    // ...while camera brands and old QuickTime files are videos.
    assert.equal(sniffVideo(ftyp('qt  ', 'qt  ')), 'mov');
    assert.equal(sniffVideo(ftyp('3gp5', '3gp5', 'isom')), 'mp4');
    assert.equal(sniffVideo(ftyp('M4V ', 'M4V ', 'M4A ', 'mp42', 'isom')), 'mp4');
    assert.equal(sniffVideo(ftyp('XYZW', 'avc1', 'isom')), 'mp4', 'an unknown brand compatible with isom');
    assert.equal(sniffVideo(Buffer.from('\0\0\0\x08wide\0\0\0\x10mdat', 'latin1')), 'mov');
  });
});

describe('probeVideo', () => {
  test('duration and size', async () => {
    const info = await probeVideo(tools, colours, LIMITS);
    assert.ok(Math.abs(info.duration - 7) < 0.05, String(info.duration));
    assert.deepEqual([info.width, info.height, info.metadata], [320, 240, {}]);
  });

  test('taken_at and GPS from MP4 creation_time and location (©xyz and mdta), MOV Apple keys with a local offset', async () => {
    const one: VideoSegment[] = [{ colour: 'red', seconds: 0.2 }];
    const paris = { creation_time: '2021-06-05T14:03:09Z', location: '+48.8584+002.2945/' };
    for (const metadataTags of [false, true]) {
      const mp4 = await makeVideo(join(dir, `meta-${metadataTags}.mp4`), one, { size: '64x48', metadata: paris, metadataTags });
      assert.deepEqual((await probeVideo(tools, mp4, LIMITS)).metadata, {
        taken_at: '2021-06-05T14:03:09Z',
        taken_at_offset_known: true,
        gps_lat: 48.8584,
        gps_lon: 2.2945,
      }, `use_metadata_tags ${metadataTags}`);
    }
    const sydney = await makeVideo(join(dir, 'sydney.mp4'), one, { size: '64x48', metadata: { location: '-33.8568+151.2153+005.000/' } });
    assert.deepEqual((await probeVideo(tools, sydney, LIMITS)).metadata, { gps_lat: -33.8568, gps_lon: 151.2153, gps_alt: 5 });
    const iphone = await makeVideo(join(dir, 'iphone.mov'), one, {
      size: '64x48',
      metadataTags: true,
      metadata: {
        creation_time: '2021-06-05T14:03:09Z',
        'com.apple.quicktime.creationdate': '2021-06-05T16:03:09+0200',
        'com.apple.quicktime.location.ISO6709': '+37.3349-122.0090+030.500/',
        'com.apple.quicktime.make': 'Apple',
        'com.apple.quicktime.model': 'iPhone 12',
      },
    });
    assert.deepEqual((await probeVideo(tools, iphone, LIMITS)).metadata, {
      taken_at: '2021-06-05T14:03:09Z',
      taken_at_offset_known: true,
      gps_lat: 37.3349,
      gps_lon: -122.009,
      gps_alt: 30.5,
      camera_make: 'Apple',
      camera_model: 'iPhone 12',
    });
    // Impossible values are left out, not clamped: a date in month 13, a latitude past 90.
    const junk = await makeVideo(join(dir, 'junk.mov'), one, {
      size: '64x48',
      metadataTags: true,
      metadata: { 'com.apple.quicktime.creationdate': '2021-13-05T16:03:09+0200', 'com.apple.quicktime.location.ISO6709': '+98.0000+002.0000/' },
    });
    assert.deepEqual((await probeVideo(tools, junk, LIMITS)).metadata, {});
  });

  test('a phone video turned a quarter is reported, and framed, as displayed', async () => {
    const turned = await makeVideo(join(dir, 'turned.mp4'), [{ colour: 'red', seconds: 0.5 }], { size: '320x180', rotate: 90 });
    const info = await probeVideo(tools, turned, LIMITS);
    assert.deepEqual([info.width, info.height], [180, 320]);
    const [frame] = await collect(turned, { size: 100 }, info);
    assert.deepEqual(videoFrameSize(info, 100), { width: 100, height: 178 });
    const seen = await look(frame!.image);
    assert.deepEqual([seen.width, seen.height], [100, 178]);
    assert.equal(hue(seen.rgb), 'red');
  });
});

describe('videoFrames', () => {
  test('a frame at each cut (1, 3, 5 s) even with a large interval; the black intro skipped; colours right; shorter side = size', async () => {
    const info = await probeVideo(tools, colours, LIMITS);
    const frames = await collect(colours, { interval: 100, size: 224 }, info);
    assert.equal(frames.length, 3, JSON.stringify(frames.map((f) => f.t)));
    const expected: [number, string][] = [[1, 'red'], [3, 'blue'], [5, 'green']];
    for (const [i, [t, colour]] of expected.entries()) {
      const frame = frames[i]!;
      assert.ok(Math.abs(frame.t - t) <= 0.1, `cut at ${t} s found at ${frame.t} s`);
      const seen = await look(frame.image);
      assert.equal(seen.format, 'png');
      assert.deepEqual([seen.width, seen.height], [299, 224]);
      assert.equal(hue(seen.rgb), colour, `frame at ${frame.t} s`);
      assert.match(frame.hash, /^[0-9a-f]{64}$/);
    }
    assert.equal(new Set(frames.map((f) => f.hash)).size, 3);
  });

  test('at least one frame every `interval` seconds, at millisecond times, each segment in its colour', async () => {
    const frames = await collect(colours, { interval: 0.5, size: 64 });
    assert.ok(frames.every((f) => f.t >= 1), 'the black second gives no frame');
    assert.ok(frames.every((f) => Number.isInteger(Math.round(f.t * 1000)) && Math.abs(f.t * 1000 - Math.round(f.t * 1000)) < 1e-6));
    for (const [from, to, colour] of [[1, 3, 'red'], [3, 5, 'blue'], [5, 7, 'green']] as const) {
      const inside = frames.filter((f) => f.t >= from && f.t < to);
      assert.ok(inside.length >= 3, `${inside.length} frames in [${from}, ${to})`);
      for (const f of inside) assert.equal(hue((await look(f.image)).rgb), colour, `frame at ${f.t} s`);
    }
    const gaps = frames.slice(1).map((f, i) => f.t - frames[i]!.t);
    assert.ok(Math.max(...gaps) <= 0.5 + 0.041, `gaps ${gaps.join(', ')}`);
  });

  test('a non-square video: frame size computed as FFmpeg gives it, portrait and landscape', async () => {
    const wide = await makeVideo(join(dir, 'wide.mp4'), [{ colour: 'blue', seconds: 0.5 }], { size: '320x180' });
    const tall = await makeVideo(join(dir, 'tall.mp4'), [{ colour: 'blue', seconds: 0.5 }], { size: '180x320' });
    const narrow = await narrowVideo();
    const shown = await probeVideo(tools, narrow, LIMITS);
    assert.deepEqual([shown.width, shown.height], [640, 480]);
    for (const [path, size, expected] of [[wide, 224, [398, 224]], [wide, 33, [59, 33]], [tall, 100, [100, 178]], [narrow, 224, [299, 224]]] as const) {
      const frames = await collect(path, { size });
      assert.ok(frames.length >= 1);
      for (const f of frames) {
        const seen = await look(f.image);
        assert.deepEqual([seen.width, seen.height], expected, `${path} at ${size}`);
      }
    }
  });

  test('maxFrames: the interval stretches to duration/maxFrames; past maxFrames (a duration unknown or false) FFmpeg is stopped', async () => {
    const info = await probeVideo(tools, colours, LIMITS);
    // 7 s / 4 frames: 1.75 s apart at least, so the first 25 fps frame after that (the black one at 0 is skipped), cuts no closer.
    const even = await collect(colours, { interval: 0.1, maxFrames: 4, size: 32 }, info);
    assert.deepEqual(even.map((f) => f.t), [1.76, 3.52, 5.28]);
    // A container that does not say how long it is (or lies): every 0.1 s until maxFrames.
    const frames = await collect(colours, { interval: 0.1, maxFrames: 4, size: 32 }, { ...info, duration: 0 });
    assert.equal(frames.length, 4);
    assert.ok(frames.every((f, i) => f.t >= 1 && f.t < 1.5 && (i === 0 || f.t > frames[i - 1]!.t)), JSON.stringify(frames.map((f) => f.t)));
    await noFfmpegLeft();
  });

  test('a 10-hour video is sampled over its whole length within maxFrames and its deadline', async () => {
    const long = await makeVideo(join(dir, 'long.mp4'), [{ colour: 'red', seconds: 36_000 }], { size: '64x64', fps: '1/600' });
    const info = await probeVideo(tools, long, LIMITS);
    assert.ok(Math.abs(info.duration - 36_000) < 1, String(info.duration));
    const started = Date.now();
    const frames = await collect(long, { interval: 2, maxFrames: 10, size: 32, deadlineMs: 15_000 }, info);
    assert.ok(Date.now() - started < 15_000);
    assert.ok(frames.length >= 8 && frames.length <= 10, `${frames.length} frames`);
    assert.equal(frames[0]!.t, 0);
    assert.ok(frames.at(-1)!.t >= 30_000, `last frame at ${frames.at(-1)!.t} s of 36000`);
  });

  test('a video of one flat colour gives its first frame rather than none', async () => {
    const flat = await makeVideo(join(dir, 'flat.mp4'), [{ colour: 'white', seconds: 1, plain: true }], { size: '64x48' });
    const frames = await collect(flat, { interval: 0.25 });
    assert.equal(frames.length, 1);
    assert.equal(frames[0]!.t, 0);
  });

  test('stopping early (break) kills FFmpeg at once', async () => {
    const long = await makeVideo(join(dir, 'break.mp4'), [{ colour: 'red', seconds: 20 }], { size: '160x120' });
    const info = await probeVideo(tools, long, LIMITS);
    for await (const frame of videoFrames(tools, long, info, { interval: 0.04, maxFrames: 1000, size: 64, ...LIMITS })) {
      assert.equal(frame.t, 0);
      assert.equal((await ffmpegChildren()).length, 1, 'ffmpeg runs while frames are read');
      break;
    }
    await noFfmpegLeft();
  });

  test('abort: REQUEST_CANCELLED (or the reason if it is a TesseraError), FFmpeg killed', async () => {
    const info = await probeVideo(tools, colours, LIMITS);
    const controller = new AbortController();
    const frames = videoFrames(tools, colours, info, { interval: 0.1, maxFrames: 1000, size: 32, ...LIMITS, signal: controller.signal });
    await frames.next();
    controller.abort();
    await assert.rejects(frames.next(), rejectsWith('REQUEST_CANCELLED', /colours\.mp4/));
    await noFfmpegLeft();
    const mine = new TesseraError('SHUTTING_DOWN', 'stopping');
    await assert.rejects(probeVideo(tools, colours, { ...LIMITS, signal: AbortSignal.abort(mine) }), (err) => err === mine);
  });
});

describe('deadlines and hostile files', () => {
  test('a deadline that passes mid-decode: VIDEO_TIMEOUT naming the file and the deadline; no FFmpeg left', async () => {
    const long = await makeVideo(join(dir, 'slow.mp4'), [{ colour: 'red', seconds: 240 }], { size: '160x120' });
    const info = await probeVideo(tools, long, LIMITS);
    const started = Date.now();
    // One frame at 0, then FFmpeg decodes 6000 frames looking for the next: the wait on it is what counts.
    await assert.rejects(collect(long, { interval: 100, size: 64, deadlineMs: 150 }, info), rejectsWith('VIDEO_TIMEOUT', /slow\.mp4.*150 ms/));
    assert.ok(Date.now() - started < 5000, 'stopped soon after the deadline');
    await noFfmpegLeft();
    await assert.rejects(probeVideo(tools, long, { deadlineMs: 1 }), rejectsWith('VIDEO_TIMEOUT', /slow\.mp4.*1 ms/));
    await assert.rejects(frameAt(tools, long, 60, 64, { deadlineMs: 1 }), rejectsWith('VIDEO_TIMEOUT'));
    await noFfmpegLeft();
  });

  test('truncated, empty, random and foreign files are VIDEO_UNDECODABLE with FFmpeg\'s reason', async () => {
    const segments: VideoSegment[] = [{ colour: 'red', seconds: 2 }, { colour: 'blue', seconds: 2 }];
    const whole = await readFile(await makeVideo(join(dir, 'whole.mp4'), segments));
    const fast = await readFile(await makeVideo(join(dir, 'fast.mp4'), segments, { faststart: true }));
    const write = async (name: string, bytes: Uint8Array) => {
      await writeFile(join(dir, name), bytes);
      return join(dir, name);
    };
    // moov (the index) last, then cut in half: nothing to go by.
    const cut = await write('cut.mp4', whole.subarray(0, whole.length >> 1));
    await assert.rejects(probeVideo(tools, cut, LIMITS), rejectsWith('VIDEO_UNDECODABLE', /cut\.mp4.*moov atom not found/));
    // moov first, the media data cut off after it: probed fine, but no frame comes.
    const hollow = await write('hollow.mp4', fast.subarray(0, fast.indexOf('mdat') + 16));
    const info = await probeVideo(tools, hollow, LIMITS);
    await assert.rejects(collect(hollow, {}, info), rejectsWith('VIDEO_UNDECODABLE', /hollow\.mp4.*no frames/));
    // moov first, cut in half: the frames before the cut.
    const half = await write('half.mp4', fast.subarray(0, fast.length >> 1));
    const frames = await collect(half, { interval: 0.5 });
    assert.ok(frames.length >= 1 && frames.every((f) => f.t < 2.5));
    // An MP4 header and then random bytes.
    const random = await write('random.mp4', Buffer.concat([fast.subarray(0, 32), Buffer.from(Array.from({ length: 20_000 }, (_, i) => (i * 7919 + 13) % 251))]));
    await assert.rejects(probeVideo(tools, random, LIMITS), rejectsWith('VIDEO_UNDECODABLE', /random\.mp4/));
    // An MP4 with no streams at all, and one with sound only.
    const empty = join(dir, 'empty.mp4');
    await runFfmpeg(['-f', 'lavfi', '-i', 'color=c=red:s=64x64', '-frames:v', '0', '-c:v', 'libx264', empty]);
    await assert.rejects(probeVideo(tools, empty, LIMITS), rejectsWith('VIDEO_UNDECODABLE', /no video stream/));
    const sound = join(dir, 'sound.mp4');
    await runFfmpeg(['-f', 'lavfi', '-i', 'sine=d=0.5', '-c:a', 'aac', '-brand', 'isom', sound]);
    await assert.rejects(probeVideo(tools, sound, LIMITS), rejectsWith('VIDEO_UNDECODABLE', /no video stream/));
    // Not a video format at all (here a playlist: FFmpeg is never let near its demuxer), a folder, nothing.
    const playlist = await write('playlist.mp4', Buffer.from(`#EXTM3U\n#EXTINF:1,\nfile:${colours}\n`));
    await assert.rejects(probeVideo(tools, playlist, LIMITS), rejectsWith('VIDEO_UNDECODABLE', /not an MP4, MOV, WebM, Matroska or AVI/));
    await assert.rejects(probeVideo(tools, dir, LIMITS), rejectsWith('VIDEO_UNDECODABLE', /folder/));
    await assert.rejects(probeVideo(tools, join(dir, 'absent.mp4'), LIMITS), rejectsWith('VIDEO_UNDECODABLE', /no such file/));
    await noFfmpegLeft();
  });

  test('frames claiming too many pixels: VIDEO_TOO_LARGE, from the claim or from the decoder', async () => {
    const raw = await readFile(await makeRawAvi(join(dir, 'raw.avi')));
    // 100000 x 100000: beyond what FFmpeg itself will allocate.
    const huge = join(dir, 'huge.avi');
    await writeFile(huge, patchAviSize(raw, 100_000, 100_000));
    await assert.rejects(probeVideo(tools, huge, LIMITS), rejectsWith('VIDEO_TOO_LARGE', /huge\.avi.*100000x100000/));
    // 10000 x 10000: FFmpeg could, the default limit (8192 x 8192) refuses.
    const big = join(dir, 'big.avi');
    await writeFile(big, patchAviSize(raw, 10_000, 10_000));
    await assert.rejects(probeVideo(tools, big, LIMITS), rejectsWith('VIDEO_TOO_LARGE', /10000x10000.*67108864/));
    // A stream larger than its caller believes: the decoder's own -max_pixels stops it.
    const info = await probeVideo(tools, colours, LIMITS);
    await assert.rejects(probeVideo(tools, colours, { ...LIMITS, maxPixels: 320 * 240 - 1 }), rejectsWith('VIDEO_TOO_LARGE', /320x240/));
    await assert.rejects(collect(colours, { maxPixels: 1000 }, info), rejectsWith('VIDEO_TOO_LARGE', /320x240/));
    await assert.rejects(frameAt(tools, colours, 1, 64, { ...LIMITS, maxPixels: 1000 }), rejectsWith('VIDEO_TOO_LARGE'));
    await noFfmpegLeft();
  });
});

describe('frameAt', () => {
  test('a JPEG of the frame at t, at most size px on its longer side, never enlarged', async () => {
    const jpeg = await frameAt(tools, colours, 4, 100, LIMITS);
    const seen = await look(jpeg);
    assert.deepEqual([seen.format, seen.width, seen.height, hue(seen.rgb)], ['jpeg', 100, 75, 'blue']);
    const full = await look(await frameAt(tools, colours, 1.5, 1000, LIMITS));
    assert.deepEqual([full.width, full.height, hue(full.rgb)], [320, 240, 'red']);
    const narrow = await look(await frameAt(tools, await narrowVideo(), 0.2, 320, LIMITS));
    assert.deepEqual([narrow.width, narrow.height], [320, 240], 'pixels made square');
    const avi = await makeVideo(join(dir, 'thumb.avi'), [{ colour: 'green', seconds: 1 }], { size: '180x320' });
    const tall = await look(await frameAt(tools, avi, 0.5, 99, LIMITS));
    assert.deepEqual([tall.width, tall.height, hue(tall.rgb)], [56, 99, 'green']);
    await assert.rejects(frameAt(tools, colours, 60, 100, LIMITS), rejectsWith('VIDEO_UNDECODABLE', /no frame at 60 s/));
    await assert.rejects(frameAt(tools, colours, -1, 100, LIMITS), rejectsWith('INVALID_ARGUMENT'));
  });
});

test('defaults', () => {
  assert.ok(DEFAULT_VIDEO_INTERVAL >= 2 && DEFAULT_VIDEO_INTERVAL <= 5);
  assert.equal(DEFAULT_VIDEO_MAX_FRAMES, 300);
  assert.ok(DEFAULT_VIDEO_DEADLINE_MS >= 60_000);
});
