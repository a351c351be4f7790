/**
 * The MCP server of tessera (the official SDK's McpServer), one definition for both transports:
 * stdio (`tessera mcp`, one server for the process) and Streamable HTTP (`/mcp`, one server
 * per request, bound to that request's API key and limits). Which tools exist depends on the
 * host: the collection tools need a store, the writing ones --mcp-allow-writes as well.
 */
import { createRequire } from 'node:module';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { McpCaller, McpHost } from './host.ts';
import { modelTools } from './tools-model.ts';
import { readTools } from './tools-read.ts';
import { writeTools } from './tools-write.ts';
import { runTool, type ToolCall, type ToolDef } from './tools.ts';
import { toolInput } from './schema.ts';

const { version } = createRequire(import.meta.url)('../../package.json') as { version: string };

/** Progress notifications at most this often (a long index_path), so they do not flood the client. */
const PROGRESS_INTERVAL_MS = 500;

/** What the server tells the assistant about itself (the tools of a server without a store are only embed and classify). */
function instructions(host: McpHost): string {
  const models = 'embed and classify run the multimodal (CLIP) model on texts and images directly.';
  if (!host.store) return `tessera: ${models}`;
  return (
    'tessera searches collections of images, video frames, PDF pages and texts by meaning with a multimodal (CLIP) model. ' +
    'Call list_collections to see what there is, then search with a text description (or an image, or an example document id); ' +
    'results come best first with id, score and metadata, the first ones with a thumbnail. get_document gives one document whole, ' +
    `find_similar finds documents like one. ${models}${host.allowWrites ? ' index_path and add_documents add documents to a collection.' : ''}`
  );
}

/** The tools `host` offers. */
export function toolsOf(host: McpHost): ToolDef[] {
  const tools = modelTools(host);
  if (host.store) {
    tools.unshift(...readTools(host, host.store));
    if (host.allowWrites) tools.push(...writeTools(host, host.store));
  }
  return tools;
}

/**
 * A server with the host's tools, each call made as `caller`. `tools` (toolsOf(host)) may be
 * made once and given to every server of a host: /mcp makes a server per request.
 */
export function createMcpServer(host: McpHost, caller: McpCaller, tools: readonly ToolDef[] = toolsOf(host)): McpServer {
  const server = new McpServer({ name: 'tessera', title: 'tessera', version }, { instructions: instructions(host) });
  for (const tool of tools) {
    server.registerTool(
      tool.name,
      { title: tool.title, description: tool.description, inputSchema: toolInput(tool.args, tool.required), annotations: tool.annotations },
      async (args, extra) => {
        const token = extra._meta?.progressToken;
        let last = -1;
        let sentAt = 0;
        const call: ToolCall = {
          host,
          caller,
          signal: caller.signal ? AbortSignal.any([caller.signal, extra.signal]) : extra.signal,
          progress(done, total, message) {
            if (token === undefined || done <= last || Date.now() - sentAt < PROGRESS_INTERVAL_MS) return;
            last = done;
            sentAt = Date.now();
            extra.sendNotification({ method: 'notifications/progress', params: { progressToken: token, progress: done, total, message } }).catch(() => {});
          },
        };
        return runTool(tool, args as Record<string, unknown>, call);
      },
    );
  }
  return server;
}
