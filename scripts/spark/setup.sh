#!/usr/bin/env bash
# Make this machine able to run a standalone Spark cluster for `mpda spark up`:
#   1. Java (Spark 4 needs 17 or newer): installed with apt-get when root, else named and
#      the script exits non-zero;
#   2. the pinned PySpark of the TPC-H pipeline, in the venv scripts/tpch/setup.sh uses
#      ($TPCH_WORK/.venv-tpch, default /work/spark-runs/.venv-tpch), so both pipelines share
#      one install.
# Prints `SPARK_HOME=<dir>` last: the pyspark package folder, which holds bin/spark-class
# and the jars (`mpda spark up --spark-home` takes it; mpda also finds it by itself).
#
#   3. tpchgen-cli (the TPC-H data generator of scripts/tpch/setup.sh) and TPC-H data at
#      SF 0.01 ($TPCH_WORK/data/sf0.01, 3 MB, about 1 s): what the live smoke test
#      (tests/live_run.rs) runs its queries on.
#
# Usage: setup.sh [--work DIR] [--check]
#   --work DIR   work dir holding the venv (default: $TPCH_WORK or /work/spark-runs)
#   --check      install nothing: report what is missing and exit 1 if anything is
set -euo pipefail

# Keep in step with scripts/tpch/setup.sh: traces and live runs use the same Spark.
PYSPARK_VERSION=4.3.0
TPCHGEN_VERSION=4.0.0
JAVA_PACKAGE=openjdk-17-jre-headless

WORK="${TPCH_WORK:-/work/spark-runs}"
CHECK_ONLY=0
while [ $# -gt 0 ]; do
  case "$1" in
    --work) WORK="$2"; shift 2;;
    --check) CHECK_ONLY=1; shift;;
    -h|--help) sed -n '2,14p' "$0"; exit 0;;
    *) echo "unknown argument: $1" >&2; exit 2;;
  esac
done
VENV="$WORK/.venv-tpch"

java_major() {
  # `java -version` prints e.g. `openjdk version "17.0.15" 2025-04-15` on stderr.
  java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1
}

# --- Java -------------------------------------------------------------------------------
if ! command -v java >/dev/null 2>&1 || [ "$(java_major)" -lt 17 ] 2>/dev/null; then
  if [ "$CHECK_ONLY" = 1 ]; then
    echo "missing: Java 17+ (apt-get install -y $JAVA_PACKAGE)" >&2; exit 1
  fi
  if [ "$(id -u)" != 0 ]; then
    echo "missing: Java 17+; as root run: apt-get update && apt-get install -y $JAVA_PACKAGE" >&2
    exit 1
  fi
  echo "installing $JAVA_PACKAGE"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$JAVA_PACKAGE"
fi
major="$(java_major)"
if [ -z "$major" ] || [ "$major" -lt 17 ]; then
  echo "java -version reports major version '${major:-?}'; Spark $PYSPARK_VERSION needs 17+" >&2
  exit 1
fi
echo "java $major: $(command -v java)"

# --- PySpark ----------------------------------------------------------------------------
have_pyspark() {
  [ -x "$VENV/bin/python" ] &&
    [ "$("$VENV/bin/python" -c 'import pyspark; print(pyspark.__version__)' 2>/dev/null)" = "$PYSPARK_VERSION" ]
}
if ! have_pyspark; then
  if [ "$CHECK_ONLY" = 1 ]; then
    echo "missing: pyspark==$PYSPARK_VERSION in $VENV (run scripts/spark/setup.sh)" >&2; exit 1
  fi
  command -v python3 >/dev/null || { echo "missing: python3 (needed for the venv)" >&2; exit 1; }
  mkdir -p "$WORK"
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  echo "installing pyspark==$PYSPARK_VERSION into $VENV"
  nice -n 19 "$VENV/bin/pip" install --disable-pip-version-check -q "pyspark==$PYSPARK_VERSION"
  have_pyspark || { echo "pyspark==$PYSPARK_VERSION did not import from $VENV" >&2; exit 1; }
fi

# --- TPC-H data for the live smoke test -------------------------------------------------
if [ ! -x "$VENV/bin/tpchgen-cli" ]; then
  if [ "$CHECK_ONLY" = 1 ]; then
    echo "missing: tpchgen-cli==$TPCHGEN_VERSION in $VENV (run scripts/spark/setup.sh)" >&2; exit 1
  fi
  echo "installing tpchgen-cli==$TPCHGEN_VERSION into $VENV"
  nice -n 19 "$VENV/bin/pip" install --disable-pip-version-check -q "tpchgen-cli==$TPCHGEN_VERSION"
fi
SMOKE_DATA="$WORK/data/sf0.01"
if [ ! -f "$SMOKE_DATA/lineitem.parquet" ]; then
  if [ "$CHECK_ONLY" = 1 ]; then
    echo "missing: TPC-H SF 0.01 data in $SMOKE_DATA (run scripts/spark/setup.sh)" >&2; exit 1
  fi
  mkdir -p "$SMOKE_DATA"
  nice -n 19 "$VENV/bin/tpchgen-cli" parquet -s 0.01 --output-dir "$SMOKE_DATA"
fi
echo "TPC-H SF 0.01: $SMOKE_DATA"

SPARK_HOME="$("$VENV/bin/python" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')"
if [ ! -x "$SPARK_HOME/bin/spark-class" ]; then
  echo "$SPARK_HOME/bin/spark-class is missing: the pyspark install is incomplete" >&2
  exit 1
fi
echo "pyspark $PYSPARK_VERSION: $VENV"
echo "SPARK_HOME=$SPARK_HOME"
