import { parseArgs } from 'node:util';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { ANONYMOUS } from '../api/auth.ts';
import { usageOf } from '../engine/usage.ts';
import { localHost } from '../mcp/local.ts';
import { createMcpServer, toolsOf } from '../mcp/server.ts';
import { openStore } from '../store/open.ts';
import { validateCollectionName } from '../store/validate.ts';
import { MODEL_HELP, MODEL_OPTIONS, modelSettings } from './options.ts';

const HELP = `usage: tessera mcp [--store DIR|URL] [--collection NAME] [--model M] [--mcp-allow-writes] [options]

Speaks the Model Context Protocol on standard input and output, for an assistant that starts
it as a local server (Claude Desktop, Claude Code, Cursor, VS Code, ...). Tools: list_collections,
search, find_similar and get_document over the store's collections (image results with their
thumbnails), embed and classify; with --mcp-allow-writes also index_path and add_documents.
Standard output carries the protocol only: messages go to standard error. A server offers the
same tools at /mcp (see tessera serve --help).

  --store DIR|URL     the store: a folder or postgres://... (default: TESSERA_STORE, else
                      $XDG_DATA_HOME/tessera)
  --collection NAME   the collection tools use when the assistant names none
${MODEL_HELP}
                      The model serves embed, classify and new collections; a collection is
                      always searched (and written) with its own model, loaded on first use.
  --mcp-allow-writes  offer index_path (a folder or file on this machine, into a collection)
                      and add_documents
  --allow-private-urls  let image URLs reach loopback and private addresses (UNSAFE on shared
                      networks; cloud metadata addresses stay refused)
  --owner ID          the API key id to use few-shot classifiers as (default "${ANONYMOUS}")`;

export async function main(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      ...MODEL_OPTIONS,
      store: { type: 'string' },
      collection: { type: 'string' },
      'mcp-allow-writes': { type: 'boolean' },
      'allow-private-urls': { type: 'boolean' },
      owner: { type: 'string', default: ANONYMOUS },
    },
  });
  if (values.help) return console.log(HELP);
  // Standard output is the protocol's from here: a stray console.log (ours or a library's) would break it.
  console.log = console.info = console.debug = console.error;
  const { dtype, ...session } = modelSettings(values);
  const defaultCollection = values.collection === undefined ? undefined : validateCollectionName(values.collection, '--collection');
  const store = await openStore(values.store);
  const host = localHost({
    store,
    model: values.model,
    dtype,
    session,
    allowWrites: values['mcp-allow-writes'] ?? false,
    defaultCollection,
    allowPrivateUrls: values['allow-private-urls'] ?? false,
  });
  // One user: no keys, no limits; usage is reported as the API reports it.
  const tools = toolsOf(host);
  const server = createMcpServer(host, { owner: values.owner, admit: async () => {}, bill: usageOf }, tools);
  await server.connect(new StdioServerTransport());
  console.error(`tessera mcp: ready on stdio with the store at ${store.location}; tools: ${tools.map((t) => t.name).join(', ')}`);

  let stopping = false;
  const stop = async (why: string) => {
    if (stopping) return;
    stopping = true;
    console.error(`tessera mcp: ${why}: stopping`);
    await server.close().catch(() => {});
    await host.close();
    await store.close();
    process.exit(0);
  };
  // The client ends the session by closing our standard input (then SIGTERM if we linger).
  process.stdin.once('end', () => void stop('standard input closed'));
  process.once('SIGTERM', () => void stop('SIGTERM'));
  process.once('SIGINT', () => void stop('SIGINT'));
}
