// The search page in a real browser (Debian's chromium driven by playwright-core), through
// the real server, on a real collection of coloured images and colour-word texts embedded
// by the forged colour model: the answers are known in advance.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, realpath, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative, sep } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import sharp from 'sharp';
import { loadApiKeys } from '../../src/api/auth.ts';
import { indexSources } from '../../src/index/pipeline.ts';
import { resolveSource, SOURCE_KEY } from '../../src/index/sources.ts';
import { modelRefOf } from '../../src/search/collection.ts';
import { openStore } from '../../src/store/open.ts';
import type { VectorStore } from '../../src/store/store.ts';
import { solidImage } from '../helpers/images.ts';
import { pdfBytes } from '../helpers/pdf.ts';
import { forged, tempDir } from '../helpers/models.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

const CHROMIUM = process.env.TESSERA_CHROMIUM ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
/** Screenshots land here (git-ignored), so a failing run can be looked at. */
const SHOTS = join(import.meta.dirname, '..', '..', 'test-output', 'web');

const COLOURS = {
  red: [255, 0, 0],
  green: [0, 128, 0],
  blue: [0, 0, 255],
  yellow: [255, 255, 0],
  purple: [128, 0, 128],
  white: [255, 255, 255],
  black: [0, 0, 0],
} as const satisfies Record<string, readonly [number, number, number]>;
type Colour = keyof typeof COLOURS;
const NAMES = Object.keys(COLOURS) as Colour[];

const dataUri = (png: Buffer) => `data:image/png;base64,${png.toString('base64')}`;

async function collectionDocuments() {
  const documents: object[] = [];
  for (const [i, name] of NAMES.entries()) {
    documents.push({ id: `images/${name}.png`, image: dataUri(await solidImage(96, 64, COLOURS[name])), metadata: { colour: name, kind: 'photo', n: i } });
    documents.push({ id: `texts/${name}.txt`, text: `a note about something ${name}, written down`, metadata: { colour: name, kind: 'note', n: i } });
  }
  return documents;
}

async function launch(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`the web page test needs Chromium at ${CHROMIUM} (Debian: apt-get install chromium; or set TESSERA_CHROMIUM to another Chromium binary)`);
  }
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
}

const stores: VectorStore[] = [];
// Registered after the server helper's own hook, so the servers are closed first.
after(async () => {
  await Promise.all(stores.map((s) => s.close()));
});

/** A server with a store, and one collection "colours" upserted through the API. */
async function searchServer(options: { key?: string } = {}): Promise<TestServer & { auth: Record<string, string> }> {
  const store = await openStore(await tempDir('tessera-web-store-'));
  const apiKeys = options.key ? await loadApiKeys({ env: `alice:${options.key}` }) : null;
  stores.push(store);
  const server = await startServer({ model: 'colour', store, apiKeys });
  const auth: Record<string, string> = options.key ? { authorization: `Bearer ${options.key}` } : {};
  const created = await server.post('/v1/collections', { name: 'colours' }, auth);
  assert.equal(created.status, 200, await created.clone().text());
  const upserted = await server.post('/v1/collections/colours/documents', { documents: await collectionDocuments() }, auth);
  assert.equal(upserted.status, 200, await upserted.clone().text());
  return Object.assign(server, { auth });
}

/** The results the page shows, in page order. */
async function shown(page: Page): Promise<{ id: string; score: number; rank: number }[]> {
  return page.$$eval('[data-id]', (els) => els.map((el) => ({
    id: (el as HTMLElement).dataset.id!,
    score: Number((el as HTMLElement).dataset.score),
    rank: Number((el as HTMLElement).dataset.rank),
  })));
}

async function firstResultIs(page: Page, id: string): Promise<void> {
  try {
    await page.waitForFunction((want) => (document.querySelector('[data-id]') as HTMLElement | null)?.dataset.id === want, id, { timeout: 15_000 });
  } catch (err) {
    const error = await page.textContent('#error');
    throw new Error(`expected ${id} first; the page shows ${JSON.stringify((await shown(page)).slice(0, 3))}, error ${JSON.stringify(error)}`, { cause: err });
  }
}

async function ready(page: Page): Promise<void> {
  await page.waitForSelector('html[data-ready="true"]', { timeout: 15_000 });
}

function params(page: Page): URLSearchParams {
  return new URL(page.url()).searchParams;
}

