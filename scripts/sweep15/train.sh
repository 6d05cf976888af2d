#!/usr/bin/env bash
# The branching A3C study's executor sweep, training half (reports/learned-comparison): MPDA,
# Decima, branching A3C and single-head A3C trained at 15 executors
# (configs/train/*-decima-batches15.toml), one after another, each for the same wall-clock
# budget on the same threads; a run is stopped by SIGTERM at its budget and its best held-out
# checkpoint (runs/<name>/best) is the model.
#
#   scripts/sweep15/train.sh [BUDGET_S] [RUNS_DIR]     (default 480 s, runs/sweep15)
#
# Needs Decima's traces in ../shared/decima-tpch. Run it on a quiet machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
budget=${1:-480}; runs=${2:-runs/sweep15}
mpda=${MPDA:-target/release/mpda}
for m in mpda decima ba3c a3c; do
  echo "== $m: $budget s"
  timeout --signal=TERM "$budget" "$mpda" train --threads 2 \
    --config "configs/train/$m-decima-batches15.toml" --runs "$runs" || true
done
