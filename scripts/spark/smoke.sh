#!/usr/bin/env bash
# Smoke test of the live-Spark groundwork, by hand (`.ci/run` runs setup.sh, then the whole
# suite with MPDA_REQUIRE_SPARK=1):
#   1. scripts/spark/setup.sh installs what is missing (Java as root, the pinned PySpark venv);
#   2. tests/live_cluster.rs starts a real standalone cluster (2 workers x 1 core), checks it,
#      interrupts a second `up` with SIGINT, and stops everything, with MPDA_REQUIRE_SPARK=1
#      so that a missing Java or PySpark fails instead of skipping.
# Prints how long each step took. Extra arguments go to setup.sh (e.g. --work DIR).
set -euo pipefail
cd "$(dirname "$0")/../.."

t0=$(date +%s)
scripts/spark/setup.sh "$@"
t1=$(date +%s)
echo "smoke: setup.sh took $((t1 - t0)) s"

MPDA_REQUIRE_SPARK=1 nice cargo test --release --test live_cluster --test live_agent -- --nocapture
t2=$(date +%s)
echo "smoke: live_cluster took $((t2 - t1)) s (build included); total $((t2 - t0)) s"
