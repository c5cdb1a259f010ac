"""Same-sitting inference latency: parnet-rs's executor against PyTorch eager (NCHW and
channels_last), torch.compile (Inductor, freezing) and ONNX Runtime (CPU provider), on the same
architecture, batch, input size and thread count.

    tools/setup_venv.sh
    GLIBC_TUNABLES=glibc.malloc.mmap_threshold=4294967296:glibc.malloc.trim_threshold=17179869184 \
      tools/.venv/bin/python tools/compare_runtimes.py --cases parnet-s:1:224 --threads 2

A case is `model:batch:size` (models: parnet-s, parnet-m, parnet-l, parnet-xl, parnet-cifar,
parnet-cifar-x0.25, resnet-50); `--cases` takes several, comma-separated, `--threads` several
thread counts. Every model runs fused (the deploy form; ResNet-50 with its BNs folded by the
runtimes themselves). For each case the runtimes are timed in turn, `--rounds` times over
(interleaved, so drift in the machine's speed spreads evenly, with a second's pause before each so
that the previous runtime's worker threads have stopped spinning); each figure is the median of
`--runs` forwards after `--warmup`, and the table reports the median over rounds with the range.
parnet-rs is timed by its own binary (`target/release/parnet bench latency --json`, built first
with `cargo build --release --bin parnet`), with the same thread count.

ONNX Runtime runs two graphs, each with `intra_op_num_threads` = the thread count, sequential
execution and every graph optimisation: the one `torch.onnx.export` makes of the fused PyTorch
model (opset 17), and the one `parnet export onnx` writes of the same weights (imported with
`parnet import` from the unfused PyTorch model's state dict): the very deploy graph our executor
runs. Before timing, that export's logits are checked against PyTorch's. `--json FILE` writes
every measurement.
"""

import argparse
import copy
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

warnings.filterwarnings("ignore")

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_torch_parnet import VARIANTS, fuse_model  # noqa: E402
from parnet_reference import ParNet  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Our registry names and width multipliers for each case name.
OURS = {
    "parnet-s": ("parnet-s", None),
    "parnet-m": ("parnet-m", None),
    "parnet-l": ("parnet-l", None),
    "parnet-xl": ("parnet-xl", None),
    "parnet-cifar": ("parnet-cifar", None),
    "parnet-cifar-x0.25": ("parnet-cifar", 0.25),
    "resnet-50": ("resnet-50", None),
}


def torch_model(name):
    """The fused PyTorch model of a case, eval mode, random weights, non-trivial BN stats, and
    the state dict of its unfused form."""
    g = torch.Generator().manual_seed(1)
    if name == "resnet-50":
        import torchvision

        model = torchvision.models.resnet50().eval()
    else:
        base = "parnet-cifar" if name.startswith("parnet-cifar") else name
        layout, widths = VARIANTS[base]
        if name == "parnet-cifar-x0.25":
            widths = tuple(max(8, round(w * 0.25 / 8) * 8) for w in widths)
        classes = 10 if layout == "cifar" else 1000
        model = ParNet(layout, widths, classes, "silu").eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.weight.copy_(0.5 + torch.rand(c, generator=g))
                m.bias.copy_(torch.rand(c, generator=g) - 0.5)
                m.running_mean.copy_(torch.rand(c, generator=g) - 0.5)
                m.running_var.copy_(0.5 + 1.5 * torch.rand(c, generator=g))
    state = copy.deepcopy(model.state_dict())
    if name != "resnet-50":
        model = fuse_model(copy.deepcopy(model)).eval()
    return model, state


def parnet_export(name, state, batch, size, tmp):
    """`parnet import` of `state`, then `parnet export onnx` at a fixed batch: the file's path."""
    model, width = OURS[name]
    binary = os.path.join(ROOT, "target", "release", "parnet")
    checkpoint = os.path.join(tmp, f"{name}.pth")
    weights = os.path.join(tmp, f"{name}.safetensors")
    onnx_path = os.path.join(tmp, f"{name}-{batch}-{size}.parnet.onnx")
    torch.save(state, checkpoint)
    width_args = ["--width-mult", str(width)] if width is not None else []
    subprocess.run([binary, "import", "--checkpoint", checkpoint, "--model", model, *width_args,
                    "--output", weights], check=True, capture_output=True)
    subprocess.run([binary, "export", "onnx", "--weights", weights, "--batch", str(batch),
                    "--image-size", str(size), "--output", onnx_path], check=True,
                   capture_output=True)
    return onnx_path


def time_fn(fn, warmup, runs):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def no_grad(fn):
    """`fn` run under `torch.no_grad()` (every timed PyTorch call is inference only)."""
    def run():
        with torch.no_grad():
            return fn()
    return run


