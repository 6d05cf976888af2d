#!/usr/bin/env bash
# The live run's robustness cases, tried on a real cluster (docs/live-spark.md#robustness):
#   1. executor  an executor JVM is killed (SIGKILL) mid-run
#   2. app-fails an application fails (its driver is killed mid-run)
#   3. agent     the agents lose their connection to the controller for 12 s (mpda stopped
#                with SIGSTOP, then SIGCONT)
#   4. controller  the controller is killed (SIGKILL of `mpda spark run`) mid-run
#   5. secret    a message without the secret, and one with a wrong secret
# Each case runs tests/fixtures/live-robust.toml (3 TPC-H SF 0.1 queries under fair) on a
# fresh 2 x 1-core cluster, writes what happened to OUT/<case>/, and ends with
# `mpda spark down` and a check that no JVM is left. A summary goes to OUT/summary.txt.
#
# Usage: scripts/spark/robustness.sh [OUT]   (default /work/spark-runs/robustness)
#        CASES="executor agent" scripts/spark/robustness.sh    (only those cases)
# Needs scripts/spark/setup.sh, SF 0.1 data (scripts/tpch/setup.sh --no-venv --sf 0.1) and a
# release build (cargo build --release).
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT="${1:-/work/spark-runs/robustness}"
MPDA="$PWD/target/release/mpda"
WORK="$OUT/cluster"
CFG=tests/fixtures/live-robust.toml
mkdir -p "$OUT"
CASES="${CASES:-executor app-fails agent controller secret}"
want() { [[ " $CASES " == *" $1 "* ]]; }
: > "$OUT/summary.txt"
say() { echo "$*" | tee -a "$OUT/summary.txt"; }

jvms() { pgrep -f 'org.apache.spark|pyspark' | wc -l; }

# Waits until some driver's agent knows the controller; prints that driver's pid.
driver_with_agent() {
  for _ in $(seq 1 600); do
    for p in $(pgrep -f 'run_tpch.py --_child'); do
      if tr '\0' '\n' < "/proc/$p/environ" 2>/dev/null | grep -q '^MPDA_CONTROLLER_URL='; then
        echo "$p"; return 0
      fi
    done
    sleep 0.1
  done
  return 1
}

controller_url() {
  tr '\0' '\n' < "/proc/$1/environ" | sed -n 's/^MPDA_CONTROLLER_URL=//p'
}

start_case() {
  CASE="$1"
  rm -rf "$OUT/$CASE"; mkdir -p "$OUT/$CASE"
  "$MPDA" spark down --work "$WORK" > /dev/null 2>&1
  "$MPDA" spark up --work "$WORK" > "$OUT/$CASE/up.log" 2>&1 || { say "$CASE: up failed"; return 1; }
  "$MPDA" spark run --config "$CFG" --work "$WORK" --out "$OUT/$CASE/out" \
      > "$OUT/$CASE/run.out" 2> "$OUT/$CASE/run.err" &
  RUN_PID=$!
}

end_case() {
  local t0=$(date +%s)
  "$MPDA" spark down --work "$WORK" > "$OUT/$CASE/down.log" 2>&1
  local rc=$?
  sleep 1
  local left
  left=$(jvms)
  say "$CASE: spark down exit $rc in $(( $(date +%s) - t0 )) s; Spark/PySpark processes left: $left"
}

jobs_summary() {
  python3 - "$1" <<'EOF'
import json, sys
try:
    r = json.load(open(sys.argv[1]))
except Exception as e:
    print(f"no run.json ({e})"); sys.exit()
ok = sum(j["succeeded"] for j in r["jobs"])
print(f"{ok}/{len(r['jobs'])} jobs succeeded; JCTs " +
      ", ".join(f"{j['name']}={j['real_jct_s'] if j['real_jct_s'] is None else round(j['real_jct_s'],1)}" for j in r["jobs"]) +
      f"; controller: {r['control']['decisions'] if r['control'] else '-'} decisions, "
      f"{r['control']['kills'] if r['control'] else '-'} kills, errors {r['control']['errors'] if r['control'] else '-'}, "
      f"executors lost {r['control'].get('lost_executors') if r['control'] else '-'}; "
      f"warnings {r['warnings']}")
EOF
}

