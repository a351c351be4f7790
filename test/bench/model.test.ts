// The bench's forged model: its q8 variant is the hub-like one (what users download), and a
// cached folder whose q8 graphs were made otherwise (the forge's own style, or before the
// style was recorded) is forged again rather than measured under the new meaning.
import assert from 'node:assert/strict';
import { copyFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { BENCH_Q8_STYLE, forgedModelDir, forgedQ8Style, modelFiles } from '../../bench/model.ts';
import { forgeModel } from '../../src/forge/index.ts';
import { OnnxFile, summarizeInt8 } from '../../src/model/int8/index.ts';
import { tempDir } from '../helpers/models.ts';

test('forgedModelDir forges the hub-like q8, and forges again over a cached forge-style q8', async () => {
  process.env.TESSERA_CACHE = await tempDir('tessera-bench-model-');
  const lines: string[] = [];
  const log = (line: string): void => void lines.push(line);
  const dir = await forgedModelDir('tiny', 0, log);
  assert.equal(BENCH_Q8_STYLE, 'hub-like');
  const q8 = (await modelFiles(dir, 'q8'))!.files;
  assert.deepEqual(q8, ['onnx/text_model_quantized.onnx', 'onnx/vision_model_quantized.onnx']);
  for (const f of q8) assert.equal(await forgedQ8Style(join(dir, f)), 'hub-like', f);
  // What the bench loads: uint8 ConvInteger in the vision tower, int8 in the text tower.
  assert.equal(summarizeInt8(OnnxFile.parse(await readFile(join(dir, q8[1]!)))).weights.ConvInteger?.uint8, 1);
  assert.equal(summarizeInt8(OnnxFile.parse(await readFile(join(dir, q8[0]!)))).uint8, 0);

  // Complete and hub-like: reused, not forged.
  lines.length = 0;
  assert.equal(await forgedModelDir('tiny', 0, log), dir);
  assert.deepEqual(lines, []);

  // A cache from before: the forge's own q8 style in the same folder.
  await forgeModel({ preset: 'tiny', outDir: dir, quantized: true, q8Style: 'forge' });
  assert.equal(await forgedQ8Style(join(dir, q8[0]!)), 'forge');
  await forgedModelDir('tiny', 0, log);
  assert.match(lines.join('\n'), /forging the tiny model .*its q8 graphs are forge, not hub-like/);
  for (const f of q8) assert.equal(await forgedQ8Style(join(dir, f)), 'hub-like', f);

  // A q8 graph without the record (forged before it existed) counts as forge-style too: a
  // graph with no tessera_forge_q8 entry stands in for one.
  await copyFile(join(dir, 'onnx/vision_model.onnx'), join(dir, q8[1]!));
  assert.equal(await forgedQ8Style(join(dir, q8[1]!)), undefined);
  lines.length = 0;
  await forgedModelDir('tiny', 0, log);
  assert.match(lines.join('\n'), /its q8 graphs are hub-like, forge-style \(unmarked\), not hub-like/);
  assert.equal(await forgedQ8Style(join(dir, q8[1]!)), 'hub-like');
});

test('every preset the bench forges has its q8 variant: clip-tiny and v2-tiny too', async () => {
  process.env.TESSERA_CACHE = await tempDir('tessera-bench-model-');
  for (const preset of ['clip-tiny', 'v2-tiny'] as const) {
    const dir = await forgedModelDir(preset);
    const q8 = (await modelFiles(dir, 'q8'))!.files;
    assert.ok(q8.length > 0, preset);
    for (const f of q8) assert.equal(await forgedQ8Style(join(dir, f)), 'hub-like', `${preset} ${f}`);
  }
});
