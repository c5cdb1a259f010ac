"""PyTorch CPU training throughput of ParNet (forward + backward + SGD step), with the reference
model of tools/parnet_reference.py, eager and `torch.compile`d (Inductor), beside parnet-rs's own
`parnet bench train` in the same sitting: the baseline for `parnet train`'s img/s.

    python3 tools/bench_torch_train.py                          # parnet-cifar x0.25/x0.5, batch 64/128
    python3 tools/bench_torch_train.py --widths 0.25 --batches 64 --steps 20 --json out.json
    python3 tools/bench_torch_train.py --runtimes eager compile ours --rounds 3   # same sitting

Per case: train mode, SGD(lr 0.1, momentum 0.9, nesterov, weight_decay 5e-4), cross-entropy on
random inputs (N(0, 1)) and random labels, `--warmup` steps, then `--steps` timed steps; a step is
zero_grad + forward + loss + backward + optimizer.step. images/s = batch / median step time.

Runtimes (`--runtimes`): `eager`; `compile`, the same model through `torch.compile` (Inductor,
default mode; the optimizer step stays eager), compiled once per case before its rounds (the
compile time is printed, not counted); `ours`, `target/release/parnet bench train --json` with the
same model, width, batch, threads, warm-up and steps (build it first with `cargo build --release
--bin parnet`). With `--rounds N` the runtimes are timed in turn N times per case (interleaved, so
drift in the machine's speed spreads evenly, with a second's pause before each); the table gives
the median over rounds of each round's median step, with the range.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
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


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def torch_case(model_name, mult, batch, size, activation, seed, compiled):
    """A step function of one case and the model's widths and parameter count."""
    layout, base, classes = BASE_WIDTHS[model_name]
    widths = tuple(round8(w * mult) for w in base)
    torch.manual_seed(seed)
    model = ParNet(layout=layout, widths=widths, num_classes=classes, activation=activation)
    model.train()
    opt = torch.optim.SGD(
        model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4
    )
    forward = torch.compile(model) if compiled else model
    x = torch.randn(batch, 3, size, size)
    y = torch.randint(0, classes, (batch,))

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(forward(x), y)
        loss.backward()
        opt.step()
        return loss

    return step, widths, sum(p.numel() for p in model.parameters())


def time_steps(step, warmup, steps):
    """Median, min and max step time in ms after `warmup` steps."""
    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3, min(times) * 1e3, max(times) * 1e3


def ours(model_name, mult, batch, size, threads, warmup, steps, activation):
    """Median, min and max step time in ms of `parnet bench train`."""
    cmd = [os.path.join(ROOT, "target", "release", "parnet"), "bench", "train",
           "--model", model_name, "--width-mult", str(mult), "--batch", str(batch),
           "--image-size", str(size), "--threads", str(threads), "--warmup", str(warmup),
           "--steps", str(steps), "--activation", activation, "--json"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    r = json.loads(out)[0]
    return r["step_ms_median"], r["step_ms_min"], r["step_ms_max"]


def bench_case(args, mult, batch):
    steppers = {}
    widths, params = None, None
    for runtime in args.runtimes:
        if runtime in ("eager", "compile"):
            t0 = time.perf_counter()
            step, widths, params = torch_case(args.model, mult, batch, args.size,
                                              args.activation, args.seed, runtime == "compile")
            if runtime == "compile":
                step()  # the first call compiles the forward and its backward
                print(f"  x{mult} batch {batch}: torch.compile took "
                      f"{time.perf_counter() - t0:.0f} s", flush=True)
            steppers[runtime] = step
    rounds = {runtime: [] for runtime in args.runtimes}
    for _ in range(args.rounds):
        for runtime in args.runtimes:
            if args.rounds > 1:
                time.sleep(1.0)
            if runtime == "ours":
                r = ours(args.model, mult, batch, args.size, args.threads, args.warmup,
                         args.steps, args.activation)
            else:
                r = time_steps(steppers[runtime], args.warmup, args.steps)
            rounds[runtime].append(r)
    results = []
    for runtime, rs in rounds.items():
        medians = [r[0] for r in rs]
        med = statistics.median(medians)
        results.append({
            "model": args.model,
            "runtime": runtime,
            "width_mult": mult,
            "widths": list(widths) if widths else None,
            "batch": batch,
            "size": args.size,
            "params": params,
            "step_ms_median": med,
            "step_ms_min": min(r[1] for r in rs),
            "step_ms_max": max(r[2] for r in rs),
            "round_medians_ms": medians,
            "images_per_s": batch / (med / 1e3),
            "steps": args.steps,
            "warmup": args.warmup,
            "rounds": args.rounds,
        })
    return results


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--model", default="parnet-cifar", choices=sorted(BASE_WIDTHS))
    ap.add_argument("--widths", type=float, nargs="+", default=[0.25, 0.5])
    ap.add_argument("--batches", type=int, nargs="+", default=[64, 128])
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--runtimes", nargs="+", default=["eager"],
                    choices=["eager", "compile", "ours"])
    ap.add_argument("--activation", default="silu", choices=["silu", "relu"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, "
          f"mkldnn {torch.backends.mkldnn.is_available()}, "
          f"cpu capability {torch.backends.cpu.get_cpu_capability()}, {platform.processor() or platform.machine()}, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    results = []
    for mult in args.widths:
        for batch in args.batches:
            case = bench_case(args, mult, batch)
            results += case
            for r in case:
                print(f"  x{mult} batch {batch} {r['runtime']}: {r['step_ms_median']:.1f} ms/step, "
                      f"{r['images_per_s']:.1f} img/s", flush=True)

    print()
    print("| model | width | batch | runtime | step ms (median) | min | max | img/s | img/s / eager |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        eager = next((e for e in results if e["runtime"] == "eager" and e["width_mult"] == r["width_mult"]
                      and e["batch"] == r["batch"]), None)
        ratio = f"{r['images_per_s'] / eager['images_per_s']:.2f}x" if eager else ""
        print(f"| {r['model']} | x{r['width_mult']} | {r['batch']} | {r['runtime']} | "
              f"{r['step_ms_median']:.1f} | {r['step_ms_min']:.1f} | {r['step_ms_max']:.1f} | "
              f"{r['images_per_s']:.1f} | {ratio} |")
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
