#!/usr/bin/env bash
# Memory calibration (docs/simulator.md, "Calibration", memory): TPC-H at SF 2 with
# 2 shuffle partitions, so that a reduce task reads tens to hundreds of MB, on 2 executors
# x 1 core (`local-cluster[2,1,MB]`, one application per query), at four executor memories:
# 4096 MB (no spill: the reference the traces come from), 1024, 768 and 512 MB (Spark's
# unified memory leaves about 430, 280 and 125 MB of execution memory). Then Spark's engine
# replays the same queries, one at a time, from the reference traces with the executor
# memory of each run, and scripts/calibrate/spill_compare.py fits the working-set model and
# the disk rate on the 512 MB run and predicts the 768 and 1024 MB runs (held out), for both
# working-set models: measured peak execution memory x peak_factor (what the engine uses
# when a trace has peaks) and bytes read x working_set_factor (when it has not).
#
#   scripts/calibrate/spill.sh measure [OUT]    the Spark runs (about 25 min here)
#   scripts/calibrate/spill.sh compare [OUT]    import, simulate, compare (a minute); tables
#                                               and JSON to $REPORT (reports/calibration)
#
# OUT defaults to /work/spark-runs/calib-spill. Needs scripts/spark/setup.sh (Java, PySpark);
# the SF 2 data is generated if missing. Run `measure` on a quiet machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
step=${1:?usage: spill.sh measure|compare [OUT]}
out=${2:-/work/spark-runs/calib-spill}
mpda=${MPDA:-target/release/mpda}
work=${TPCH_WORK:-/work/spark-runs}
py=${PY:-$work/.venv-tpch/bin/python}
queries=3,4,5,9,10,12,13,18
memories="4096 512 768 1024"
mkdir -p "$out"
case "$step" in
measure)
  scripts/tpch/setup.sh --no-venv --sf 2 >/dev/null
  export SPARK_LOCAL_IP=127.0.0.1
  for mb in $memories; do
    [ -f "$out/mem$mb/runs.json" ] && { echo "mem$mb already measured"; continue; }
    rm -rf "$out/mem$mb"
    "$py" scripts/tpch/run_tpch.py --sf 2 --executors 2 --executor-mb "$mb" --driver-memory 1g \
      --shuffle-partitions 2 --queries "$queries" --out "$out/mem$mb"
  done
  ;;
compare)
  rm -rf "$out/trace" "$out/trace-bytes"
  "$mpda" trace import "$out/mem4096/eventlogs" --out "$out/trace" --size sf2 >/dev/null
  report=${REPORT:-reports/calibration}
  mkdir -p "$report"
  for model in peak bytes; do
    MODEL=$model python3 scripts/calibrate/spill_compare.py "$out" "$mpda" "$queries" $memories \
      | tee "$report/spill-$model.md"
    cp "$out/spill-compare-$model.json" "$report/spill-$model.json"
  done
  ;;
*) echo "unknown step: $step (measure or compare)" >&2; exit 2 ;;
esac
