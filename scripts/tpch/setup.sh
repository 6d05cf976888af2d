#!/usr/bin/env bash
# Set up the TPC-H-on-PySpark pipeline: a venv with pinned pyspark + tpchgen-cli,
# and TPC-H Parquet data for the requested scale factors.
#
# Usage: setup.sh [--work DIR] [--sf "1 2 5"] [--no-venv]
#   --work DIR   work dir (default: $TPCH_WORK or /work/spark-runs)
#   --sf LIST    scale factors to generate (space/comma separated; fractional OK, e.g. 0.01)
#   --no-venv    skip venv creation (assume it exists)
# Heavy steps run under `nice -n 19` (shared 2-core machine).
set -euo pipefail

PYSPARK_VERSION=4.3.0
TPCHGEN_VERSION=4.0.0

WORK="${TPCH_WORK:-/work/spark-runs}"
SFS=""
MAKE_VENV=1
while [ $# -gt 0 ]; do
  case "$1" in
    --work) WORK="$2"; shift 2;;
    --sf) SFS="$2"; shift 2;;
    --no-venv) MAKE_VENV=0; shift;;
    -h|--help) sed -n '2,10p' "$0"; exit 0;;
    *) echo "unknown argument: $1" >&2; exit 2;;
  esac
done

VENV="$WORK/.venv-tpch"
mkdir -p "$WORK/data"

if [ "$MAKE_VENV" = 1 ]; then
  if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
  fi
  nice -n 19 "$VENV/bin/pip" install --disable-pip-version-check -q \
    "pyspark==$PYSPARK_VERSION" "tpchgen-cli==$TPCHGEN_VERSION"
  "$VENV/bin/python" -c 'import pyspark; print("pyspark", pyspark.__version__)'
  "$VENV/bin/tpchgen-cli" --version || true
fi

for sf in $(echo "$SFS" | tr ',' ' '); do
  out="$WORK/data/sf$sf"
  if [ -f "$out/lineitem.parquet" ]; then
    echo "data for SF $sf already in $out (delete it to regenerate)"
    continue
  fi
  mkdir -p "$out"
  echo "generating SF $sf -> $out"
  start=$(date +%s.%N)
  nice -n 19 "$VENV/bin/tpchgen-cli" parquet -s "$sf" --output-dir "$out"
  end=$(date +%s.%N)
  printf 'SF %s generated in %.1f s (%s)\n' "$sf" "$(echo "$end - $start" | bc)" "$(du -sh "$out" | cut -f1)"
done
