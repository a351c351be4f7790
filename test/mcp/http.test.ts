// /mcp on a real server (the forged colour model, a LanceDB store, API keys), driven by the
// MCP SDK's own Streamable HTTP client: tools listed with their schemas, search by text and by
// image with thumbnails as image content, tool errors with registry codes, the API keys of
// /v1/*, and the writing tools only on a server started with --mcp-allow-writes.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport, StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { loadApiKeys } from '../../src/api/auth.ts';
import { openStore } from '../../src/store/open.ts';
import type { VectorStore } from '../../src/store/store.ts';
import { makeVideo } from '../helpers/media.ts';
import { tempDir } from '../helpers/models.ts';
import { makePdf } from '../helpers/pdf.ts';
import { sample, startServer, type TestServer } from '../helpers/server.ts';
import { call, colourDocuments, colourFolder, hits, images, json, looks, meanColour, png, READ_TOOLS, texts, toolError, toolNames, WRITE_TOOLS } from './helpers.ts';

const KEY = 'tk-alice-0123456789';

async function connect(server: TestServer, key: string | null = KEY): Promise<Client> {
  const transport = new StreamableHTTPClientTransport(new URL('/mcp', server.url), {
    requestInit: key === null ? {} : { headers: { authorization: `Bearer ${key}` } },
  });
  const client = new Client({ name: 'tessera-test', version: '1.0.0' });
  await client.connect(transport);
  return client;
}

