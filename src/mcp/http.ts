/**
 * `/mcp`: the Model Context Protocol over Streamable HTTP, on the server's models and store,
 * under the API keys and rate limits of /v1/*.
 *
 * Stateless: each POST is one JSON-RPC message answered with one JSON body, by a server made
 * for that request (server.ts), so any replica answers any message and a tool call is one HTTP
 * request to the root hooks: authenticated here, drained on shutdown, admitted and billed
 * against its key, timed and counted in /metrics like the API's. GET (a stream of
 * server-initiated messages) and DELETE (sessions) have nothing to serve: 405, as the
 * transport spec allows. JSON-RPC batches are refused: protocol 2025-06-18 dropped them, and
 * one request holds one admission.
 */
import { WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js';
import type { FastifyBaseLogger, FastifyPluginAsync, FastifyRequest } from 'fastify';
import { admit } from '../api/admission.ts';
import { authenticate, type ApiKeys } from '../api/auth.ts';
import { bill, recordTimings } from '../api/billing.ts';
import { classifierModel } from '../api/classifiers.ts';
import { requestSignal, type ApiContext } from '../api/context.ts';
import { TesseraError } from '../errors.ts';
import { publicModel } from '../model/source.ts';
import { ThumbnailCache } from '../search/thumbnail.ts';
import type { McpCaller, McpHost } from './host.ts';
import { createMcpServer, toolsOf } from './server.ts';

/** Thumbnails kept for /mcp answers, beside the search API's own cache. */
const THUMBNAIL_CACHE_BYTES = 16 * 1024 * 1024;
/** The request headers the transport reads. */
const TRANSPORT_HEADERS = ['accept', 'content-type', 'mcp-protocol-version', 'mcp-session-id', 'last-event-id'];

const jsonRpcError = (code: number, message: string) => ({ jsonrpc: '2.0', error: { code, message }, id: null });

/** The server as an MCP host: its served models, store and limits; never the server's files. */
function serverHost(ctx: ApiContext, log: FastifyBaseLogger): McpHost {
  return {
    store: ctx.store,
    classifiers: ctx.classifiers,
    allowWrites: ctx.config['mcp-allow-writes'],
    local: false,
    limits: ctx.limits,
    fetchPolicy: ctx.fetchPolicy,
    fetchConcurrency: ctx.config['fetch-concurrency'],
    maxPixels: ctx.config['max-image-pixels'],
    thumbnails: new ThumbnailCache(THUMBNAIL_CACHE_BYTES),
    model: async (requested) => ctx.model(requested),
    async collectionModel(info) {
      const slot = ctx.models.serving(info);
      if (slot) return slot.handle();
      throw new TesseraError(
        'COLLECTION_MODEL_MISMATCH',
        `collection ${JSON.stringify(info.name)} holds vectors of ${publicModel(info.model)} (${info.dtype}), which this server does not serve; it serves ${ctx.models.describe()}`,
      );
    },
    classifierModel: async (record) => classifierModel(ctx, ctx.classifiers!, record),
    internalError(err) {
      log.error({ err }, 'an MCP tool failed unexpectedly');
      return 'an unexpected failure; the server log has it';
    },
  };
}

/** The Fastify request as the web-standard Request the SDK's transport takes (the body is passed parsed). */
function webRequest(request: FastifyRequest): Request {
  const headers = new Headers();
  for (const name of TRANSPORT_HEADERS) {
    const value = request.headers[name];
    if (typeof value === 'string') headers.set(name, value);
  }
  return new Request(new URL(request.url, 'http://localhost'), { method: request.method, headers });
}

export const mcpRoutes: FastifyPluginAsync<{ ctx: ApiContext; apiKeys: ApiKeys | null }> = async (app, { ctx, apiKeys }) => {
  // The root hook checks keys on /v1/* (api/hooks.ts); /mcp takes the same keys, checked here.
  app.addHook('onRequest', async (request) => {
    request.tessera.keyId = authenticate(apiKeys, request.headers.authorization);
  });
  const host = serverHost(ctx, app.log);
  const tools = toolsOf(host);

  app.post('/mcp', async (request, reply) => {
    if (Array.isArray(request.body)) {
      return reply.code(400).send(jsonRpcError(-32600, 'JSON-RPC batches are not accepted: send one message per request'));
    }
    const caller: McpCaller = {
      owner: request.tessera.keyId,
      signal: requestSignal(ctx, request, reply),
      admit: (tokens) => admit(ctx, request, tokens),
      bill(results) {
        recordTimings(request, results);
        return bill(ctx, request, results);
      },
      failed: () => request.tessera.admission?.commitTokens(0),
    };
    const server = createMcpServer(host, caller, tools);
    const transport = new WebStandardStreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    try {
      await server.connect(transport);
      const response = await transport.handleRequest(webRequest(request), { parsedBody: request.body });
      response.headers.forEach((value, name) => void reply.header(name, value));
      const body = await response.text();
      return reply.code(response.status).send(body === '' ? undefined : body);
    } finally {
      await server.close();
    }
  });

  app.route({
    method: ['GET', 'DELETE'],
    url: '/mcp',
    handler: (_request, reply) => reply.code(405).header('allow', 'POST').send(jsonRpcError(-32000, 'Method not allowed: this server is stateless; POST each message to /mcp')),
  });
};
