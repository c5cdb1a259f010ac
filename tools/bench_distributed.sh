#!/usr/bin/env bash
# Training throughput of one process against data-parallel MPI ranks on this machine
# (loopback: shared memory), for docs/DISTRIBUTED.md. Needs `cargo build --release --features mpi`
# and OpenMPI's mpirun.
#
#   tools/bench_distributed.sh [--widths "0.25 0.5"] [--batches "64 128"] [--steps 30] [--rounds 2]
#
# Cases per width and batch: 1 process x 2 threads, 1 process x 1 thread, 2 ranks x 1 thread
# (synchronised and local batch norm), and 4 ranks x 1 thread (oversubscribed on 2 cores: a
# correctness run, its speed is not a figure). Each prints the epoch's images/s (evaluation
# excluded) and, for MPI runs, rank 0's share of time inside MPI calls.
set -euo pipefail
cd "$(dirname "$0")/.."
widths="0.25 0.5"; batches="64 128"; steps=30; rounds=2
while [ $# -gt 0 ]; do
  case "$1" in
    --widths) widths="$2"; shift 2 ;;
    --batches) batches="$2"; shift 2 ;;
    --steps) steps="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
bin=target/release/parnet
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mpi=(mpirun --oversubscribe --mca btl self,vader)
echo "# $(date -u +%F) $(lscpu | sed -n 's/^Model name: *//p') | $(git rev-parse --short HEAD)"
echo "width batch case round img/s mpi_share"
for w in $widths; do
  for b in $batches; do
    cfg="$work/w$w-b$b.toml"
    sed -e "s/^width_mult = .*/width_mult = $w/" \
        -e "s/^synthetic_train = .*/synthetic_train = $((b * steps))/" \
        -e "s/^synthetic_val = .*/synthetic_val = 256/" \
        -e "s/^epochs = .*/epochs = 1/" -e "s/^batch_size = .*/batch_size = $b/" \
        configs/synthetic.toml > "$cfg"
    for r in $(seq 1 "$rounds"); do
      for case in "1x2" "1x1" "2x1-sync" "2x1-local" "4x1-sync"; do
        out="$work/run-$case-$r"; rm -rf "$out"
        ranks=${case%%x*}; rest=${case#*x}; threads=${rest%%-*}
        args=(train --config "$cfg" --out "$out" --threads "$threads" --quiet)
        if [ "$ranks" = 1 ]; then
          log=$("$bin" "${args[@]}")
        else
          bn=${case##*-}
          log=$("${mpi[@]}" -np "$ranks" "$bin" "${args[@]}" --distributed --batch-norm "$bn")
        fi
        rate=$(echo "$log" | sed -n 's/.*| \([0-9.]*\) img\/s |.*/\1/p' | head -1)
        share=$(echo "$log" | sed -n 's/.*inside them (\([0-9.]*\)%.*/\1%/p')
        echo "$w $b $case $r $rate ${share:--}"
      done
    done
  done
done
