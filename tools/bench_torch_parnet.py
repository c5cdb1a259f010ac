"""PyTorch CPU latency of ParNet (batch 1, eval), unfused, fused (spec section 5) and fused under
TorchScript (trace + freeze), with the reference model of tools/parnet_reference.py.

    python3 tools/bench_torch_parnet.py                       # parnet-s, 224x224, 2 threads
    python3 tools/bench_torch_parnet.py --threads 2 --runs 30 --json torch_parnet.json

The fusion (implemented here, spec 5): fold every BN of rbr_dense / rbr_1x1 into its conv; add the
stride-1 1x1 kernel at the centre of the 3x3, or the stride-2 "avg-pool 2x2 then 1x1" kernel /4
over the bottom-right 2x2 of the 3x3; keep the identity BN, the SE gates, the fusion BNs, the
permutations and the head. A CIFAR final 1x1 conv + BN is folded as well.
"""

import argparse
import copy
import json
import platform
import statistics
import time
import warnings

warnings.filterwarnings("ignore", category=FutureWarning)

import torch
import torch.nn as nn

from parnet_reference import ConvBNAct, ParNet, RepVGGBlock, RepVGGOur, channel_shuffle

VARIANTS = {
    "parnet-s": ("imagenet", (92, 192, 384, 1280)),
    "parnet-m": ("imagenet", (128, 256, 512, 2048)),
    "parnet-l": ("imagenet", (160, 320, 640, 2560)),
    "parnet-xl": ("imagenet", (200, 400, 800, 3200)),
    "parnet-cifar": ("cifar", (128, 256, 512, 1024)),
}


def fold_bn(conv_weight, bn):
    """(W', b') = (t*W, beta - mu*t), t = gamma / sqrt(var + eps) (spec 5 step 1), in float64."""
    t = bn.weight.double() / torch.sqrt(bn.running_var.double() + bn.eps)
    w = conv_weight.double() * t.reshape(-1, 1, 1, 1)
    b = bn.bias.double() - bn.running_mean.double() * t
    return w, b


class FusedBlock(nn.Module):
    """Deploy form of RepVGGBlock: one 3x3 conv with bias + (gated identity BN | x2 gate)."""

    def __init__(self, block: RepVGGBlock):
        super().__init__()
        dense = block.rbr_dense
        stride = dense.conv.stride[0]
        w, b = fold_bn(dense.conv.weight, dense.bn)
        if stride == 1:
            one = block.rbr_1x1
            w1, b1 = fold_bn(one.conv.weight, one.bn)
            w[:, :, 1:2, 1:2] += w1
        else:
            one = block.rbr_1x1[1]
            w1, b1 = fold_bn(one.conv.weight, one.bn)
            w[:, :, 1:3, 1:3] += w1.expand(-1, -1, 2, 2) / 4.0
        b = b + b1
        self.reparam = nn.Conv2d(
            dense.conv.in_channels, dense.conv.out_channels, 3, stride, 1,
            groups=dense.conv.groups, bias=True,
        )
        with torch.no_grad():
            self.reparam.weight.copy_(w.float())
            self.reparam.bias.copy_(b.float())
        self.rbr_identity = block.rbr_identity
        self.se = block.se
        self.act = block.act
        self.groups = block.groups
        self.has_identity = block.rbr_identity is not None

    def forward(self, x):
        y = self.reparam(x)
        if self.has_identity:
            i = self.rbr_identity(x)
            y = y + i * self.se.gate(i)
        else:
            y = y * self.se.gate(x)
        y = self.act(y)
        if self.groups > 1:
            y = channel_shuffle(y, self.groups)
        return y


class FusedConvAct(nn.Module):
    def __init__(self, m: ConvBNAct):
        super().__init__()
        w, b = fold_bn(m.conv.weight, m.bn)
        self.conv = nn.Conv2d(m.conv.in_channels, m.conv.out_channels, 1, bias=True)
        with torch.no_grad():
            self.conv.weight.copy_(w.float())
            self.conv.bias.copy_(b.float())
        self.act = m.act

    def forward(self, x):
        return self.act(self.conv(x))