describe('MCP over Streamable HTTP (/mcp)', () => {
  let store: VectorStore;
  let writer: TestServer;
  let reader: TestServer;
  let rw: Client;
  let ro: Client;

  before(async () => {
    store = await openStore(await tempDir('tessera-mcp-http-'));
    const apiKeys = await loadApiKeys({ env: `alice:${KEY}` });
    writer = await startServer({ model: 'colour', store, apiKeys, args: ['--mcp-allow-writes'] });
    reader = await startServer({ model: 'colour', store, apiKeys });
    rw = await connect(writer);
    ro = await connect(reader);
    const added = json<{ added: number; count: number }>(await call(rw, 'add_documents', { collection: 'colours', documents: await colourDocuments() }));
    assert.deepEqual([added.added, added.count], [6, 6]);
  });
  after(async () => {
    await Promise.all([rw?.close(), ro?.close()]);
    await Promise.all([writer?.close(), reader?.close()]);
    await store?.close();
  });

  test('the tools, each with a JSON Schema and a description; the writing ones only with --mcp-allow-writes', async () => {
    assert.deepEqual(await toolNames(ro), READ_TOOLS);
    assert.deepEqual(await toolNames(rw), [...READ_TOOLS, ...WRITE_TOOLS].sort());
    const { tools } = await rw.listTools();
    for (const tool of tools) {
      assert.ok((tool.description ?? '').length > 40, `${tool.name} has a description an assistant can act on`);
      assert.equal(tool.inputSchema.type, 'object');
    }
    const search = tools.find((t) => t.name === 'search')!;
    const props = search.inputSchema.properties as Record<string, { type?: string; minimum?: number; maximum?: number; enum?: string[] }>;
    assert.deepEqual(search.inputSchema.required, ['collection', 'query']);
    assert.deepEqual([props.k!.type, props.k!.minimum, props.k!.maximum], ['integer', 1, 1000]);
    assert.deepEqual(props.modality!.enum, ['text', 'image']);
    assert.equal((search.inputSchema as { additionalProperties?: unknown }).additionalProperties, false);
    // The reader refuses a writing tool it does not offer.
    assert.equal((await call(ro, 'add_documents', { collection: 'colours', documents: [{ id: 'x', text: 'red' }] })).isError, true);
  });

  test('list_collections', async () => {
    const collections = json<{ name: string; count: number; dimensions: number }[]>(await call(ro, 'list_collections', {}));
    assert.deepEqual(collections.map((c) => [c.name, c.count]), [['colours', 6]]);
  });

  test('search by text: the red image first, with its thumbnail as a red JPEG', async () => {
    const answer = await call(ro, 'search', { collection: 'colours', query: 'red', k: 3 });
    const found = hits(answer);
    assert.equal(found[0]!.id, 'images/red.png');
    assert.match(texts(answer)[0]!, /3 results in collection "colours" for "red"/);
    const pictures = images(answer);
    assert.equal(pictures.length, found.filter((h) => h.image !== undefined).length, 'every image hit has its picture');
    assert.equal(pictures[0]!.mimeType, 'image/jpeg');
    const rgb = await meanColour(pictures[0]!);
    assert.ok(looks(rgb, 'red'), `the first picture is red: ${rgb}`);
    // The picture follows its hit's text; an inline image is named by its size, not repeated as base64.
    assert.equal(answer.content[2]!.type, 'image');
    assert.match(found[0]!.image!, /^inline image\/png data \(\d+ bytes\)$/);
    // A tool call is an HTTP request like the API's: counted in /metrics.
    const metrics = await (await fetch(`${reader.url}/metrics`)).text();
    assert.ok(sample(metrics, 'tessera_requests_total', { route: '/mcp', status: '200' }) >= 3, 'requests to /mcp are counted');
  });

  test('search by image (base64 PNG) and by document; filters and thumbnails as the API', async () => {
    const blue = (await png('blue')).toString('base64');
    const byImage = await call(ro, 'search', { collection: 'colours', query: { image: blue }, k: 2, modality: 'image' });
    assert.equal(hits(byImage)[0]!.id, 'images/blue.png');
    assert.ok(looks(await meanColour(images(byImage)[0]!), 'blue'));
    const notes = hits(await call(ro, 'search', { collection: 'colours', query: 'green', filter: { kind: 'note' } }));
    assert.deepEqual(notes.map((h) => h.id)[0], 'notes/meadow.txt');
    assert.ok(notes.every((h) => h.metadata.kind === 'note'));
    const textOnly = await call(ro, 'search', { collection: 'colours', query: 'yellow', thumbnails: 0 });
    assert.equal(hits(textOnly)[0]!.id, 'images/yellow.png');
    assert.equal(images(textOnly).length, 0);
    const similar = hits(await call(ro, 'find_similar', { collection: 'colours', id: 'notes/sea.txt', k: 1 }));
    assert.equal(similar[0]!.id, 'images/blue.png', 'the blue sea is most like the blue image');
  });

  test('get_document: the whole document, an image one with its picture', async () => {
    const doc = await call(ro, 'get_document', { collection: 'colours', id: 'images/green.png' });
    const view = json<{ id: string; modality: string; metadata: Record<string, unknown>; hash: string }>(doc);
    assert.deepEqual([view.id, view.modality, view.metadata.colour], ['images/green.png', 'image', 'green']);
    assert.ok(looks(await meanColour(images(doc)[0]!), 'green'));
    const note = json<{ text: string }>(await call(ro, 'get_document', { collection: 'colours', id: 'notes/sea.txt' }));
    assert.equal(note.text, 'the blue sea under a blue sky');
  });

  test('classify (zero-shot) and embed', async () => {
    const red = `data:image/png;base64,${(await png('red')).toString('base64')}`;
    const classified = json<{ model: string; data: { prediction: string }[] }>(
      await call(ro, 'classify', { input: [{ image: red }, 'the yellow sun'], labels: ['red', 'yellow', 'blue'] }),
    );
    assert.equal(classified.model, 'jina-clip-v1');
    assert.deepEqual(classified.data.map((d) => d.prediction), ['red', 'yellow']);
    const embedded = json<{ data: { embedding: number[] }[]; usage: { total_tokens: number } }>(await call(ro, 'embed', { input: ['red', { image: red }] }));
    assert.equal(embedded.data.length, 2);
    const [a, b] = embedded.data.map((d) => d.embedding);
    assert.ok(a!.reduce((s, x, i) => s + x * b![i]!, 0) > 0.9, 'the word and the picture agree');
    assert.ok(embedded.usage.total_tokens > 0);
  });

  test('bad arguments: tool errors with the registry code and message, as over HTTP', async () => {
    const cases: [string, Record<string, unknown>, string, RegExp][] = [
      ['search', { collection: 'colours', query: 'red', k: 5000 }, 'SEARCH_PARAMETER_INVALID', /^k: expected an integer from 1 to 1000/],
      ['search', { collection: 'colours', query: 'red', k: 'ten' }, 'SEARCH_PARAMETER_INVALID', /^k: /],
      ['search', { collection: 'colours', query: '   ' }, 'QUERY_INVALID', /query: the query text is empty/],
      ['search', { collection: 'colours', query: { image: 'file:///etc/passwd' } }, 'QUERY_INVALID', /query\.image/],
      ['search', { collection: 'colours', query: 'red', filter: { year: { $near: 1 } } }, 'FILTER_INVALID', /filter/],
      ['search', { collection: 'colours', query: 'red', cutoff: { relative: 2 } }, 'SEARCH_PARAMETER_INVALID', /cutoff\.relative/],
      ['search', { collection: 'colours', query: 'red', top_k: 3 }, 'REQUEST_INVALID', /unknown argument "top_k"/],
      ['search', { collection: 'nope', query: 'red' }, 'COLLECTION_NOT_FOUND', /nope/],
      ['search', { collection: 'no such', query: 'red' }, 'COLLECTION_NAME_INVALID', /collection/],
      ['find_similar', { collection: 'colours', id: 'missing' }, 'QUERY_DOCUMENT_NOT_FOUND', /missing/],
      ['get_document', { collection: 'colours', id: 'missing' }, 'DOCUMENT_NOT_FOUND', /missing/],
      ['classify', { input: 'red', labels: ['red'] }, 'REQUEST_INVALID', /labels/],
      ['classify', { input: 'red', classifier_id: 'none' }, 'CLASSIFIER_NOT_FOUND', /none/],
      ['embed', { input: 'red', model: 'other' }, 'MODEL_MISMATCH', /other/],
      ['add_documents', { collection: 'colours', documents: [{ id: 'a', text: 'red' }, { id: 'a', text: 'blue' }] }, 'DOCUMENT_ID_DUPLICATE', /documents\[1\]/],
      ['add_documents', { collection: 'colours', documents: [{ id: 'b', image: 'not an image' }] }, 'IMAGE_SOURCE_INVALID', /documents\[0\]/],
    ];
    for (const [tool, args, code, message] of cases) {
      const error = toolError(await call(tool.startsWith('add') ? rw : ro, tool, args));
      assert.equal(error.code, code, `${tool} ${JSON.stringify(args)}: ${error.message}`);
      assert.match(error.message, message);
    }
    // Nothing was written by the refused calls.
    assert.equal((await store.get('colours', ['a', 'b'])).length, 0);
  });

  test('a request without a key, or with a wrong one, is refused: 401 as on /v1/*', async () => {
    await assert.rejects(connect(reader, null), (err: unknown) => {
      assert.ok(err instanceof StreamableHTTPError, String(err));
      assert.equal(err.code, 401);
      assert.match(err.message, /AUTH_API_KEY_MISSING/);
      return true;
    });
    const raw = await fetch(`${reader.url}/mcp`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: 'Bearer tk-wrong' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
    });
    assert.equal(raw.status, 401);
    assert.equal(((await raw.json()) as { code: string }).code, 'AUTH_API_KEY_INVALID');
    // GET (a server-to-client stream) has nothing to serve on this stateless endpoint.
    const get = await fetch(`${reader.url}/mcp`, { headers: { authorization: `Bearer ${KEY}`, accept: 'text/event-stream' } });
    assert.equal(get.status, 405);
  });

  test('index_path: a folder on the server, its files\' thumbnails, ids and never the server\'s paths', async () => {
    const folder = await colourFolder(await tempDir('tessera-mcp-folder-'));
    const indexed = json<{ added: number; failed: number; count: number }>(await call(rw, 'index_path', { path: folder, collection: 'folder' }));
    assert.deepEqual([indexed.added, indexed.failed, indexed.count], [4, 0, 4]);
    const again = json<{ added: number; skipped: number }>(await call(rw, 'index_path', { path: folder, collection: 'folder' }));
    assert.deepEqual([again.added, again.skipped], [0, 4], 'incremental: unchanged files are skipped');
    const answer = await call(ro, 'search', { collection: 'folder', query: 'green', k: 1 });
    const [hit] = hits(answer);
    assert.deepEqual([hit!.id, hit!.image], ['photos/green.png', 'photos/green.png']);
    assert.ok(!JSON.stringify(answer).includes(folder), 'the server\'s paths stay on the server');
    assert.ok(looks(await meanColour(images(answer)[0]!), 'green'));
    assert.equal(toolError(await call(rw, 'index_path', { path: `${folder}/missing`, collection: 'folder' })).code, 'INVALID_ARGUMENT');
  });

  test('a video is one result at its moment, a PDF one at its page: said in the text, the frame and the page as pictures', async () => {
    const dir = await tempDir('tessera-mcp-media-');
    await makeVideo(join(dir, 'clip.mp4'), [{ colour: 'red', seconds: 2 }, { colour: 'blue', seconds: 2 }]);
    await makePdf(join(dir, 'doc.pdf'), [{ colour: [230, 230, 20], text: 'a yellow page' }, { colour: [20, 20, 230], text: 'a blue page' }]);
    const indexed = json<{ added: number; failed: number }>(await call(rw, 'index_path', { path: dir, collection: 'media' }));
    assert.deepEqual([indexed.added, indexed.failed], [2, 0]);
    const answer = await call(ro, 'search', { collection: 'media', query: 'blue', k: 2 });
    const lines = texts(answer).slice(1).map((t) => t.split('\n')[0]!);
    const video = lines.find((l) => l.includes('| video clip.mp4'));
    const pdf = lines.find((l) => l.includes('| PDF doc.pdf'));
    assert.match(video ?? '', /\| video clip\.mp4 at 0:0[23]\.\d/, `the moment, in the blue half: ${lines.join(' / ')}`);
    assert.match(pdf ?? '', /\| PDF doc\.pdf page 2\b/, lines.join(' / '));
    const found = hits(answer);
    assert.ok(found.every((h) => typeof h.metadata.video === 'string' || typeof h.metadata.pdf === 'string'));
    const pictures = images(answer);
    assert.equal(pictures.length, 2, 'a picture for the frame and for the page');
    for (const picture of pictures) {
      const [r, g, b] = await meanColour(picture);
      assert.ok(b! > r! + 100 && b! > g! + 100, `blue: ${[r, g, b].map(Math.round)}`);
    }
  });
});

describe('MCP over HTTP under the key\'s rate limits', () => {
  test('each tool call is admitted like an API request: past --rate-limit-rpm, RATE_REQUEST_LIMIT_EXCEEDED', async () => {
    const apiKeys = await loadApiKeys({ env: `alice:${KEY}` });
    const server = await startServer({ model: 'colour', apiKeys, args: ['--rate-limit-rpm', '2'] });
    const client = await connect(server); // initialize and tools/list run no model: not admitted
    try {
      for (let i = 0; i < 2; i++) assert.ok(!(await call(client, 'embed', { input: 'red' })).isError);
      const error = toolError(await call(client, 'embed', { input: 'red' }));
      assert.equal(error.code, 'RATE_REQUEST_LIMIT_EXCEEDED', error.message);
    } finally {
      await client.close();
      await server.close();
    }
  });
});
