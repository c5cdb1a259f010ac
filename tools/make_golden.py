#!/usr/bin/env python3
"""Generate the PyTorch golden fixtures read by parnet-core/tests/pytorch_golden.rs.

Writes three safetensors files into parnet-core/tests/fixtures/ (or --out DIR):

conv2d.safetensors
    One group of tensors per case, named `<case>.<tensor>`:
      x [N,Cin,H,W], w [Cout,Cin/groups,KH,KW], b [Cout] (only if the case has a bias),
      y [N,Cout,Ho,Wo] forward output, gy [N,Cout,Ho,Wo] random upstream gradient,
      gx, gw, gb (gb only with a bias): gradients of sum(y * gy).
    File metadata: "cases" = comma-separated case names, and per case
      "<case>" = "stride=S,padding=P,groups=G,bias=0|1" (dilation is always 1).

batch_norm.safetensors  (BatchNorm2d semantics, eps 1e-5, momentum 0.1)
    train.*: x, gamma, beta, running_mean_before, running_var_before, running_mean_after,
             running_var_after (after one training forward; running_var uses the unbiased batch
             variance), mean, var_unbiased (the batch statistics), y, gy, gx, ggamma, gbeta.
    eval.*:  x, gamma, beta, running_mean, running_var (non-trivial), y, gy, gx, ggamma, gbeta.
    File metadata: "eps", "momentum".

cross_entropy.safetensors  (loss = mean over the batch, torch.nn.functional.cross_entropy)
    <case>.logits [N,K] float32, <case>.targets [N] **int64** class indices,
    <case>.loss [1] float32, <case>.glogits [N,K] float32 (d loss / d logits, upstream grad 1).
    File metadata: "cases", and per case "<case>" = "label_smoothing=S".
    With smoothing s, torch computes (1-s)*nll + s*mean_k(-log p_k), which is exactly timm's
    LabelSmoothingCrossEntropy (the script asserts this).

All tensors are float32 except the cross-entropy targets (int64). Inputs are drawn as float32
with fixed seeds; the reference outputs and gradients are then computed by PyTorch in float64
from those exact float32 values and rounded to float32 once, so the fixtures carry no float32
accumulation error of their own. The script also runs the same computation in float32 and prints
the largest float32-vs-float64 difference per file, as a guide to the tolerances the Rust test
can use. Re-running the script gives byte-identical files.

Usage:
    python3 tools/make_golden.py            # writes parnet-core/tests/fixtures/*.safetensors
    python3 tools/make_golden.py --out DIR
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import struct
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO_ROOT / "parnet-core" / "tests" / "fixtures"

BN_EPS = 1e-5
BN_MOMENTUM = 0.1

# name, N, Cin, Cout, H, W, kernel, stride, padding, groups, bias
CONV_CASES = [
    ("k3s1g1", 2, 4, 6, 7, 7, 3, 1, 1, 1, False),
    ("k3s2g1", 2, 4, 8, 9, 8, 3, 2, 1, 1, True),  # odd H, non-square
    ("k3s1g2", 2, 6, 8, 6, 6, 3, 1, 1, 2, True),
    ("k3s2g2", 2, 8, 8, 7, 7, 3, 2, 1, 2, False),  # odd size, stride 2, groups 2
    ("k1s1g1", 2, 8, 4, 6, 6, 1, 1, 0, 1, True),
]

# name, N, K, label_smoothing, logit scale
CE_CASES = [
    ("ls0", 6, 10, 0.0, 2.0),
    ("ls01", 6, 10, 0.1, 2.0),
    ("ls01_wide", 5, 100, 0.1, 20.0),  # large logits: checks the log-sum-exp is stable
]


def f32(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to(torch.float32).contiguous()


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a.double() - b.double()).abs().max().item()


def conv_case(case, gen: torch.Generator):
    """Returns (tensors, metadata value, max |f32 - f64| over y and grads)."""
    name, n, cin, cout, h, w, k, stride, padding, groups, bias = case
    x = torch.randn(n, cin, h, w, generator=gen)
    fan_in = (cin // groups) * k * k
    wt = torch.randn(cout, cin // groups, k, k, generator=gen) / fan_in**0.5
    b = torch.randn(cout, generator=gen) * 0.5 if bias else None
    ho = (h + 2 * padding - k) // stride + 1
    wo = (w + 2 * padding - k) // stride + 1
    gy = torch.randn(n, cout, ho, wo, generator=gen)

    def run(dtype):
        xs = x.to(dtype).requires_grad_(True)
        ws = wt.to(dtype).requires_grad_(True)
        bs = b.to(dtype).requires_grad_(True) if bias else None
        y = F.conv2d(xs, ws, bs, stride=stride, padding=padding, groups=groups)
        y.backward(gy.to(dtype))
        out = {"y": y, "gx": xs.grad, "gw": ws.grad}
        if bias:
            out["gb"] = bs.grad
        return out

    ref, fast = run(torch.float64), run(torch.float32)
    diff = max(max_diff(ref[key], fast[key]) for key in ref)

    tensors = {f"{name}.x": x, f"{name}.w": wt, f"{name}.gy": gy}
    if bias:
        tensors[f"{name}.b"] = b
    tensors.update({f"{name}.{key}": f32(v) for key, v in ref.items()})
    meta = f"stride={stride},padding={padding},groups={groups},bias={int(bias)}"
    return tensors, meta, diff


def make_conv2d(out: Path) -> dict:
    gen = torch.Generator().manual_seed(1)
    tensors, meta, worst = {}, {"cases": ",".join(c[0] for c in CONV_CASES)}, 0.0
    for case in CONV_CASES:
        t, m, d = conv_case(case, gen)
        tensors.update(t)
        meta[case[0]] = m
        worst = max(worst, d)
    return save(out / "conv2d.safetensors", tensors, meta, worst)


def batch_norm_train(gen: torch.Generator) -> tuple[dict, float]:
    n, c, h, w = 3, 5, 4, 4
    # Per-channel offsets and scales so mean and variance are far from 0 and 1.
    offset = torch.randn(1, c, 1, 1, generator=gen) * 2.0
    scale = torch.rand(1, c, 1, 1, generator=gen) * 2.0 + 0.5
    x = f32(torch.randn(n, c, h, w, generator=gen) * scale + offset)
    gamma = torch.rand(c, generator=gen) + 0.5
    beta = torch.randn(c, generator=gen) * 0.5
    rm0 = torch.randn(c, generator=gen) * 0.3
    rv0 = torch.rand(c, generator=gen) + 0.5
    gy = torch.randn(n, c, h, w, generator=gen)

    def run(dtype):
        xs = x.to(dtype).requires_grad_(True)
        gs = gamma.to(dtype).requires_grad_(True)
        bs = beta.to(dtype).requires_grad_(True)
        rm, rv = rm0.to(dtype).clone(), rv0.to(dtype).clone()
        y = F.batch_norm(xs, rm, rv, gs, bs, training=True, momentum=BN_MOMENTUM, eps=BN_EPS)
        y.backward(gy.to(dtype))
        xd = xs.detach()
        mean = xd.mean(dim=(0, 2, 3))
        var_unbiased = xd.var(dim=(0, 2, 3), unbiased=True)
        return {
            "running_mean_after": rm,
            "running_var_after": rv,
            "mean": mean,
            "var_unbiased": var_unbiased,
            "y": y,
            "gx": xs.grad,
            "ggamma": gs.grad,
            "gbeta": bs.grad,
        }

    ref, fast = run(torch.float64), run(torch.float32)
    # The documented running-stat update, checked against what torch did in place.
    expect_rm = (1 - BN_MOMENTUM) * rm0.double() + BN_MOMENTUM * ref["mean"]
    expect_rv = (1 - BN_MOMENTUM) * rv0.double() + BN_MOMENTUM * ref["var_unbiased"]
    assert max_diff(expect_rm, ref["running_mean_after"]) < 1e-12
    assert max_diff(expect_rv, ref["running_var_after"]) < 1e-12
    diff = max(max_diff(ref[key], fast[key]) for key in ref)

    tensors = {
        "train.x": x,
        "train.gamma": gamma,
        "train.beta": beta,
        "train.running_mean_before": rm0,
        "train.running_var_before": rv0,
        "train.gy": gy,
    }
    tensors.update({f"train.{key}": f32(v) for key, v in ref.items()})
    return tensors, diff


def batch_norm_eval(gen: torch.Generator) -> tuple[dict, float]:
    n, c, h, w = 2, 4, 5, 3
    x = torch.randn(n, c, h, w, generator=gen) * 1.5 + 0.3
    gamma = torch.rand(c, generator=gen) + 0.5
    beta = torch.randn(c, generator=gen) * 0.5
    running_mean = torch.randn(c, generator=gen) * 0.5
    running_var = torch.rand(c, generator=gen) * 2.0 + 0.2
    gy = torch.randn(n, c, h, w, generator=gen)

    def run(dtype):
        xs = x.to(dtype).requires_grad_(True)
        gs = gamma.to(dtype).requires_grad_(True)
        bs = beta.to(dtype).requires_grad_(True)
        rm, rv = running_mean.to(dtype).clone(), running_var.to(dtype).clone()
        y = F.batch_norm(xs, rm, rv, gs, bs, training=False, momentum=BN_MOMENTUM, eps=BN_EPS)
        y.backward(gy.to(dtype))
        assert torch.equal(rm, running_mean.to(dtype)), "eval mode must not touch running stats"
        return {"y": y, "gx": xs.grad, "ggamma": gs.grad, "gbeta": bs.grad}

    ref, fast = run(torch.float64), run(torch.float32)
    diff = max(max_diff(ref[key], fast[key]) for key in ref)
    tensors = {
        "eval.x": x,
        "eval.gamma": gamma,
        "eval.beta": beta,
        "eval.running_mean": running_mean,
        "eval.running_var": running_var,
        "eval.gy": gy,
    }
    tensors.update({f"eval.{key}": f32(v) for key, v in ref.items()})
    return tensors, diff


def make_batch_norm(out: Path) -> dict:
    gen = torch.Generator().manual_seed(2)
    train, d_train = batch_norm_train(gen)
    evalm, d_eval = batch_norm_eval(gen)
    meta = {"eps": repr(BN_EPS), "momentum": repr(BN_MOMENTUM)}
    return save(out / "batch_norm.safetensors", {**train, **evalm}, meta, max(d_train, d_eval))


def make_cross_entropy(out: Path) -> dict:
    gen = torch.Generator().manual_seed(3)
    tensors, meta, worst = {}, {"cases": ",".join(c[0] for c in CE_CASES)}, 0.0
    for name, n, k, smoothing, scale in CE_CASES:
        logits = torch.randn(n, k, generator=gen) * scale
        targets = torch.randint(0, k, (n,), generator=gen, dtype=torch.int64)

        def run(dtype):
            ls = logits.to(dtype).requires_grad_(True)
            loss = F.cross_entropy(ls, targets, label_smoothing=smoothing, reduction="mean")
            loss.backward()
            return {"loss": loss.reshape(1), "glogits": ls.grad}

        ref, fast = run(torch.float64), run(torch.float32)
        # timm LabelSmoothingCrossEntropy, written out: the formula the spec names.
        logp = F.log_softmax(logits.double(), dim=-1)
        nll = -logp.gather(1, targets[:, None]).squeeze(1)
        timm = ((1 - smoothing) * nll + smoothing * (-logp.mean(dim=-1))).mean()
        assert abs(timm.item() - ref["loss"].item()) < 1e-12
        worst = max(worst, *(max_diff(ref[key], fast[key]) for key in ref))

        tensors[f"{name}.logits"] = logits
        tensors[f"{name}.targets"] = targets
        tensors.update({f"{name}.{key}": f32(v) for key, v in ref.items()})
        meta[name] = f"label_smoothing={smoothing}"
    return save(out / "cross_entropy.safetensors", tensors, meta, worst)


def canonical_header(data: bytes) -> bytes:
    """Rewrites the JSON header with sorted keys (safetensors writes `__metadata__` in hash-map
    order, which changes between runs), so re-running gives byte-identical files. The tensor data
    and offsets are untouched; the header is space-padded to a multiple of 8 bytes as usual."""
    (header_len,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + header_len])
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data[8 + header_len :]


def save(path: Path, tensors: dict, meta: dict, f32_vs_f64: float) -> dict:
    tensors = {key: v.detach().contiguous() for key, v in sorted(tensors.items())}
    for key, v in tensors.items():
        expected = torch.int64 if key.endswith(".targets") else torch.float32
        assert v.dtype == expected, f"{key}: {v.dtype}"
    save_file(tensors, str(path), metadata=meta)
    data = canonical_header(path.read_bytes())
    path.write_bytes(data)
    return {
        "file": path,
        "tensors": len(tensors),
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest()[:16],
        "f32_vs_f64": f32_vs_f64,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    torch.manual_seed(0)  # nothing should draw from the global RNG; fixed anyway
    torch.set_num_threads(1)  # single-threaded float32 comparison runs, for repeatability

    print(f"torch {torch.__version__}; writing to {os.path.relpath(args.out)}")
    summaries = [make_conv2d(args.out), make_batch_norm(args.out), make_cross_entropy(args.out)]
    for s in summaries:
        print(
            f"  {s['file'].name:28} {s['tensors']:3} tensors {s['bytes']:7} bytes  "
            f"sha256 {s['sha256']}  max|torch f32 - f64| = {s['f32_vs_f64']:.2e}"
        )
    print(f"  total {sum(s['bytes'] for s in summaries)} bytes")


if __name__ == "__main__":
    main()
