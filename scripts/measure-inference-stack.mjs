#!/usr/bin/env node
// Measures how much stack ONNX Runtime needs on tessera's inference thread: for each model
// folder, the smallest Worker stack (resourceLimits.stackSizeMb) with which creating both
// sessions and running one text and one image through src/model/session-worker.mjs
// succeeds, with a short and a long process command line (a long one leaves less room:
// issue 8). Each try runs in a fresh process, since a too-small stack is a segfault.
//
//   node scripts/measure-inference-stack.mjs [--json FILE] MODEL_DIR...
//
// Plain JavaScript so the worker runs as it does under ./bin/tessera (no TypeScript loader).
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';

const script = fileURLToPath(import.meta.url);
const workerFile = fileURLToPath(new URL('../src/model/session-worker.mjs', import.meta.url));

async function child(stackMb, dir) {
  const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  const size = config.vision_config?.image_size ?? 224;
  const worker = new Worker(workerFile, { resourceLimits: { stackSizeMb: stackMb } });
  let next = 1;
  const pending = new Map();
  worker.on('message', (m) => {
    const p = pending.get(m.id);
    pending.delete(m.id);
    if (m.error) p.reject(new Error(m.error));
    else p.resolve(m.result);
  });
  const call = (message) => new Promise((resolve, reject) => {
    const id = next++;
    pending.set(id, { resolve, reject });
    worker.postMessage({ ...message, id });
  });
  const options = { intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'basic', executionProviders: ['cpu'] };
  const text = await call({ op: 'create', session: 1, path: join(dir, 'onnx/text_model.onnx'), options });
  const vision = await call({ op: 'create', session: 2, path: join(dir, 'onnx/vision_model.onnx'), options });
  const length = Math.min(512, config.text_config?.max_position_embeddings ?? 512);
  const ids = BigInt64Array.from({ length }, (_, k) => BigInt(k === 0 ? 1 : 100 + (k % 50)));
  const feeds = { input_ids: { type: 'int64', data: ids, dims: [1, length] } };
  if (text.inputNames.includes('attention_mask')) feeds.attention_mask = { type: 'int64', data: new BigInt64Array(length).fill(1n), dims: [1, length] };
  if (text.inputNames.includes('token_type_ids')) feeds.token_type_ids = { type: 'int64', data: new BigInt64Array(length), dims: [1, length] };
  await call({ op: 'run', session: 1, feeds });
  await call({ op: 'run', session: 2, feeds: { pixel_values: { type: 'float32', data: new Float32Array(3 * size * size), dims: [1, 3, size, size] } } });
  void vision;
  await worker.terminate();
}

/** True when the whole job succeeds with `stackMb` of worker stack and `padBytes` of extra arguments. */
function tryStack(stackMb, dir, padBytes, telemetry) {
  // In 16 KiB arguments: Linux caps one argument at 128 KiB (MAX_ARG_STRLEN).
  const pad = Array.from({ length: Math.ceil(padBytes / 16384) }, () => 'x'.repeat(16384));
  const r = spawnSync(process.execPath, [script, '--child', String(stackMb), dir, ...pad], {
    encoding: 'utf8',
    env: { ...process.env, ORT_DISABLE_TELEMETRY: telemetry ? '0' : '1' },
  });
  return r.status === 0;
}

/** Smallest stack in MB (to 1/16 MB) that works, searching 1/16..64 MB. */
function minimumStack(dir, padBytes, telemetry) {
  let lo = 0; // fails (or untested)
  let hi = 64; // works
  if (!tryStack(hi, dir, padBytes, telemetry)) return null;
  while (hi - lo > 1 / 16) {
    const mid = (lo + hi) / 2;
    if (tryStack(mid, dir, padBytes, telemetry)) hi = mid;
    else lo = mid;
  }
  return hi;
}

const argv = process.argv.slice(2);
if (argv[0] === '--child') {
  await child(Number(argv[1]), argv[2]);
} else {
  const jsonAt = argv.indexOf('--json');
  const jsonFile = jsonAt >= 0 ? argv.splice(jsonAt, 2)[1] : undefined;
  const cases = [
    { telemetry: true, pads: [0, 16 * 1024, 64 * 1024] },
    { telemetry: false, pads: [0, 64 * 1024, 1024 * 1024] },
  ];
  const rows = [];
  for (const dir of argv) {
    for (const { telemetry, pads } of cases) {
      for (const padBytes of pads) {
        const mb = minimumStack(dir, padBytes, telemetry);
        rows.push({ model: dir, telemetry, argv_pad_bytes: padBytes, min_stack_mb: mb });
        console.log(`${dir}  telemetry ${telemetry ? 'on ' : 'off'}  argv +${padBytes / 1024} KiB  minimum stack ${mb === null ? '> 64' : mb.toFixed(3)} MB`);
      }
    }
  }
  const report = { cpu: cpus()[0]?.model, node: process.version, rows };
  if (jsonFile) writeFileSync(jsonFile, JSON.stringify(report, null, 2) + '\n');
}
