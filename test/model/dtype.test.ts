import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TesseraError } from '../../src/errors.ts';
import { DTYPE_SUFFIX, onnxFiles, parseDtype } from '../../src/model/dtype.ts';

test('parseDtype accepts fp32, fp16 and q8', () => {
  assert.equal(parseDtype('fp32'), 'fp32');
  assert.equal(parseDtype('fp16'), 'fp16');
  assert.equal(parseDtype('q8'), 'q8');
});

test('parseDtype rejects anything else with INVALID_ARGUMENT naming the choices', () => {
  for (const bad of ['int8', 'FP32', '', 'quantized']) {
    assert.throws(
      () => parseDtype(bad),
      (err: unknown) =>
        err instanceof TesseraError &&
        err.code === 'INVALID_ARGUMENT' &&
        err.message === `expected one of fp32, fp16, q8 for dtype but received ${JSON.stringify(bad)}`,
    );
  }
});

test('onnxFiles names the hub files of each dtype', () => {
  assert.deepEqual(DTYPE_SUFFIX, { fp32: '', fp16: '_fp16', q8: '_quantized' });
  assert.deepEqual(onnxFiles('fp32'), { text: 'onnx/text_model.onnx', vision: 'onnx/vision_model.onnx' });
  assert.deepEqual(onnxFiles('fp16'), { text: 'onnx/text_model_fp16.onnx', vision: 'onnx/vision_model_fp16.onnx' });
  assert.deepEqual(onnxFiles('q8'), { text: 'onnx/text_model_quantized.onnx', vision: 'onnx/vision_model_quantized.onnx' });
});
