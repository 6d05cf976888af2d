#!/usr/bin/env bash
# Heterogeneity calibration (docs/simulator.md, "Calibration"): a real standalone cluster of
# 2 workers x 1 core on this machine, run once with worker 1 under a CPU quota (cgroups) and
# once without, six TPC-H SF 0.1 queries one at a time (configs/calibrate/hetero-live.toml),
# then Spark's engine on the same replay with host 1 at the quota's speed, and the
# comparison (scripts/calibrate/hetero_compare.py).
#
#   scripts/calibrate/hetero.sh [OUT_DIR] [QUOTA]    (default /work/spark-runs/calib, 0.5)
#
# Needs scripts/spark/setup.sh and tpch-live's SF 0.1 data (scripts/tpch/setup.sh --sf 0.1).
# Run it on a quiet machine: nothing else may use the CPUs while Spark runs.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-/work/spark-runs/calib}; quota=${2:-0.5}
mpda=${MPDA:-target/release/mpda}
mkdir -p "$out"
trap '$mpda spark down >/dev/null 2>&1 || true' EXIT
for run in slowed normal; do
  if [ "$run" = slowed ]; then q=(--cpu-quota "1=$quota"); else q=(); fi
  $mpda spark up --workers 2 --cores 1 --memory-mb 1024 "${q[@]}"
  $mpda spark run --config configs/calibrate/hetero-live.toml --out "$out/$run"
  $mpda spark down
done
sed "s/^speed = .*/speed = $quota/" configs/calibrate/hetero-sim-0.5.toml > "$out/sim-slowed.toml"
$mpda eval --config "$out/sim-slowed.toml" --json "$out/sim-slowed.json"
$mpda eval --config configs/calibrate/hetero-sim-1.0.toml --json "$out/sim-normal.json"
r=runs/spark-default/rep0
python3 scripts/calibrate/hetero_compare.py "$out/slowed/$r/run.json" "$out/normal/$r/run.json" \
  "$out/slowed/$r/eventlogs" "$out/sim-slowed.json" "$out/sim-normal.json" "$quota"
echo "control (no quota, worker 1 against worker 0):"
python3 scripts/calibrate/hetero_compare.py "$out/normal/$r/run.json" "$out/normal/$r/run.json" \
  "$out/normal/$r/eventlogs" "$out/sim-normal.json" "$out/sim-normal.json" 1.0