async function shot(page: Page, name: string): Promise<void> {
  const path = join(SHOTS, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
}

/** Asserts the shown results are in rank order with scores best first. */
function assertRanked(results: { score: number; rank: number }[]): void {
  assert.ok(results.length > 0);
  results.forEach((r, i) => assert.equal(r.rank, i + 1));
  for (let i = 1; i < results.length; i++) assert.ok(results[i - 1]!.score >= results[i]!.score, `scores best first: ${results.map((r) => r.score)}`);
}

let browser: Browser;
before(async () => {
  await mkdir(SHOTS, { recursive: true });
  browser = await launch();
  console.log(`# screenshots: ${SHOTS}`);
});
after(async () => {
  await browser?.close();
});

describe('the search page on a collection of colours', () => {
  let server: TestServer;
  let context: BrowserContext;
  let page: Page;
  const pageErrors: string[] = [];

  before(async () => {
    server = await searchServer();
    context = await browser.newContext({ viewport: { width: 1200, height: 800 } });
    page = await context.newPage();
    page.on('pageerror', (err) => pageErrors.push(err.message));
  });
  after(async () => {
    await context?.close();
    assert.deepEqual(pageErrors, [], 'no uncaught errors in the page');
  });

  test('typing a colour word and pressing Enter finds that colour; the URL holds the search', async () => {
    await page.goto(server.url + '/');
    await ready(page);
    assert.equal(await page.getByLabel('Collection').inputValue(), 'colours');
    await page.locator('input[type="search"][name="q"]').fill('red');
    await page.keyboard.press('Enter');
    await page.waitForSelector('[data-id]');
    const results = await shown(page);
    assertRanked(results);
    // The red text and the red image are the two best, far above any other colour.
    assert.deepEqual(new Set(results.slice(0, 2).map((r) => r.id)), new Set(['texts/red.txt', 'images/red.png']));
    assert.ok(results[1]!.score > results[2]!.score + 0.3, JSON.stringify(results.slice(0, 3)));
    assert.equal(params(page).get('q'), 'red');
    assert.equal(params(page).get('collection'), 'colours');
    // Count and time are shown.
    assert.match(await page.textContent('#status') ?? '', new RegExp(`^${results.length} results .* \\d+(\\.\\d)? ms$`));

    // Images only: the red image is first, and its thumbnail really loaded.
    await page.getByLabel('Kind').selectOption('image');
    await firstResultIs(page, 'images/red.png');
    assert.equal(params(page).get('modality'), 'image');
    assert.ok((await shown(page)).every((r) => r.id.startsWith('images/')));
    const thumb = page.locator('[data-id="images/red.png"] img');
    await thumb.evaluate((img: HTMLImageElement) => img.decode());
    assert.ok(await thumb.evaluate((img: HTMLImageElement) => img.naturalWidth > 0));
    await shot(page, '1-text-query-red');

    // Hybrid mode is a choice of the page too, and lands in the URL.
    await page.getByLabel('Kind').selectOption('text');
    await page.getByLabel('Mode').selectOption('hybrid');
    await page.waitForURL((url) => url.searchParams.get('mode') === 'hybrid');
    await firstResultIs(page, 'texts/red.txt');
    await page.getByLabel('Mode').selectOption('');
    await page.waitForURL((url) => !url.searchParams.has('mode'));
  });

  test('a dropped image finds the same colour first', async () => {
    await page.getByLabel('Kind').selectOption('');
    const png = await solidImage(50, 30, COLOURS.blue);
    const transfer = await page.evaluateHandle((b64) => {
      const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      const data = new DataTransfer();
      data.items.add(new File([bytes], 'query.png', { type: 'image/png' }));
      return data;
    }, png.toString('base64'));
    await page.dispatchEvent('main', 'dragenter', { dataTransfer: transfer });
    assert.ok(await page.isVisible('#drop-overlay'));
    await page.dispatchEvent('main', 'drop', { dataTransfer: transfer });
    await firstResultIs(page, 'images/blue.png');
    assert.equal(await page.isVisible('#drop-overlay'), false);
    assert.equal(await page.locator('input[name="q"]').inputValue(), '', 'an image query replaces the text');
    assert.ok(await page.isVisible('#image-chip img'));
    assert.equal(params(page).get('q'), null);
    assertRanked(await shown(page));
    await shot(page, '2-dropped-blue-image');
  });

  test('a pasted image finds its colour first', async () => {
    const png = await solidImage(64, 64, COLOURS.white);
    await page.evaluate((b64) => {
      const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      const data = new DataTransfer();
      data.items.add(new File([bytes], 'pasted.png', { type: 'image/png' }));
      document.dispatchEvent(new ClipboardEvent('paste', { clipboardData: data, bubbles: true, cancelable: true }));
    }, png.toString('base64'));
    await firstResultIs(page, 'images/white.png');
  });

  test('an image picked with the file input finds its colour first', async () => {
    const png = await solidImage(40, 40, COLOURS.yellow);
    await page.locator('#image-file').setInputFiles({ name: 'yellow.png', mimeType: 'image/png', buffer: png });
    await firstResultIs(page, 'images/yellow.png');
  });

  test('clicking a result searches for more like it; URL and results change; back and forward walk the searches', async () => {
    // The picked image is still part of the query: remove it, then search by text alone.
    await page.getByRole('button', { name: 'Remove the image from the query' }).click();
    await page.waitForFunction(() => document.querySelectorAll('[data-id]').length === 0);
    await page.locator('input[name="q"]').fill('green');
    await page.keyboard.press('Enter');
    await firstResultIs(page, 'texts/green.txt');
    const before = await shown(page);
    assert.equal(before[1]!.id, 'images/green.png');

    await page.locator('[data-id="images/purple.png"] button').click();
    await page.waitForURL((url) => url.searchParams.get('like') === 'images/purple.png');
    await page.waitForFunction((old) => (document.querySelector('[data-id]') as HTMLElement | null)?.dataset.id !== old, before[0]!.id);
    const similar = await shown(page);
    assertRanked(similar);
    assert.equal(params(page).get('q'), null);
    assert.ok(['images/purple.png', 'texts/purple.txt'].includes(similar[0]!.id), JSON.stringify(similar.slice(0, 3)));
    assert.ok(similar.slice(0, 2).some((r) => r.id === 'texts/purple.txt'));
    assert.notDeepEqual(similar.map((r) => r.id), before.map((r) => r.id));
    assert.ok(await page.isVisible('#like-chip'));
    await shot(page, '3-more-like-purple');

    await page.goBack();
    await page.waitForURL((url) => url.searchParams.get('q') === 'green');
    await firstResultIs(page, 'texts/green.txt');
    assert.equal(await page.locator('input[name="q"]').inputValue(), 'green');
    await page.goForward();
    await page.waitForURL((url) => url.searchParams.get('like') === 'images/purple.png');
    await page.waitForFunction(() => (document.querySelector('[data-id]') as HTMLElement | null)?.dataset.id?.includes('purple'));
  });

  test('a bad filter shows the API\'s error in the page and no results', async () => {
    const filter = '{"n": {"$regex": ".*"}}';
    const direct = await server.post('/v1/collections/colours/search', { query: 'red', k: 24, filter: JSON.parse(filter) });
    assert.equal(direct.status, 422);
    const { detail, code } = await direct.json() as { detail: string; code: string };
    assert.equal(code, 'FILTER_INVALID');

    // Escape in the query box starts afresh (the "more like" example from before is dropped).
    await page.locator('input[name="q"]').focus();
    await page.keyboard.press('Escape');
    await page.waitForFunction(() => document.querySelectorAll('[data-id]').length === 0);
    assert.equal(await page.isVisible('#like-chip'), false);
    await page.locator('input[name="q"]').fill('red');
    await page.getByLabel('Metadata filter (JSON)').fill(filter);
    await page.keyboard.press('Enter');
    await page.waitForSelector('#error:not([hidden])');
    assert.equal(await page.textContent('#error'), detail);
    assert.equal((await shown(page)).length, 0);
    assert.equal(params(page).get('filter'), filter);
    await shot(page, '4-bad-filter');

    // Not JSON at all: the page says so before asking the server.
    await page.getByLabel('Metadata filter (JSON)').fill('{colour: red');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => document.querySelector('#error')?.textContent?.startsWith('metadata filter: expected JSON'));

    // A good filter: only the matching documents, and the error is gone.
    await page.getByLabel('Metadata filter (JSON)').fill('{"kind": "photo", "n": {"$gte": 3}}');
    await page.keyboard.press('Enter');
    await page.waitForSelector('#error', { state: 'hidden' });
    await page.waitForSelector('[data-id]');
    const filtered = await shown(page);
    const expected = NAMES.filter((_, i) => i >= 3).map((n) => `images/${n}.png`);
    assert.deepEqual(filtered.map((r) => r.id).sort(), expected.sort());
  });

  test('a shared URL restores the search, and so does a reload; Escape clears it', async () => {
    const url = `${server.url}/?q=red&collection=colours&modality=image&min_score=0.5`;
    const fresh = await context.newPage();
    await fresh.goto(url);
    await ready(fresh);
    await firstResultIs(fresh, 'images/red.png');
    assert.equal(await fresh.locator('input[name="q"]').inputValue(), 'red');
    assert.equal(await fresh.getByLabel('Kind').inputValue(), 'image');
    assert.equal(await fresh.getByLabel('Min score').inputValue(), '0.5');
    const first = await shown(fresh);
    assert.ok(first.every((r) => r.score >= 0.5 && r.id.startsWith('images/')), JSON.stringify(first));

    await fresh.reload();
    await ready(fresh);
    await firstResultIs(fresh, 'images/red.png');
    assert.deepEqual((await shown(fresh)).map((r) => r.id), first.map((r) => r.id));
    assert.equal(fresh.url(), url);
    await shot(fresh, '5-restored-from-url');

    await fresh.locator('input[name="q"]').focus();
    await fresh.keyboard.press('Escape');
    await fresh.waitForFunction(() => document.querySelectorAll('[data-id]').length === 0);
    assert.equal(await fresh.locator('input[name="q"]').inputValue(), '');
    assert.equal(params(fresh).get('q'), null);
    assert.ok(await fresh.isVisible('#welcome'));
    await fresh.close();
  });

  test('a narrow screen still shows a usable grid', async () => {
    const phone = await browser.newPage({ viewport: { width: 390, height: 844 } });
    await phone.goto(`${server.url}/?q=blue&collection=colours`);
    await ready(phone);
    await firstResultIs(phone, 'texts/blue.txt');
    const width = await phone.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= 390, `no horizontal scrolling (${width}px wide)`);
    const boxes = await phone.locator('[data-id]').evaluateAll((els) => els.slice(0, 2).map((el) => el.getBoundingClientRect().top));
    assert.equal(boxes[0], boxes[1], 'two results side by side');
    await shot(phone, '6-narrow-screen');
    await phone.close();
  });
});

describe('the search page on a server with API keys', () => {
  test('without a key the API\'s 401 is shown and the key field opens; with the saved key search works', async () => {
    const server = await searchServer({ key: 'secret-key-1' });
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(server.url + '/?q=black&collection=colours&modality=image');
    await ready(page);
    await page.waitForSelector('#error:not([hidden])');
    assert.match(await page.textContent('#error') ?? '', /key/i);
    assert.ok(await page.isVisible('#api-key'), 'the key field is opened');

    await page.locator('#api-key').fill('secret-key-1');
    await page.keyboard.press('Enter');
    await firstResultIs(page, 'images/black.png');
    assert.equal(await page.isVisible('#error'), false);
    // Thumbnails need the key too: fetched with it and shown from a blob.
    const thumb = page.locator('[data-id="images/black.png"] img');
    await page.waitForFunction(() => (document.querySelector('[data-id="images/black.png"] img') as HTMLImageElement | null)?.src.startsWith('blob:'));
    await thumb.evaluate((img: HTMLImageElement) => img.decode());

    // The key is kept: a new page in the same browser profile searches at once.
    const again = await context.newPage();
    await again.goto(server.url + '/?q=white&collection=colours&modality=image');
    await ready(again);
    await firstResultIs(again, 'images/white.png');
    assert.equal(await again.evaluate(() => localStorage.getItem('tessera.apiKey')), 'secret-key-1');
    await shot(again, '7-with-api-key');
    await context.close();
  });
});

describe('the search page on a server of two models', () => {
  test('the picker shows which model each collection uses, and each collection is searched with its own', async () => {
    const store = await openStore(await tempDir('tessera-web-models-'));
    stores.push(store);
    const server = await startServer({ models: [{ model: 'colour', name: 'colour' }, { model: 'tiny', name: 'tiny' }], store });
    const documents = await collectionDocuments();
    for (const [name, model] of [['colours', 'colour'], ['randoms', 'tiny']]) {
      assert.equal((await server.post('/v1/collections', { name, model })).status, 200);
      const upserted = await server.post(`/v1/collections/${name}/documents`, { documents });
      assert.equal(upserted.status, 200, await upserted.clone().text());
    }
    await store.createCollection({ name: 'elsewhere', model: 'jinaai/jina-clip-v1', dtype: 'fp32', dimensions: 768 });

    const context = await browser.newContext({ viewport: { width: 1200, height: 800 } });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(err.message));
    await page.goto(server.url + '/?q=red&collection=colours&modality=image');
    await ready(page);
    await firstResultIs(page, 'images/red.png');
    assert.equal(await page.textContent('#collection-model'), 'Model: colour');
    const options = await page.$$eval('#collection option', (els) => els.map((el) => el.textContent));
    assert.deepEqual(options.sort(), ['colours (14) · colour', 'elsewhere (0) · model not served', 'randoms (14) · tiny']);

    // The tiny model's collection: its own model answers (its scores, not the colour model's).
    await page.getByLabel('Collection').selectOption('randoms');
    await page.waitForFunction(() => new URL(location.href).searchParams.get('collection') === 'randoms');
    assert.equal(await page.textContent('#collection-model'), 'Model: tiny');
    await page.waitForSelector('[data-id]');
    const direct = (await (await server.post('/v1/collections/randoms/search', { query: 'red', k: 24, modality: 'image' })).json()) as { data: { id: string }[] };
    await firstResultIs(page, direct.data[0]!.id);
    await shot(page, '8-two-models');

    // A collection of a model this server does not serve: flagged, and the API's reason shown.
    await page.getByLabel('Collection').selectOption('elsewhere');
    assert.match(await page.textContent('#collection-model') ?? '', /jinaai\/jina-clip-v1 \(not served here\)/);
    await page.waitForSelector('#error:not([hidden])');
    assert.match(await page.textContent('#error') ?? '', /does not serve/);
    await context.close();
    assert.deepEqual(errors, []);
  });
});

