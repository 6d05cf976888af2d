#!/usr/bin/env bash
# Small event-log fixtures for importer tests: one multi-stage query (default Q3) at SF 0.01,
# 2 executors, 4 shuffle partitions (keeps every log a few hundred KB at most), in 5 variants:
#   plain    uncompressed single file (the default of run_tpch.py)
#   zstd     spark.eventLog.compress=true, codec zstd   -> app-...zstd
#   lz4      spark.eventLog.compress=true, codec lz4    -> app-...lz4
#   rolling  spark.eventLog.rolling.enabled=true, maxFileSize 10m (Spark's minimum)
#            -> folder eventlog_v2_app-.../{appstatus_app-..., events_1_app-...}
#   aqe      AQE on + default broadcast threshold (many jobs, skipped stages, broadcast jobs)
# Usage: make_fixtures.sh [--work DIR] [--query N] [--sf 0.01] [--partitions 4]
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
WORK="${TPCH_WORK:-/work/spark-runs}"
Q=3; SF=0.01; SP=4
while [ $# -gt 0 ]; do
  case "$1" in
    --work) WORK="$2"; shift 2;;
    --query) Q="$2"; shift 2;;
    --sf) SF="$2"; shift 2;;
    --partitions) SP="$2"; shift 2;;
    *) echo "unknown argument: $1" >&2; exit 2;;
  esac
done
PY="$WORK/.venv-tpch/bin/python"
FIX="$WORK/fixtures"
mkdir -p "$FIX"
export SPARK_LOCAL_IP=127.0.0.1
[ -f "$WORK/data/sf$SF/lineitem.parquet" ] || "$HERE/setup.sh" --work "$WORK" --no-venv --sf "$SF"
run() {  # name, extra args...
  local name="$1"; shift
  rm -rf "$FIX/$name"
  nice -n 19 "$PY" "$HERE/run_tpch.py" --work "$WORK" --sf "$SF" --queries "$Q" --executors 2 \
      --shuffle-partitions "$SP" --out "$FIX/$name" "$@"
}
run q$Q-sf$SF-e2-plain
run q$Q-sf$SF-e2-zstd    --compress zstd
run q$Q-sf$SF-e2-lz4     --compress lz4
run q$Q-sf$SF-e2-rolling --rolling --rolling-max-file-size 10m
run q$Q-sf$SF-e2-aqe     --aqe
echo; echo "fixtures in $FIX:"
find "$FIX" -path '*/eventlogs/*' -type f -printf '%s\t%p\n' | sort -k2
