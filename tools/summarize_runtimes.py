"""One markdown table from the `--json` files of `tools/compare_runtimes.py`: a row per case
(model, batch, size, threads), the median over rounds of each runtime with its range (rounds of
the same case in several files are pooled), and
ours / ONNX Runtime, ours / torch.compile (below 1: parnet-rs is faster).

    python3 tools/summarize_runtimes.py run1.json run2.json ...
"""

import json
import statistics
import sys

COLUMNS = [
    ("parnet-rs executor", "parnet-rs"),
    ("onnxruntime (CPU, all optimisations)", "ONNX Runtime"),
    ("torch.compile (inductor + freezing)", "torch.compile"),
    ("torch eager channels_last", "eager channels_last"),
    ("torch eager NCHW", "eager NCHW"),
]


def main(paths):
    cases = {}
    for path in paths:
        with open(path) as f:
            for r in json.load(f)["records"]:
                key = (r["model"], r["batch"], r["size"], r["threads"])
                cases.setdefault(key, {}).setdefault(r["runtime"], []).extend(r["ms"])
    head = ["case", "threads"] + [name for _, name in COLUMNS] + ["ours / ORT", "ours / compile"]
    print("| " + " | ".join(head) + " |")
    print("|---|---:|" + "---:|" * (len(head) - 2))
    for (model, batch, size, threads), runs in cases.items():
        cells = [f"{model}, batch {batch}, {size}x{size}", str(threads)]
        med = {k: statistics.median(v) for k, v in runs.items()}
        for key, _ in COLUMNS:
            v = runs.get(key)
            cells.append(f"{med[key]:.2f} [{min(v):.2f}, {max(v):.2f}]" if v else "")
        ours = med.get(COLUMNS[0][0])
        for key in (COLUMNS[1][0], COLUMNS[2][0]):
            cells.append(f"{ours / med[key]:.2f}" if ours and key in med else "")
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(sys.argv[1:])
