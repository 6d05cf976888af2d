#!/usr/bin/env python3
"""Heterogeneity calibration: real Spark with one worker slowed by a CPU quota, against
Spark's engine with that host at the quota's speed (docs/simulator.md, "A slowed worker").

  hetero_compare.py REF_RUN SLOWED_RUN SIM_REF.json SIM_SLOWED.json SPEED

REF_RUN / SLOWED_RUN: the folders holding the `run.json` and `eventlogs/` that `mpda spark
run` wrote for the reference run (both workers at 1 core) and the slowed run (worker 1 at
SPEED cores). SIM_*.json: `mpda eval --json` of Spark's engine replaying the same queries
from traces imported from the *reference* run, host 1 at speed 1.0 and at SPEED. The slowed
run is never fitted: the engine's only input from it is the quota. The worker of an executor
is read from its log URL (the worker's UI port: 8081 is worker 0, 8082 worker 1).

Compares, per query:
1. the slowdown of worker 1's tasks against worker 0's in the slowed run: per stage, the
   ratio of median durations, over the stages with at least 2 tasks on each worker, weighted
   by the stage's tasks. Medians, because the first task of an executor on a stage pays
   a warm-up (class loading, compilation) of 0.5-3 s that a 100 ms task does not amortise:
   a stage that gave worker 1 a single task measured a 17-30x "slowdown". The engine's is
   1 / SPEED;
2. the job span (first task launch to last task end: what the engine simulates; the
   application's start-up is not in it), real against simulated, in the slowed run, and
   its increase over the reference run.
Prints markdown tables and the medians; writes nothing.
"""
import json
import statistics
import sys
from pathlib import Path

from spark_logs import lines_of


def tasks_of(app_dir):
    """(stage id, worker, launch ms, finish ms) of every successful task of one application."""
    worker_of, out = {}, []
    for line in lines_of(app_dir):
        if '"SparkListenerExecutorAdded"' in line:
            e = json.loads(line)
            url = e["Executor Info"].get("Log Urls", {}).get("stdout", "")
            port = url.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[-1]
            worker_of[e["Executor ID"]] = int(port) - 8081 if port.isdigit() else None
        elif '"SparkListenerTaskEnd"' in line:
            e = json.loads(line)
            if e["Task End Reason"]["Reason"] != "Success":
                continue
            i = e["Task Info"]
            out.append((e["Stage ID"], worker_of.get(i["Executor ID"]), i["Launch Time"], i["Finish Time"]))
    return out


def slowdown(tasks):
    """Worker 1 over worker 0: per-stage median durations, weighted by the stage's tasks."""
    by_stage = {}
    for s, w, a, b in tasks:
        if w in (0, 1):
            by_stage.setdefault(s, ([], []))[w].append(b - a)
    num = den = 0.0
    for d0, d1 in by_stage.values():
        if len(d0) >= 2 and len(d1) >= 2:
            n = len(d0) + len(d1)
            num += statistics.median(d1) * n
            den += statistics.median(d0) * n
    return num / den if den else None


def span_s(tasks):
    return (max(t[3] for t in tasks) - min(t[2] for t in tasks)) / 1000


def sim_spans(path):
    """Per job, the simulated JCT (its span: the engine starts a job at its first task),
    averaged over the episodes."""
    (sched,) = json.load(open(path))["schedulers"].values()
    eps = [e["jct_s"] for e in sched["episodes"]]
    return [statistics.fmean(e[k] for e in eps) for k in range(len(eps[0]))]


def main():
    ref_dir, slow_dir, sim_ref, sim_slow, speed = sys.argv[1:6]
    speed = float(speed)
    runs = [json.load(open(Path(d) / "run.json")) for d in (ref_dir, slow_dir)]
    s_ref, s_slow = sim_spans(sim_ref), sim_spans(sim_slow)
    print("| query | tasks on worker 0 / 1 (slowed run) | slowdown of worker 1 | engine | error | real span ref / slowed s | sim span ref / slowed s | error of the slowed span | real increase | sim increase |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    slow_errs, span_errs, incr_errs = [], [], []
    for k, (a, b) in enumerate(zip(runs[0]["jobs"], runs[1]["jobs"])):
        assert a["query"] == b["query"], "the two runs submit the same queries in the same order"
        ta = tasks_of(Path(ref_dir) / "eventlogs" / f"eventlog_v2_{a['app_id']}")
        tb = tasks_of(Path(slow_dir) / "eventlogs" / f"eventlog_v2_{b['app_id']}")
        n0 = sum(1 for t in tb if t[1] == 0)
        n1 = sum(1 for t in tb if t[1] == 1)
        r = slowdown(tb)
        if r is not None:
            slow_errs.append(abs(1 / speed - r) / r)
        ra, rb = span_s(ta), span_s(tb)
        span_errs.append(abs(s_slow[k] - rb) / rb)
        ri, si = rb / ra, s_slow[k] / s_ref[k]
        incr_errs.append(abs(si - ri) / ri)
        rs = "-" if r is None else f"{r:.2f}"
        re = "-" if r is None else f"{slow_errs[-1]:.1%}"
        print(f"| q{a['query']} | {n0} / {n1} | {rs} | {1 / speed:.2f} | {re} | {ra:.1f} / {rb:.1f} | {s_ref[k]:.1f} / {s_slow[k]:.1f} | {span_errs[-1]:.1%} | {ri:.2f}x | {si:.2f}x |")
    med = lambda v: f"{statistics.median(v):.1%} (max {max(v):.1%}, {len(v)} queries)" if v else "-"
    print(f"\nmedian error: task slowdown {med(slow_errs)}; slowed job span {med(span_errs)}; span increase {med(incr_errs)}")


if __name__ == "__main__":
    main()
