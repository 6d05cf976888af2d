#!/usr/bin/env bash
# Locality calibration (docs/simulator.md, "Calibration", locality): a real standalone
# cluster of 2 workers x 1 core on two loopback hosts (`mpda spark up --distinct-hosts`:
# 127.0.0.1 and 127.0.0.2, so Spark sees two hosts and reduce tasks prefer the host holding
# their map output), eight TPC-H SF 0.1 queries one at a time under Spark's own behaviour
# (configs/calibrate/locality-live.toml), run with `spark.locality.wait` = 0 and = 3s; then
# Spark's engine on the same replay with locality on and the same two waits
# (configs/calibrate/locality-sim.toml), and the comparison
# (scripts/calibrate/locality_compare.py): tasks per locality level and JCTs.
#
#   scripts/calibrate/locality.sh measure [OUT]   the Spark runs (about 25 min here)
#   scripts/calibrate/locality.sh compare [OUT]   simulate and compare (seconds); the table
#                                                 and JSON go to $REPORT (reports/calibration)
#
# OUT defaults to /work/spark-runs/calib-locality. Needs scripts/spark/setup.sh and the
# SF 0.1 data (scripts/tpch/setup.sh --no-venv --sf 0.1). Run `measure` on a quiet machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
step=${1:?usage: locality.sh measure|compare [OUT]}
out=${2:-/work/spark-runs/calib-locality}
mpda=${MPDA:-target/release/mpda}
mkdir -p "$out"
case "$step" in
measure)
  trap '$mpda spark down >/dev/null 2>&1 || true' EXIT
  $mpda spark up --workers 2 --cores 1 --memory-mb 1024 --distinct-hosts
  for wait in 0 3s; do
    sed "s/\"spark.locality.wait\" = \"[^\"]*\"/\"spark.locality.wait\" = \"$wait\"/" \
      configs/calibrate/locality-live.toml > "$out/live-wait-$wait.toml"
    $mpda spark run --config "$out/live-wait-$wait.toml" --out "$out/wait-$wait"
  done
  $mpda spark down
  ;;
compare)
  for wait in 0 3000; do
    sed "s/^wait_ms = .*/wait_ms = $wait/" configs/calibrate/locality-sim.toml > "$out/sim-wait-$wait.toml"
    $mpda eval --config "$out/sim-wait-$wait.toml" --json "$out/sim-wait-$wait.json" >/dev/null
  done
  report=${REPORT:-reports/calibration}
  mkdir -p "$report"
  python3 scripts/calibrate/locality_compare.py "$out" | tee "$report/locality.md"
  cp "$out/locality-compare.json" "$report/locality.json"
  ;;
*) echo "unknown step: $step (measure or compare)" >&2; exit 2 ;;
esac
