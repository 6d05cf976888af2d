#!/usr/bin/env bash
# DSCS measurement pipeline: generate skewed inputs, run the job matrix on PySpark (one Spark
# application per run, event log on), import the event logs as mpda traces, check them.
#
# Usage: run.sh setup|gen|measure|import|check|skew|smoke|all
#   setup    numpy into the PySpark venv (the generators and k-means use it)
#   gen      gen_data.py: the 4 jobs x skew 0.2 0.4 0.6 0.8 into $WORK/data
#   measure  the matrix (resumable: a run whose runs.json says "ok" is skipped):
#              4 jobs x skew {0.2,0.4,0.6,0.8} with 20 partitions, 4 jobs x skew 0.8 with 80,
#              local-cluster[2,1,1024] (2 executors x 1 core x 1024 MB)
#   import   every successful run's event log -> $TRACES/$SIZE/<name>.json (--prefix dscs)
#   check    mpda trace check + trace info on $TRACES
#   skew     per reduce stage: max / mean shuffle read bytes per task, per trace
#   one JOB SKEW P [jobs.py args]   a single run into $RUNS (skipped if done)
#   smoke    every job and variant at 1/20 scale, 4 partitions (data-smoke/, smoke/, traces in /tmp)
#   all      gen measure import check skew
# Environment: DSCS_WORK (/work/spark-runs/dscs), DSCS_SIZE (small), DSCS_TRACES
# (<repo>/dscs-live), PY (the venv's python), MPDA (importer binary, default /tmp/mpda-import,
# copied from target/release/mpda when missing so that a rebuild cannot disturb it).
set -uo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
WORK="${DSCS_WORK:-/work/spark-runs/dscs}"
PY="${PY:-/work/spark-runs/.venv-tpch/bin/python}"
SIZE="${DSCS_SIZE:-small}"
TRACES="${DSCS_TRACES:-$REPO/dscs-live}"
MPDA="${MPDA:-/tmp/mpda-import}"
LOG="$WORK/run.log"
RUNS="$WORK/runs/$SIZE"
SKEWS="0.2 0.4 0.6 0.8"
JOBS="wordcount terasort kmeans pagerank"
export SPARK_LOCAL_IP=127.0.0.1 DSCS_WORK="$WORK"
mkdir -p "$WORK" "$RUNS"

log() { echo "$(date -Is) $*" | tee -a "$LOG"; }

importer() {
  if [ ! -x "$MPDA" ]; then
    cp "$REPO/target/release/mpda" "$MPDA" || { echo "no importer: build mpda or set MPDA" >&2; exit 1; }
  fi
}

run_ok() {  # run_ok DIR: the run finished successfully
  [ -f "$1/runs.json" ] && grep -q '"status": "ok"' "$1/runs.json"
}

# run_one RUNS_DIR JOB SKEW P [extra jobs.py args]
run_one() {
  local runs="$1" job="$2" skew="$3" p="$4"; shift 4
  local name="$job-z$skew-p$p"
  for x in "$@"; do case "$x" in
    --api) ;; df) name="$name-df";; --aqe) name="$name-aqe";; --combine) name="$name-combine";;
    --salt|--salt-above) name="$name-salt";; esac; done
  local dir="$runs/$name"
  if run_ok "$dir"; then log "skip $name (done)"; return 0; fi
  rm -rf "$dir"
  log "start $name"
  local t0; t0=$(date +%s)
  nice -n 19 "$PY" "$HERE/jobs.py" --job "$job" --skew "$skew" --partitions "$p" \
      --executors 2 --executor-mb 1024 --data-root "${DATA_ROOT:-$WORK/data}" \
      --name "$name" --out "$dir" "$@" >> "$LOG" 2>&1
  local rc=$?
  local tsv="$runs/wall_times.tsv"
  [ -f "$tsv" ] || printf 'run\tstart\twall_s\texit\tloadavg\n' > "$tsv"
  printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$(date -d @"$t0" -Is)" "$(( $(date +%s) - t0 ))" "$rc" \
      "$(cut -d' ' -f1-3 /proc/loadavg)" >> "$tsv"
  log "end $name: exit $rc, $(( $(date +%s) - t0 )) s"
  return $rc
}

