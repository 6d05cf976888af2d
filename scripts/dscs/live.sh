#!/usr/bin/env bash
# DSCS effects on a real heterogeneous standalone Spark against the simulator's predictions
# (reports/dscs/live/README.md). Resumable: every step skips what is already there.
#
#   scripts/dscs/live.sh all        # up, sample, plan, measure, ref, ref2, import, fit, predict, table, down
#   scripts/dscs/live.sh STEP ...   # one or more of the steps below
#
# Env: MPDA (binary, default /tmp/mpda-live: a copy of target/release/mpda), LIVE_WORK
# (default /work/spark-runs/dscs-hetero), PY (the PySpark 4.3.0 venv's python), REPS (3).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
MPDA=${MPDA:-/tmp/mpda-live}
# A copy, so that a rebuild of target/release during the runs cannot swap the binary.
if [ ! -x "$MPDA" ]; then
    cp "$REPO/target/release/mpda" "$MPDA" || { echo "no mpda: cargo build --release, or set MPDA" >&2; exit 1; }
fi
W=${LIVE_WORK:-/work/spark-runs/dscs-hetero}
PY=${PY:-/work/spark-runs/.venv-tpch/bin/python}
REPS=${REPS:-3}
EXEC_MB=${EXEC_MB:-1024}          # spark.executor.memory (workers have the same memory)
MASTER=spark://127.0.0.1:7077
export SPARK_LOCAL_IP=127.0.0.1
mkdir -p "$W/runs"
LOG="$W/live.log"
say() { echo "[$(date -u +%H:%M:%S)] $*" | tee -a "$LOG"; }
TMS=$(python3 -c "print(round(2 * ($EXEC_MB - 300) * 0.6, 1))")   # 2 executors' execution memory

up() {
    if "$MPDA" spark status --work "$W" 2>/dev/null | grep -q "2 worker(s) ALIVE"; then say "cluster up"; return; fi
    nice -n 19 "$MPDA" spark up --workers 2 --cores 1 --memory-mb "$EXEC_MB" --cpu-quota 1=0.5 --work "$W" 2>&1 | tee -a "$LOG"
}
down() { "$MPDA" spark down --work "$W" 2>&1 | tee -a "$LOG"; }

# one run on the standalone cluster: run NAME jobs.py-args...
run() {
    local name=$1; shift
    local out="$W/runs/$name"
    if [ -f "$out/runs.json" ] && grep -q '"status": "ok"' "$out/runs.json"; then say "skip $name (done)"; return; fi
    rm -rf "$out"
    say "run $name: $*"
    (cd "$HERE" && nice -n 19 "$PY" jobs.py --job wordcount --skew 0.8 --master "$MASTER" \
        --properties-file "$W/private/spark-defaults.conf" --executors 2 --executor-mb "$EXEC_MB" \
        --name "$name" --out "$out" "$@") 2>&1 | tee -a "$LOG"
}

sample() {
    [ -f "$W/sample-$EXEC_MB.json" ] && { say "skip sample"; return; }
    run "sample-$EXEC_MB" --partitions 80 --sample-keys "$W/sample-$EXEC_MB.json"
}

plan() {
    "$MPDA" plan --keys "$W/sample-$EXEC_MB.json" --slots 2 --execution-mb "$TMS" > "$W/plan-$EXEC_MB.json"
    say "plan (tms $TMS MB): $(tr -d '\n ' < "$W/plan-$EXEC_MB.json")"
    # the same sample at smaller executors (550 MB; 450 MB = Spark's minimum): does any key split?
    for mb in 550 450; do
        "$MPDA" plan --keys "$W/sample-$EXEC_MB.json" --slots 2 \
            --execution-mb "$(python3 -c "print(round(2 * ($mb - 300) * 0.6, 1))")" > "$W/plan-$EXEC_MB-at-$mb.json"
        say "plan at executors of $mb MB: $(tr -d '\n ' < "$W/plan-$EXEC_MB-at-$mb.json")"
    done
}

plan_args() {  # --partitions P [--salt k=m,...] from the plan
    python3 - "$W/plan-$EXEC_MB.json" <<'PYEOF'
import json, sys
p = json.load(open(sys.argv[1]))
salt = ",".join(f"{s[0]}={s[1]}" for s in p["salt"])   # [[key, m], ...]
print(f"--partitions {p['partitions']}" + (f" --salt {salt}" if salt else ""))
PYEOF
}

measure() {
    local dargs; dargs=$(plan_args)
    for i in $(seq 1 "$REPS"); do
        run "default-r$i" --partitions 80
        # shellcheck disable=SC2086
        run "dscs-r$i" $dargs
        run "aqe-r$i" --api df --aqe --partitions 80
    done
}

