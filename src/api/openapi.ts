/**
 * The API's description: OpenAPI 3.1 at GET /openapi.json, built by @fastify/swagger from the
 * routes' own schemas (src/api/schemas/), and the interactive documentation at GET /docs
 * (@fastify/swagger-ui, its scripts and styles served from the package: nothing is loaded
 * from elsewhere). Neither needs an API key, like /live: they describe the API, not its data.
 */
import { readFileSync } from 'node:fs';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import { openapiSchema } from './schemas/health.ts';
import { SHARED_SCHEMAS } from './schemas/shared.ts';

const PACKAGE = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string; description: string };

/** Where the documentation page is served. */
export const DOCS_PREFIX = '/docs';

/**
 * The page's Content-Security-Policy: its own scripts, styles and the document, nothing from
 * elsewhere. Swagger UI sets style attributes from its scripts (hence 'unsafe-inline' for
 * styles, on /docs only) and shows its logo and icons as data: images.
 */
export const DOCS_CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "font-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

interface OpenApiOperation {
  requestBody?: { required?: boolean };
  'x-body-optional'?: boolean;
}

/**
 * Registers, at the root, the shared schemas, @fastify/swagger and @fastify/swagger-ui, and
 * GET /openapi.json. Call it before the routes it describes are registered.
 */
export function installOpenApi(app: FastifyInstance): void {
  for (const schema of SHARED_SCHEMAS) app.addSchema(schema);
  void app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'tessera',
        version: PACKAGE.version,
        description: `${PACKAGE.description}.\n\nErrors are \`{"detail", "code", "request_id"}\` with a code from one registry (docs/server.md, Errors); each operation lists the codes it can answer with. With keys configured, /v1/* and /embeddings need \`Authorization: Bearer <key>\`.`,
      },
      // In this order on /docs.
      tags: [
        { name: 'embeddings', description: "Jina's Embeddings API (and OpenAI's)" },
        { name: 'classification', description: 'Zero-shot and few-shot, in the shape of Jina\'s Classifier API' },
        { name: 'search', description: 'Searching a collection' },
        { name: 'collections', description: 'Collections and their documents (with --store)' },
        { name: 'duplicates', description: 'Near-duplicate scans, as background jobs' },
        { name: 'models', description: 'The served models' },
        { name: 'health', description: 'Probes and metrics; no key needed' },
        { name: 'documentation', description: 'This description and the search page; no key needed' },
      ],
      components: {
        securitySchemes: { apiKey: { type: 'http', scheme: 'bearer', description: 'An API key (tessera serve --api-keys / TESSERA_API_KEYS); not needed when none is configured.' } },
      },
    },
    // Shared schemas keep their names in components.schemas.
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) },
    // Routes that declare no schema are no part of this description (the MCP endpoint speaks
    // JSON-RPC, described by MCP itself); the page's own files are hidden by their routes.
    transform: ({ schema, url }) => ({ schema: schema ?? { hide: true }, url }),
    transformObject: (document) => {
      if (!('openapiObject' in document)) return document.swaggerObject;
      const { openapiObject } = document;
      // A body a route does without (x-body-optional) is not a required one.
      for (const item of Object.values(openapiObject.paths ?? {})) {
        for (const operation of Object.values(item ?? {}) as OpenApiOperation[]) {
          if (operation && typeof operation === 'object' && operation['x-body-optional'] && operation.requestBody) operation.requestBody.required = false;
        }
      }
      return openapiObject;
    },
  });
  void app.register(swaggerUi, {
    routePrefix: DOCS_PREFIX,
    staticCSP: DOCS_CONTENT_SECURITY_POLICY,
    theme: { title: 'tessera API' },
    logo: { type: 'image/svg+xml', content: readFileSync(new URL('../web/icon.svg', import.meta.url)), href: '/docs' },
    uiConfig: { deepLinking: true, tryItOutEnabled: false, defaultModelsExpandDepth: 1 },
  });
  void app.register(async (docs) => {
    docs.get('/openapi.json', { schema: openapiSchema }, async () => app.swagger());
  });
}
