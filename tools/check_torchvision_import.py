"""`parnet import` of torchvision's own ResNets, end to end.

Our ResNet-18/34/50 use torchvision's parameter names, so a torchvision checkpoint must import
and give torchvision's logits. Their weights are too large to commit as test fixtures, so this
check runs where the venv with torch is (tools/setup_venv.sh), not in .ci/run: for each network
it saves a random-weight model (non-trivial batch-norm statistics) with torch.save, runs
`parnet import` then `parnet infer` on a random batch, and compares the logits with the
float64 ones of torchvision (and `parnet fuse` + `parnet infer` for the deploy form).

Run: tools/.venv/bin/python tools/check_torchvision_import.py [path/to/parnet]
(default: target/release/parnet, else target/debug/parnet). Exits non-zero past 1e-5 relative.
"""

import copy
import os
import subprocess
import sys
import tempfile

import torch
import torchvision
from safetensors.torch import load_file, save_file

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..")
CASES = [("resnet-18", torchvision.models.resnet18), ("resnet-34", torchvision.models.resnet34),
         ("resnet-50", torchvision.models.resnet50)]


def parnet_binary():
    if len(sys.argv) > 1:
        return sys.argv[1]
    for profile in ("release", "debug"):
        path = os.path.join(ROOT, "target", profile, "parnet")
        if os.path.exists(path):
            return path
    sys.exit("no parnet binary: cargo build --release --bin parnet")


def randomize(model, gen):
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.weight.shape, generator=gen) + 0.5)
                m.bias.copy_(0.2 * torch.randn(m.bias.shape, generator=gen))
                m.running_mean.copy_(0.2 * torch.randn(m.running_mean.shape, generator=gen))
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)


def run(*args):
    done = subprocess.run(args, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(args)} failed:\n{done.stderr}")


def main():
    parnet = parnet_binary()
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for seed, (name, make) in enumerate(CASES):
            torch.manual_seed(seed)
            model = make(num_classes=10)
            gen = torch.Generator().manual_seed(100 + seed)
            randomize(model, gen)
            x = torch.randn(2, 3, 64, 64, generator=gen)
            with torch.no_grad():
                want = copy.deepcopy(model).double().eval()(x.double())
            checkpoint = os.path.join(tmp, f"{name}.pth")
            torch.save({"state_dict": model.state_dict(), "epoch": 1}, checkpoint)
            inputs = os.path.join(tmp, "x.safetensors")
            save_file({"input": x.contiguous()}, inputs)
            weights = os.path.join(tmp, f"{name}.safetensors")
            fused = os.path.join(tmp, f"{name}.fused.safetensors")
            run(parnet, "import", "--checkpoint", checkpoint, "--model", name, "--classes", "10",
                "--output", weights)
            run(parnet, "fuse", "--weights", weights, "--output", fused)
            for form, path in (("train", weights), ("fused", fused)):
                out = os.path.join(tmp, "y.safetensors")
                run(parnet, "infer", "--weights", path, "--input", inputs, "--output", out)
                got = load_file(out)["logits"].double()
                error = ((got - want).abs().max() / want.abs().max()).item()
                worst = max(worst, error)
                print(f"{name} {form}: relative error {error:.2e}")
    print(f"worst {worst:.2e}")
    sys.exit(0 if worst < 1e-5 else 1)


if __name__ == "__main__":
    main()