// ---------------------------------------------------------------- a photo library

/** Photos as `tessera index` records them: a coloured image each, with EXIF facts as metadata. */
const PHOTOS = [
  { id: 'photos/2019-lisbon.jpg', colour: 'red', metadata: { taken_at: '2019-03-02T09:15:00Z', taken_at_offset_known: true, camera_make: 'Canon', camera_model: 'Canon EOS 5D Mark IV', lens: 'EF24-70mm f/2.8L II USM', gps_lat: 38.7223, gps_lon: -9.1393, gps_alt: 85.2, album: 'spring' } },
  { id: 'photos/2020-blue.jpg', colour: 'blue', metadata: { taken_at: '2020-10-10T10:00:00Z', taken_at_offset_known: true, camera_make: 'SONY', camera_model: 'ILCE-7M3' } },
  { id: 'photos/2021-porto.jpg', colour: 'red', metadata: { taken_at: '2021-07-14T18:03:11Z', taken_at_offset_known: true, camera_make: 'FUJIFILM', camera_model: 'X-T3', gps_lat: 41.1579, gps_lon: -8.6291, album: 'summer' } },
  { id: 'photos/2021-08-31-late.jpg', colour: 'red', metadata: { taken_at: '2021-08-31T23:30:00Z', taken_at_offset_known: true, camera_make: 'NIKON CORPORATION', camera_model: 'NIKON D750' } },
  { id: 'photos/2021-09-01-early.jpg', colour: 'red', metadata: { taken_at: '2021-09-01T00:10:00Z', taken_at_offset_known: true, camera_make: 'Apple', camera_model: 'iPhone 12', gps_lat: 40.4168, gps_lon: -3.7038 } },
  { id: 'photos/2022-blue.jpg', colour: 'blue', metadata: { taken_at: '2022-05-01T10:00:00Z', taken_at_offset_known: true } },
  { id: 'photos/2023-red.jpg', colour: 'red', metadata: { taken_at: '2023-01-05T12:00:00Z', taken_at_offset_known: false } },
  { id: 'photos/undated-red.jpg', colour: 'red', metadata: {} },
] as const satisfies readonly { id: string; colour: Colour; metadata: Record<string, string | number | boolean> }[];

/** The red photos newest first, the undated one last (as sorting by -taken_at puts it). */
const RED_NEWEST_FIRST = ['photos/2023-red.jpg', 'photos/2021-09-01-early.jpg', 'photos/2021-08-31-late.jpg', 'photos/2021-porto.jpg', 'photos/2019-lisbon.jpg', 'photos/undated-red.jpg'];
const RED_OLDEST_FIRST = [...RED_NEWEST_FIRST.slice(0, -1).reverse(), RED_NEWEST_FIRST.at(-1)!];

async function photoDocuments() {
  return Promise.all(PHOTOS.map(async ({ id, colour, metadata }) => ({
    id,
    image: dataUri(await solidImage(120, 80, COLOURS[colour])),
    // and the file's own facts, as indexing a folder records them
    metadata: { ...metadata, width: 120, height: 80, ext: 'jpg', bytes: 1234, mtime: 1_700_000_000 },
  })));
}

interface SearchRequest {
  query: unknown;
  sort?: string;
  cutoff?: unknown;
  filter?: Record<string, unknown>;
  group?: boolean;
  collapse?: boolean;
}

/** Runs `action` and returns the body of the search request it makes. */
async function searchRequest(page: Page, action: () => Promise<unknown>): Promise<SearchRequest> {
  const [request] = await Promise.all([
    page.waitForRequest((r) => r.method() === 'POST' && /\/v1\/collections\/[^/]+\/search$/.test(r.url()), { timeout: 15_000 }),
    action(),
  ]);
  return request.postDataJSON() as SearchRequest;
}

/** Waits until the page shows exactly these results (in this order, unless `anyOrder`). */
async function resultsAre(page: Page, ids: readonly string[], anyOrder = false): Promise<void> {
  const want = anyOrder ? [...ids].sort() : [...ids];
  try {
    await page.waitForFunction(({ want, anyOrder }) => {
      if (document.body.classList.contains('busy')) return false;
      const got = [...document.querySelectorAll('[data-id]')].map((el) => (el as HTMLElement).dataset.id);
      if (anyOrder) got.sort();
      return JSON.stringify(got) === JSON.stringify(want);
    }, { want, anyOrder }, { timeout: 15_000 });
  } catch (err) {
    const error = await page.textContent('#error');
    throw new Error(`expected ${JSON.stringify(want)}; the page shows ${JSON.stringify((await shown(page)).map((r) => r.id))}, error ${JSON.stringify(error)}`, { cause: err });
  }
}

