/**
 * The `media` scenario of `tessera bench` (run with --only media): what indexing videos and
 * PDFs costs against the engine's own offline rate on the same frames and pages.
 *
 * - Video: `tessera index`'s pipeline over one video (FFmpeg decodes at the model's size,
 *   frames picked at cuts and every --video-interval seconds, embedded, written in one atomic
 *   write), in video-seconds and frames per second; then the engine alone over the very frames
 *   it picked, as PNG files (one embedImages call). Target: frames/s >= 0.8 of the offline rate.
 * - PDF: the same over one PDF (a page picture and its text per page), in pages per second,
 *   with Poppler's rendering alone timed, and its share of the indexing time.
 * - Memory: peak RSS while indexing an hour-long video (sampled every 50 ms), which must stay
 *   bounded: frames stream from FFmpeg and are never all held.
 */
import { execFile } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Embedder } from '../src/engine/embedder.ts';
import { indexSources } from '../src/index/pipeline.ts';
import { resolveSource } from '../src/index/sources.ts';
import { findFfmpeg } from '../src/media/ffmpeg.ts';
import { findPoppler, pdfInfo, pdfPages } from '../src/media/pdf.ts';
import { DEFAULT_VIDEO_INTERVAL, probeVideo, videoFrames } from '../src/media/video.ts';
import { openStore } from '../src/store/open.ts';
import { pdfBytes } from '../test/helpers/pdf.ts';
import type { SetSize } from './corpus.ts';
import { round } from './stats.ts';

const run = promisify(execFile);

/**
 * Sizes of each run. The long video's frames are capped (its RSS is the point, not its speed):
 * the quick run embeds 40 of them, the full run the default 300.
 */
const PLAN = {
  tiny: { video: { seconds: 6, size: '320x240', fps: 25 }, pages: 3, long: { seconds: 120, size: '320x180', fps: 1, maxFrames: 4 } },
  quick: { video: { seconds: 60, size: '1280x720', fps: 30 }, pages: 12, long: { seconds: 3600, size: '640x360', fps: 2, maxFrames: 40 } },
  full: { video: { seconds: 120, size: '1920x1080', fps: 30 }, pages: 40, long: { seconds: 3600, size: '1280x720', fps: 25, maxFrames: 300 } },
} as const;

const SEGMENTS = 10;

/** A video of SEGMENTS shots of FFmpeg's test sources (moving patterns, colour bars), each its own hue: cuts, motion, real decoding. */
async function makeBenchVideo(path: string, spec: { seconds: number; size: string; fps: number }): Promise<void> {
  const shot = spec.seconds / SEGMENTS;
  const sources = ['testsrc2', 'smptehdbars', 'testsrc', 'rgbtestsrc', 'yuvtestsrc'];
  const inputs = Array.from({ length: SEGMENTS }, (_, k) => ['-f', 'lavfi', '-i', `${sources[k % sources.length]}=s=${spec.size}:r=${spec.fps}:d=${shot},hue=h=${k * 36}`]).flat();
  const filter = `${Array.from({ length: SEGMENTS }, (_, k) => `[${k}:v]`).join('')}concat=n=${SEGMENTS}:v=1:a=0,format=yuv420p`;
  await run('ffmpeg', ['-nostdin', '-hide_banner', '-loglevel', 'error', '-y', ...inputs, '-filter_complex', filter, '-c:v', 'libx264', '-preset', 'ultrafast', '-g', String(spec.fps * 2), path], { maxBuffer: 1 << 20 });
}

/** Pages like a deck of slides: a colour field and a paragraph each. */
async function makeBenchPdf(path: string, pages: number): Promise<void> {
  const words = 'the quarterly results show growth in every region with the strongest gains in the north and steady margins';
  const spec = Array.from({ length: pages }, (_, k) => ({ colour: [(k * 53) % 256, (k * 97) % 256, (k * 151) % 256] as [number, number, number], text: `Slide ${k + 1}: ${words} ${'and more detail '.repeat(k % 5)}` }));
  await writeFile(path, await pdfBytes(spec, { title: 'Bench deck', author: 'tessera bench' }));
}