def fuse_model(model):
    """Replaces, in place, every RepVGGOur's block and any ConvBNAct by its deploy form."""
    for module in list(model.modules()):
        if isinstance(module, RepVGGOur) and isinstance(module.block, RepVGGBlock):
            module.block = FusedBlock(module.block)
        for name, child in list(module.named_children()):
            if isinstance(child, ConvBNAct):
                setattr(module, name, FusedConvAct(child))
    return model


def time_forward(fn, x, warmup, runs):
    with torch.no_grad():
        for _ in range(warmup):
            fn(x)
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            fn(x)
            times.append((time.perf_counter() - t0) * 1e3)
    return {
        "median_ms": statistics.median(times),
        "min_ms": min(times),
        "max_ms": max(times),
        "runs": runs,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="parnet-s", choices=sorted(VARIANTS))
    ap.add_argument("--activation", default="silu", choices=["silu", "relu"])
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--json", help="also write the results to this file")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    layout, widths = VARIANTS[args.model]
    classes = 10 if layout == "cifar" else 1000
    model = ParNet(layout, widths, classes, args.activation).eval()
    # Non-trivial BN statistics so that the fusion check means something.
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.weight.copy_(0.5 + torch.rand(c, generator=g))
                m.bias.copy_(torch.rand(c, generator=g) - 0.5)
                m.running_mean.copy_(torch.rand(c, generator=g) - 0.5)
                m.running_var.copy_(0.5 + 1.5 * torch.rand(c, generator=g))
    x = torch.randn(args.batch, 3, args.size, args.size, generator=g)
    fused = fuse_model(copy.deepcopy(model)).eval()
    nparams = sum(p.numel() for p in model.parameters())
    nparams_fused = sum(p.numel() for p in fused.parameters())
    with torch.no_grad():
        ref = model(x)
        out = fused(x)
    diff = (ref - out).abs().max().item()
    scale = ref.abs().max().item()

    print(f"torch {torch.__version__}, python {platform.python_version()}, "
          f"threads {torch.get_num_threads()}, mkldnn available {torch.backends.mkldnn.is_available()}, "
          f"cpu capability {torch.backends.cpu.get_cpu_capability()}")
    print(f"{args.model} ({args.activation}), batch {args.batch} at {args.size}x{args.size}: "
          f"params {nparams} unfused, {nparams_fused} fused; "
          f"fused vs unfused logits max |diff| {diff:.3e} (max |logit| {scale:.3e})")

    results = []
    forms = [("unfused", model), ("fused", fused)]
    try:
        with torch.no_grad():
            traced = torch.jit.freeze(torch.jit.trace(fused, x).eval())
            jit_diff = (traced(x) - ref).abs().max().item()
        print(f"fused + torch.jit.trace + torch.jit.freeze: max |diff| vs unfused {jit_diff:.3e}")
        forms.append(("fused, jit.trace + jit.freeze", traced))
    except Exception as e:  # noqa: BLE001 - report and go on without it
        print(f"torch.jit.trace/freeze failed: {e!r}")

    for name, fn in forms:
        r = time_forward(fn, x, args.warmup, args.runs)
        r["form"] = name
        results.append(r)

    print()
    print(f"| form ({args.model}, batch {args.batch}, {args.size}x{args.size}, {args.threads} threads) "
          "| median ms | min ms | max ms | runs |")
    print("|---|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['form']} | {r['median_ms']:.2f} | {r['min_ms']:.2f} | {r['max_ms']:.2f} | {r['runs']} |")
    best = min(results, key=lambda r: r["median_ms"])
    print(f"\nfastest: {best['form']} ({best['median_ms']:.2f} ms median)")

    if args.json:
        with open(args.json, "w") as f:
            json.dump({
                "torch": torch.__version__,
                "model": args.model,
                "activation": args.activation,
                "batch": args.batch,
                "size": args.size,
                "threads": args.threads,
                "mkldnn": torch.backends.mkldnn.is_available(),
                "params": nparams,
                "params_fused": nparams_fused,
                "fused_max_abs_diff": diff,
                "results": results,
            }, f, indent=2)


if __name__ == "__main__":
    main()
