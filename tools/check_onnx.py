#!/usr/bin/env python3
"""Checks parnet-rs's ONNX exports with the ONNX project's own tools: `onnx.checker` (full check,
with shape inference) and ONNX Runtime's CPU provider, against our logits.

    tools/check_onnx.py DIR [--rtol 1e-5]

DIR holds `<case>.onnx` and `<case>.io.safetensors` (tensors `input` and `logits`), as the
ignored test `write_cases_for_onnx_runtime` of parnet-core/tests/onnx_export.rs writes them:

    PARNET_ONNX_CASES=target/onnx-cases cargo test -p parnet-core --test onnx_export -- --ignored
    tools/check_onnx.py target/onnx-cases

Run it with a Python that has onnx, onnxruntime and numpy; without them it makes its own venv
(tools/.venv-onnx, those three packages from PyPI only) and re-runs itself there.
"""
import json
import os
import struct
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENV = Path(os.environ.get("PARNET_ONNX_VENV", HERE / ".venv-onnx"))
PACKAGES = ["numpy", "onnx", "onnxruntime"]


def ensure_packages():
    try:
        import numpy, onnx, onnxruntime  # noqa: F401
        return
    except ImportError:
        pass
    python = VENV / "bin" / "python"
    if Path(sys.executable).resolve() == python.resolve():
        sys.exit("check_onnx.py: the venv lacks onnx/onnxruntime/numpy after installing them")
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", *PACKAGES], check=True)
    os.execv(str(python), [str(python), *sys.argv])


def read_safetensors(path):
    import numpy as np

    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        if meta["dtype"] != "F32":
            raise ValueError(f"{path}: {name} is {meta['dtype']}, expected F32")
        start, end = meta["data_offsets"]
        out[name] = np.frombuffer(data[8 + n + start : 8 + n + end], dtype="<f4").reshape(meta["shape"])
    return out


def main():
    ensure_packages()
    import numpy as np
    import onnx
    import onnxruntime as ort

    args = sys.argv[1:]
    rtol = 1e-5
    if "--rtol" in args:
        i = args.index("--rtol")
        rtol = float(args[i + 1])
        del args[i : i + 2]
    if len(args) != 1:
        sys.exit(__doc__)
    folder = Path(args[0])
    cases = sorted(folder.glob("*.onnx"))
    if not cases:
        sys.exit(f"check_onnx.py: no .onnx files in {folder}")
    print(f"onnx {onnx.__version__}, onnxruntime {ort.__version__}, {len(cases)} files")
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    worst, failures = (0.0, ""), []
    for path in cases:
        name = path.name[: -len(".onnx")]
        model = onnx.load(str(path))
        onnx.checker.check_model(model, full_check=True)
        io = read_safetensors(folder / f"{name}.io.safetensors")
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        (got,) = session.run(["logits"], {"input": io["input"]})
        want = io["logits"]
        if got.shape != want.shape:
            failures.append(f"{name}: shape {got.shape}, ours {want.shape}")
            continue
        err = float(np.abs(got - want).max() / max(np.abs(want).max(), 1e-6))
        print(f"{name:40s} checker ok, onnxruntime relative error {err:.2e}")
        if err > rtol:
            failures.append(f"{name}: relative error {err:.2e} > {rtol:g}")
        if err > worst[0]:
            worst = (err, name)
    print(f"worst relative error against onnxruntime: {worst[0]:.2e} ({worst[1]})")
    if failures:
        sys.exit("check_onnx.py: " + "; ".join(failures))


if __name__ == "__main__":
    main()
