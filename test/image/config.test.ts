import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TesseraError } from '../../src/errors.ts';
import { parsePreprocessorConfig } from '../../src/image/config.ts';
import { JINA, OPENAI_CLIP } from './helpers.ts';

const FILE = '/models/jina-clip-v1/preprocessor_config.json';

test("reads jina-clip-v1's preprocessor_config.json", () => {
  const json = {
    size: 224,
    mean: [0.48145466, 0.4578275, 0.40821073],
    std: [0.26862954, 0.26130258, 0.27577711],
    resize_mode: 'shortest',
    interpolation: 'bicubic',
    fill_color: 0,
    processor_class: 'JinaCLIPProcessor',
    image_processor_type: 'JinaCLIPImageProcessor',
  };
  assert.deepEqual(parsePreprocessorConfig(json, FILE), JINA);
});

test("reads Hugging Face CLIPImageProcessor's keys", () => {
  const json = {
    crop_size: { height: 224, width: 224 },
    do_center_crop: true,
    do_normalize: true,
    do_resize: true,
    image_mean: [0.48145466, 0.4578275, 0.40821073],
    image_std: [0.26862954, 0.26130258, 0.27577711],
    resample: 3,
    size: { shortest_edge: 224 },
  };
  assert.deepEqual(parsePreprocessorConfig(json, FILE), OPENAI_CLIP);
  assert.equal(parsePreprocessorConfig({ ...json, image_processor_type: 'CLIPImageProcessor' }, FILE).pipeline, 'clip_image_processor');
  assert.equal(parsePreprocessorConfig({ ...json, feature_extractor_type: 'CLIPFeatureExtractor' }, FILE).pipeline, 'clip_image_processor');
  assert.equal(parsePreprocessorConfig({ ...json, image_processor_type: 'JinaCLIPImageProcessor' }, FILE).pipeline, 'open_clip');
  assert.equal(parsePreprocessorConfig({ ...json, resample: 2, size: 224, crop_size: 224 }, FILE).interpolation, 'bilinear');
});

test('malformed values are MODEL_FILE_INVALID naming the file and the key', () => {
  const good = { size: 224, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] };
  const cases: Array<[unknown, RegExp]> = [
    [null, /\(top level\)/],
    [[], /\(top level\)/],
    [{ ...good, size: 0 }, /"size" but found 0/],
    [{ ...good, size: '224' }, /"size"/],
    [{ mean: good.mean, std: good.std }, /"crop_size" but found nothing/],
    [{ ...good, mean: [0.5, 0.5] }, /"mean"/],
    [{ ...good, std: [0.5, 0, 0.5] }, /3 positive numbers for "std"/],
    [{ size: 224, image_mean: [1, 2, 'x'], image_std: good.std }, /"image_mean"/],
    [{ ...good, resize_mode: 'squash' }, /"shortest" for "resize_mode" but found "squash"/],
    [{ ...good, interpolation: 'lanczos' }, /"interpolation"/],
    [{ size: { shortest_edge: 224 }, crop_size: { height: 200, width: 200 }, image_mean: good.mean, image_std: good.std }, /"crop_size"/],
    [{ size: { shortest_edge: 224 }, image_mean: good.mean, image_std: good.std, resample: 1 }, /"resample"/],
  ];
  for (const [json, pattern] of cases) {
    assert.throws(
      () => parsePreprocessorConfig(json, FILE),
      (err: unknown) => {
        assert.ok(err instanceof TesseraError);
        assert.equal(err.code, 'MODEL_FILE_INVALID');
        assert.ok(err.message.startsWith(`${FILE}: `), err.message);
        assert.match(err.message, pattern);
        return true;
      },
      JSON.stringify(json),
    );
  }
});
