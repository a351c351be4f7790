// Issue 8: long texts on the command line, from files and from stdin, through the real CLI;
// and a crash of the inference thread is never silent.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { tessera } from '../helpers/cli.ts';
import { cosine, tempDir } from '../helpers/models.ts';

interface EmbedOutput {
  usage: { total_tokens: number };
  data: { index: number; embedding: number[] }[];
}

// 40,000 characters of words: about 8,000 tokens, inside the model's 8,192. (The demo
// model knows colour words only; "red" keeps the mean-pooled vector off zero.)
const LONG = 'red ' + 'word '.repeat(7999);
const TOO_LONG = 'word '.repeat(9000);

test('embed takes a 40,000-character text on the command line', async () => {
  const run = await tessera(['embed', '--model', 'demo', '--text', LONG]);
  assert.equal(run.code, 0, run.stderr);
  const out = JSON.parse(run.stdout) as EmbedOutput;
  assert.equal(out.data.length, 1);
  const vector = out.data[0]!.embedding;
  assert.ok(Math.abs(Math.hypot(...vector) - 1) < 1e-5, 'a unit vector');
  assert.equal(out.usage.total_tokens, 8002); // 8,000 words + [CLS] and [SEP]
});

test('classify takes a 40,000-character text on the command line', async () => {
  const run = await tessera(['classify', '--model', 'demo', '--labels', 'red,blue', '--text', LONG]);
  assert.equal(run.code, 0, run.stderr);
  const out = JSON.parse(run.stdout) as { data: { prediction: string }[] };
  assert.equal(out.data.length, 1);
});

test('a text over the limit is TEXT_TOO_LONG, or truncated with --truncate, never a crash', async () => {
  const refused = await tessera(['embed', '--model', 'demo', '--text', TOO_LONG]);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /input\[0\]: .*9002 tokens.*8192/);
  const truncated = await tessera(['embed', '--model', 'demo', '--truncate', '--text', TOO_LONG]);
  assert.equal(truncated.code, 0, truncated.stderr);
  assert.equal((JSON.parse(truncated.stdout) as EmbedOutput).usage.total_tokens, 8192);
  const classified = await tessera(['classify', '--model', 'demo', '--labels', 'red,blue', '--truncate', '--text', TOO_LONG]);
  assert.equal(classified.code, 0, classified.stderr);
});

test('texts come from --text-file and from stdin (--text -), in command-line order', async () => {
  const dir = await tempDir();
  const file = join(dir, 'long.txt');
  await writeFile(file, `blue ${TOO_LONG.slice(0, 30_000)}`);
  const fromSources = await tessera(['embed', '--model', 'demo', '--text', 'red', '--text-file', file, '--text', '-'], { stdin: 'green leaves' });
  assert.equal(fromSources.code, 0, fromSources.stderr);
  const direct = await tessera(['embed', '--model', 'demo', '--text', 'red', '--text', `blue ${TOO_LONG.slice(0, 30_000)}`, '--text', 'green leaves']);
  const a = (JSON.parse(fromSources.stdout) as EmbedOutput).data;
  const b = (JSON.parse(direct.stdout) as EmbedOutput).data;
  assert.equal(a.length, 3);
  for (let k = 0; k < 3; k++) assert.ok(cosine(a[k]!.embedding, b[k]!.embedding) > 0.99999, `item ${k}`);

  const missing = await tessera(['embed', '--model', 'demo', '--text-file', join(dir, 'nope.txt')]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /--text-file .*nope\.txt: cannot read it \(ENOENT\)/);
  const twice = await tessera(['embed', '--model', 'demo', '--text', '-', '--text', '-'], { stdin: 'x' });
  assert.equal(twice.code, 1);
  assert.match(twice.stderr, /--text - may be given once/);
});

// A real native crash, delivered for real: a SIGSEGV to the watched process (the CLI child of
// ./bin/tessera), while embed waits on stdin and while serve serves. (ONNX Runtime's telemetry
// crash, which tessera turns off, overflowed the stack only on some machines: no test can rely
// on it.)
async function crashWhile(args: string[], ready: RegExp): Promise<{ code: number | null; stderr: string }> {
  const watcher = spawn('./bin/tessera', args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let output = '';
  let stderr = '';
  watcher.stdout.on('data', (chunk: Buffer) => (output += chunk));
  watcher.stderr.on('data', (chunk: Buffer) => ((stderr += chunk), (output += chunk)));
  const exited = once(watcher, 'exit') as Promise<[number | null]>;
  while (!ready.test(output)) await delay(50);
  let child = '';
  while (!child) child = spawnSync('pgrep', ['-P', String(watcher.pid)], { encoding: 'utf8' }).stdout.trim();
  await delay(500);
  process.kill(Number(child), 'SIGSEGV');
  const [code] = await exited;
  return { code, stderr };
}

test('a native crash of the inference thread is reported by the CLI and by serve, with a non-zero exit', async () => {
  const message = /tessera: the process crashed \(SIGSEGV\).*ONNX Runtime on the inference thread/;
  // embed waits on its open stdin.
  const embed = await crashWhile(['embed', '--model', 'demo', '--text', '-'], /^/);
  assert.equal(embed.code, 139);
  assert.match(embed.stderr, message);
  const serve = await crashWhile(['serve', '--model', 'demo', '--port', '0'], /serving demo/);
  assert.equal(serve.code, 139);
  assert.match(serve.stderr, message);
});