// The forged colour model sees every red photo as the same picture (a solid colour's vector is
// the colour's): near-identical, so the page would collapse them into one result. These tests
// are about each photo's facts and order: they turn collapsing off (collapse=off in the URL).
describe('the search page on a photo library', () => {
  let server: TestServer;
  let context: BrowserContext;
  let page: Page;
  const pageErrors: string[] = [];

  before(async () => {
    const store = await openStore(await tempDir('tessera-web-photos-'));
    stores.push(store);
    server = await startServer({ model: 'colour', store });
    assert.equal((await server.post('/v1/collections', { name: 'photos' })).status, 200);
    const upserted = await server.post('/v1/collections/photos/documents', { documents: await photoDocuments() });
    assert.equal(upserted.status, 200, await upserted.clone().text());
    // Far from UTC: a date the browser moved into its own time zone would show another day.
    context = await browser.newContext({ viewport: { width: 1200, height: 900 }, timezoneId: 'Pacific/Auckland' });
    page = await context.newPage();
    page.on('pageerror', (err) => pageErrors.push(err.message));
  });
  after(async () => {
    await context?.close();
    assert.deepEqual(pageErrors, [], 'no uncaught errors in the page');
  });

  test('a photo shows when (in UTC), with which camera and where it was taken', async () => {
    const body = await searchRequest(page, () => page.goto(`${server.url}/?q=red&collection=photos&collapse=off`));
    await ready(page);
    await resultsAre(page, PHOTOS.map((p) => p.id), true);
    // Best match by default: no sort and no cut-off are asked for.
    assert.equal(body.sort, undefined);
    assert.equal(body.cutoff, undefined);
    assert.equal(await page.getByLabel('Sort').inputValue(), '');
    assert.equal(await page.getByLabel('Cut-off').inputValue(), 'off');

    const card = (id: string) => page.locator(`[data-id="${id}"]`);
    const porto = card('photos/2021-porto.jpg');
    assert.equal(await porto.locator('.taken').textContent(), '14 Jul 2021 18:03 UTC');
    assert.equal(await porto.locator('.taken time').getAttribute('datetime'), '2021-07-14T18:03:11Z');
    assert.equal(await porto.locator('.camera').textContent(), 'FUJIFILM X-T3');
    assert.equal(await porto.locator('.place').textContent(), '41.16, -8.63');
    // The photo's other metadata is listed; its file's facts and the keys shown above are not.
    assert.deepEqual(await porto.locator('.metadata dt').allTextContents(), ['album']);

    const lisbon = card('photos/2019-lisbon.jpg');
    assert.equal(await lisbon.locator('.taken').textContent(), '2 Mar 2019 09:15 UTC');
    assert.equal(await lisbon.locator('.camera').textContent(), 'Canon EOS 5D Mark IV', 'the make is not repeated');
    assert.match(await lisbon.locator('.camera').getAttribute('title') ?? '', /EF24-70mm/);
    assert.equal(await lisbon.locator('.place').textContent(), '38.72, -9.14');

    assert.equal(await card('photos/2021-08-31-late.jpg').locator('.camera').textContent(), 'NIKON D750');
    assert.equal(await card('photos/2021-08-31-late.jpg').locator('.place').count(), 0, 'no place without GPS');
    assert.equal(await card('photos/2021-09-01-early.jpg').locator('.camera').textContent(), 'Apple iPhone 12');
    // A camera that recorded no time zone: its clock's time, marked as such.
    assert.equal(await card('photos/2023-red.jpg').locator('.taken').textContent(), '5 Jan 2023 12:00 (zone unknown)');
    assert.equal(await card('photos/undated-red.jpg').locator('.facts').count(), 0);
    await shot(page, '9-photo-facts');
  });

  test('newest first asks for sort -taken_at with the auto cut-off and shows the photos in date order; oldest first too', async () => {
    const newest = await searchRequest(page, () => page.getByLabel('Sort').selectOption('-taken_at'));
    assert.equal(newest.sort, '-taken_at');
    assert.equal(newest.cutoff, 'auto');
    // The two blue photos score far below the red ones: cut off.
    await resultsAre(page, RED_NEWEST_FIRST);
    assert.equal(await page.getByLabel('Cut-off').inputValue(), 'auto');
    assert.equal(params(page).get('sort'), '-taken_at');
    assert.equal(params(page).get('cutoff'), null, 'the default cut-off is not written in the URL');
    assert.match(await page.textContent('#status') ?? '', /newest first, cut off where the scores drop/);
    await shot(page, '10-newest-first');

    const oldest = await searchRequest(page, () => page.getByLabel('Sort').selectOption('taken_at'));
    assert.deepEqual([oldest.sort, oldest.cutoff], ['taken_at', 'auto']);
    await resultsAre(page, RED_OLDEST_FIRST);

    // A cut-off chosen by hand is kept, and lands in the URL.
    const all = await searchRequest(page, () => page.getByLabel('Cut-off').selectOption('off'));
    assert.deepEqual([all.sort, all.cutoff], ['taken_at', undefined]);
    assert.equal(params(page).get('cutoff'), 'off');
    await resultsAre(page, ['photos/2019-lisbon.jpg', 'photos/2020-blue.jpg', 'photos/2021-porto.jpg', 'photos/2021-08-31-late.jpg', 'photos/2021-09-01-early.jpg', 'photos/2022-blue.jpg', 'photos/2023-red.jpg', 'photos/undated-red.jpg']);

    // Back: the sorted view with its default cut-off again.
    await page.goBack();
    await page.waitForURL((url) => !url.searchParams.has('cutoff') && url.searchParams.get('sort') === 'taken_at');
    await resultsAre(page, RED_OLDEST_FIRST);
    assert.equal(await page.getByLabel('Cut-off').inputValue(), 'auto');

    // Best match: the cut-off follows (off), as nothing was chosen in this view.
    const best = await searchRequest(page, () => page.getByLabel('Sort').selectOption(''));
    assert.deepEqual([best.sort, best.cutoff], [undefined, undefined]);
    assert.equal(await page.getByLabel('Cut-off').inputValue(), 'off');
    await resultsAre(page, [...RED_NEWEST_FIRST, 'photos/2020-blue.jpg', 'photos/2022-blue.jpg'], true);
  });

  test('the date range filters on taken_at, whole days in UTC, merged with the metadata filter; a reload keeps it', async () => {
    await page.goto(`${server.url}/?q=red&collection=photos&collapse=off`);
    await ready(page);
    await page.getByLabel('Taken from').fill('2021-06-01');
    await resultsAre(page, ['photos/2021-porto.jpg', 'photos/2021-08-31-late.jpg', 'photos/2021-09-01-early.jpg', 'photos/2022-blue.jpg', 'photos/2023-red.jpg'], true);
    const body = await searchRequest(page, () => page.getByLabel('Taken until').fill('2021-08-31'));
    // "until" includes the whole day: up to midnight UTC after it.
    assert.deepEqual(body.filter, { taken_at: { $gte: '2021-06-01', $lt: '2021-09-01' } });
    await resultsAre(page, ['photos/2021-porto.jpg', 'photos/2021-08-31-late.jpg'], true);
    assert.equal(params(page).get('from'), '2021-06-01');
    assert.equal(params(page).get('to'), '2021-08-31');

    const merged = await searchRequest(page, async () => {
      await page.getByLabel('Metadata filter (JSON)').fill('{"camera_make": "FUJIFILM"}');
      await page.keyboard.press('Enter');
    });
    assert.deepEqual(merged.filter, { camera_make: 'FUJIFILM', taken_at: { $gte: '2021-06-01', $lt: '2021-09-01' } });
    await resultsAre(page, ['photos/2021-porto.jpg']);

    // The filter's own bound on taken_at clashes with the range: the page says so.
    await page.getByLabel('Metadata filter (JSON)').fill('{"taken_at": {"$gte": "2020-01-01"}}');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => /taken_at and the dates both set \$gte/.test(document.querySelector('#error')?.textContent ?? ''));
    await page.getByLabel('Metadata filter (JSON)').fill('{"camera_make": "FUJIFILM"}');
    await page.keyboard.press('Enter');
    await resultsAre(page, ['photos/2021-porto.jpg']);

    const url = page.url();
    await page.reload();
    await ready(page);
    await resultsAre(page, ['photos/2021-porto.jpg']);
    assert.equal(page.url(), url);
    assert.equal(await page.getByLabel('Taken from').inputValue(), '2021-06-01');
    assert.equal(await page.getByLabel('Taken until').inputValue(), '2021-08-31');
    assert.equal(await page.getByLabel('Metadata filter (JSON)').inputValue(), '{"camera_make": "FUJIFILM"}');
  });

  test('a shared URL restores sort, cut-off, dates and filter, and so does a reload', async () => {
    const query = new URLSearchParams({ q: 'red', collection: 'photos', sort: '-taken_at', cutoff: '0.9', from: '2021-01-01', to: '2021-12-31', filter: '{"gps_lat":{"$gt":40}}', collapse: 'off' });
    const url = `${server.url}/?${query}`;
    const fresh = await context.newPage();
    fresh.on('pageerror', (err) => pageErrors.push(err.message));
    const body = await searchRequest(fresh, () => fresh.goto(url));
    assert.equal(body.sort, '-taken_at');
    assert.deepEqual(body.cutoff, { relative: 0.9 });
    assert.deepEqual(body.filter, { gps_lat: { $gt: 40 }, taken_at: { $gte: '2021-01-01', $lt: '2022-01-01' } });
    await ready(fresh);
    await resultsAre(fresh, ['photos/2021-09-01-early.jpg', 'photos/2021-porto.jpg']);
    assert.equal(await fresh.getByLabel('Sort').inputValue(), '-taken_at');
    assert.equal(await fresh.getByLabel('Cut-off').inputValue(), '0.9');
    assert.equal(await fresh.getByLabel('Taken from').inputValue(), '2021-01-01');
    assert.equal(await fresh.getByLabel('Taken until').inputValue(), '2021-12-31');

    await fresh.reload();
    await ready(fresh);
    await resultsAre(fresh, ['photos/2021-09-01-early.jpg', 'photos/2021-porto.jpg']);
    assert.equal(fresh.url(), url);
    await shot(fresh, '11-photos-from-url');
    await fresh.close();
  });
});

describe('the search page on a folder indexed by the indexer', () => {
  let server: TestServer;
  let store: VectorStore;
  let context: BrowserContext;
  let page: Page;
  let root: string;
  const pageErrors: string[] = [];
  /** What the server's file system may not show: the folder's path and each of its own parts. */
  const secrets: string[] = [];

  before(async () => {
    // A folder with a name of its own, under a temporary directory with one too.
    const base = await tempDir('tessera-web-folder-');
    await mkdir(join(base, 'Private-Holiday-Album', 'beach'), { recursive: true });
    root = await realpath(join(base, 'Private-Holiday-Album'));
    await writeFile(join(root, 'red.png'), await solidImage(96, 64, COLOURS.red));
    await writeFile(join(root, 'beach', 'blue.png'), await solidImage(96, 64, COLOURS.blue));
    await writeFile(join(root, 'beach', 'sea.txt'), 'the blue sea, a note about something blue');
    await writeFile(join(root, 'yellow.md'), 'a yellow sun');
    // Every part of the path below the system's temporary directory, which is the folder's own
    // (the temporary directory itself is not: the forged model the server runs lives there too,
    // and collections show their model as recorded, a folder's path for a model from a folder).
    const own = relative(await realpath(tmpdir()), root);
    assert.ok(!own.startsWith('..'), `${root} is under ${tmpdir()}`);
    secrets.push(root, join(base, 'Private-Holiday-Album'), ...own.split(sep), SOURCE_KEY);

    store = await openStore(await tempDir('tessera-web-folder-store-'));
    stores.push(store);
    server = await startServer({ model: 'colour', store });
    assert.equal((await server.post('/v1/collections', { name: 'album' })).status, 200);
    // The real indexer, into the store the server serves, with the served model.
    const indexed = await indexSources({
      store,
      collection: 'album',
      embedder: server.embedder,
      writer: modelRefOf(await forged('colour'), 'fp32'),
      sources: [await resolveSource(root)],
    });
    assert.deepEqual([indexed.added, indexed.failed], [4, 0], JSON.stringify(indexed.failures));
    // The store does hold the path (change detection needs it): the page must not show it.
    const [stored] = await store.get('album', ['red.png']);
    assert.equal(stored?.metadata[SOURCE_KEY], root);
    assert.equal(stored?.image, join(root, 'red.png'));

    context = await browser.newContext({ viewport: { width: 1200, height: 800 } });
    page = await context.newPage();
    page.on('pageerror', (err) => pageErrors.push(err.message));
  });
  after(async () => {
    await context?.close();
    assert.deepEqual(pageErrors, [], 'no uncaught errors in the page');
  });

  /** The page's HTML (attributes and tooltips included), its visible text, and what the API sent it. */
  function assertNoPath(what: string, shown: string): void {
    for (const secret of secrets) assert.ok(!shown.includes(secret), `${what} shows ${JSON.stringify(secret)}: …${shown.slice(Math.max(0, shown.indexOf(secret) - 300), shown.indexOf(secret) + 200)}…`);
  }

  test('searching it shows ids relative to the folder, and nowhere the server\'s path or _source', async () => {
    const answers: Promise<string>[] = [];
    page.on('response', (response) => {
      if (/\/v1\/collections/.test(response.url()) && !/thumbnail$/.test(response.url())) answers.push(response.text().catch(() => ''));
    });
    const ids = ['beach/blue.png', 'beach/sea.txt', 'red.png', 'yellow.md'];
    for (const [query, first] of [['red', 'red.png'], ['blue', 'beach/sea.txt'], ['yellow', 'yellow.md']] as const) {
      await page.goto(`${server.url}/?q=${query}&collection=album`);
      await ready(page);
      await firstResultIs(page, first);
      const results = await shown(page);
      assert.ok(results.every((r) => ids.includes(r.id)), `ids relative to the folder: ${JSON.stringify(results)}`);
      // The card lists the document's metadata (a `_source` sent would show there or in its
      // tooltip, which is part of the HTML too).
      const keys = await page.locator(`[data-id="${first}"] .metadata dt`).allTextContents();
      assert.ok(keys.includes('ext') && keys.includes('bytes'), `the card shows its metadata: ${keys}`);
      await page.locator(`[data-id="${first}"]`).hover();
      assertNoPath(`the page for "${query}" (HTML)`, await page.content());
      assertNoPath(`the page for "${query}" (text)`, await page.evaluate(() => document.body.innerText));
    }
    // More like this (a click): the document's own answer carries no path either.
    await page.locator('[data-id="red.png"]').click();
    await page.waitForURL((url) => url.searchParams.get('like') === 'red.png');
    await resultsAre(page, ['beach/blue.png', 'beach/sea.txt', 'yellow.md'], true);
    assertNoPath('the page after "more like this" (HTML)', await page.content());
    assertNoPath('the page after "more like this" (text)', await page.evaluate(() => document.body.innerText));
    // The image shows, through its thumbnail by id, not by the file's path.
    const thumb = page.locator('[data-id="beach/blue.png"] img');
    await thumb.evaluate((img: HTMLImageElement) => img.decode());
    assert.match(await thumb.getAttribute('src') ?? '', /\/v1\/collections\/album\/documents\/beach%2Fblue\.png\/thumbnail/);
    // The collection listings and the searches the page asked for (4 searches at least).
    const bodies = await Promise.all(answers);
    assert.ok(bodies.filter((b) => b.includes('"score"')).length >= 4, `the API answers seen: ${bodies.length}`);
    for (const body of bodies) assertNoPath('an API answer to the page', body);
    await shot(page, '12-folder-no-paths');
  });
});

