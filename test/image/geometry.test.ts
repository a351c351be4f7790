import assert from 'node:assert/strict';
import { test } from 'node:test';
import { centerCropOffsets, resizedSize, roundHalfEven } from '../../src/image/geometry.ts';

test("torchvision's size rule: shorter side to size, longer side truncated", () => {
  assert.deepEqual(resizedSize(640, 427, 224), { width: 335, height: 224 }); // 335.74
  assert.deepEqual(resizedSize(427, 640, 224), { width: 224, height: 335 });
  assert.deepEqual(resizedSize(512, 512, 224), { width: 224, height: 224 });
  assert.deepEqual(resizedSize(1000, 110, 224), { width: 2036, height: 224 }); // 2036.36
  assert.deepEqual(resizedSize(80, 512, 224), { width: 224, height: 1433 }); // 1433.6
  assert.deepEqual(resizedSize(1, 1, 224), { width: 224, height: 224 });
});

test("Python's round: halves to even", () => {
  assert.deepEqual([0.5, 1.5, 2.5, 3.5, 55.5, 56.5, 2.4, 2.6].map(roundHalfEven), [0, 2, 2, 4, 56, 56, 2, 3]);
});

test("CenterCrop's offsets use Python's round", () => {
  assert.deepEqual(centerCropOffsets(229, 224, 224), { left: 2, top: 0 }); // round(2.5) = 2, not 3
  assert.deepEqual(centerCropOffsets(335, 224, 224), { left: 56, top: 0 }); // round(55.5) = 56
  assert.deepEqual(centerCropOffsets(224, 1433, 224), { left: 0, top: 604 }); // round(604.5) = 604
  assert.deepEqual(centerCropOffsets(224, 227, 224), { left: 0, top: 2 }); // round(1.5) = 2
});