cmd_setup() {
  "$PY" -c "import numpy" 2>/dev/null || "$PY" -m pip install -q "numpy==2.4.6"
  "$PY" -c "import numpy, pyspark; print('numpy', numpy.__version__, 'pyspark', pyspark.__version__)"
}

cmd_gen() {
  log "gen: $WORK/data"
  nice -n 19 "$PY" "$HERE/gen_data.py" --job all --skew "${SKEWS// /,}" --root "$WORK/data" 2>&1 | tee -a "$LOG"
}

cmd_measure() {
  local fails=0 t0; t0=$(date +%s)
  log "measure: $RUNS"
  for job in $JOBS; do
    for skew in $SKEWS; do run_one "$RUNS" "$job" "$skew" 20 || fails=$((fails+1)); done
  done
  for job in $JOBS; do run_one "$RUNS" "$job" 0.8 80 || fails=$((fails+1)); done
  log "measure done in $(( $(date +%s) - t0 )) s, $fails failed"
}

ok_logs() {  # the event-log folders of the successful runs under $1
  for d in "$1"/*/; do run_ok "$d" && echo "$d/eventlogs"; done
}

cmd_import() {
  importer
  local logs; logs=$(ok_logs "$RUNS")
  [ -n "$logs" ] || { echo "no successful runs in $RUNS" >&2; exit 1; }
  # shellcheck disable=SC2086
  "$MPDA" trace import --out "$TRACES" --size "$SIZE" --prefix dscs $logs 2>&1 | tee -a "$LOG"
}

cmd_check() {
  importer
  "$MPDA" trace check "$TRACES" && "$MPDA" trace info "$TRACES"
}

cmd_skew() {
  "$PY" "$HERE/skew_table.py" "$TRACES/$SIZE" --runs "$RUNS"
}

cmd_smoke() {
  local sroot="$WORK/data-smoke" sruns="$WORK/smoke" straces="/tmp/dscs-smoke-traces" f=0
  nice -n 19 "$PY" "$HERE/gen_data.py" --job all --skew 0.8 --root "$sroot" --scale 0.05 | tee -a "$LOG"
  for job in $JOBS; do DATA_ROOT="$sroot" run_one "$sruns" "$job" 0.8 4 || f=$((f+1)); done
  DATA_ROOT="$sroot" run_one "$sruns" wordcount 0.8 4 --salt-above 200000 || f=$((f+1))
  DATA_ROOT="$sroot" run_one "$sruns" terasort 0.8 4 --salt-above 400000 || f=$((f+1))
  DATA_ROOT="$sroot" run_one "$sruns" kmeans 0.8 4 --salt-above 400000 || f=$((f+1))
  DATA_ROOT="$sroot" run_one "$sruns" pagerank 0.8 4 --salt-above 15000 || f=$((f+1))
  DATA_ROOT="$sroot" run_one "$sruns" wordcount 0.8 4 --combine || f=$((f+1))
  DATA_ROOT="$sroot" run_one "$sruns" wordcount 0.8 4 --api df --aqe || f=$((f+1))
  DATA_ROOT="$sroot" run_one "$sruns" terasort 0.8 4 --api df --aqe || f=$((f+1))
  importer
  rm -rf "$straces"
  # shellcheck disable=SC2086
  "$MPDA" trace import --out "$straces" --size smoke --prefix dscs $(ok_logs "$sruns") &&
    "$MPDA" trace check "$straces" && "$MPDA" trace info "$straces" &&
    "$PY" "$HERE/skew_table.py" "$straces/smoke" --runs "$sruns"
  log "smoke: $f failed"
}

case "${1:-}" in
  setup) cmd_setup;; gen) cmd_gen;; measure) cmd_measure;; import) cmd_import;;
  check) cmd_check;; skew) cmd_skew;; smoke) cmd_smoke;;
  one) shift; [ $# -ge 3 ] || { echo "usage: run.sh one JOB SKEW P [jobs.py args]" >&2; exit 2; }
       run_one "$RUNS" "$@";;
  all) cmd_gen && cmd_measure && cmd_import && cmd_check && cmd_skew;;
  *) sed -n '2,22p' "$0"; exit 2;;
esac