// ---------------------------------------------------------------- videos, PDFs and copies

const FFMPEG = process.env.TESSERA_FFMPEG ? join(process.env.TESSERA_FFMPEG, 'ffmpeg') : 'ffmpeg';

/**
 * A WebM (VP8: every Chromium plays it) of `seconds` per colour, one after the other, with
 * a fixed grain on every frame: the indexer skips flat frames (real footage is never flat),
 * and a grain that does not change from frame to frame survives the encoder's realtime speed
 * (under a second; noise that changes every frame takes over ten, or is smoothed flat).
 */
async function colourVideo(path: string, colours: readonly string[], seconds = 2): Promise<void> {
  const inputs = colours.flatMap((c) => ['-f', 'lavfi', '-i', `color=c=${c}:s=320x240:d=${seconds}:r=10`]);
  const concat = `${colours.map((_, i) => `[${i}:v]`).join('')}concat=n=${colours.length}:v=1,noise=alls=40[v]`;
  try {
    await promisify(execFile)(FFMPEG, ['-v', 'error', '-y', ...inputs, '-filter_complex', concat, '-map', '[v]', '-c:v', 'libvpx', '-deadline', 'realtime', '-cpu-used', '8', '-b:v', '1M', path]);
  } catch (err) {
    throw new Error(`the page's video test makes its video with FFmpeg (Debian: apt-get install ffmpeg; or set TESSERA_FFMPEG to its folder): ${err instanceof Error ? err.message : err}`, { cause: err });
  }
}

/** A photo-like picture, mostly purple with noise; as PNG and as a lossy WebP copy of it. */
async function plumPicture(): Promise<{ png: Buffer; webp: Buffer }> {
  const width = 320;
  const height = 240;
  const data = Buffer.alloc(width * height * 3);
  let state = 7;
  for (let i = 0; i < width * height; i++) {
    state = (state * 1103515245 + 12345) >>> 0;
    const n = (state >>> 16) % 32;
    data.set([112 + n, n, 112 + (31 - n)], i * 3);
  }
  const image = sharp(data, { raw: { width, height, channels: 3 } });
  return { png: await image.clone().png().toBuffer(), webp: await image.clone().webp({ quality: 80 }).toBuffer() };
}

/** A folder as `tessera index` sees it: a video, a PDF, a picture and its WebP copy. */
async function mediaFolder(): Promise<string> {
  const root = await realpath(await tempDir('tessera-web-media-'));
  await mkdir(join(root, 'clips'));
  await mkdir(join(root, 'docs'));
  await mkdir(join(root, 'photos'));
  // Red for two seconds, then blue for two: its frames are at 0 s and at the cut, 2 s.
  await colourVideo(join(root, 'clips', 'flag.webm'), ['red', 'blue']);
  await writeFile(join(root, 'docs', 'chart.pdf'), await pdfBytes([
    { colour: [255, 0, 0], text: 'a red page' },
    { colour: [0, 128, 0], text: 'the green page' },
    { colour: [0, 0, 255], text: 'a blue page' },
  ], { title: 'Colour chart', author: 'the tests' }));
  const plum = await plumPicture();
  await writeFile(join(root, 'photos', 'plum.png'), plum.png);
  await writeFile(join(root, 'photos', 'plum.webp'), plum.webp);
  return root;
}

/** A search result as the API answers it, with a video's or PDF's parts. */
interface ApiHit {
  id: string;
  score: number;
  metadata: Record<string, string | number | boolean>;
  moments?: { id: string; t: number | null; score: number }[];
  pages?: { id: string; page: number | null; score: number }[];
  collapsed?: { id: string; score: number }[];
}

/** Seconds as the page labels a moment: m:ss. */
const clock = (t: number) => `${Math.floor(t / 60)}:${String(Math.floor(t % 60)).padStart(2, '0')}`;

/** The page's <video>: where it started playing (or stands, when it is paused), once it can tell. */
async function playedFrom(page: Page): Promise<{ from: number; src: string; error: string }> {
  await page.waitForFunction(() => {
    const video = document.querySelector<HTMLVideoElement>('#player-video')!;
    const error = document.querySelector<HTMLElement>('#player-error')!;
    return !error.hidden || (video.readyState >= HTMLMediaElement.HAVE_METADATA && !video.seeking && (video.played.length > 0 || video.paused));
  }, undefined, { timeout: 15_000 });
  return page.evaluate(() => {
    const video = document.querySelector<HTMLVideoElement>('#player-video')!;
    const error = document.querySelector<HTMLElement>('#player-error')!;
    // Playing: the first range played starts where playback started; paused: where it stands.
    const from = video.played.length > 0 ? video.played.start(0) : video.currentTime;
    return { from, src: video.getAttribute('src') ?? '', error: error.hidden ? '' : error.textContent ?? '' };
  });
}