ref() {  # the DataFrame run without AQE on the homogeneous local-cluster[2,1,1024] (simulator's AQE input)
    local out="$W/ref/wordcount-df-z0.8-p80"
    if [ -f "$out/runs.json" ] && grep -q '"status": "ok"' "$out/runs.json"; then say "skip ref (done)"; return; fi
    say "ref run wordcount-df-z0.8-p80 on local-cluster[2,1,1024]"
    (cd "$HERE" && nice -n 19 "$PY" jobs.py --job wordcount --skew 0.8 --partitions 80 --api df \
        --name wordcount-df-z0.8-p80 --out "$out") 2>&1 | tee -a "$LOG"
}

ref2() {  # diagnosis: the plan's P = 2 measured on the homogeneous local-cluster (wordcount-z0.8-p2)
    local out="$W/ref/wordcount-z0.8-p2"
    if [ -f "$out/runs.json" ] && grep -q '"status": "ok"' "$out/runs.json"; then say "skip ref2 (done)"; return; fi
    say "ref2 run wordcount-z0.8-p2 on local-cluster[2,1,1024]"
    (cd "$HERE" && nice -n 19 "$PY" jobs.py --job wordcount --skew 0.8 --partitions 2 \
        --name wordcount-z0.8-p2 --out "$out") 2>&1 | tee -a "$LOG"
}

import_() {
    if [ ! -f "$REPO/dscs-live-ref/small/wordcount-df-z0.8-p80.json" ]; then
        nice -n 19 "$MPDA" trace import --out "$REPO/dscs-live-ref" --size small --prefix dscs \
            "$W"/ref/wordcount-df-z0.8-p80/eventlogs/* 2>&1 | tee -a "$LOG"
    fi
    if [ -d "$W/ref/wordcount-z0.8-p2" ] && [ ! -f "$REPO/dscs-live-ref/small/wordcount-z0.8-p2.json" ]; then
        nice -n 19 "$MPDA" trace import --out "$REPO/dscs-live-ref" --size small --prefix dscs \
            "$W"/ref/wordcount-z0.8-p2/eventlogs/* 2>&1 | tee -a "$LOG"
    fi
    for d in "$W"/runs/{default,dscs,aqe}-r*; do
        local n; n=$(basename "$d")
        [ -f "$W/traces/small/$n.json" ] && continue
        nice -n 19 "$MPDA" trace import --out "$W/traces" --size small --prefix hetero "$d"/eventlogs/* 2>&1 | tee -a "$LOG"
    done
}

predict() {
    mkdir -p "$REPO/reports/dscs/live/sim"
    for v in default dscs aqe default-fit dscs-fit aqe-fit dscs-p2trace dscs-p2trace-fit aqe-nomem; do
        local c="$REPO/configs/dscs-live/hetero-$v.toml"
        [ -f "$c" ] || continue
        (cd "$REPO" && nice -n 19 "$MPDA" eval --config "$c" --json "reports/dscs/live/sim/$v.json") \
            > "$REPO/reports/dscs/live/sim/$v.txt" 2>&1
        say "predicted $v: $(grep -A1 -m1 -i makespan "$REPO/reports/dscs/live/sim/$v.txt" | tail -1 || true)"
    done
}

fit() {  # the slow worker's speed fitted on the default runs' task times -> configs/dscs-live/*-fit.toml
    local sp; sp=$("$PY" "$HERE/live_table.py" --work "$W" --fit-speed)
    [ -n "$sp" ] || { say "fit: no speed"; return; }
    say "fitted speed of worker 1: $sp"
    for v in default dscs aqe dscs-p2trace; do
        [ -f "$REPO/configs/dscs-live/hetero-$v.toml" ] || continue
        sed -e "s/^speed = 0.5$/speed = $sp   # fitted: live_table.py --fit-speed (default runs)/" \
            -e "s/^name = \"\(.*\)\"/name = \"\1-fit\"/" \
            "$REPO/configs/dscs-live/hetero-$v.toml" > "$REPO/configs/dscs-live/hetero-$v-fit.toml"
    done
}

table() {
    "$PY" "$HERE/live_table.py" --work "$W" --plan "$W/plan-$EXEC_MB.json" --out "$REPO/reports/dscs/live"
    mkdir -p "$REPO/reports/dscs/live/plan"
    cp "$W/sample-$EXEC_MB.json" "$W/sample-$EXEC_MB.json.meta.json" "$W"/plan-"$EXEC_MB"*.json "$REPO/reports/dscs/live/plan/"
}

steps=("$@")
[ ${#steps[@]} -eq 0 ] && steps=(all)
for s in "${steps[@]}"; do
    case $s in
        all) up; sample; plan; measure; ref; ref2; import_; fit; predict; table; down ;;
        up|down|sample|plan|measure|ref|ref2|fit|predict|table) $s ;;
        import) import_ ;;
        *) echo "unknown step $s" >&2; exit 2 ;;
    esac
done
