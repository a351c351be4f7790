import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, test } from 'node:test';
import sharp from 'sharp';
import { PHOTO_KEYS, readPhotoMetadata } from '../../src/image/photo-metadata.ts';
import { METADATA_KEY } from '../../src/store/store.ts';
import { ascii, buildTiff, byte, gpsEntries, jpegWithExif, photoCases, rational, TAG, type ExifEntry } from '../helpers/exif.ts';
import { tempDir } from '../helpers/models.ts';

const ROOT = new URL('../..', import.meta.url).pathname;
const jpeg = await sharp({ create: { width: 48, height: 32, channels: 3, background: '#808080' } }).jpeg().toBuffer();
const withExif = (spec: Parameters<typeof buildTiff>[0]) => jpegWithExif(jpeg, buildTiff(spec));

describe('readPhotoMetadata', () => {
  test('each photo (JPEG, PNG, WebP; sharp-written and hand-built; hostile ones) gives exactly its keys', async () => {
    for (const c of await photoCases()) {
      const got = await readPhotoMetadata(c.bytes);
      assert.deepEqual(got, c.expected, c.name);
      for (const [key, value] of Object.entries(got)) {
        assert.ok(PHOTO_KEYS.includes(key) && METADATA_KEY.test(key), `${c.name}: ${key}`);
        assert.ok(typeof value === 'string' || typeof value === 'boolean' || Number.isFinite(value), `${c.name}: ${key}`);
      }
    }
  });

  test('dates: every field checked, never rolled over; offsets within -14:00..+14:00; DateTimeDigitized as fallback', async () => {
    // [DateTimeOriginal, OffsetTimeOriginal, DateTimeDigitized, taken_at, taken_at_offset_known]
    const cases: [string, string | undefined, string | undefined, string | undefined, boolean?][] = [
      ['2021:07:14 18:03:11', undefined, undefined, '2021-07-14T18:03:11Z', false],
      ['2021:07:14 18:03:11', '+00:00', undefined, '2021-07-14T18:03:11Z', true],
      ['2021:07:14 18:03:11', '+14:00', undefined, '2021-07-14T04:03:11Z', true],
      ['2021:07:14 18:03:11', '-14:00', undefined, '2021-07-15T08:03:11Z', true],
      ['2021:12:31 23:30:00', '-01:00', undefined, '2022-01-01T00:30:00Z', true],
      // Offsets out of range or malformed: the wall clock is kept, its zone unknown.
      ['2021:07:14 18:03:11', '+14:30', undefined, '2021-07-14T18:03:11Z', false],
      ['2021:07:14 18:03:11', '+05:60', undefined, '2021-07-14T18:03:11Z', false],
      ['2021:07:14 18:03:11', '+5:30', undefined, '2021-07-14T18:03:11Z', false],
      ['2021:07:14 18:03:11', 'CEST', undefined, '2021-07-14T18:03:11Z', false],
      ['2000:02:29 10:00:00', undefined, undefined, '2000-02-29T10:00:00Z', false], // divisible by 400
      ['2021:02:29 10:00:00', undefined, undefined, undefined],
      ['1900:02:29 10:00:00', undefined, undefined, undefined], // divisible by 100
      ['2021:04:31 10:00:00', undefined, undefined, undefined],
      ['2021:13:01 10:00:00', undefined, undefined, undefined],
      ['2021:00:10 10:00:00', undefined, undefined, undefined],
      ['2021:07:00 10:00:00', undefined, undefined, undefined],
      ['2021:07:14 24:00:00', undefined, undefined, undefined],
      ['2021:07:14 23:60:00', undefined, undefined, undefined],
      ['2021:07:14 23:59:60', undefined, undefined, undefined],
      ['0000:00:00 00:00:00', undefined, undefined, undefined],
      ['    :  :     :  :  ', undefined, undefined, undefined],
      ['2021-07-14 18:03:11', undefined, undefined, undefined],
      ['2021:07:14 18:03', undefined, undefined, undefined],
      ['9999:12:31 23:59:59', '-14:00', undefined, undefined], // past year 9999 in UTC
      // A bad DateTimeOriginal falls back to a good DateTimeDigitized (with its own offset, none here).
      ['2021:13:01 10:00:00', '+02:00', '2021:01:13 10:00:00', '2021-01-13T10:00:00Z', false],
    ];
    for (const [original, offset, digitized, iso, known] of cases) {
      const exif: ExifEntry[] = [ascii(TAG.DateTimeOriginal, original)];
      if (offset !== undefined) exif.push(ascii(TAG.OffsetTimeOriginal, offset));
      if (digitized !== undefined) exif.push(ascii(TAG.DateTimeDigitized, digitized));
      const got = await readPhotoMetadata(withExif({ exif }));
      const label = `${original} ${offset ?? ''} ${digitized ?? ''}`;
      assert.equal(got.taken_at, iso, label);
      assert.equal(got.taken_at_offset_known, iso === undefined ? undefined : known, label);
    }
  });

  test('GPS: both coordinates or neither, a reference is required, altitude below sea level by GPSAltitudeRef', async () => {
    const gps = async (entries: ExifEntry[]) => {
      const got = await readPhotoMetadata(withExif({ gps: entries }));
      return [got.gps_lat, got.gps_lon, got.gps_alt];
    };
    assert.deepEqual(await gps(gpsEntries(0, 0)), [0, 0, undefined]);
    assert.deepEqual(await gps(gpsEntries(90, -180, 8848.86)), [90, -180, 8848.86]);
    assert.deepEqual(await gps(gpsEntries(-90, 180, -430.5)), [-90, 180, -430.5]);
    const [latRef, lat, lonRef, lon] = gpsEntries(51.5, -0.125);
    assert.deepEqual(await gps([lat!, lonRef!, lon!]), [undefined, undefined, undefined], 'no GPSLatitudeRef');
    assert.deepEqual(await gps([ascii(TAG.GPSLatitudeRef, 'X'), lat!, lonRef!, lon!]), [undefined, undefined, undefined], 'a reference that is not N or S');
    assert.deepEqual(await gps([latRef!, lat!, lonRef!, lon!, rational(TAG.GPSAltitude, [12, 1])]), [51.5, -0.125, 12], 'no GPSAltitudeRef: above sea level');
    assert.deepEqual(await gps([latRef!, lat!, lonRef!, lon!, byte(TAG.GPSAltitudeRef, 2), rational(TAG.GPSAltitude, [12, 1])]), [51.5, -0.125, undefined]);
    assert.deepEqual(await gps([latRef!, lat!, lonRef!, lon!, rational(TAG.GPSAltitude, [1e9, 1])]), [51.5, -0.125, undefined], 'a million km up');
    // Minutes of 60 are no minutes: left out, not carried into the degrees.
    assert.deepEqual(await gps([latRef!, rational(TAG.GPSLatitude, [51, 1], [60, 1], [0, 1]), lonRef!, lon!]), [undefined, undefined, undefined]);
  });

  test('never throws: not an image, empty bytes, EXIF with a bad header', async () => {
    assert.deepEqual(await readPhotoMetadata(new Uint8Array(0)), {});
    assert.deepEqual(await readPhotoMetadata(Buffer.from('not an image at all')), {});
    const bad = Buffer.from(buildTiff({ ifd0: [ascii(TAG.Make, 'SONY')] }));
    bad.write('XX', 0, 'latin1');
    assert.deepEqual(await readPhotoMetadata(jpegWithExif(jpeg, bad)), { width: 48, height: 32 });
    assert.deepEqual(await readPhotoMetadata(jpegWithExif(jpeg, Buffer.alloc(0))), { width: 48, height: 32 });
  });

  test("the indexing machine's time zone changes nothing (Pacific/Kiritimati, UTC+14, and America/Anchorage, UTC-9/-8)", async () => {
    const dir = await tempDir('tessera-photo-tz-');
    const cases = await photoCases();
    await Promise.all(cases.map((c) => writeFile(join(dir, c.name), c.bytes)));
    const script = `
      import { readdir, readFile } from 'node:fs/promises';
      const { readPhotoMetadata } = await import(${JSON.stringify(`${ROOT}src/image/photo-metadata.ts`)});
      const dir = process.argv[1];
      const out = { zoneOffset: new Date(2021, 6, 14).getTimezoneOffset(), photos: {} };
      for (const name of (await readdir(dir)).sort()) out.photos[name] = await readPhotoMetadata(await readFile(dir + '/' + name));
      process.stdout.write(JSON.stringify(out));`;
    const run = async (tz: string) => {
      const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, dir], { cwd: ROOT, env: { ...process.env, TZ: tz } });
      return JSON.parse(stdout) as { zoneOffset: number; photos: Record<string, unknown> };
    };
    const [kiritimati, anchorage] = await Promise.all([run('Pacific/Kiritimati'), run('America/Anchorage')]);
    // The zones really applied: July is UTC+14 in one, UTC-8 in the other.
    assert.equal(kiritimati.zoneOffset, -14 * 60);
    assert.equal(anchorage.zoneOffset, 8 * 60);
    assert.deepEqual(kiritimati.photos, anchorage.photos);
    assert.deepEqual(kiritimati.photos, Object.fromEntries(cases.map((c) => [c.name, c.expected])));
  });
});
