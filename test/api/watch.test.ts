// `tessera serve --watch PATH=COLLECTION`: one process serves the API and keeps a folder indexed.
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { startServe } from '../helpers/cli.ts';
import { solidImage } from '../helpers/images.ts';
import { tempDir } from '../helpers/models.ts';
import { sample } from '../helpers/server.ts';
import { until } from '../helpers/wait.ts';

test('serve --watch creates the collection, indexes the folder as it changes, counts it in /metrics', { timeout: 180_000 }, async () => {
  const dir = await tempDir('tessera-serve-watch-');
  await writeFile(join(dir, 'blue.png'), await solidImage(16, 16, [0, 0, 255]));
  const storeDir = await tempDir('tessera-serve-watch-store-');
  const serve = startServe(['--model', 'demo', '--port', '0', '--store', storeDir, '--watch', `${dir}=library`, '--watch-settle-ms', '300'], { direct: true });
  const url = await serve.address;
  const search = async (query: string): Promise<string[]> => {
    const response = await fetch(`${url}/v1/collections/library/search`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query, k: 3 }) });
    if (response.status !== 200) return [];
    return ((await response.json()) as { data: { id: string }[] }).data.map((d) => d.id);
  };
  const metrics = async () => (await fetch(`${url}/metrics`)).text();
  try {
    await until('the first scan', async () => /watching for changes/.test(serve.stderr()), 60_000);
    const listed = (await (await fetch(`${url}/v1/collections`)).json()) as { data: { name: string; model: string; count: number }[] };
    assert.deepEqual(listed.data, [{ name: 'library', model: 'demo', model_name: 'demo', dimensions: 32, count: 1 }]);

    await mkdir(join(dir, 'new'));
    await writeFile(join(dir, 'new', 'red.png'), await solidImage(16, 16, [255, 0, 0]));
    const ms = await until('"red" finds new/red.png over HTTP', async () => (await search('red'))[0] === 'new/red.png', 6000);
    assert.ok(ms < 6000, `${ms} ms`);

    await until('the counters', async () => sample(await metrics(), 'tessera_watch_indexed_total', { collection: 'library' }) === 2, 5000);
    const text = await metrics();
    assert.equal(sample(text, 'tessera_watch_files_seen_total', { collection: 'library' }), 2);
    assert.equal(sample(text, 'tessera_watch_failed_total', { collection: 'library' }), 0);
    assert.equal(sample(text, 'tessera_watch_removed_total', { collection: 'library' }), 0);
    assert.match(text, /^tessera_watch_pending\{collection="library"\} 0$/m);

    // A broken picture counts as failed, and says why on stderr.
    await writeFile(join(dir, 'broken.png'), Buffer.concat([Buffer.from('\x89PNG\r\n\x1a\n', 'latin1'), Buffer.alloc(40, 7)]));
    await until('the failure counted', async () => sample(await metrics(), 'tessera_watch_failed_total', { collection: 'library' }) === 1, 6000);
    assert.match(serve.stderr(), /watch .* \(collection library\): failed: .*broken\.png/);
  } finally {
    serve.child.kill('SIGTERM');
  }
  assert.equal(await serve.exited, 0, serve.stderr());
});

test('serve --watch refuses a PATH that is not a folder, naming the flag', async () => {
  const dir = await tempDir('tessera-serve-watch-bad-');
  const file = join(dir, 'list.txt');
  await writeFile(file, 'https://example.com/a.png\n');
  const serve = startServe(['--model', 'demo', '--port', '0', '--store', dir, '--watch', `${file}=c`], { direct: true });
  serve.address.catch(() => undefined);
  assert.equal(await serve.exited, 1);
  assert.match(serve.stderr(), /--watch/);
});
