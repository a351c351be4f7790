import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mediaScenario } from '../../bench/media.ts';
import { formatTable } from '../../bench/table.ts';
import { forged } from '../helpers/models.ts';

test('bench media scenario: a video, a PDF and a long video indexed, against the engine on the same frames and pages', { timeout: 300_000 }, async () => {
  const report = (await mediaScenario(await forged('tiny'), 1, 'tiny', () => {})) as Record<string, Record<string, number>>;
  const { video, pdf, long_video: long } = report as unknown as Record<string, Record<string, number>>;
  assert.ok(video!.frames >= 3, `${video!.frames} frames`);
  for (const key of ['frames_per_s', 'offline_images_per_s', 'video_seconds_per_s', 'decode_only_frames_per_s']) assert.ok(video![key]! > 0, `video.${key} = ${video![key]}`);
  assert.ok(Math.abs(video!.offline_fraction! - video!.frames_per_s! / video!.offline_images_per_s!) < 0.01);
  assert.equal(pdf!.pages, 3);
  assert.equal(pdf!.documents, 6, 'a picture and a text per page');
  assert.ok(pdf!.render_share! > 0, `render share ${pdf!.render_share}`);
  assert.equal(long!.frames, 4, 'the long video capped at its max frames');
  assert.ok(long!.peak_rss_mb! >= long!.rss_before_mb!);
  assert.match(formatTable({ media: report }), /media: video frames\/s indexed/);
});
