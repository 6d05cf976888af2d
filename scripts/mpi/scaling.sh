#!/usr/bin/env bash
# Data-parallel scaling of `mpda train`: mpda-decima-batch20 for ITERS iterations as
#   1rank      one process, 1 thread, grad_shards = 1
#   Nranks     $MPIRUN -n N, 1 thread each, grad_shards = 1 (N in RANKS, default 2)
#   2shards    one process, 2 threads, grad_shards = 2 (the same computation as 2ranks)
#   sweepN     one process, 1 thread, grad_shards = N (N in SWEEP, default 2 4 8 16 64;
#              SWEEP_ITERS iterations): learn_s / N is each rank's share at N ranks
#   2ranks-tcp 2 ranks over network namespaces (TCP on veth), when root (NETNS=0: skip)
# then writes OUT/results.{md,json} (scripts/mpi/scaling.py) and keeps each metrics.csv.
# Run it on a quiet machine, with a release binary built with --features mpi:
#   cargo build --release --features mpi && scripts/mpi/scaling.sh
# Elsewhere (the lent 16-core GPU machine, Open MPI unpacked by scripts/mpi/unpacked.sh):
#   BIN=.mpi/mpda TRACES=.mpi/decima-tpch RANKS="2 4 8 16" NETNS=0 \
#     MPIRUN="orterun --bind-to none" scripts/mpi/scaling.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
ITERS="${ITERS:-10}"
BIN="${BIN:-target/release/mpda}"
BIN="$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")"  # absolute: ranks start elsewhere
OUT="${OUT:-reports/mpi-scaling}"
RANKS="${RANKS:-2}"
MPIRUN="${MPIRUN:-mpirun}"
BASE=configs/train/mpda-decima-batch20.toml
traces="$(cd "${TRACES:-../shared/decima-tpch}" 2>/dev/null && pwd)" || {
    echo "scaling.sh: needs Decima's traces (TRACES, default ../shared/decima-tpch)" >&2
    exit 1
}
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$OUT"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
config() { # name shards
    sed -e "s|^traces = .*|traces = \"$traces\"|" -e "s|^name = .*|name = \"$1\"|" \
        -e "s|^\[train\]|[train]\ngrad_shards = $2|" "$BASE" >"$work/$1.toml"
    echo "$work/$1.toml"
}
run() { # name launcher... (the mpda command follows)
    local name="$1"
    shift
    echo "== $name" >&2
    "$@" train --config "$(config "$name" "$SHARDS")" --runs "$work/runs" \
        --iterations "$ITERS" --threads "$THREADS" 2>"$OUT/$name.log"
    cp "$work/runs/$name/metrics.csv" "$OUT/$name.metrics.csv"
    grep -h "^MPI:" "$OUT/$name.log" >&2 || true
}
{ echo "date: $(date -u +%FT%TZ)"; echo "cpus: $(nproc)"; grep -m1 "model name" /proc/cpuinfo; } >"$OUT/machine.txt"
SHARDS=1 THREADS=1 run 1rank "$BIN"
for n in $RANKS; do
    # shellcheck disable=SC2086 # MPIRUN is a command with its options
    SHARDS=1 THREADS=1 run "${n}ranks" $MPIRUN -n "$n" "$BIN"
done
SHARDS=2 THREADS=2 run 2shards "$BIN"
for n in ${SWEEP-2 4 8 16 64}; do
    SHARDS=$n THREADS=1 ITERS="${SWEEP_ITERS:-3}" run "sweep$n" "$BIN"
done
if [[ "${NETNS:-1}" != 0 && $(id -u) -eq 0 ]] && command -v ip >/dev/null; then
    bash scripts/mpi/netns.sh up 2 >&2
    SHARDS=1 THREADS=1 run 2ranks-tcp bash scripts/mpi/netns.sh run 2 "$BIN"
    bash scripts/mpi/netns.sh down
fi
python3 scripts/mpi/scaling.py "$OUT"
