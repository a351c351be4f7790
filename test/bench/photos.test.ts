import assert from 'node:assert/strict';
import { test } from 'node:test';
import { photosScenario } from '../../bench/photos.ts';
import { formatTable } from '../../bench/table.ts';
import { forged } from '../helpers/models.ts';

test('bench photos scenario: the metadata reader against the engine on the same camera photos', { timeout: 120_000 }, async () => {
  const report = await photosScenario(await forged('tiny'), { intraOpThreads: 1 }, 'tiny', () => {});
  assert.equal(report.photos, 6);
  for (const key of ['exif_ms_per_photo', 'header_only_ms_per_photo', 'embed_ms_per_image', 'exif_share']) {
    assert.equal(typeof report[key], 'number', key);
    assert.ok((report[key] as number) > 0, `${key} = ${report[key]}`);
  }
  const share = (report.exif_ms_per_photo as number) / ((report.exif_ms_per_photo as number) + (report.embed_ms_per_image as number));
  assert.ok(Math.abs(share - (report.exif_share as number)) < 0.01);
  assert.match(formatTable({ photos: report }), /photos: EXIF ms\/photo/);
});
