// Photo search over HTTP on both stores: dates and places in filters, results sorted by date
// above a relevance cut-off, and every bad value a 422 naming the field with nothing changed.
// A real server, the colour model, real LanceDB and PostgreSQL stores.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { openStore } from '../../src/store/open.ts';
import { openPostgresStore } from '../../src/store/postgres.ts';
import type { VectorStore } from '../../src/store/store.ts';
import { solidImage } from '../helpers/images.ts';
import { tempDir } from '../helpers/models.ts';
import { startPostgres, type PgServer } from '../helpers/postgres.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

type Hit = { id: string; score: number; metadata: Record<string, unknown> };
type Answer = { data: Hit[]; code?: string; detail?: string };

const RGB = { red: [255, 0, 0], darkred: [150, 10, 10], blue: [0, 0, 255], green: [0, 128, 0] } as const;

/** Reds taken over the years (one dark, scoring lower but still red), in Lisbon, Sydney and Fiji; blues and greens newer. */
const PHOTOS: { id: string; colour: keyof typeof RGB; taken_at?: string; gps_lat?: number; gps_lon?: number }[] = [
  { id: 'red-2019-lisbon', colour: 'red', taken_at: '2019-05-01T10:00:00Z', gps_lat: 38.7223, gps_lon: -9.1393 },
  { id: 'red-2021-sintra', colour: 'red', taken_at: '2021-07-14T18:03:11Z', gps_lat: 38.8029, gps_lon: -9.3817 },
  { id: 'red-2022-sydney', colour: 'darkred', taken_at: '2022-12-24T23:59:59Z', gps_lat: -33.8688, gps_lon: 151.2093 },
  { id: 'red-undated', colour: 'red' },
  { id: 'red-2020-taveuni', colour: 'red', taken_at: '2020-02-02T02:02:02Z', gps_lat: -16.8, gps_lon: 179.95 },
  { id: 'blue-2024', colour: 'blue', taken_at: '2024-01-01T00:00:00Z', gps_lat: 38.72, gps_lon: -9.14 },
  { id: 'blue-2023-rabi', colour: 'blue', taken_at: '2023-03-03T03:03:03Z', gps_lat: -16.5, gps_lon: -179.97 },
  { id: 'green-2025', colour: 'green', taken_at: '2025-06-01T12:00:00Z', gps_lat: 51.5, gps_lon: -0.12 },
];

async function documents() {
  return Promise.all(
    PHOTOS.map(async ({ id, colour, ...metadata }) => ({ id, image: `data:image/png;base64,${(await solidImage(64, 48, RGB[colour])).toString('base64')}`, metadata })),
  );
}

const ids = (a: Answer) => a.data.map((h) => h.id);

let pg: PgServer;
before(async () => {
  pg = await startPostgres();
});
after(async () => {
  await pg?.close();
});

