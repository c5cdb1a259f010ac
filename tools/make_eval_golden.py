"""Golden outputs of the timm/torchvision evaluation transform, made by Pillow itself.

timm evaluates ImageNet networks on PIL images: Resize(floor(size / crop_pct), bicubic) of the
shorter side, CenterCrop(size), ToTensor, Normalize(ImageNet mean/std). parnet-data's
`Pipeline::imagenet_eval` must give the same tensors. This script builds a few test images of
awkward sizes from real CIFAR-10 pictures (mosaics of 32x32 tiles, blown up with nearest so
that PNG keeps them small), writes them into parnet-data/tests/fixtures/eval/, and stores what
Pillow (and torchvision, when importable: the two must agree here) makes of them:

* `golden/<case>.crop.png`: the centre crop after the resize, Pillow's pixels (PNG is lossless);
* `golden/bilinear.tensor.safetensors`: `tensor`, f32 [3, 160, 160] after ToTensor and Normalize;
* `<case>.jpg` (quality 90, 4:2:0; the grayscale one single-channel) and
  `golden/<case>.jpg.crop.png`: the same transform of Pillow's (libjpeg-turbo's) decoding, and
  `golden/jpeg.decoded.png`, that decoding of `landscape.jpg`: JPEG decoders differ by a level
  or two, and the Rust test must see how far ours is.

Cases: portrait and landscape shrinking to 256 (size 224, crop_pct 0.875), an image smaller
than 256 (upsampled), a grayscale PNG (converted to RGB), and bilinear at size 160, crop_pct 0.9
(resize 177). The PNG inputs decode to the same pixels everywhere, so the test of the resize is
exact. Run: tools/.venv/bin/python tools/make_eval_golden.py  (needs only numpy and Pillow; the
output is byte-identical on each run).
"""

import io
import json
import math
import os

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "parnet-data", "tests", "fixtures", "eval")
CIFAR = os.environ.get(
    "PARNET_DATA", os.path.join(HERE, "..", "..", "shared", "data", "cifar10", "train")
)
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)

# name, (width, height), mode, size, crop_pct, filter
CASES = [
    ("portrait", (257, 300), "RGB", 224, 0.875, "bicubic"),
    ("landscape", (333, 250), "RGB", 224, 0.875, "bicubic"),
    ("small", (180, 140), "RGB", 224, 0.875, "bicubic"),
    ("gray", (390, 260), "L", 224, 0.875, "bicubic"),
    ("bilinear", (257, 300), "RGB", 160, 0.9, "bilinear"),
]
FILTERS = {"bicubic": Image.BICUBIC, "bilinear": Image.BILINEAR}


def cifar_tiles(count):
    classes = sorted(os.listdir(CIFAR))
    tiles = []
    for i in range(count):
        folder = os.path.join(CIFAR, classes[i % len(classes)])
        name = sorted(os.listdir(folder))[i // len(classes)]
        tiles.append(np.asarray(Image.open(os.path.join(folder, name)).convert("RGB")))
    return tiles


def mosaic(width, height, seed):
    """Real pictures tiled 3 x 3 and blown up (nearest, scale 3) to `width x height`."""
    rng = np.random.default_rng(seed)
    tiles = cifar_tiles(9 + seed)
    picked = rng.permutation(len(tiles))[:9]
    rows = [np.concatenate([tiles[picked[3 * r + c]] for c in range(3)], axis=1) for r in range(3)]
    grid = Image.fromarray(np.concatenate(rows, axis=0))
    return grid.resize((width, height), Image.NEAREST)


def timm_eval(image, size, crop_pct, filter_name):
    """timm's eval transform up to ToTensor, on a PIL image; returns the u8 crop."""
    resize = math.floor(size / crop_pct)
    w, h = image.size
    if w <= h:
        new_w, new_h = resize, int(resize * h / w)
    else:
        new_w, new_h = int(resize * w / h), resize
    resized = image.resize((new_w, new_h), FILTERS[filter_name])
    top = int(round((new_h - size) / 2.0))
    left = int(round((new_w - size) / 2.0))
    crop = np.asarray(resized.crop((left, top, left + size, top + size)))
    try:
        from torchvision import transforms as T
    except ImportError:
        return crop
    modes = {"bicubic": T.InterpolationMode.BICUBIC, "bilinear": T.InterpolationMode.BILINEAR}
    tv = T.Compose([T.Resize(resize, interpolation=modes[filter_name]), T.CenterCrop(size)])
    assert np.array_equal(np.asarray(tv(image)), crop), "torchvision disagrees with Pillow"
    return crop


def to_tensor(crop):
    chw = crop.astype(np.float32).transpose(2, 0, 1) / np.float32(255.0)
    return (chw - MEAN[:, None, None]) / STD[:, None, None]


def save_safetensors(path, tensors):
    """A deterministic safetensors file (sorted names, no metadata)."""
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        array = np.ascontiguousarray(tensors[name])
        dtype = {np.dtype(np.uint8): "U8", np.dtype(np.float32): "F32"}[array.dtype]
        data = array.tobytes()
        header[name] = {"dtype": dtype, "shape": list(array.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(len(text).to_bytes(8, "little") + text + b"".join(blobs))


def main():
    os.makedirs(os.path.join(OUT, "golden"), exist_ok=True)
    golden = {}
    for seed, (name, (w, h), mode, size, crop_pct, filter_name) in enumerate(CASES):
        image = mosaic(w, h, seed).convert(mode)
        image.save(os.path.join(OUT, f"{name}.png"), optimize=True)
        rgb = Image.open(os.path.join(OUT, f"{name}.png")).convert("RGB")
        crop = timm_eval(rgb, size, crop_pct, filter_name)
        golden[f"{name}.crop"] = crop
        if name == "bilinear":
            save_safetensors(
                os.path.join(OUT, "golden", "bilinear.tensor.safetensors"), {"tensor": to_tensor(crop)}
            )
    for name, _, _, size, crop_pct, filter_name in CASES:
        jpeg = io.BytesIO()
        Image.open(os.path.join(OUT, f"{name}.png")).save(jpeg, "JPEG", quality=90)
        with open(os.path.join(OUT, f"{name}.jpg"), "wb") as f:
            f.write(jpeg.getvalue())
        decoded = Image.open(os.path.join(OUT, f"{name}.jpg")).convert("RGB")
        golden[f"{name}.jpg.crop"] = timm_eval(decoded, size, crop_pct, filter_name)
        if name == "landscape":
            golden["jpeg.decoded"] = np.asarray(decoded)
    for name, pixels in golden.items():
        Image.fromarray(pixels).save(os.path.join(OUT, "golden", f"{name}.png"), optimize=True)
    print(f"wrote {2 * len(CASES)} images and {len(golden) + 1} golden files to {OUT}")


if __name__ == "__main__":
    main()
