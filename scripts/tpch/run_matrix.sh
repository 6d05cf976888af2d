#!/usr/bin/env bash
# Run a sequence of full 22-query runs (no AQE, no broadcasts), one after the other, and append
# one line per run to WORK/runs/wall_times.tsv. Data for each SF is generated if missing.
# Usage: run_matrix.sh [--work DIR] "SF:EXECUTORS" ...     e.g. run_matrix.sh 1:2 1:1 2:2 2:1
set -uo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
WORK="${TPCH_WORK:-/work/spark-runs}"
if [ "${1:-}" = "--work" ]; then WORK="$2"; shift 2; fi
PY="$WORK/.venv-tpch/bin/python"
export SPARK_LOCAL_IP=127.0.0.1
mkdir -p "$WORK/runs" "$WORK/logs"
TSV="$WORK/runs/wall_times.tsv"
[ -f "$TSV" ] || printf 'run\tsf\texecutors\tstart\tend\twall_s\texit\n' > "$TSV"
for spec in "$@"; do
  sf="${spec%%:*}"; ex="${spec##*:}"
  [ -f "$WORK/data/sf$sf/lineitem.parquet" ] || "$HERE/setup.sh" --work "$WORK" --no-venv --sf "$sf"
  name="sf$sf-e$ex-noaqe"
  check=""; [ "$sf" = 1 ] && check="--check"
  start=$(date +%s); startiso=$(date -Is)
  nice -n 19 "$PY" "$HERE/run_tpch.py" --work "$WORK" --sf "$sf" --executors "$ex" $check \
      --out "$WORK/runs/$name" > "$WORK/logs/$name.log" 2>&1
  rc=$?
  end=$(date +%s)
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$sf" "$ex" "$startiso" "$(date -Is)" "$((end-start))" "$rc" >> "$TSV"
  echo "$name: exit $rc, $((end-start)) s"
done
