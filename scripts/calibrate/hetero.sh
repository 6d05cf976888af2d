#!/usr/bin/env bash
# Heterogeneity calibration (docs/simulator.md, "A slowed worker"): a real standalone
# cluster of 2 workers x 1 core on this machine, six TPC-H SF 0.1 queries one at a time
# (configs/calibrate/hetero-live.toml), run twice: a reference run with both workers under a
# CPU quota of 1 core (cgroups), and a slowed run with worker 1 at QUOTA cores. The
# reference run's event logs are imported as traces; Spark's engine replays them with host
# 1 at speed 1.0 and at QUOTA; scripts/calibrate/hetero_compare.py compares the slowed run,
# which nothing was fitted on, with the engine's prediction.
#
#   scripts/calibrate/hetero.sh [OUT_DIR] [QUOTA]    (default /work/spark-runs/calib-hetero, 0.5)
#
# Needs scripts/spark/setup.sh and tpch-live's SF 0.1 data (scripts/tpch/setup.sh --sf 0.1).
# Run it on a quiet machine: nothing else may use the CPUs while Spark runs (about 9 min).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-/work/spark-runs/calib-hetero}; quota=${2:-0.5}
mpda=${MPDA:-target/release/mpda}
mkdir -p "$out"
trap '$mpda spark down >/dev/null 2>&1 || true' EXIT
for run in ref slowed; do
  if [ "$run" = slowed ]; then q=$quota; else q=1.0; fi
  # Worker 0 is capped at 1 core in both runs, so that the two workers differ in their
  # quota alone (the driver and Spark's daemons share the machine's other core).
  $mpda spark up --workers 2 --cores 1 --memory-mb 1024 --cpu-quota 0=1.0 --cpu-quota "1=$q"
  $mpda spark run --config configs/calibrate/hetero-live.toml --out "$out/$run"
  $mpda spark down
done
r=runs/spark-default/rep0
rm -rf "$out/traces"
$mpda trace import "$out/ref/$r/eventlogs" --out "$out/traces" --size sf0.1
for speed in 1.0 "$quota"; do
  sed -e "s|^traces = .*|traces = \"$out/traces\"|" -e "s/^speed = .*/speed = $speed/" \
    configs/calibrate/hetero-sim.toml > "$out/sim-$speed.toml"
  $mpda eval --config "$out/sim-$speed.toml" --json "$out/sim-$speed.json"
done
python3 scripts/calibrate/hetero_compare.py "$out/ref/$r" "$out/slowed/$r" \
  "$out/sim-1.0.json" "$out/sim-$quota.json" "$quota"
