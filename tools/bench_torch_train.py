"""PyTorch CPU training throughput of ParNet (forward + backward + SGD step), with the reference
model of tools/parnet_reference.py: the baseline for `parnet train`'s img/s.

    python3 tools/bench_torch_train.py                          # parnet-cifar x0.25/x0.5, batch 64/128
    python3 tools/bench_torch_train.py --widths 0.25 --batches 64 --steps 20 --json out.json

Per case: train mode, SGD(lr 0.1, momentum 0.9, nesterov, weight_decay 5e-4), cross-entropy on
random inputs (N(0, 1)) and random labels, `--warmup` steps, then `--steps` timed steps; a step is
zero_grad + forward + loss + backward + optimizer.step. images/s = batch / median step time.
"""

import argparse
import json
import platform
import statistics
import time

import torch
import torch.nn.functional as F

from parnet_reference import ParNet

BASE_WIDTHS = {
    "parnet-cifar": ("cifar", (128, 256, 512, 1024), 10),
}


def round8(x):
    """Width times multiplier, rounded to a multiple of 8 (at least 8)."""
    return max(8, int(round(x / 8.0)) * 8)


def bench_case(model_name, mult, batch, size, warmup, steps, activation, seed):
    layout, base, classes = BASE_WIDTHS[model_name]
    widths = tuple(round8(w * mult) for w in base)
    torch.manual_seed(seed)
    model = ParNet(layout=layout, widths=widths, num_classes=classes, activation=activation)
    model.train()
    opt = torch.optim.SGD(
        model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4
    )
    x = torch.randn(batch, 3, size, size)
    y = torch.randint(0, classes, (batch,))

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    return {
        "model": model_name,
        "width_mult": mult,
        "widths": list(widths),
        "batch": batch,
        "size": size,
        "params": sum(p.numel() for p in model.parameters()),
        "step_ms_median": med * 1e3,
        "step_ms_min": min(times) * 1e3,
        "step_ms_max": max(times) * 1e3,
        "images_per_s": batch / med,
        "steps": steps,
        "warmup": warmup,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--model", default="parnet-cifar", choices=sorted(BASE_WIDTHS))
    ap.add_argument("--widths", type=float, nargs="+", default=[0.25, 0.5])
    ap.add_argument("--batches", type=int, nargs="+", default=[64, 128])
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--activation", default="silu", choices=["silu", "relu"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, "
          f"mkldnn {torch.backends.mkldnn.is_available()}, "
          f"cpu capability {torch.backends.cpu.get_cpu_capability()}, {platform.processor() or platform.machine()}")
    results = []
    for mult in args.widths:
        for batch in args.batches:
            r = bench_case(args.model, mult, batch, args.size, args.warmup, args.steps,
                           args.activation, args.seed)
            results.append(r)
            print(f"  x{mult} batch {batch}: {r['step_ms_median']:.1f} ms/step, "
                  f"{r['images_per_s']:.1f} img/s", flush=True)

    print()
    print(f"| model | width | widths | batch | step ms (median) | min | max | img/s |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['model']} | x{r['width_mult']} | {'/'.join(map(str, r['widths']))} | "
              f"{r['batch']} | {r['step_ms_median']:.1f} | {r['step_ms_min']:.1f} | "
              f"{r['step_ms_max']:.1f} | {r['images_per_s']:.1f} |")
    if args.json:
        out = {
            "torch": torch.__version__,
            "threads": args.threads,
            "mkldnn": torch.backends.mkldnn.is_available(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "results": results,
        }
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
