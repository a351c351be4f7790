import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { pageSchema } from './schemas/health.ts';

/**
 * The search page: static files from src/web/, served from memory.
 *
 * Only the files in WEB_FILES exist: each is a fixed route read once at startup, so no part
 * of a request ever reaches the file system. There is no build step and the page loads
 * nothing from elsewhere (the Content-Security-Policy says so to the browser as well).
 */

/** Route -> file in src/web/ and its content type. */
export const WEB_FILES = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/web/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/web/api.js': { file: 'api.js', type: 'text/javascript; charset=utf-8' },
  '/web/query.js': { file: 'query.js', type: 'text/javascript; charset=utf-8' },
  '/web/render.js': { file: 'render.js', type: 'text/javascript; charset=utf-8' },
  '/web/style.css': { file: 'style.css', type: 'text/css; charset=utf-8' },
  '/web/icon.svg': { file: 'icon.svg', type: 'image/svg+xml' },
} as const;

const WEB_DIR = new URL('../web/', import.meta.url);

/**
 * Same-origin everything; images also from data: (a dropped image's preview) and blob:
 * (thumbnails fetched with an API key). No inline scripts or styles.
 */
const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data: blob:",
  // Videos play from the file route (blob: when fetched with a key).
  "media-src 'self' blob:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

interface WebFile {
  body: Buffer;
  type: string;
  etag: string;
}

function load(): Map<string, WebFile> {
  const files = new Map<string, WebFile>();
  for (const [route, { file, type }] of Object.entries(WEB_FILES)) {
    const body = readFileSync(new URL(file, WEB_DIR));
    const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;
    files.set(route, { body, type, etag });
  }
  return files;
}

/** True when the client's If-None-Match already names this version. */
function fresh(request: FastifyRequest, etag: string): boolean {
  const header = request.headers['if-none-match'];
  if (!header) return false;
  return header.split(',').some((tag) => {
    const t = tag.trim();
    return t === '*' || t === etag || t === `W/${etag}`;
  });
}

/**
 * Registers `GET /` and `GET /web/*` for the known files. Names without a version hash
 * (no build step) mean browsers must revalidate: `no-cache` with an ETag, so a reload
 * after an upgrade never runs a stale script beside a new page, and costs a 304 otherwise.
 */
export async function webPlugin(app: FastifyInstance): Promise<void> {
  const files = load();
  for (const [route, file] of files) {
    // The page is in /openapi.json; its scripts, styles and icon are not.
    app.get(route, { schema: route === '/' ? pageSchema : { hide: true } }, async (request: FastifyRequest, reply: FastifyReply) => {
      reply.header('cache-control', 'no-cache');
      reply.header('etag', file.etag);
      reply.header('x-content-type-options', 'nosniff');
      if (file.type.startsWith('text/html')) {
        reply.header('content-security-policy', CONTENT_SECURITY_POLICY);
        reply.header('referrer-policy', 'no-referrer');
      }
      if (fresh(request, file.etag)) return reply.code(304).send();
      return reply.type(file.type).send(file.body);
    });
  }
}