def torch_forms(model, x, threads):
    """name -> callable, for every PyTorch form that builds."""
    torch.set_num_threads(threads)
    forms = {"torch eager NCHW": no_grad(lambda: model(x))}
    cl = copy.deepcopy(model).to(memory_format=torch.channels_last)
    xcl = x.contiguous(memory_format=torch.channels_last)
    forms["torch eager channels_last"] = no_grad(lambda: cl(xcl))
    try:
        import torch._dynamo as dynamo
        import torch._inductor.config as inductor_config

        # A fresh compile per case: dynamo's cache is per code object (every ParNet shares
        # one `forward`) and past its recompile limit it silently runs eager.
        dynamo.reset()
        inductor_config.freezing = True
        compiled = torch.compile(copy.deepcopy(model))
        with torch.no_grad():
            compiled(x)  # compile now, outside the timing
        forms["torch.compile (inductor + freezing)"] = no_grad(lambda: compiled(x))
    except Exception as e:  # noqa: BLE001 - report and go on without it
        print(f"  torch.compile failed: {e!r}", file=sys.stderr)
    return forms


def ort_session(model, x, threads, path):
    """ONNX Runtime on `path`, exported from `model` first unless `model` is None."""
    import onnxruntime as ort

    if model is not None:
        torch.onnx.export(model, (x,), path, opset_version=17, input_names=["input"],
                          output_names=["logits"], dynamo=False)
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    feed = {sess.get_inputs()[0].name: x.numpy()}
    return lambda: sess.run(None, feed)


def ours(name, batch, size, threads, warmup, runs):
    model, width = OURS[name]
    cmd = [os.path.join(ROOT, "target", "release", "parnet"), "bench", "latency",
           "--model", model, "--batch", str(batch), "--image-size", str(size),
           "--threads", str(threads), "--warmup", str(warmup), "--runs", str(runs),
           "--json", "--no-peak"]
    if width is not None:
        cmd += ["--width-mult", str(width)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out)["median_ms"]


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default="parnet-s:1:224")
    ap.add_argument("--threads", default="2")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--skip", default="", help="comma-separated runtime names to leave out")
    ap.add_argument("--json", help="also write every measurement to this file")
    args = ap.parse_args()

    import onnxruntime

    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; CPU {cpu_model()}; "
          f"torch {torch.__version__} (capability {torch.backends.cpu.get_cpu_capability()}), "
          f"onnxruntime {onnxruntime.__version__}; python {platform.python_version()}")
    skip = set(filter(None, args.skip.split(",")))
    records = []
    tmp = tempfile.mkdtemp()
    for case in args.cases.split(","):
        name, batch, size = case.split(":")
        batch, size = int(batch), int(size)
        model, state = torch_model(name)
        x = torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(2))
        ours_onnx = parnet_export(name, state, batch, size, tmp)
        with torch.no_grad():
            want = model(x).numpy()
        got = ort_session(None, x, 1, ours_onnx)()[0]
        error = float(abs(got - want).max() / abs(want).max())
        print(f"{name}: ONNX Runtime on parnet's export vs PyTorch, relative error {error:.2e}")
        if error > 1e-4:
            sys.exit(f"{name}: parnet's ONNX export disagrees with PyTorch ({error:.2e})")
        for threads in map(int, args.threads.split(",")):
            runtimes = {"parnet-rs executor": lambda: ours(name, batch, size, threads,
                                                           args.warmup, args.runs)}
            forms = torch_forms(model, x, threads)
            onnx_path = os.path.join(tmp, f"{name}-{batch}-{size}.onnx")
            try:
                run_ort = ort_session(model, x, threads, onnx_path)
                forms["onnxruntime (CPU, all optimisations)"] = run_ort
            except Exception as e:  # noqa: BLE001 - report and go on without it
                print(f"  onnxruntime failed: {e!r}", file=sys.stderr)
            forms["onnxruntime on parnet's export"] = ort_session(None, x, threads, ours_onnx)
            for k, fn in forms.items():
                runtimes[k] = (lambda fn: lambda: time_fn(fn, args.warmup, args.runs))(fn)
            runtimes = {k: v for k, v in runtimes.items() if k not in skip}
            samples = {k: [] for k in runtimes}
            for _ in range(args.rounds):
                for k, measure in runtimes.items():
                    # Let the previous runtime's worker threads stop spinning first.
                    time.sleep(1.0)
                    samples[k].append(measure())
            ref = statistics.median(samples["parnet-rs executor"]) if "parnet-rs executor" in samples else None
            print(f"\n{name}, batch {batch}, {size}x{size}, {threads} threads "
                  f"(median of {args.runs} runs, median over {args.rounds} rounds [min-max])")
            print("| runtime | ms | range | parnet-rs / runtime |")
            print("|---|---:|---:|---:|")
            for k, v in samples.items():
                med = statistics.median(v)
                ratio = f"{ref / med:.2f}x" if ref else ""
                print(f"| {k} | {med:.2f} | {min(v):.2f}-{max(v):.2f} | {ratio} |")
                records.append({"model": name, "batch": batch, "size": size, "threads": threads,
                                "runtime": k, "ms": v})
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"cpu": cpu_model(), "torch": torch.__version__,
                       "onnxruntime": onnxruntime.__version__, "records": records}, f, indent=2)


if __name__ == "__main__":
    main()