/** Indexes `folder` into a fresh store: wall time, documents written, peak RSS (sampled). */
async function indexOnce(embedder: Embedder, modelDir: string, folder: string, storeRoot: string, media: Parameters<typeof indexSources>[0]['media']): Promise<{ ms: number; documents: number; peakRss: number; failed: string[] }> {
  await rm(storeRoot, { recursive: true, force: true });
  const store = await openStore(storeRoot);
  let peakRss = process.memoryUsage.rss();
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage.rss())), 50);
  try {
    const [probe] = await embedder.embedTexts(['x']);
    await store.createCollection({ name: 'bench', model: modelDir, dtype: 'fp32', dimensions: probe!.embedding.length });
    const started = performance.now();
    const result = await indexSources({ store, collection: 'bench', embedder, writer: { model: modelDir, dtype: 'fp32' }, sources: [await resolveSource(folder)], media });
    const ms = performance.now() - started;
    return { ms, documents: await store.count('bench'), peakRss, failed: result.failures.map((f) => `${f.item}: ${f.message}`) };
  } finally {
    clearInterval(sampler);
    await store.close();
  }
}

/** The engine alone over image files (one embedImages call, as the index scenario's offline side). */
async function offlineRate(embedder: Embedder, paths: readonly string[]): Promise<number> {
  const started = performance.now();
  await embedder.embedImages(paths);
  return paths.length / ((performance.now() - started) / 1000);
}

