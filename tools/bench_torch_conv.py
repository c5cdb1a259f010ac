#!/usr/bin/env python3
"""Time PyTorch's CPU conv2d (forward, and backward w.r.t. input + weight) on ParNet shapes.

This gives the baseline that parnet-rs's own conv2d is compared with.

For each shape (NCHW, stride, groups; padding 1 for 3x3, 0 for 1x1, no bias):
- forward: `F.conv2d(x, w)` under `torch.no_grad()`;
- backward: only `y.backward(gy)` (the forward that builds the graph is done outside the timer),
  with `requires_grad` on x and w, so it computes both grad_input and grad_weight.

Each measurement is the median of `--repeats` timed runs after `--warmup` untimed runs.
FLOPs: forward = 2*N*Cout*Ho*Wo*(Cin/groups)*KH*KW; backward = twice the forward.

Usage:
    python3 tools/bench_torch_conv.py                      # 2 threads, then 1 thread
    python3 tools/bench_torch_conv.py --threads 2 --json bench_torch_conv.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch
import torch.nn.functional as F

# (name, N, Cin, Cout, H, W, kernel, stride, groups)
SHAPES = [
    ("cifar b64 3x3 s1 32->32 @32", 64, 32, 32, 32, 32, 3, 1, 1),
    ("cifar b64 3x3 s1 64->64 @32", 64, 64, 64, 32, 32, 3, 1, 1),
    ("cifar b64 3x3 s1 128->128 @32", 64, 128, 128, 32, 32, 3, 1, 1),
    ("cifar b64 3x3 s2 128->256 @32", 64, 128, 256, 32, 32, 3, 2, 1),
    ("cifar b64 1x1 s1 128->128 @32", 64, 128, 128, 32, 32, 1, 1, 1),
    ("cifar b64 3x3 s2 g2 512->512 @16", 64, 512, 512, 16, 16, 3, 2, 2),
    ("imagenet b1 3x3 s1 128->128 @56", 1, 128, 128, 56, 56, 3, 1, 1),
    ("imagenet b1 3x3 s1 256->256 @28", 1, 256, 256, 28, 28, 3, 1, 1),
    ("imagenet b1 3x3 s1 512->512 @14", 1, 512, 512, 14, 14, 3, 1, 1),
    ("imagenet b1 3x3 s2 128->256 @56", 1, 128, 256, 56, 56, 3, 2, 1),
]


def out_size(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


def forward_flops(n, cin, cout, h, w, k, stride, groups) -> float:
    pad = k // 2
    ho, wo = out_size(h, k, stride, pad), out_size(w, k, stride, pad)
    return 2.0 * n * cout * ho * wo * (cin // groups) * k * k


def median_ms(fn, warmup: int, repeats: int, min_time_s: float) -> float:
    """Median wall time of `fn()` in ms; repeats more (up to 5x) if the runs are very short."""
    for _ in range(warmup):
        fn()
    times = []
    start = time.perf_counter()
    while len(times) < repeats or (
        time.perf_counter() - start < min_time_s and len(times) < 5 * repeats
    ):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def bench_shape(shape, warmup: int, repeats: int, min_time_s: float) -> dict:
    name, n, cin, cout, h, w, k, stride, groups = shape
    pad = k // 2
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(n, cin, h, w, generator=gen)
    wt = torch.randn(cout, cin // groups, k, k, generator=gen) * 0.05

    def fwd():
        with torch.no_grad():
            F.conv2d(x, wt, None, stride, pad, 1, groups)

    fwd_ms = median_ms(fwd, warmup, repeats, min_time_s)

    xg = x.clone().requires_grad_(True)
    wg = wt.clone().requires_grad_(True)
    ho, wo = out_size(h, k, stride, pad), out_size(w, k, stride, pad)
    gy = torch.randn(n, cout, ho, wo, generator=gen)

    # Time only y.backward(gy): build the graph outside the timer for every run.
    for _ in range(warmup):
        F.conv2d(xg, wg, None, stride, pad, 1, groups).backward(gy)
    bwd_times = []
    start = time.perf_counter()
    while len(bwd_times) < repeats or (
        time.perf_counter() - start < min_time_s and len(bwd_times) < 5 * repeats
    ):
        xg.grad = None
        wg.grad = None
        y = F.conv2d(xg, wg, None, stride, pad, 1, groups)
        t0 = time.perf_counter()
        y.backward(gy)
        bwd_times.append(time.perf_counter() - t0)
    bwd_ms = statistics.median(bwd_times) * 1e3

    flops = forward_flops(n, cin, cout, h, w, k, stride, groups)
    return {
        "name": name,
        "n": n,
        "cin": cin,
        "cout": cout,
        "h": h,
        "w": w,
        "kernel": k,
        "stride": stride,
        "padding": pad,
        "groups": groups,
        "forward_ms": fwd_ms,
        "backward_ms": bwd_ms,
        "forward_gflops": flops / (fwd_ms * 1e-3) / 1e9,
        "backward_gflops": 2 * flops / (bwd_ms * 1e-3) / 1e9,
        "forward_flop": flops,
        "backward_flop": 2 * flops,
    }


def backend_info() -> dict:
    config = torch.__config__.show()
    keep = ("PyTorch built with", "CPU capability", "MKL", "oneDNN", "OpenMP", "LAPACK", "BLAS")
    summary = [
        line.strip()
        for line in config.splitlines()
        if any(key in line for key in keep) and "CXX_FLAGS" not in line
    ]
    return {
        "torch_version": torch.__version__,
        "mkldnn_available": torch.backends.mkldnn.is_available(),
        "mkl_available": torch.backends.mkl.is_available(),
        "openmp_available": torch.backends.openmp.is_available(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "config_summary": summary,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "processor": platform.processor(),
    }


def print_table(threads: int, rows: list[dict]) -> None:
    print(f"\n### torch conv2d, {threads} thread(s)\n")
    print("| shape | fwd ms | fwd GFLOP/s | bwd ms | bwd GFLOP/s |")
    print("|---|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['name']} | {r['forward_ms']:.3f} | {r['forward_gflops']:.1f} "
            f"| {r['backward_ms']:.3f} | {r['backward_gflops']:.1f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--threads",
        type=int,
        nargs="+",
        default=[2, 1],
        help="thread counts to run, in order (default: 2 1)",
    )
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument(
        "--min-time",
        type=float,
        default=0.5,
        help="keep repeating (up to 5x --repeats) until this many seconds per measurement",
    )
    parser.add_argument("--only", default=None, help="only shapes whose name contains this")
    parser.add_argument("--json", default=None, help="write results to this JSON file")
    args = parser.parse_args()

    info = backend_info()
    print(f"torch {info['torch_version']} (python {info['python']}, {info['machine']})")
    print(
        f"mkldnn available: {info['mkldnn_available']}, mkl: {info['mkl_available']}, "
        f"openmp: {info['openmp_available']}, cpu capability: {info['cpu_capability']}"
    )
    for line in info["config_summary"]:
        print(f"  {line}")

    shapes = [s for s in SHAPES if args.only is None or args.only in s[0]]
    results = {"backend": info, "runs": []}
    for threads in args.threads:
        torch.set_num_threads(threads)
        rows = [bench_shape(s, args.warmup, args.repeats, args.min_time) for s in shapes]
        print_table(threads, rows)
        results["runs"].append({"threads": threads, "results": rows})

    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