describe('the search page on a folder of videos, PDFs and copies', () => {
  let server: TestServer;
  let keyed: TestServer;
  let context: BrowserContext;
  let page: Page;
  const pageErrors: string[] = [];
  const VIDEO = 'clips/flag.webm';
  const PDF = 'docs/chart.pdf';

  before(async () => {
    const root = await mediaFolder();
    const store = await openStore(await tempDir('tessera-web-media-store-'));
    stores.push(store);
    server = await startServer({ model: 'colour', store });
    // The same store behind a server with keys: the page fetches files with its key there.
    keyed = await startServer({ model: 'colour', store, apiKeys: await loadApiKeys({ env: 'alice:media-key-1' }) });
    assert.equal((await server.post('/v1/collections', { name: 'media' })).status, 200);
    const indexed = await indexSources({
      store,
      collection: 'media',
      embedder: server.embedder,
      writer: modelRefOf(await forged('colour'), 'fp32'),
      sources: [await resolveSource(root)],
    });
    assert.deepEqual([indexed.added, indexed.failed], [4, 0], JSON.stringify(indexed.failures));
    context = await browser.newContext({ viewport: { width: 1200, height: 800 } });
    page = await context.newPage();
    page.on('pageerror', (err) => pageErrors.push(err.message));
  });
  after(async () => {
    await context?.close();
    assert.deepEqual(pageErrors, [], 'no uncaught errors in the page');
  });

  test('a video is one result at its best moment, labelled m:ss; a moment plays it from there', async () => {
    // What the API answers (the frames the indexer took are its business): the page shows it.
    const answer = await (await server.post('/v1/collections/media/search', { query: 'blue', k: 24, collapse: true })).json() as { data: ApiHit[] };
    const hit = answer.data.find((h) => h.metadata.video === VIDEO)!;
    assert.ok(hit && (hit.moments ?? []).length >= 1, `the video's result lists its red moment: ${JSON.stringify(hit)}`);
    const body = await searchRequest(page, () => page.goto(`${server.url}/?q=blue&collection=media`));
    await ready(page);
    assert.equal(body.group, undefined, 'grouping is the API\'s default');
    const card = page.locator(`[data-file="${VIDEO}"]`);
    await card.waitFor({ timeout: 15_000 });
    assert.equal(await card.count(), 1, 'one result per video');
    const id = (await card.getAttribute('data-id'))!;
    assert.equal(id, hit.id);
    // The blue half (the frame at the cut, 2 s, as the indexer works now).
    const play = card.locator('button.play');
    const t = Number(await play.getAttribute('data-t'));
    assert.equal(t, hit.metadata.t);
    assert.ok(t >= 2 && t < 4, `the blue moment is in the second half: ${t}`);
    assert.equal(await card.locator('.thumb .badge').textContent(), clock(t));
    assert.equal(await play.textContent(), `▶ ${clock(t)}`);
    assert.equal(await play.getAttribute('aria-label'), `Play ${VIDEO} from ${clock(t)} (score ${hit.score.toFixed(3)})`);
    // The red frames are the video's other moments, listed (and playable) under it.
    const others = hit.moments!;
    assert.ok(others.every((m) => m.t! < 2), JSON.stringify(others));
    assert.deepEqual(await card.locator('.moments button:not(.play)').allTextContents(), others.map((m) => clock(m.t!)));
    // The frame's thumbnail shows that frame.
    const thumb = card.locator('.thumb img');
    await thumb.evaluate((img: HTMLImageElement) => img.decode());
    assert.ok(await thumb.evaluate((img: HTMLImageElement) => img.naturalWidth > 0));
    assert.equal(await card.locator('.doc-id').textContent(), VIDEO);
    await shot(page, '13-video-result');

    // Keyboard: the play button is a button; Enter plays.
    await play.focus();
    await page.keyboard.press('Enter');
    await page.waitForSelector('#player[open]');
    const started = await playedFrom(page);
    assert.equal(started.error, '', 'the video plays');
    // No key: the file route itself, streamed, starting at the moment (a media fragment).
    assert.equal(started.src, `/v1/collections/media/documents/${encodeURIComponent(id)}/file#t=${t}`);
    assert.ok(Math.abs(started.from - t) < 0.3, `played from ${started.from}, the moment is ${t}`);
    assert.equal(await page.textContent('#player-title'), `${VIDEO} · ${clock(t)}`);
    await shot(page, '14-video-playing');

    // Another moment of the same video (a red one, before the cut): the player seeks there.
    const red = others[0]!.t!;
    await page.locator(`#player-moments button[data-t="${red}"]`).click();
    await page.waitForFunction((red) => {
      const video = document.querySelector<HTMLVideoElement>('#player-video')!;
      return !video.seeking && video.currentTime >= red && video.currentTime < Math.min(red + 1.5, 2);
    }, red, { timeout: 15_000 });
    assert.equal(await page.locator('#player-moments [aria-current="true"]').getAttribute('data-t'), String(red));
    assert.equal(await page.locator('#player-video').getAttribute('src'), started.src, 'the same video, not loaded again');

    // Escape closes it, stops the video, and gives the focus back to the play button.
    await page.keyboard.press('Escape');
    await page.waitForSelector('#player:not([open])', { state: 'attached' });
    assert.equal(await page.locator('#player-video').getAttribute('src'), null);
    assert.ok(await play.evaluate((el) => el === document.activeElement), 'focus is back on the play button');

    // "Every frame and page": the API is asked not to group, and each frame is a result.
    const every = await searchRequest(page, () => page.getByLabel('Every frame and page').check());
    assert.equal(every.group, false);
    await page.waitForFunction(({ file, n }) => document.querySelectorAll(`[data-file="${file}"]`).length === n, { file: VIDEO, n: 1 + others.length }, { timeout: 15_000 });
    assert.equal(params(page).get('group'), 'off');
    await searchRequest(page, () => page.getByLabel('Every frame and page').uncheck());
    await page.waitForFunction((file) => document.querySelectorAll(`[data-file="${file}"]`).length === 1, VIDEO, { timeout: 15_000 });
  });

  test('a PDF is one result at its best page: "page N of M", its title, a link opening it at that page', async () => {
    await page.goto(`${server.url}/?q=green&collection=media`);
    await ready(page);
    await firstResultIs(page, `${PDF}#page=2&text`);
    const card = page.locator(`[data-file="${PDF}"]`);
    assert.equal(await card.count(), 1, 'one result per PDF');
    assert.equal(await card.locator('.page-of').textContent(), 'page 2 of 3');
    assert.equal(await card.locator('.pdf-title').textContent(), 'Colour chart');
    // A page whose text matched shows the page (its thumbnail) and the words.
    const thumb = card.locator('.thumb img');
    await thumb.evaluate((img: HTMLImageElement) => img.decode());
    assert.ok(await thumb.evaluate((img: HTMLImageElement) => img.naturalWidth > 0));
    assert.equal(await card.locator('.part-text mark').textContent(), 'green');

    const open = card.locator('a.open-page');
    assert.equal(await open.textContent(), 'Open page 2');
    const href = (await open.getAttribute('href'))!;
    assert.ok(href.endsWith('/file#page=2'), href);
    assert.equal(await open.getAttribute('target'), '_blank');
    assert.equal(await open.getAttribute('rel'), 'noopener');
    // The other pages, each a link to itself.
    const others = await card.locator('.pages a:not(.open-page)').evaluateAll((links) => links.map((a) => [a.textContent, a.getAttribute('href')]));
    assert.deepEqual(others.map(([text]) => text).sort(), ['1', '3']);
    for (const [text, link] of others) assert.ok(link!.endsWith(`/file#page=${text}`), link!);
    // The link serves the PDF.
    const served = await page.evaluate(async (url) => {
      const response = await fetch(url);
      return { status: response.status, type: response.headers.get('content-type'), head: new TextDecoder().decode((await response.arrayBuffer()).slice(0, 5)) };
    }, href);
    assert.deepEqual(served, { status: 200, type: 'application/pdf', head: '%PDF-' });
    await shot(page, '15-pdf-result');
  });

  test('a PNG and its WebP copy are one result, "+1 near-identical", until collapsing is turned off', async () => {
    const collapsed = await searchRequest(page, () => page.goto(`${server.url}/?q=purple&collection=media`));
    await ready(page);
    assert.equal(collapsed.collapse, true, 'the page collapses by default');
    assert.ok(await page.getByLabel('Collapse near-identical').isChecked());
    const copies = ['photos/plum.png', 'photos/plum.webp'];
    await page.waitForSelector('[data-id] .collapsed', { timeout: 15_000 });
    const shownCopies = (await shown(page)).filter((r) => copies.includes(r.id));
    assert.equal(shownCopies.length, 1, JSON.stringify(await shown(page)));
    const [head] = shownCopies;
    const other = copies.find((id) => id !== head!.id)!;
    const card = page.locator(`[data-id="${head!.id}"]`);
    const summary = card.locator('.collapsed summary');
    assert.equal(await summary.textContent(), '+1 near-identical');
    // Listed on demand (a <details>: Enter or a click opens it).
    assert.equal(await card.locator('.collapsed li').isVisible(), false);
    await summary.focus();
    await page.keyboard.press('Enter');
    assert.equal(await card.locator('.collapsed li').getAttribute('data-doc'), other);
    assert.ok(await card.locator('.collapsed li').isVisible());
    await shot(page, '16-near-identical-collapsed');

    const apart = await searchRequest(page, () => page.getByLabel('Collapse near-identical').uncheck());
    assert.equal(apart.collapse, undefined);
    await page.waitForFunction((ids) => ids.every((id) => document.querySelector(`[data-id="${id}"]`)), copies, { timeout: 15_000 });
    assert.equal(await page.locator('.collapsed').count(), 0);
    assert.equal(params(page).get('collapse'), 'off');
    // The URL keeps it: a reload shows both again.
    await page.reload();
    await ready(page);
    assert.equal(await page.getByLabel('Collapse near-identical').isChecked(), false);
    assert.equal((await shown(page)).filter((r) => copies.includes(r.id)).length, 2);
    await page.getByLabel('Collapse near-identical').check();
    await page.waitForFunction(() => !new URL(location.href).searchParams.has('collapse'));
    await page.waitForSelector('[data-id] .collapsed', { timeout: 15_000 });
    assert.equal((await shown(page)).filter((r) => copies.includes(r.id)).length, 1);
  });

  test('with an API key the video plays and the PDF opens from blobs fetched with the key', async () => {
    const keyContext = await browser.newContext({ viewport: { width: 1200, height: 800 } });
    const keyPage = await keyContext.newPage();
    const errors: string[] = [];
    keyPage.on('pageerror', (err) => errors.push(err.message));
    await keyPage.goto(keyed.url + '/');
    await ready(keyPage);
    await keyPage.locator('#api-key').fill('media-key-1');
    await keyPage.keyboard.press('Enter');
    await keyPage.waitForFunction(() => localStorage.getItem('tessera.apiKey') === 'media-key-1');
    await keyPage.goto(`${keyed.url}/?q=blue&collection=media`);
    await ready(keyPage);
    const card = keyPage.locator(`[data-file="${VIDEO}"]`);
    await card.waitFor({ timeout: 15_000 });
    const t = Number(await card.locator('button.play').getAttribute('data-t'));
    await card.locator('button.play').click();
    const started = await playedFrom(keyPage);
    assert.equal(started.error, '');
    assert.match(started.src, /^blob:/, 'a <video> cannot send the key: the file comes as a blob');
    assert.ok(Math.abs(started.from - t) < 0.3, `played from ${started.from}, the moment is ${t}`);
    await keyPage.keyboard.press('Escape');

    // The PDF: the first click fetches it with the key, and the links point at the blob.
    const open = keyPage.locator(`[data-file="${PDF}"] a.open-page`);
    const page3 = (await open.getAttribute('href'))!;
    assert.ok(page3.endsWith('#page=3'), page3);
    const [tab] = await Promise.all([keyContext.waitForEvent('page', { timeout: 15_000 }), open.click()]);
    assert.match(tab.url(), /^blob:.*#page=3$/);
    assert.match(await open.getAttribute('href') ?? '', /^blob:.*#page=3$/);
    await keyContext.close();
    assert.deepEqual(errors, []);
  });
});

// ---------------------------------------------------------------- duplicates

/** A duplicate group as the API answers it (GET /v1/collections/{name}/duplicates/{job}). */
interface ApiGroup {
  ids: string[];
  score: number;
  kind: 'exact' | 'near_identical' | 'similar';
  videos?: string[];
  pdfs?: string[];
}
interface ApiJob {
  id: string;
  status: string;
  scanned: number;
  total: number;
  groups: number;
  data?: ApiGroup[];
}

/** How the page labels each kind of group. */
const KIND_LABELS = { exact: 'Exact copies', near_identical: 'Near-identical', similar: 'Similar' } as const;

/** Blue beside green, blue `split` of the width: two such pictures a little apart are alike, not the same picture. */
async function twoColours(split: number): Promise<Buffer> {
  const width = 320;
  const height = 240;
  const data = Buffer.alloc(width * height * 3);
  for (let i = 0; i < width * height; i++) data.set(i % width < width * split ? [0, 0, 255] : [0, 128, 0], i * 3);
  return sharp(data, { raw: { width, height, channels: 3 } }).png().toBuffer();
}

/**
 * A folder of duplicates of every kind: a PNG twice under two names (exact), a picture as PNG
 * and as WebP (near-identical), two shots a little apart (similar, as the colour model sees
 * them), and a video and a PDF each copied (compared as whole files).
 */
async function copiesFolder(): Promise<string> {
  const root = await realpath(await tempDir('tessera-web-copies-'));
  for (const dir of ['clips', 'docs', 'photos']) await mkdir(join(root, dir));
  await writeFile(join(root, 'photos', 'red.png'), await solidImage(96, 64, COLOURS.red));
  await copyFile(join(root, 'photos', 'red.png'), join(root, 'photos', 'red-copy.png'));
  const plum = await plumPicture();
  await writeFile(join(root, 'photos', 'plum.png'), plum.png);
  await writeFile(join(root, 'photos', 'plum.webp'), plum.webp);
  await writeFile(join(root, 'photos', 'shot-1.png'), await twoColours(0.4));
  await writeFile(join(root, 'photos', 'shot-2.png'), await twoColours(0.5));
  await colourVideo(join(root, 'clips', 'flag.webm'), ['yellow', 'white'], 1);
  await copyFile(join(root, 'clips', 'flag.webm'), join(root, 'clips', 'flag-copy.webm'));
  await writeFile(join(root, 'docs', 'chart.pdf'), await pdfBytes([{ colour: [0, 0, 0], text: 'a black page' }, { colour: [255, 255, 255], text: 'a white page' }], { title: 'Chart' }));
  await copyFile(join(root, 'docs', 'chart.pdf'), join(root, 'docs', 'chart-copy.pdf'));
  return root;
}

/** Runs a scan through the API and returns its groups once done; the job is deleted after. */
async function apiDuplicates(server: TestServer, collection: string, body: object = {}): Promise<ApiGroup[]> {
  const started = await server.post(`/v1/collections/${collection}/duplicates`, body);
  assert.equal(started.status, 202, await started.clone().text());
  const location = started.headers.get('location')!;
  for (let i = 0; i < 200; i++) {
    const job = await (await fetch(`${server.url}${location}?limit=1000`)).json() as ApiJob;
    if (job.status === 'done') {
      assert.equal((await fetch(`${server.url}${location}`, { method: 'DELETE' })).status, 200);
      return job.data!;
    }
    assert.ok(job.status === 'queued' || job.status === 'running', JSON.stringify(job));
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`the scan of ${collection} did not finish`);
}

/** The groups the page shows, in page order: kind, label, score and members. */
async function shownGroups(page: Page) {
  return page.$$eval('#dup-groups .dup-group', (els) => els.map((el) => ({
    kind: (el as HTMLElement).dataset.kind!,
    label: el.querySelector('.dup-label')!.textContent!,
    score: el.querySelector('.dup-head .score')!.textContent!,
    ids: [...el.querySelectorAll<HTMLElement>('.dup-member')].map((m) => m.dataset.doc!),
    files: [...el.querySelectorAll<HTMLElement>('.dup-member')].map((m) => m.dataset.file ?? null),
    names: [...el.querySelectorAll('.dup-member .doc-id')].map((m) => m.textContent),
    hidden: (el as HTMLElement).hidden,
  })));
}

/** The duplicates requests the page makes, as "METHOD path". */
function duplicateRequests(page: Page): string[] {
  const seen: string[] = [];
  page.on('request', (request) => {
    const url = new URL(request.url());
    if (/\/duplicates/.test(url.pathname)) seen.push(`${request.method()} ${url.pathname}`);
  });
  return seen;
}

const polls = (seen: readonly string[]) => seen.filter((r) => /^GET .*\/duplicates\/[^/]+$/.test(r)).length;

describe('the duplicates view', () => {
  let server: TestServer;
  let context: BrowserContext;
  let page: Page;
  let requests: string[];
  /** What the API finds in "copies" at its default threshold. */
  let expected: ApiGroup[];
  const pageErrors: string[] = [];

  before(async () => {
    const root = await copiesFolder();
    const store = await openStore(await tempDir('tessera-web-copies-store-'));
    stores.push(store);
    server = await startServer({ model: 'colour', store });
    assert.equal((await server.post('/v1/collections', { name: 'copies' })).status, 200);
    const indexed = await indexSources({
      store,
      collection: 'copies',
      embedder: server.embedder,
      writer: modelRefOf(await forged('colour'), 'fp32'),
      sources: [await resolveSource(root)],
    });
    assert.deepEqual([indexed.added, indexed.failed], [10, 0], JSON.stringify(indexed.failures));
    // A second collection: two notes with the same words (text documents have no thumbnail).
    assert.equal((await server.post('/v1/collections', { name: 'notes' })).status, 200);
    const notes = await server.post('/v1/collections/notes/documents', { documents: [
      { id: 'notes/monday.txt', text: 'a note about something purple, written down' },
      { id: 'notes/tuesday.txt', text: 'a note about something purple, written down' },
    ] });
    assert.equal(notes.status, 200, await notes.clone().text());
    expected = await apiDuplicates(server, 'copies');
    console.log(`# the API's groups: ${expected.map((g) => `${g.kind} ${g.videos ?? g.pdfs ?? g.ids}`).join('; ')}`);
    context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
    page = await context.newPage();
    page.on('pageerror', (err) => pageErrors.push(err.message));
    requests = duplicateRequests(page);
  });
  after(async () => {
    await context?.close();
    assert.deepEqual(pageErrors, [], 'no uncaught errors in the page');
  });

  test('a scan lists the groups the API finds, each with its kind, score, thumbnails and ids; the kinds filter', async () => {
    // The planted copies are found as what they are; the rest is the API's call, shown as is.
    const kindOf = (id: string) => expected.find((g) => g.ids.includes(id))?.kind;
    assert.equal(kindOf('photos/red.png'), 'exact');
    assert.ok(expected.find((g) => g.ids.includes('photos/red.png'))!.ids.includes('photos/red-copy.png'));
    assert.equal(kindOf('photos/plum.png'), 'near_identical');
    assert.ok(expected.some((g) => g.videos?.length === 2) && expected.some((g) => g.pdfs?.length === 2), JSON.stringify(expected));

    await page.goto(`${server.url}/?collection=copies`);
    await ready(page);
    const toggle = page.getByRole('button', { name: 'Duplicates', exact: true });
    assert.equal(await toggle.getAttribute('aria-expanded'), 'false');
    assert.equal(await page.isVisible('#duplicates'), false);
    // Keyboard: the button opens the view.
    await toggle.focus();
    await page.keyboard.press('Enter');
    await page.waitForSelector('#duplicates:not([hidden])');
    assert.equal(await toggle.getAttribute('aria-expanded'), 'true');
    assert.equal(await page.textContent('#duplicates-title'), 'Duplicates in copies');
    assert.equal(await page.getByLabel('Similarity threshold').inputValue(), '0.95', "the API's default");
    assert.equal(await page.isVisible('#welcome'), false, 'the view takes the search\'s place');
    await page.waitForFunction(() => /^Scan to find/.test(document.querySelector('#dup-status')?.textContent ?? ''));

    // Enter in the threshold box scans.
    const [post] = await Promise.all([
      page.waitForRequest((r) => r.method() === 'POST' && r.url().endsWith('/v1/collections/copies/duplicates')),
      page.getByLabel('Similarity threshold').press('Enter'),
    ]);
    assert.deepEqual(post.postDataJSON(), { threshold: 0.95 });
    await page.waitForFunction((n) => document.querySelectorAll('#dup-groups .dup-group').length === n && /groups? of duplicates in copies/.test(document.querySelector('#dup-status')?.textContent ?? ''), expected.length, { timeout: 15_000 });
    assert.equal(await page.isVisible('#dup-stop'), false);
    assert.equal(await page.isVisible('#dup-progress'), false);

    // What the API answers for the page's own scan (which frame or page stands for a copied
    // file may differ from one scan to the next where they tie): the page shows just that.
    const [pageJob] = (await (await fetch(`${server.url}/v1/collections/copies/duplicates`)).json() as { data: ApiJob[] }).data;
    const answer = await (await fetch(`${server.url}/v1/collections/copies/duplicates/${pageJob!.id}?limit=1000`)).json() as ApiJob;
    assert.equal(answer.status, 'done');
    const found = answer.data!;
    assert.deepEqual(found.map((g) => [g.kind, g.videos ?? g.pdfs ?? g.ids]), expected.map((g) => [g.kind, g.videos ?? g.pdfs ?? g.ids]), 'the groups of the API\'s own scan');
    const groups = await shownGroups(page);
    assert.deepEqual(groups.map((g) => g.ids), found.map((g) => g.ids), 'the groups in the API\'s order');
    for (const [i, want] of found.entries()) {
      const got = groups[i]!;
      assert.equal(got.kind, want.kind);
      assert.equal(got.label, KIND_LABELS[want.kind]);
      assert.equal(got.score, want.score.toFixed(3));
      const files = want.videos ?? want.pdfs;
      // Frames and pages show their video's or PDF's name; documents their id.
      assert.deepEqual(got.files, files ?? want.ids.map(() => null));
      assert.deepEqual(got.names, files ?? want.ids);
    }
    assert.deepEqual(new Set(groups.map((g) => g.label)), new Set(found.map((g) => KIND_LABELS[g.kind])), 'exactly the kinds the API found');
    // Every member's thumbnail really loaded (images, the video's frame, the PDF's page).
    const thumbs = page.locator('#dup-groups .dup-member img');
    assert.equal(await thumbs.count(), found.reduce((n, g) => n + g.ids.length, 0));
    for (const img of await thumbs.all()) {
      await img.evaluate((el: HTMLImageElement) => el.decode());
      assert.ok(await img.evaluate((el: HTMLImageElement) => el.naturalWidth > 0));
    }
    // A frame says where in its video it is.
    const frame = page.locator('#dup-groups .dup-video').first();
    assert.match(await frame.locator('.dup-part').textContent() ?? '', /^frame at \d+:\d\d$/);
    await shot(page, '17-duplicates');

    // Only one kind: the others are hidden.
    for (const kind of new Set(found.map((g) => g.kind))) {
      await page.getByLabel('Show').selectOption(kind);
      const visible = (await shownGroups(page)).filter((g) => !g.hidden);
      assert.deepEqual(visible.map((g) => g.ids), found.filter((g) => g.kind === kind).map((g) => g.ids), kind);
      assert.match(await page.locator(`#dup-show option[value="${kind}"]`).textContent() ?? '', new RegExp(`^${KIND_LABELS[kind]} \\(${visible.length}\\)$`));
    }
    await page.getByLabel('Show').selectOption('');
    assert.equal((await shownGroups(page)).filter((g) => !g.hidden).length, expected.length);

    // Escape closes the view (focus back on its button); opening it again shows the same scan, not a new one.
    await page.getByLabel('Show').focus();
    await page.keyboard.press('Escape');
    await page.waitForSelector('#duplicates', { state: 'hidden' });
    assert.ok(await toggle.evaluate((el) => el === document.activeElement));
    assert.ok(await page.isVisible('#welcome'));
    await toggle.click();
    await page.waitForFunction((n) => document.querySelectorAll('#dup-groups .dup-group').length === n, expected.length, { timeout: 15_000 });
    assert.equal(requests.filter((r) => r.startsWith('POST')).length, 1, JSON.stringify(requests));

    // A member is a search away: more like it.
    const member = groups.find((g) => g.kind === 'near_identical')!.ids[0]!;
    await page.locator(`#dup-groups [data-doc="${member}"] button`).click();
    await page.waitForURL((url) => url.searchParams.get('like') === member);
    await page.waitForSelector('#duplicates', { state: 'hidden' });
    await page.waitForSelector('#results [data-id]');
    assert.equal(await toggle.getAttribute('aria-expanded'), 'false');
  });

  test('a running scan shows its progress; closing the view or another collection stops polling; Stop cancels it', async () => {
    // The scan of a few documents is over at once: the page is told it is still running.
    await page.route(/\/v1\/collections\/copies\/duplicates\/[^/?]+(\?.*)?$/, async (route) => {
      if (route.request().method() !== 'GET') return route.continue();
      const response = await route.fetch();
      const job = await response.json() as ApiJob;
      await route.fulfill({ response, json: { ...job, status: 'running', scanned: 3, total: 12, groups: 1, data: [], finished_at: null, next_offset: null } });
    });
    const settled = async () => {
      const before = polls(requests);
      await page.waitForTimeout(750);
      return polls(requests) - before;
    };
    await page.getByRole('button', { name: 'Duplicates', exact: true }).click();
    // The last scan (done) is shown again, told running: Stop and the progress.
    await page.waitForSelector('#dup-stop:not([hidden])');
    await page.getByRole('button', { name: 'Stop', exact: true }).click();
    await page.waitForFunction(() => document.querySelector('#dup-status')?.textContent === 'Scan stopped.');

    const started = requests.length;
    await page.getByRole('button', { name: 'Scan', exact: true }).click();
    await page.waitForFunction(() => document.querySelector('#dup-status')?.textContent === 'Scanning… 3 of 12 documents, 1 group so far');
    assert.deepEqual(await page.$eval('#dup-progress', (el) => [(el as HTMLProgressElement).value, (el as HTMLProgressElement).max, (el as HTMLElement).hidden]), [3, 12, false]);
    assert.ok(await page.isDisabled('#dup-scan'));
    const job = requests.slice(started).find((r) => r.startsWith('GET') && /duplicates\/[^/]+$/.test(r))!.replace(/^GET /, '');
    // It polls on (less and less often: the next poll is half a second away after the third).
    const polled = polls(requests.slice(0, started));
    for (let i = 0; i < 100 && polls(requests) - polled < 3; i++) await page.waitForTimeout(50);
    assert.ok(polls(requests) - polled >= 3, JSON.stringify(requests.slice(started)));

    // Closed: no more polls, and the scan is left alone on the server.
    await page.click('#dup-close');
    assert.equal(await settled(), 0, 'no polls once the view is closed');
    assert.equal((await fetch(server.url + job)).status, 200);

    // Open again: it follows the scan again; another collection: it stops following it.
    await page.getByRole('button', { name: 'Duplicates', exact: true }).click();
    await page.waitForSelector('#dup-stop:not([hidden])');
    await page.getByLabel('Collection').selectOption('notes');
    await page.waitForFunction(() => document.querySelector('#duplicates-title')?.textContent === 'Duplicates in notes');
    assert.equal(await page.isVisible('#dup-stop'), false);
    assert.equal(await settled(), 0, 'no polls for the other collection\'s scan');

    // Back, and Stop: the scan is deleted on the server, and polling stops.
    await page.getByLabel('Collection').selectOption('copies');
    await page.waitForSelector('#dup-stop:not([hidden])');
    const [deleted] = await Promise.all([
      page.waitForRequest((r) => r.method() === 'DELETE'),
      page.getByRole('button', { name: 'Stop', exact: true }).click(),
    ]);
    assert.equal(new URL(deleted.url()).pathname, job);
    await page.waitForFunction(() => document.querySelector('#dup-status')?.textContent === 'Scan stopped.');
    assert.equal(await page.isVisible('#dup-progress'), false);
    assert.ok(await page.isEnabled('#dup-scan'));
    assert.equal(await settled(), 0, 'no polls once stopped');
    const gone = await fetch(server.url + job);
    assert.equal(gone.status, 404);
    assert.equal((await gone.json() as { code: string }).code, 'DUPLICATES_JOB_NOT_FOUND');
    await page.unroute(/\/v1\/collections\/copies\/duplicates\//);
  });

  test('the API\'s errors show as the page\'s errors; text duplicates show their words', async () => {
    const direct = await server.post('/v1/collections/copies/duplicates', { threshold: 2 });
    assert.equal(direct.status, 422);
    const { detail } = await direct.json() as { detail: string };
    await page.getByLabel('Similarity threshold').fill('2');
    await page.getByRole('button', { name: 'Scan', exact: true }).click();
    await page.waitForSelector('#error:not([hidden])');
    assert.equal(await page.textContent('#error'), detail);
    assert.ok(await page.isEnabled('#dup-scan'));
    // Not a number: said before asking.
    await page.getByLabel('Similarity threshold').fill('high');
    await page.getByLabel('Similarity threshold').press('Enter');
    await page.waitForFunction(() => document.querySelector('#error')?.textContent?.startsWith('threshold: expected a similarity'));

    // Two notes with the same words: exact copies, each shown by its words.
    const notes = await apiDuplicates(server, 'notes');
    assert.deepEqual(notes.map((g) => g.ids), [['notes/monday.txt', 'notes/tuesday.txt']]);
    await page.getByLabel('Collection').selectOption('notes');
    await page.getByLabel('Similarity threshold').fill('0.95');
    await page.getByRole('button', { name: 'Scan', exact: true }).click();
    await page.waitForSelector('#dup-groups .dup-member .snippet', { timeout: 15_000 });
    await page.waitForSelector('#error', { state: 'hidden' });
    const [group] = await shownGroups(page);
    assert.deepEqual([group!.kind, group!.label, group!.ids], [notes[0]!.kind, KIND_LABELS[notes[0]!.kind], notes[0]!.ids]);
    await page.waitForFunction(() => document.querySelectorAll('#dup-groups .snippet').length === 2);
    assert.equal(await page.locator('#dup-groups .snippet').first().textContent(), 'a note about something purple, written down');

    // A phone's width: the view fits, no horizontal scrolling.
    await page.setViewportSize({ width: 390, height: 844 });
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= 390, `no horizontal scrolling (${width}px wide)`);
    await shot(page, '18-duplicates-narrow');
  });
});
