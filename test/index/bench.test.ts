import assert from 'node:assert/strict';
import { test } from 'node:test';
import { indexScenario } from '../../bench/index.ts';
import { forged } from '../helpers/models.ts';

test('bench index scenario: indexes the photos and reports the offline fraction', { timeout: 120_000 }, async () => {
  const report = await indexScenario(await forged('tiny'), 1, 'tiny', () => {});
  assert.equal(report.photos, 6);
  for (const key of ['offline_images_per_s', 'docs_per_s', 'offline_fraction']) {
    assert.equal(typeof report[key], 'number', key);
    assert.ok((report[key] as number) > 0, `${key} = ${report[key]}`);
  }
  assert.ok(Math.abs((report.docs_per_s as number) / (report.offline_images_per_s as number) - (report.offline_fraction as number)) < 0.01);
});
