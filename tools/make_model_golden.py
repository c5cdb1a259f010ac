"""Whole-model agreement fixtures: tiny ParNets built by tools/parnet_reference.py.

For each case writes two files into parnet-core/tests/fixtures/:

* `parnet_<case>.weights.safetensors`: the state_dict under its official keys (float32;
  `num_batches_tracked` as int64 scalars), loadable by `parnet_core::io::load_module`.
* `parnet_<case>.io.safetensors`:
  - `input` [N,3,H,W] float32;
  - `logits_eval` (model.eval() forward);
  - `logits_train` (model.train() forward of a copy starting from the same running stats);
  - `targets` int64 [N];
  - `grad.<key>` for every parameter: gradient of F.cross_entropy(logits_train, targets)
    (mean over the batch, no label smoothing);
  - `after.<key>` for every running_mean / running_var key: the running stats after that one
    train-mode forward (momentum 0.1, unbiased batch variance).

Weights: PyTorch default init (seeded), then every BN's weight in [0.5, 1.5], bias and
running_mean in [-0.5, 0.5], running_var in [0.5, 2]. The weights are float32; every output is
computed in float64 from those float32 values and rounded once to float32, so the fixtures carry
(almost) no PyTorch rounding error.

Metadata (both files): layout, widths, classes, activation, input shape.

Run: python3 tools/make_model_golden.py   (re-runnable; identical files each time)
"""

import copy
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
import json
import struct

from safetensors.torch import load_file

from parnet_reference import ParNet

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "parnet-core", "tests", "fixtures")

CASES = [
    # name, layout, widths, classes, activation, input size, seed
    ("imagenet_silu", "imagenet", (8, 16, 16, 32), 5, "silu", 64, 11),
    ("cifar_silu", "cifar", (8, 16, 16, 32), 10, "silu", 32, 12),
    ("imagenet_relu", "imagenet", (8, 16, 16, 32), 5, "relu", 64, 13),
]
BATCH = 2


def save_deterministic(tensors, path, metadata):
    """A safetensors file with a byte-stable header (sorted names, sorted metadata);
    safetensors.torch.save_file orders the metadata map differently on each run."""
    dtypes = {torch.float32: "F32", torch.int64: "I64"}
    header = {"__metadata__": dict(sorted(metadata.items()))}
    blobs, offset = [], 0
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        data = t.numpy().tobytes()
        header[name] = {
            "dtype": dtypes[t.dtype],
            "shape": list(t.shape),
            "data_offsets": [offset, offset + len(data)],
        }
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))
    back = load_file(path)
    assert all(torch.equal(back[k], tensors[k]) for k in tensors), path


def randomize_bns(model, gen):
    def u(n, lo, hi):
        return lo + (hi - lo) * torch.rand(n, generator=gen)

    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.weight.copy_(u(c, 0.5, 1.5))
                m.bias.copy_(u(c, -0.5, 0.5))
                m.running_mean.copy_(u(c, -0.5, 0.5))
                m.running_var.copy_(u(c, 0.5, 2.0))


def f32(t):
    return t.detach().to(torch.float32).contiguous()


def make_case(name, layout, widths, classes, activation, size, seed):
    torch.manual_seed(seed)
    model = ParNet(layout, widths, classes, activation)
    gen = torch.Generator().manual_seed(seed + 1000)
    randomize_bns(model, gen)
    x = torch.randn(BATCH, 3, size, size, generator=gen)
    targets = torch.randint(0, classes, (BATCH,), generator=gen, dtype=torch.int64)

    weights = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}

    # float64 copies of the float32 model.
    eval_model = copy.deepcopy(model).double().eval()
    train_model = copy.deepcopy(model).double().train()
    xd = x.double()
    with torch.no_grad():
        logits_eval = eval_model(xd)
    logits_train = train_model(xd)
    loss = F.cross_entropy(logits_train, targets)
    loss.backward()

    io = {
        "input": f32(x),
        "logits_eval": f32(logits_eval),
        "logits_train": f32(logits_train),
        "targets": targets.clone(),
        "loss_train": f32(loss.reshape(1)),
    }
    for k, p in train_model.named_parameters():
        io[f"grad.{k}"] = f32(p.grad)
    for k, v in train_model.state_dict().items():
        if k.endswith("running_mean") or k.endswith("running_var"):
            io[f"after.{k}"] = f32(v)

    meta = {
        "layout": layout,
        "widths": ",".join(map(str, widths)),
        "classes": str(classes),
        "activation": activation,
        "input": f"{BATCH},3,{size},{size}",
    }
    wpath = os.path.join(OUT, f"parnet_{name}.weights.safetensors")
    ipath = os.path.join(OUT, f"parnet_{name}.io.safetensors")
    save_deterministic(weights, wpath, meta)
    save_deterministic(io, ipath, meta)
    nparams = sum(p.numel() for p in model.parameters())
    print(
        f"{name:14s} {layout:8s} widths={widths} classes={classes} act={activation} "
        f"input={BATCH}x3x{size}x{size} params={nparams} "
        f"weights={os.path.getsize(wpath)} B io={os.path.getsize(ipath)} B "
        f"loss={loss.item():.6f} max|logit|={logits_eval.abs().max().item():.4f}"
    )


def main():
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    for case in CASES:
        make_case(*case)


if __name__ == "__main__":
    main()
