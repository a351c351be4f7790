// The search page's files as the server sends them: types, caching, and nothing else.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { before, test } from 'node:test';
import { WEB_FILES } from '../../src/api/web.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

let server: TestServer;
before(async () => {
  server = await startServer({ model: 'colour' });
});

test('GET / is the search page, with the hooks scripts rely on and a strict CSP', async () => {
  const response = await fetch(`${server.url}/`);
  assert.equal(response.status, 200);
  assert.equal(response.headers.get('content-type'), 'text/html; charset=utf-8');
  assert.equal(response.headers.get('cache-control'), 'no-cache');
  assert.equal(response.headers.get('x-content-type-options'), 'nosniff');
  const csp = response.headers.get('content-security-policy') ?? '';
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /script-src 'self'(;|$)/);
  assert.match(csp, /connect-src 'self'(;|$)/);
  // The player streams a video from the file route, or (with an API key) plays it from a blob.
  assert.match(csp, /media-src 'self' blob:(;|$)/);
  const html = await response.text();
  assert.match(html, /<input type="search" id="q" name="q"/);
  // Nothing from elsewhere: every src/href is same-origin (or an in-page anchor).
  for (const [, url] of html.matchAll(/(?:src|href)="([^"]*)"/g)) {
    assert.match(url!, /^\/(?!\/)/, `external or relative reference ${url}`);
  }
  // A query string does not change what is served.
  assert.equal((await fetch(`${server.url}/?q=red&collection=x`)).status, 200);
});

test('every known file is served with its content type and the bytes on disk', async () => {
  for (const [route, { file, type }] of Object.entries(WEB_FILES)) {
    const response = await fetch(server.url + route);
    assert.equal(response.status, 200, route);
    assert.equal(response.headers.get('content-type'), type, route);
    const onDisk = await readFile(new URL(`../../src/web/${file}`, import.meta.url));
    assert.deepEqual(Buffer.from(await response.arrayBuffer()), onDisk, route);
  }
});

test('the scripts import only files the server serves', async () => {
  for (const [route, { file }] of Object.entries(WEB_FILES)) {
    if (!file.endsWith('.js')) continue;
    const source = await (await fetch(server.url + route)).text();
    for (const [, target] of source.matchAll(/^import [^'"]*['"]([^'"]+)['"]/gm)) {
      assert.ok(Object.hasOwn(WEB_FILES, new URL(target!, `http://x${route}`).pathname), `${route} imports ${target}`);
    }
  }
});

test('revalidation: the ETag answers 304 until the file changes', async () => {
  const first = await fetch(`${server.url}/web/app.js`);
  const etag = first.headers.get('etag');
  assert.match(etag ?? '', /^"[A-Za-z0-9_-]{27}"$/);
  const again = await fetch(`${server.url}/web/app.js`, { headers: { 'if-none-match': etag! } });
  assert.equal(again.status, 304);
  assert.equal((await again.arrayBuffer()).byteLength, 0);
  const other = await fetch(`${server.url}/web/app.js`, { headers: { 'if-none-match': '"something-else"' } });
  assert.equal(other.status, 200);
  const head = await fetch(`${server.url}/`, { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(head.headers.get('content-type'), 'text/html; charset=utf-8');
});

test('nothing but the known files: no path from the request reaches the file system', async () => {
  const attempts = [
    '/web/',
    '/web/nope.js',
    '/web/index.html',
    '/web/../package.json',
    '/web/%2e%2e/package.json',
    '/web/%2E%2E%2Fpackage.json',
    '/web/..%2f..%2fpackage.json',
    '/web//etc/passwd',
    '/web/app.js/',
    '/web/app.js%00.png',
    '/src/web/app.js',
    '/index.html',
    '/package.json',
  ];
  for (const path of attempts) {
    const response = await fetch(server.url + path);
    assert.equal(response.status, 404, path);
    assert.equal((await response.json() as { code: string }).code, 'NOT_FOUND', path);
  }
});

test('POST / is not the page', async () => {
  const response = await server.post('/', {});
  assert.equal(response.status, 404);
});