# 1. An executor JVM killed mid-run.
want executor && start_case executor && {
  d=$(driver_with_agent)
  for _ in $(seq 1 300); do
    e=$(pgrep -f 'CoarseGrainedExecutorBackend' | head -n1); [ -n "$e" ] && break; sleep 0.1
  done
  sleep 30  # its application has said hello and its agent lists the executor
  e=$(pgrep -f 'CoarseGrainedExecutorBackend' | head -n1)
  say "executor: killing executor JVM $e (SIGKILL) at $(date +%T)"
  kill -9 "$e"
  wait "$RUN_PID"; say "executor: mpda spark run exit $?"
  say "executor: $(jobs_summary "$OUT/executor/out/runs/fair/rep0/run.json")"
  grep -h -i "lost executor\|ExecutorLost\|Executor .* removed" "$OUT"/executor/out/runs/fair/rep0/logs/*.log | head -3 >> "$OUT/summary.txt"
  end_case
}

# 2. An application that fails: its driver is killed while its query runs.
want app-fails && start_case app-fails && {
  d=$(driver_with_agent)
  sleep 30
  say "app-fails: killing driver $d (SIGKILL, its gateway JVM exits with it) at $(date +%T)"
  kill -9 "$d"
  wait "$RUN_PID"; say "app-fails: mpda spark run exit $?"
  say "app-fails: $(jobs_summary "$OUT/app-fails/out/runs/fair/rep0/run.json")"
  end_case
}

# 3. The agents lose the controller for 12 s, once every driver has said hello.
want agent && start_case agent && {
  d=$(driver_with_agent)
  sleep 35
  say "agent: SIGSTOP mpda (the controller stops answering) at $(date +%T)"
  kill -STOP "$RUN_PID"; sleep 12; kill -CONT "$RUN_PID"
  say "agent: SIGCONT at $(date +%T)"
  wait "$RUN_PID"; say "agent: mpda spark run exit $?"
  say "agent: $(jobs_summary "$OUT/agent/out/runs/fair/rep0/run.json")"
  grep -h "mpda agent" "$OUT"/agent/out/runs/fair/rep0/logs/*.log | sort | uniq -c | head >> "$OUT/summary.txt"
  end_case
}

# 4. The controller killed.
want controller && start_case controller && {
  d=$(driver_with_agent)
  sleep 3
  say "controller: SIGKILL mpda spark run ($RUN_PID) at $(date +%T)"
  kill -9 "$RUN_PID"; wait "$RUN_PID" 2>/dev/null
  t0=$(date +%s)
  while pgrep -f 'run_tpch.py --_child' > /dev/null && [ $(( $(date +%s) - t0 )) -lt 600 ]; do sleep 1; done
  say "controller: drivers all exited $(( $(date +%s) - t0 )) s after the kill"
  for f in "$OUT"/controller/out/runs/fair/rep0/results/job-*.json; do
    case "$f" in *.rows.json) continue;; esac
    say "controller: $(basename "$f"): $(python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print('rows', r['rows'], 'query', r['query_wall_s'], 's')" "$f")"
  done
  grep -h "mpda agent" "$OUT"/controller/out/runs/fair/rep0/logs/*.log | sort | uniq -c | head >> "$OUT/summary.txt"
  end_case
}

# 5. Messages without the secret, and with a wrong one.
want secret && start_case secret && {
  d=$(driver_with_agent)
  url=$(controller_url "$d")
  body='{"version":1,"app_id":"app-intruder","job_name":"job-0","pid":1}'
  code1=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' -d "$body" "$url/v1/hello")
  code2=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Authorization: Bearer 0000000000000000000000000000000000000000000000000000000000000000' -H 'Content-Type: application/json' -d "$body" "$url/v1/hello")
  say "secret: hello without a secret -> HTTP $code1; with a wrong secret -> HTTP $code2"
  wait "$RUN_PID"; say "secret: mpda spark run exit $?"
  say "secret: $(jobs_summary "$OUT/secret/out/runs/fair/rep0/run.json")"
  end_case
}
cat "$OUT/summary.txt"
