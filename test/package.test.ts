// tessera as a package, installed the way the README tells a user to: `npm pack`, then
// `npm install` of the tarball into an empty project with ONNXRUNTIME_NODE_INSTALL=skip (the
// repository's .npmrc does not reach a dependent's install). Then the library from plain
// JavaScript, its types from TypeScript, and the CLI through npx, with no TypeScript loader.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { tempDir } from './helpers/models.ts';

const run = promisify(execFile);
const ROOT = new URL('..', import.meta.url).pathname;
const NPM = { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip', npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' };

describe('the npm package', { timeout: 600_000 }, () => {
  let project: string;
  let tarball: string;

  before(async () => {
    const out = await tempDir('tessera-pack-');
    const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', out], { cwd: ROOT, env: NPM, maxBuffer: 64 << 20 });
    const [packed] = JSON.parse(stdout) as { filename: string; size: number; unpackedSize: number; files: { path: string }[] }[];
    tarball = join(out, packed!.filename);
    console.log(`package: ${packed!.filename}, ${(packed!.size / 1024).toFixed(0)} KiB packed, ${(packed!.unpackedSize / 1024).toFixed(0)} KiB unpacked, ${packed!.files.length} files`);
    const paths = packed!.files.map((f) => f.path);
    assert.ok(paths.includes('dist/index.js') && paths.includes('dist/index.d.ts') && paths.includes('dist/web/index.html') && paths.includes('dist/model/session-worker.mjs'));
    assert.ok(paths.includes('dist/forge/colour.js'), 'the forge builds the demo model at run time');
    assert.deepEqual(paths.filter((p) => /^(src|test|bench|docs|scripts)\//.test(p) || p.endsWith('.ts') && !p.endsWith('.d.ts')), [], 'no sources, tests, benchmarks or data');
    assert.ok(packed!.size < 1024 * 1024, `the package stays small: ${packed!.size} bytes`);

    project = await tempDir('tessera-consumer-');
    await writeFile(join(project, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true, type: 'module' }));
    // Dependencies come from the npm cache that `npm ci` filled (the registry where it is not).
    await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', tarball], { cwd: project, env: NPM, maxBuffer: 64 << 20 });
  });
  after(async () => {
    if (project) await rm(project, { recursive: true, force: true });
  });

  test('plain JavaScript imports the library and embeds a text and an image with the demo model', async () => {
    await writeFile(join(project, 'app.mjs'), `
import sharp from 'sharp';
import { Embedder, TesseraError, ERRORS } from 'tessera';
const embedder = await Embedder.load('demo');
const image = await sharp({ create: { width: 32, height: 32, channels: 3, background: '#ff0000' } }).png().toBuffer();
const [text, picture] = await embedder.embed([{ text: 'a red thing' }, { image }]);
let code;
try { await embedder.embed([{ text: 42 }]); } catch (err) { code = err instanceof TesseraError ? err.code : 'not a TesseraError'; }
await embedder.close();
const dot = text.embedding.reduce((s, x, i) => s + x * picture.embedding[i], 0);
console.log(JSON.stringify({ dims: text.embedding.length, dot, code, status: ERRORS[code].status }));
`);
    const { stdout } = await run(process.execPath, ['app.mjs'], { cwd: project });
    const out = JSON.parse(stdout) as { dims: number; dot: number; code: string; status: number };
    assert.equal(out.dims, 32);
    assert.ok(out.dot > 0.9, `"a red thing" and a red image agree: ${out.dot}`);
    assert.deepEqual([out.code, out.status], ['TEXT_INVALID', 422]);
  });

  test('TypeScript type-checks against the installed types, and deep imports are refused', async () => {
    await writeFile(join(project, 'check.ts'), `
import { Embedder, TesseraError, createServer, openStore, type Embedding, type VectorStore, type ClassifierStore } from 'tessera';
const embedder: Embedder = await Embedder.load('demo', { dtype: 'fp32' });
const [first]: Embedding[] = await embedder.embed([{ text: 'hello' }]);
const length: number = first!.embedding.length;
const store: VectorStore = await openStore('/tmp/x');
const classifiers: ClassifierStore = store.classifiers;
const code: string = new TesseraError('TEXT_INVALID', 'x').code;
void [length, classifiers, code, createServer];
// @ts-expect-error: not a model option
await Embedder.load('demo', { notAnOption: true });
`);
    await writeFile(join(project, 'tsconfig.json'), JSON.stringify({
      compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, skipLibCheck: true, typeRoots: [join(ROOT, 'node_modules/@types')], types: ['node'] },
      files: ['check.ts'],
    }));
    await run(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], { cwd: project });
    await assert.rejects(run(process.execPath, ['--input-type=module', '-e', "await import('tessera/dist/errors.js')"], { cwd: project }), /ERR_PACKAGE_PATH_NOT_EXPORTED/);
  });

  test('npx tessera embeds with the demo model and prints its version, with no TypeScript loader installed', async () => {
    const modules = await readdir(join(project, 'node_modules'));
    assert.ok(!modules.includes('tsx') && !modules.includes('typescript'), 'neither tsx nor typescript is installed for a user');
    const { stdout } = await run('npx', ['--no-install', 'tessera', 'embed', '--model', 'demo', '--text', 'hello'], { cwd: project, env: NPM });
    const out = JSON.parse(stdout) as { data: { embedding: number[] }[] };
    assert.equal(out.data[0]!.embedding.length, 32);
    const version = await run('npx', ['--no-install', 'tessera', '--version'], { cwd: project, env: NPM });
    assert.match(version.stdout, /^\d+\.\d+\.\d+\n$/);
  });
});
