// /docs in a real browser (Debian's chromium driven by playwright-core): Swagger UI renders the
// API's operations from /openapi.json with everything served by tessera itself, no request
// leaves for another origin, and its Content-Security-Policy refuses nothing it needs.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { chromium, type Browser } from 'playwright-core';
import { DOCS_CONTENT_SECURITY_POLICY } from '../../src/api/openapi.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

const CHROMIUM = process.env.TESSERA_CHROMIUM ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

let api: TestServer;
let browser: Browser;

before(async () => {
  api = await startServer();
  if (!existsSync(CHROMIUM)) {
    throw new Error(`the /docs test needs Chromium at ${CHROMIUM} (Debian: apt-get install chromium; or set TESSERA_CHROMIUM to another Chromium binary)`);
  }
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
});
after(async () => {
  await browser?.close();
  await api.close();
});

test('/docs and its files are served by tessera, under a CSP that allows nothing from elsewhere', async () => {
  const page = await fetch(`${api.url}/docs`);
  assert.equal(page.status, 200);
  assert.equal(page.headers.get('content-security-policy'), DOCS_CONTENT_SECURITY_POLICY);
  const html = await page.text();
  assert.doesNotMatch(html, /(src|href)="(https?:)?\/\//, 'the page names no other origin');
  const assets = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
  assert.ok(assets.some((a) => a.endsWith('swagger-ui-bundle.js')));
  for (const asset of [...assets, '/docs/static/swagger-initializer.js', '/docs/json']) {
    const response = await fetch(new URL(asset, `${api.url}/docs`));
    await response.arrayBuffer();
    assert.equal(response.status, 200, asset);
    assert.ok(response.headers.get('content-security-policy'), `${asset} has no CSP`);
  }
  const initializer = await (await fetch(`${api.url}/docs/static/swagger-initializer.js`)).text();
  assert.match(initializer, /validatorUrl: null/, 'no schema validator badge from validator.swagger.io');
  // The search page keeps its own, stricter policy.
  const home = await fetch(`${api.url}/`);
  await home.arrayBuffer();
  assert.doesNotMatch(home.headers.get('content-security-policy') ?? '', /unsafe-inline/);
});

test('Swagger UI renders the operations in a browser, with no request to another origin and no CSP refusal', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  const origin = new URL(api.url).origin;
  const elsewhere: string[] = [];
  const problems: string[] = [];
  await page.route('**/*', (route) => {
    const url = route.request().url();
    if (new URL(url).origin === origin || url.startsWith('data:')) return route.continue();
    elsewhere.push(url);
    return route.abort();
  });
  page.on('console', (message) => {
    if (message.type() === 'error' || /Content Security Policy|Refused to/.test(message.text())) problems.push(message.text());
  });
  page.on('pageerror', (error) => problems.push(error.message));
  await page.goto(`${api.url}/docs`);
  await page.waitForSelector('.opblock-summary-path[data-path="/v1/embeddings"]', { timeout: 30_000 });
  const paths = await page.$$eval('.opblock-summary-path', (nodes) => nodes.map((n) => n.getAttribute('data-path')));
  for (const path of ['/v1/embeddings', '/v1/classify', '/v1/models', '/ready']) assert.ok(paths.includes(path), `${path} is not shown: ${paths.join(', ')}`);
  assert.ok(await page.$('.info .title'), 'the title is shown');
  // Opening an operation shows its request body schema and its error answers.
  await page.click('.opblock-summary-path[data-path="/v1/embeddings"]');
  await page.waitForSelector('.opblock.is-open .responses-table', { timeout: 10_000 });
  const responses = await page.$$eval('.opblock.is-open .response-col_status', (nodes) => nodes.map((n) => n.textContent?.trim()));
  for (const status of ['200', '401', '413', '415', '422', '429', '503']) assert.ok(responses.includes(status), `no ${status}: ${responses.join(', ')}`);
  assert.deepEqual(elsewhere, [], 'requests to other origins');
  assert.deepEqual(problems, [], 'console errors or CSP refusals');
  await context.close();
});
