// `tessera serve` as a user runs it: a real process, signals and all.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { test } from 'node:test';
import { startServe as startServeProcess } from '../helpers/cli.ts';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { forged, forgedCopy, tempDir } from '../helpers/models.ts';

// serve opens the default store: keep it out of the user's ~/.local/share.
const dataHome = await tempDir('tessera-serve-data-');

const startServe = (args: string[], env: NodeJS.ProcessEnv = {}) => startServeProcess(args, { env: { XDG_DATA_HOME: dataHome, ...env } });

test('serve prints its address; SIGTERM finishes the request in flight and exits 0', async () => {
  const serve = startServe(['--model', 'demo', '--port', '0', '--batch-wait-ms', '400']);
  const url = await serve.address;
  assert.equal((await fetch(`${url}/ready`)).status, 200);
  const inFlight = fetch(`${url}/v1/embeddings`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'demo', input: ['a red car'] }),
  });
  await new Promise((r) => setTimeout(r, 100));
  serve.child.kill('SIGTERM');
  const response = await inFlight;
  assert.equal(response.status, 200);
  assert.equal(((await response.json()) as { data: unknown[] }).data.length, 1);
  assert.equal(await serve.exited, 0);
});

test('offline with nothing cached, serve fails fast and says how to continue', async () => {
  const serve = startServe([], { HF_HUB_OFFLINE: '1', HF_HUB_CACHE: await tempDir(), HF_HOME: await tempDir() });
  serve.address.catch(() => undefined);
  assert.equal(await serve.exited, 1);
  assert.match(serve.stderr(), /jinaai\/jina-clip-v1/);
  assert.match(serve.stderr(), /--model demo/);
});

test('serve --help lists every option with its environment variable', async () => {
  const { stdout } = await promisify(execFile)('./bin/tessera', ['serve', '--help']);
  const { SERVER_OPTIONS } = await import('../../src/api/config.ts');
  for (const [name, spec] of Object.entries(SERVER_OPTIONS)) {
    assert.ok(stdout.includes(`--${name}`), name);
    assert.ok(stdout.includes(spec.env), spec.env);
  }
});

test('serve --store DIR serves that store\'s collections', async () => {
  const storeDir = await tempDir('tessera-serve-store-');
  const serve = startServe(['--model', 'demo', '--port', '0', '--store', storeDir]);
  const url = await serve.address;
  try {
    const created = await fetch(`${url}/v1/collections`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'c' }) });
    assert.equal(created.status, 200, await created.clone().text());
    assert.deepEqual(await created.json(), { name: 'c', model: 'demo', model_name: 'demo', dimensions: 32, count: 0 }); // the colour model's width
    const listed = (await (await fetch(`${url}/v1/collections`)).json()) as { data: { name: string }[] };
    assert.deepEqual(listed.data.map((c) => c.name), ['c']);
    assert.match(serve.stderr(), new RegExp(`store at ${storeDir}`));
  } finally {
    serve.child.kill('SIGTERM');
    await serve.exited;
  }
  const { openStore } = await import('../../src/store/open.ts');
  const store = await openStore(storeDir);
  assert.equal((await store.getCollection('c'))?.model, 'demo');
  await store.close();
});

test('TESSERA_MODEL=a,b serves both models, each by the name TESSERA_SERVED_MODEL_NAME gives it at the same position', async () => {
  const tiny = await forged('tiny');
  const serve = startServe(['--port', '0'], { TESSERA_MODEL: `demo,${tiny}`, TESSERA_SERVED_MODEL_NAME: 'colours,tiny' });
  const url = await serve.address;
  try {
    assert.match(serve.stderr(), new RegExp(`serving colours \\(demo, fp32\\), tiny \\(${tiny}, fp32\\) on`));
    const models = (await (await fetch(`${url}/v1/models`)).json()) as { data: { id: string; dimensions: number; ready: boolean }[] };
    assert.deepEqual(models.data.map((m) => [m.id, m.dimensions, m.ready]), [['colours', 32, true], ['tiny', 32, true]]);
    for (const model of ['colours', 'tiny', 'demo', tiny]) {
      const response = await fetch(`${url}/v1/embeddings`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model, input: ['a red car'] }) });
      assert.equal(response.status, 200, model);
      assert.equal(((await response.json()) as { model: string }).model, model === 'colours' || model === 'demo' ? 'colours' : 'tiny');
    }
    const metrics = await (await fetch(`${url}/metrics`)).text();
    for (const model of ['colours', 'tiny']) assert.match(metrics, new RegExp(`^tessera_model_resident_bytes\\{model="${model}"\\} \\d+$`, 'm'));
  } finally {
    serve.child.kill('SIGTERM');
    await serve.exited;
  }
});

test('a model that cannot be loaded fails the start, naming it; so does a name count that does not match the models', async () => {
  const broken = await forgedCopy('tiny');
  await writeFile(join(broken, 'onnx', 'text_model.onnx'), 'not an ONNX model');
  const serve = startServe(['--port', '0', '--model', 'demo', '--model', broken, '--served-model-name', 'colours', '--served-model-name', 'broken']);
  serve.address.catch(() => undefined);
  assert.equal(await serve.exited, 1);
  assert.match(serve.stderr(), new RegExp(`model "broken" \\(--model ${broken}\\): `));

  const miscounted = startServe(['--port', '0', '--model', 'demo', '--model', broken, '--served-model-name', 'only-one']);
  miscounted.address.catch(() => undefined);
  assert.equal(await miscounted.exited, 1);
  assert.match(miscounted.stderr(), /--served-model-name gives 1 name\(s\) for 2 model\(s\); give one name per --model/);
});
