#!/usr/bin/python3
"""Golden tensors for tessera's image preprocessing.

Implements, literally, the eval transform jina-clip-v1 was evaluated with (open_clip's
image_transform with resize_mode "shortest" on Pillow + torchvision), without needing torch:

  PIL.Image.open                         ICC profile and EXIF orientation NOT applied
  Resize(224, BICUBIC)                   torchvision's size rule, Pillow's img.resize()
  CenterCrop(224)                        top = int(round((h - 224) / 2.0)), left likewise
  convert('RGB')                         open_clip's _convert_to_rgb

For every fixture it writes the 224x224 RGB uint8 result as a lossless PNG to
test/fixtures/images/golden/<fixture name>.png. ToTensor (/255) and Normalize are exact
arithmetic and are done by the test. Fixtures with an EXIF orientation also get
<fixture name>.exif-applied.png, the same pipeline after PIL.ImageOps.exif_transpose.

It also writes test/fixtures/images/golden-clip/<fixture name>.png: the 224x224 RGB uint8
image Hugging Face transformers' CLIPImageProcessor (OpenAI CLIP, e.g.
Xenova/clip-vit-base-patch16: size {shortest_edge: 224}, resample 3, crop_size 224x224) holds
before its rescale and normalize, reimplemented step by step below (transformers is not
needed; see clip_reference).

Needs only Pillow and numpy (Debian: python3-pil, python3-numpy):

  /usr/bin/python3 scripts/golden-images.py
"""
import os
import sys

import numpy as np
from PIL import Image, ImageOps

SIZE = 224
HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, '..', 'test', 'fixtures', 'images')
GOLDEN = os.path.join(FIXTURES, 'golden')
GOLDEN_CLIP = os.path.join(FIXTURES, 'golden-clip')


def resized_size(width, height, size=SIZE):
    """torchvision.transforms.functional._compute_resized_output_size for an int size."""
    short, long = (width, height) if width <= height else (height, width)
    new_short, new_long = size, int(size * long / short)
    return (new_short, new_long) if width <= height else (new_long, new_short)


def resize(img, size=SIZE):
    """torchvision.transforms.Resize(size, InterpolationMode.BICUBIC) on a PIL image."""
    width, height = img.size
    new_w, new_h = resized_size(width, height, size)
    if (new_w, new_h) == (width, height):
        return img
    # Pillow itself switches "P" and "1" images to NEAREST and resizes RGBA/LA premultiplied.
    return img.resize((new_w, new_h), Image.BICUBIC)


def center_crop(img, size=SIZE):
    """torchvision.transforms.CenterCrop(size) (the image is never smaller than size here)."""
    width, height = img.size
    top = int(round((height - size) / 2.0))
    left = int(round((width - size) / 2.0))
    return img.crop((left, top, left + size, top + size))


def reference(img):
    img = center_crop(resize(img))
    img = img.convert('RGB')
    arr = np.asarray(img, dtype=np.uint8)
    assert arr.shape == (SIZE, SIZE, 3), arr.shape
    return arr


def clip_resize_output_size(width, height, size=SIZE):
    """transformers.image_transforms.get_resize_output_image_size(image, size, default_to_square=False)
    for an int size: short side -> size, long side -> int(size * long / short); unchanged when
    the short side already equals size. Returns (width, height)."""
    short, long = (width, height) if width <= height else (height, width)
    if short == size:
        return width, height
    new_short, new_long = size, int(size * long / short)
    return (new_short, new_long) if width <= height else (new_long, new_short)


def clip_reference(img):
    """CLIPImageProcessor.preprocess (transformers, PIL backend) up to do_rescale:

    convert_to_rgb                 image_transforms.convert_to_rgb: img.convert('RGB') unless
                                   already RGB (alpha dropped, palette looked up, no compositing)
    to_numpy_array                 uint8 HWC
    resize                         CLIPImageProcessor.resize -> get_resize_output_image_size
                                   (default_to_square=False) -> image_transforms.resize, which for
                                   a uint8 array makes a PIL image (no rescale) and calls
                                   PIL.Image.resize(size, resample=BICUBIC), back to numpy
    center_crop                    image_transforms.center_crop: top = (h - crop_h) // 2,
                                   left = (w - crop_w) // 2, array slicing
    """
    if img.mode != 'RGB':
        img = img.convert('RGB')
    arr = np.array(img)
    height, width = arr.shape[:2]
    new_w, new_h = clip_resize_output_size(width, height)
    arr = np.array(Image.fromarray(arr).resize((new_w, new_h), resample=Image.BICUBIC))
    top = (new_h - SIZE) // 2
    left = (new_w - SIZE) // 2
    arr = arr[top:top + SIZE, left:left + SIZE]
    assert arr.shape == (SIZE, SIZE, 3) and arr.dtype == np.uint8, (arr.shape, arr.dtype)
    return arr


def main():
    os.makedirs(GOLDEN, exist_ok=True)
    os.makedirs(GOLDEN_CLIP, exist_ok=True)
    names = sorted(
        n for n in os.listdir(FIXTURES)
        if os.path.isfile(os.path.join(FIXTURES, n)) and not n.endswith('.md')
    )
    for name in names:
        path = os.path.join(FIXTURES, name)
        try:
            img = Image.open(path)
            img.load()
        except Exception as err:  # e.g. AVIF, which Pillow 9 cannot read
            print(f'skip {name}: {err}', file=sys.stderr)
            continue
        outputs = {name: reference(img)}
        if img.getexif().get(0x0112, 1) != 1:
            outputs[name + '.exif-applied'] = reference(ImageOps.exif_transpose(Image.open(path)))
        for out_name, arr in outputs.items():
            Image.fromarray(arr, 'RGB').save(os.path.join(GOLDEN, out_name + '.png'), optimize=True)
            print(f'{out_name}: mode {img.mode} size {img.size} -> {resized_size(*img.size)}')
        clip = clip_reference(Image.open(path))
        Image.fromarray(clip, 'RGB').save(os.path.join(GOLDEN_CLIP, name + '.png'), optimize=True)
        print(f'golden-clip/{name}: mode {img.mode} size {img.size} -> {clip_resize_output_size(*img.size)}')


if __name__ == '__main__':
    main()