export async function mediaScenario(modelDir: string, threads: number, size: SetSize, log: (line: string) => void): Promise<Record<string, unknown>> {
  const plan = PLAN[size];
  const ffmpeg = await findFfmpeg();
  const poppler = await findPoppler();
  if (!ffmpeg || !poppler) throw new Error('media: the scenario needs FFmpeg and Poppler (apt-get install ffmpeg poppler-utils)');
  const root = join(tmpdir(), `tessera-bench-media-${process.pid}`);
  const storeRoot = join(root, 'store');
  const folders = { video: join(root, 'video'), pdf: join(root, 'pdf'), long: join(root, 'long'), frames: join(root, 'frames'), pages: join(root, 'pages') };
  await rm(root, { recursive: true, force: true });
  for (const f of Object.values(folders)) await mkdir(f, { recursive: true });
  const embedder = await Embedder.load(modelDir, { intraOpThreads: threads });
  try {
    const imageSize = embedder.info.imageSize;
    log(`media: making a ${plan.video.seconds} s ${plan.video.size} video, a ${plan.pages}-page PDF and a ${plan.long.seconds} s video ...`);
    const videoPath = join(folders.video, 'shots.mp4');
    await makeBenchVideo(videoPath, plan.video);
    await makeBenchPdf(join(folders.pdf, 'deck.pdf'), plan.pages);
    await makeBenchVideo(join(folders.long, 'hour.mp4'), plan.long);
    await embedder.embedTexts(['warm up']);

    // Video: the pipeline, then the engine alone on the frames it picked.
    log('media: indexing the video ...');
    const video = await indexOnce(embedder, modelDir, folders.video, storeRoot, {});
    if (video.failed.length > 0) throw new Error(`media: ${video.failed.join('; ')}`);
    const info = await probeVideo(ffmpeg, videoPath, { deadlineMs: 600_000 });
    const decodeStarted = performance.now();
    const framePaths: string[] = [];
    for await (const frame of videoFrames(ffmpeg, videoPath, info, { deadlineMs: 600_000, interval: DEFAULT_VIDEO_INTERVAL, maxFrames: 300, size: imageSize })) {
      const path = join(folders.frames, `f${String(framePaths.length).padStart(4, '0')}.png`);
      await writeFile(path, frame.image);
      framePaths.push(path);
    }
    const decodeMs = performance.now() - decodeStarted;
    if (framePaths.length !== video.documents) throw new Error(`media: the pipeline wrote ${video.documents} frames, FFmpeg gave ${framePaths.length}`);
    log(`media: the engine alone on the same ${framePaths.length} frames ...`);
    const offlineFrames = await offlineRate(embedder, framePaths);
    const framesPerS = video.documents / (video.ms / 1000);

    // PDF: the pipeline, Poppler alone, the engine alone on the rendered pages.
    log('media: indexing the PDF ...');
    const pdf = await indexOnce(embedder, modelDir, folders.pdf, storeRoot, {});
    if (pdf.failed.length > 0) throw new Error(`media: ${pdf.failed.join('; ')}`);
    const pdfPath = join(folders.pdf, 'deck.pdf');
    const renderStarted = performance.now();
    const pagePaths: string[] = [];
    const pdfMeta = await pdfInfo(poppler, pdfPath, { deadlineMs: 600_000 });
    for await (const page of pdfPages(poppler, pdfPath, pdfMeta, { deadlineMs: 600_000, size: imageSize, maxPages: 10_000 })) {
      const path = join(folders.pages, `p${String(page.page).padStart(4, '0')}.png`);
      await writeFile(path, page.image);
      pagePaths.push(path);
    }
    const renderMs = performance.now() - renderStarted;
    log(`media: the engine alone on the same ${pagePaths.length} pages ...`);
    const offlinePages = await offlineRate(embedder, pagePaths);

    // Memory: an hour of video.
    log(`media: indexing a ${plan.long.seconds} s video (at most ${plan.long.maxFrames} frames), sampling RSS ...`);
    const rssBefore = process.memoryUsage.rss();
    const long = await indexOnce(embedder, modelDir, folders.long, storeRoot, { videoMaxFrames: plan.long.maxFrames });
    if (long.failed.length > 0) throw new Error(`media: ${long.failed.join('; ')}`);

    return {
      video: {
        seconds: plan.video.seconds,
        size: plan.video.size,
        fps: plan.video.fps,
        frames: video.documents,
        index_s: round(video.ms / 1000, 2),
        video_seconds_per_s: round(plan.video.seconds / (video.ms / 1000), 2),
        frames_per_s: round(framesPerS, 2),
        offline_images_per_s: round(offlineFrames, 2),
        offline_fraction: round(framesPerS / offlineFrames),
        target_fraction: 0.8,
        decode_only_frames_per_s: round(framePaths.length / (decodeMs / 1000), 1),
      },
      pdf: {
        pages: plan.pages,
        documents: pdf.documents,
        index_s: round(pdf.ms / 1000, 2),
        pages_per_s: round(plan.pages / (pdf.ms / 1000), 2),
        render_only_pages_per_s: round(pagePaths.length / (renderMs / 1000), 1),
        render_share: round(renderMs / pdf.ms),
        offline_images_per_s: round(offlinePages, 2),
        offline_fraction: round(plan.pages / (pdf.ms / 1000) / offlinePages),
      },
      long_video: {
        seconds: plan.long.seconds,
        size: plan.long.size,
        fps: plan.long.fps,
        frames: long.documents,
        index_s: round(long.ms / 1000, 1),
        rss_before_mb: round(rssBefore / 2 ** 20, 0),
        peak_rss_mb: round(long.peakRss / 2 ** 20, 0),
        peak_growth_mb: round((long.peakRss - rssBefore) / 2 ** 20, 0),
      },
      model_image_size: imageSize,
      note: 'video: the index pipeline (FFmpeg at the model size, cuts + every --video-interval s, embedding, one atomic write) against the engine alone on the same frames as PNG files; pdf: the same with a page picture and its text per page (offline_fraction compares pages/s with images/s alone, so the page texts count against it); long_video: RSS sampled every 50 ms while indexing',
    };
  } finally {
    await embedder.close();
    await rm(root, { recursive: true, force: true });
  }
}
