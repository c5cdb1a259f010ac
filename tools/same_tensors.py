#!/usr/bin/env python3
"""Checks that two safetensors files hold the same tensors bit for bit (names, dtypes, shapes and
bytes; metadata is ignored). Standard library only.

    python3 tools/same_tensors.py runs/a/last.safetensors runs/b/last.safetensors

Prints the tensor count and exits 0 when they agree; lists the differing tensors and exits 1
otherwise.
"""
import json
import struct
import sys


def read(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    header.pop("__metadata__", None)
    out = {}
    for name, info in header.items():
        start, end = info["data_offsets"]
        out[name] = (info["dtype"], tuple(info["shape"]), data[start:end])
    return out


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    a, b = read(sys.argv[1]), read(sys.argv[2])
    bad = sorted(set(a) ^ set(b))
    bad += sorted(k for k in set(a) & set(b) if a[k] != b[k])
    if bad:
        print(f"{len(bad)} of {len(set(a) | set(b))} tensors differ:", *bad[:20], sep="\n  ")
        sys.exit(1)
    print(f"{len(a)} tensors identical")


if __name__ == "__main__":
    main()
