#!/usr/bin/env python3
"""Projection of data-parallel training across machines from figures measured on one machine
(docs/DISTRIBUTED.md): per-step compute time, gradient size and exchanges per step, against a
stated network bandwidth and per-message latency.

    python3 tools/project_distributed.py --width 0.25 --params 1408362 --img-per-s 134 \
        --batch 64 --sync-exchanges 98 [--global-batch 512]

Model (no overlap of communication with compute: our step sums the gradients after the whole
backward):
- gradient sum (ordered reduce-scatter + all-gather, pairwise): each node sends and receives
  2 (N-1)/N x 4 P bytes and 2 (N-1) messages: t = 2 (N-1)/N x 4P / BW + 2 (N-1) alpha;
- every small exchange (the loss, the stop flag, and with synchronised batch norm two per
  normalisation) is an all-gather of a few KB: ceil(log2 N) rounds of alpha;
- weak scaling: every node keeps --batch images per step (its measured rate); strong scaling:
  --global-batch images per step shared by the N nodes, each at its measured rate (optimistic
  for small per-node batches).
"""
import argparse
import math

NETWORKS = [("10 Gb/s Ethernet (TCP)", 10e9 / 8, 25e-6), ("100 Gb/s InfiniBand/RoCE", 100e9 / 8, 2e-6)]


def comm_seconds(n, params, small, bandwidth, alpha):
    if n == 1:
        return 0.0
    grad = 2 * (n - 1) / n * 4 * params / bandwidth + 2 * (n - 1) * alpha
    return grad + small * math.ceil(math.log2(n)) * alpha


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--width", required=True)
    ap.add_argument("--params", type=int, required=True, help="trained parameters")
    ap.add_argument("--img-per-s", type=float, required=True, help="one node's training rate")
    ap.add_argument("--batch", type=int, required=True, help="images per node per step")
    ap.add_argument("--sync-exchanges", type=int, required=True,
                    help="small exchanges per step with synchronised batch norm")
    ap.add_argument("--local-exchanges", type=int, default=2)
    ap.add_argument("--global-batch", type=int, default=512)
    ap.add_argument("--nodes", default="1,2,4,8,16,32,64,128")
    a = ap.parse_args()
    nodes = [int(n) for n in a.nodes.split(",")]
    step = a.batch / a.img_per_s
    print(f"parnet-cifar x{a.width}: {a.params} parameters ({4 * a.params / 1e6:.1f} MB of gradients), "
          f"one node {a.img_per_s:.0f} img/s at batch {a.batch} ({1e3 * step:.0f} ms per step)")
    for name, bw, alpha in NETWORKS:
        print(f"\n{name}, latency {alpha * 1e6:.0f} us per message")
        print("| nodes | comm ms/step (sync BN) | weak-scaling efficiency sync / local | "
              f"strong scaling at {a.global_batch} images: speed-up sync / local |")
        print("|---:|---:|---:|---:|")
        for n in nodes:
            c_sync = comm_seconds(n, a.params, a.sync_exchanges, bw, alpha)
            c_local = comm_seconds(n, a.params, a.local_exchanges, bw, alpha)
            eff = [step / (step + c) for c in (c_sync, c_local)]
            per_node = a.global_batch / n
            strong_step = per_node / a.img_per_s
            base = a.global_batch / a.img_per_s
            speed = [base / (strong_step + c) for c in (c_sync, c_local)]
            print(f"| {n} | {1e3 * c_sync:.1f} | {100 * eff[0]:.0f}% / {100 * eff[1]:.0f}% | "
                  f"{speed[0]:.1f}x / {speed[1]:.1f}x |")
        limits = []
        for small in (a.sync_exchanges, a.local_exchanges):
            n, found = 2, None
            while n <= a.global_batch:
                c = comm_seconds(n, a.params, small, bw, alpha)
                speed = (a.global_batch / a.img_per_s) / (a.global_batch / n / a.img_per_s + c)
                if speed / n < 0.5:
                    found = n
                    break
                n *= 2
            limits.append(f"{found} nodes" if found else f"beyond {a.global_batch} nodes (1 image each)")
        print(f"strong scaling at {a.global_batch} images falls under 50% efficiency at: "
              f"{limits[0]} (sync BN) / {limits[1]} (local BN)")


if __name__ == "__main__":
    main()
