#!/usr/bin/env bash
# Data-size scaling on a quiet re-measurement (docs/simulator.md, "Calibration", data
# size): the tpch/ traces were measured under load, so this measures a subset of the
# queries again at SF 1, 2, 5 and 10, 2 executors, exactly as tpch/ was measured
# (scripts/tpch/run_tpch.py defaults: 200 shuffle partitions, 2048 MB executors, no AQE, no
# broadcast joins), imports them, and runs scripts/calibrate/size_scaling.py on them: fit
# SF1, SF2, SF5, predict the held-out SF10.
#
#   scripts/calibrate/size_remeasure.sh measure [OUT]   the Spark runs (about an hour here)
#   scripts/calibrate/size_remeasure.sh compare [OUT]   import and fit (a minute)
#
# OUT defaults to /work/spark-runs/calib-size; data is generated under $TPCH_WORK/data if
# missing (SF10: 3.5 GB). Run `measure` on a quiet machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
step=${1:?usage: size_remeasure.sh measure|compare [OUT]}
out=${2:-/work/spark-runs/calib-size}
mpda=${MPDA:-target/release/mpda}
work=${TPCH_WORK:-/work/spark-runs}
py=${PY:-$work/.venv-tpch/bin/python}
queries=${QUERIES:-1,3,5,6,10,12,14,19}
mkdir -p "$out"
case "$step" in
measure)
  export SPARK_LOCAL_IP=127.0.0.1
  for sf in 1 2 5 10; do
    [ -f "$out/sf$sf-e2/runs.json" ] && { echo "SF $sf already measured"; continue; }
    scripts/tpch/setup.sh --no-venv --sf "$sf" >/dev/null
    rm -rf "$out/sf$sf-e2"
    "$py" scripts/tpch/run_tpch.py --sf "$sf" --executors 2 --queries "$queries" --out "$out/sf$sf-e2"
  done
  ;;
compare)
  rm -rf "$out/trace"
  for sf in 1 2 5 10; do
    "$mpda" trace import "$out/sf$sf-e2/eventlogs" --out "$out/trace" --size "sf$sf" --gzip >/dev/null
  done
  python3 scripts/calibrate/size_scaling.py --mpda "$mpda" --traces "$out/trace" \
    --queries "$queries" --out "${REPORT:-reports/calibration/quiet}"
  ;;
*) echo "unknown step: $step (measure or compare)" >&2; exit 2 ;;
esac
