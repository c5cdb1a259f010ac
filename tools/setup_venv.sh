#!/usr/bin/env bash
# Makes tools/.venv with what the comparison scripts import, from PyPI only: PyTorch (the default
# wheel, ~5 GB, runs on the CPU), ONNX, ONNX Runtime (CPU provider), NumPy, safetensors.
#
#     tools/setup_venv.sh            # then: tools/.venv/bin/python tools/compare_runtimes.py ...
#
# Re-running reuses the venv and only installs what is missing.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${PARNET_VENV:-$here/.venv}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet torch numpy safetensors onnx onnxruntime onnxscript torchvision
"$venv/bin/python" - <<'PY'
import onnx, onnxruntime, torch
print(f"torch {torch.__version__}, onnx {onnx.__version__}, onnxruntime {onnxruntime.__version__}")
PY
