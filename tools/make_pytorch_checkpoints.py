"""PyTorch checkpoints for the tests of `parnet import`, saved by torch itself.

Models come from tools/parnet_reference.py (an independent PyTorch ParNet whose state_dict keys
are the official ones) at the widths that our registry gives for a width multiplier, with random
weights and non-trivial batch-norm statistics (as tools/make_model_golden.py). Writes into
parnet-train/tests/fixtures/:

* `parnet_s_x0.0625.pth.tar`: `parnet-s --width-mult 0.0625 --classes 10` (widths 8,16,24,80,
  stem 8), a timm training checkpoint in the zip format of torch.save: a dict with `epoch`,
  `arch`, `state_dict` (saved from DataParallel, so every key starts with `module.`),
  `state_dict_ema` (other weights: the raw ones perturbed), `optimizer` (momentum tensors that an
  importer must ignore) and `version`.
* `parnet_cifar_x0.0625.legacy.pth`: `parnet-cifar --width-mult 0.0625` (widths 8,16,32,64,
  10 classes), a bare state dict in the legacy format (`_use_new_zipfile_serialization=False`).
* `pytorch_checkpoints.io.safetensors`: for each case an `input` [2,3,H,W] and the eval-mode
  logits of its weights (`<case>.logits`, and `<case>.logits_ema` for the EMA weights), computed
  in float64 from the float32 weights and rounded once; and `parnet_s.folder_loss`, the mean
  cross-entropy of the raw parnet_s weights over the PNG images of
  parnet-data/tests/fixtures/eval (`EVAL_FOLDER`: class 0 `a`, class 1 `b`) after timm's
  evaluation transform (torchvision Resize(256, bicubic), CenterCrop(224), ImageNet mean/std):
  what `parnet eval` of the imported weights on that folder must print.

Run: tools/.venv/bin/python tools/make_pytorch_checkpoints.py  (tools/setup_venv.sh makes the venv)
The logits file is byte-identical on each run; torch.save's zip holds a random serialization id,
so the .pth.tar changes bytes but not contents.
"""

import copy
import os

import torch

from make_model_golden import randomize_bns, save_deterministic
from parnet_reference import ParNet

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "parnet-train", "tests", "fixtures")
EVAL_IMAGES = os.path.join(HERE, "..", "parnet-data", "tests", "fixtures", "eval")
# class folder -> images (tools/make_eval_golden.py makes them)
EVAL_FOLDER = {"a": ["portrait.png", "small.png"], "b": ["landscape.png", "gray.png", "bilinear.png"]}

# name, layout, widths, classes, input size, seed, file, timm dict?
CASES = [
    ("parnet_s", "imagenet", (8, 16, 24, 80), 10, 64, 21, "parnet_s_x0.0625.pth.tar", True),
    ("parnet_cifar", "cifar", (8, 16, 32, 64), 10, 32, 22, "parnet_cifar_x0.0625.legacy.pth", False),
]


def logits(model, x):
    with torch.no_grad():
        return copy.deepcopy(model).double().eval()(x.double()).float()


def folder_loss(model):
    """Mean cross-entropy over EVAL_FOLDER after timm's evaluation transform, in float64."""
    from PIL import Image
    from torchvision import transforms as T

    transform = T.Compose(
        [
            T.Resize(256, interpolation=T.InterpolationMode.BICUBIC),
            T.CenterCrop(224),
            T.ToTensor(),
            T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
        ]
    )
    images, labels = [], []
    for label, folder in enumerate(sorted(EVAL_FOLDER)):
        for name in EVAL_FOLDER[folder]:
            image = Image.open(os.path.join(EVAL_IMAGES, name)).convert("RGB")
            images.append(transform(image))
            labels.append(label)
    x = torch.stack(images).double()
    with torch.no_grad():
        out = copy.deepcopy(model).double().eval()(x)
    return torch.nn.functional.cross_entropy(out, torch.tensor(labels)).reshape(1).float()


def main():
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    io = {}
    for name, layout, widths, classes, size, seed, file, timm in CASES:
        torch.manual_seed(seed)
        model = ParNet(layout, widths, classes, "silu")
        gen = torch.Generator().manual_seed(seed + 1000)
        randomize_bns(model, gen)
        x = torch.randn(2, 3, size, size, generator=gen)
        io[f"{name}.input"] = x
        io[f"{name}.logits"] = logits(model, x)
        if name == "parnet_s":
            io[f"{name}.folder_loss"] = folder_loss(model)
        path = os.path.join(OUT, file)
        if timm:
            ema = copy.deepcopy(model)
            with torch.no_grad():
                for k, v in ema.state_dict().items():
                    if v.is_floating_point():
                        v.add_(0.05 * torch.randn(v.shape, generator=gen))
                        if k.endswith("running_var"):
                            v.abs_().add_(0.1)
            io[f"{name}.logits_ema"] = logits(ema, x)
            wrapped = torch.nn.DataParallel(model)
            checkpoint = {
                "epoch": 3,
                "arch": "parnet_s",
                "state_dict": wrapped.state_dict(),
                "state_dict_ema": ema.state_dict(),
                "optimizer": {
                    "state": {i: {"momentum_buffer": torch.zeros(3)} for i in range(2)},
                    "param_groups": [{"lr": 0.1, "params": [0, 1]}],
                },
                "version": 2,
            }
            torch.save(checkpoint, path)
        else:
            torch.save(model.state_dict(), path, _use_new_zipfile_serialization=False)
        print(f"{file}: {os.path.getsize(path)} bytes, logits {tuple(io[f'{name}.logits'].shape)}")
    save_deterministic(
        {k: v.contiguous() for k, v in io.items()},
        os.path.join(OUT, "pytorch_checkpoints.io.safetensors"),
        {"cases": ",".join(c[0] for c in CASES)},
    )


if __name__ == "__main__":
    main()