for (const backend of ['lance', 'postgres'] as const) {
  describe(`photo search over HTTP (${backend})`, () => {
    let api: TestServer;
    let store: VectorStore;
    const search = async (body: Record<string, unknown>): Promise<{ status: number } & Answer> => {
      const response = await api.post('/v1/collections/photos/search', body);
      return { status: response.status, ...((await response.json()) as Answer) };
    };

    before(async () => {
      store = backend === 'lance' ? await openStore(await tempDir('tessera-photos-')) : await openPostgresStore(await pg.createDatabase());
      api = await startServer({ model: 'colour', store });
      assert.equal((await api.post('/v1/collections', { name: 'photos' })).status, 200);
      const upserted = await api.post('/v1/collections/photos/documents', { documents: await documents() });
      assert.equal(upserted.status, 200, await upserted.clone().text());
    });
    after(async () => {
      await api.close();
      await store.close();
    });

    test('newest reds first: the relevant set in date order, undated last, the newer blues cut off', async () => {
      const newest = await search({ query: 'red', sort: '-taken_at', cutoff: 'auto', k: 10 });
      assert.equal(newest.status, 200, newest.detail);
      assert.deepEqual(ids(newest), ['red-2022-sydney', 'red-2021-sintra', 'red-2020-taveuni', 'red-2019-lisbon', 'red-undated']);
      const oldest = await search({ query: 'red', sort: 'taken_at', cutoff: 'auto', k: 2 });
      assert.deepEqual(ids(oldest), ['red-2019-lisbon', 'red-2020-taveuni']);
      // Paging walks the same sorted set.
      assert.deepEqual(ids(await search({ query: 'red', sort: 'taken_at', cutoff: 'auto', k: 2, offset: 2 })), ['red-2021-sintra', 'red-2022-sydney']);
      // Without a cut-off a sort orders every candidate: the newest photos, whatever they show.
      assert.equal(ids(await search({ query: 'red', sort: '-taken_at', k: 1 }))[0], 'green-2025');
    });

    test('relative cut-off: the dark red scores lower than 0.9 of the best, and is left out at 0.9 only', async () => {
      const all = await search({ query: 'red', k: 10 });
      const dark = all.data.find((h) => h.id === 'red-2022-sydney')!;
      const top = all.data[0]!.score;
      assert.ok(dark.score < 0.9 * top && dark.score > 0.5 * top, `dark red ${dark.score} vs best ${top}`);
      assert.ok(!ids(await search({ query: 'red', cutoff: { relative: 0.9 }, k: 10 })).includes('red-2022-sydney'));
      const loose = await search({ query: 'red', cutoff: { relative: 0.5 }, k: 10 });
      assert.ok(ids(loose).includes('red-2022-sydney'));
      assert.ok(!ids(loose).some((id) => id.startsWith('blue')));
    });

    test('dates and places in filters, with a sort and in hybrid mode', async () => {
      const summer = await search({ query: 'red', filter: { taken_at: { $gte: '2021-06-01', $lt: '2021-09-01' } } });
      assert.deepEqual(ids(summer), ['red-2021-sintra']);
      const lisbon = await search({ query: 'red', filter: { $near: { lat: 38.72, lon: -9.14, km: 25 } }, sort: 'taken_at' });
      assert.deepEqual(ids(lisbon), ['red-2019-lisbon', 'red-2021-sintra', 'blue-2024']);
      const pacific = await search({ query: 'blue', filter: { $within: { south: -20, west: 179, north: -15, east: -179 } } });
      assert.deepEqual(ids(pacific), ['blue-2023-rabi', 'red-2020-taveuni']);
      const combined = await search({ query: 'red', filter: { $near: { lat: -16.6, lon: 180, km: 100 }, taken_at: { $lt: '2021-01-01T00:00:00+00:00' } } });
      assert.deepEqual(ids(combined), ['red-2020-taveuni']);
      const hybrid = await search({ query: 'red', mode: 'hybrid', filter: { $near: { lat: 38.72, lon: -9.14, km: 25 } }, sort: '-taken_at' });
      assert.deepEqual(ids(hybrid), ['blue-2024', 'red-2021-sintra', 'red-2019-lisbon']);
    });

    test('bad places, dates, sorts and cut-offs: 422 naming the field, nothing stored changed', async () => {
      const before = [...(await store.hashes('photos'))].sort();
      for (const [body, code, field] of [
        [{ filter: { $near: { lat: 95, lon: 0, km: 5 } } }, 'FILTER_INVALID', /filter\.\$near\.lat/],
        [{ filter: { $near: { lat: 38, lon: -9, km: 0 } } }, 'FILTER_INVALID', /filter\.\$near\.km/],
        [{ filter: { $near: { lat: 38, lon: -9 } } }, 'FILTER_INVALID', /filter\.\$near\.km/],
        [{ filter: { $within: { south: 0, west: 0, north: 1 } } }, 'FILTER_INVALID', /filter\.\$within\.east/],
        [{ filter: { taken_at: { $gte: '2021-02-30' } } }, 'FILTER_INVALID', /filter\.taken_at\.\$gte/],
        [{ sort: '-score' }, 'SEARCH_PARAMETER_INVALID', /sort/],
        [{ sort: { taken_at: -1 } }, 'SEARCH_PARAMETER_INVALID', /sort/],
        [{ cutoff: { relative: 2 } }, 'SEARCH_PARAMETER_INVALID', /cutoff\.relative/],
        [{ cutoff: 'sometimes' }, 'SEARCH_PARAMETER_INVALID', /cutoff/],
      ] as const) {
        const answer = await search({ query: 'red', ...body });
        assert.equal(answer.status, 422, JSON.stringify(body));
        assert.equal(answer.code, code, JSON.stringify(body));
        assert.match(answer.detail!, field);
      }
      assert.deepEqual([...(await store.hashes('photos'))].sort(), before);
      assert.equal((await search({ query: 'red', k: 1 })).status, 200);
    });
  });
}
