// `tessera mcp` as an assistant runs it: a child process speaking MCP on stdin/stdout, driven by
// the SDK's own stdio client, on the demo (colour) model and a LanceDB store. Writing tools
// only with --mcp-allow-writes; search by text, by image (base64 and, on the user's own
// machine, a file path) with thumbnails as image content; tool errors with registry codes;
// nothing but the protocol on stdout (the client would fail to parse anything else).
import assert from 'node:assert/strict';
import { realpath } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { tempDir } from '../helpers/models.ts';
import { call, colourDocuments, colourFolder, hits, images, json, looks, meanColour, png, READ_TOOLS, toolError, toolNames, WRITE_TOOLS } from './helpers.ts';

const ROOT = new URL('../..', import.meta.url).pathname;

interface Session {
  client: Client;
  /** What the client could not parse or hit on the way (stray output on stdout shows up here). */
  errors: Error[];
  stderr(): string;
}

async function start(args: string[]): Promise<Session> {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: ['--import', 'tsx', 'src/cli/main.ts', 'mcp', '--model', 'demo', ...args],
    cwd: ROOT,
    env: { ...process.env } as Record<string, string>,
    stderr: 'pipe',
  });
  let stderr = '';
  transport.stderr?.on('data', (chunk: Buffer) => (stderr += chunk));
  const errors: Error[] = [];
  const client = new Client({ name: 'tessera-test', version: '1.0.0' });
  client.onerror = (err) => errors.push(err);
  await client.connect(transport);
  return { client, errors, stderr: () => stderr };
}

describe('tessera mcp (stdio)', { timeout: 120_000 }, () => {
  let store: string;
  let folder: string;
  const open: Session[] = [];
  before(async () => {
    store = await tempDir('tessera-mcp-stdio-');
    folder = await realpath(await colourFolder(await tempDir('tessera-mcp-files-')));
  });
  after(async () => {
    await Promise.all(open.map((s) => s.client.close()));
  });

  test('with --mcp-allow-writes: index a folder and add documents, then search with thumbnails', async () => {
    const session = await start(['--store', store, '--collection', 'colours', '--mcp-allow-writes']);
    open.push(session);
    const { client } = session;
    assert.deepEqual(await toolNames(client), [...READ_TOOLS, ...WRITE_TOOLS].sort());
    assert.match(session.stderr(), /tessera mcp: ready on stdio/);

    // No collection named: --collection's, made on first use for --model.
    const added = json<{ collection: string; added: number }>(await call(client, 'add_documents', { documents: await colourDocuments() }));
    assert.deepEqual([added.collection, added.added], ['colours', 6]);
    const indexed = json<{ added: number; failed: number }>(await call(client, 'index_path', { path: folder, collection: 'folder' }));
    assert.deepEqual([indexed.added, indexed.failed], [4, 0]);

    const red = await call(client, 'search', { query: 'red', k: 2 });
    assert.equal(hits(red)[0]!.id, 'images/red.png');
    assert.ok(looks(await meanColour(images(red)[0]!), 'red'));

    // On the user's own machine a folder document shows where its file is.
    const blue = await call(client, 'search', { collection: 'folder', query: 'blue', k: 1 });
    assert.deepEqual([hits(blue)[0]!.id, hits(blue)[0]!.image], ['photos/blue.png', join(folder, 'photos', 'blue.png')]);
    assert.ok(looks(await meanColour(images(blue)[0]!), 'blue'));

    const byBase64 = await call(client, 'search', { query: { image: (await png('green')).toString('base64') }, modality: 'image', k: 1 });
    assert.equal(hits(byBase64)[0]!.id, 'images/green.png');
    const byPath = await call(client, 'search', { query: { image: join(folder, 'photos', 'red.png') }, k: 1 });
    assert.equal(hits(byPath)[0]!.id, 'images/red.png');

    assert.equal(toolError(await call(client, 'search', { query: 'red', k: 5000 })).code, 'SEARCH_PARAMETER_INVALID');
    assert.equal(toolError(await call(client, 'embed', { input: 'red', model: 'jina-clip-v2' })).code, 'MODEL_MISMATCH');
    assert.equal(toolError(await call(client, 'add_documents', { documents: [{ id: 'x', text: 'red', colour: 'red' }] })).code, 'DOCUMENT_INVALID');
    assert.deepEqual(session.errors, []);
  });

  test('without --mcp-allow-writes: no writing tools; reading the same store works', async () => {
    const session = await start(['--store', store, '--collection', 'colours']);
    open.push(session);
    const { client } = session;
    assert.deepEqual(await toolNames(client), READ_TOOLS);
    const refused = await call(client, 'add_documents', { documents: [{ id: 'x', text: 'red' }] });
    assert.equal(refused.isError, true);
    assert.match(refused.content[0]!.text!, /add_documents/);

    const collections = json<{ name: string; count: number }[]>(await call(client, 'list_collections', {}));
    assert.deepEqual(collections.map((c) => [c.name, c.count]).sort(), [['colours', 6], ['folder', 4]]);
    assert.equal(hits(await call(client, 'search', { query: 'yellow', k: 1 }))[0]!.id, 'images/yellow.png');
    assert.equal(hits(await call(client, 'search', { collection: 'folder', query: 'yellow', k: 1 }))[0]!.id, 'yellow.txt');
    const classified = json<{ data: { prediction: string }[] }>(await call(client, 'classify', { input: { image: join(folder, 'photos', 'green.png') }, labels: ['red', 'green'] }));
    assert.equal(classified.data[0]!.prediction, 'green');
    assert.deepEqual(session.errors, []);
  });
});
