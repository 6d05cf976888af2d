#!/usr/bin/env bash
# The DSCS study's four experiments in the simulator, on the workloads measured here
# (dscs-live/): reports/dscs/{parallelism,skew,assign,overall}/, and the learned partition
# branch against DSCS and AQE: reports/dscs/learned/ (the shipped model mpda-partition-kmeans).
#
#   scripts/dscs/report.sh [--seeds N]     (release build of mpda first: cargo build --release)
set -euo pipefail
cd "$(dirname "$0")/../.."
MPDA="${MPDA:-target/release/mpda}"
for x in parallelism skew assign overall learned; do
  nice -n 19 "$MPDA" report "configs/experiments/dscs-$x.toml" --out "reports/dscs/$x" "$@"
done
