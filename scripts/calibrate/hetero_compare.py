#!/usr/bin/env python3
"""Heterogeneity calibration: real Spark with one worker slowed by a CPU quota, against
Spark's engine with that host at the same speed (docs/simulator.md, "Calibration").

  hetero_compare.py SLOWED_RUN NORMAL_RUN EVENT_DIR SIM_SLOWED.json SIM_NORMAL.json SPEED

SLOWED_RUN / NORMAL_RUN: the `run.json` files `mpda spark run` wrote for the two runs;
EVENT_DIR: the slowed run's event logs (`eventlogs/` beside its run.json); SIM_*.json: `mpda eval --json` of the engine on the
same replay with host 1 at SPEED and at 1.0. The worker of an executor is read from its
log URL (the worker's UI port: 8081 is worker 0, 8082 worker 1).

Compares (1) the slowdown of tasks on worker 1 against worker 0, per stage, with what the
engine assumes (1 / SPEED), and (2) each query's JCT increase from the normal run to the
slowed run, real against simulated. Prints tables (markdown) and writes nothing.
"""
import json
import statistics
import sys
from pathlib import Path

from spark_logs import lines_of


def tasks_by_worker(app_dir):
    """(stage id, worker, duration ms) of every successful task of one application."""
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
            out.append((e["Stage ID"], worker_of.get(i["Executor ID"]), i["Finish Time"] - i["Launch Time"]))
    return out


def main():
    slowed, normal, events, sim_s, sim_n, speed = sys.argv[1:7]
    speed = float(speed)
    runs = {k: json.load(open(p)) for k, p in (("slowed", slowed), ("normal", normal))}
    ratios = []
    print("| query | tasks on worker 0 / 1 | mean ms worker 0 | mean ms worker 1 | slowdown | engine |")
    print("|---|---:|---:|---:|---:|---:|")
    for job in runs["slowed"]["jobs"]:
        ev = Path(events) / f"eventlog_v2_{job['app_id']}"
        if not ev.exists():
            continue
        t = tasks_by_worker(ev)
        w0 = [d for _, w, d in t if w == 0]
        w1 = [d for _, w, d in t if w == 1]
        if len(w0) < 3 or len(w1) < 3:
            continue
        # Per stage, the ratio of mean durations, weighted by tasks: stages differ in size.
        by_stage = {}
        for s, w, d in t:
            if w in (0, 1):
                by_stage.setdefault(s, ([], []))[w].append(d)
        num = den = 0.0
        for a, b in by_stage.values():
            if a and b:
                num += statistics.fmean(b) * (len(a) + len(b))
                den += statistics.fmean(a) * (len(a) + len(b))
        r = num / den if den else float("nan")
        ratios.append(r)
        print(f"| q{job['query']} | {len(w0)} / {len(w1)} | {statistics.fmean(w0):.0f} | {statistics.fmean(w1):.0f} | {r:.2f} | {1 / speed:.2f} |")
    if ratios:
        print(f"\nmedian slowdown of worker 1's tasks: {statistics.median(ratios):.2f} (engine: {1 / speed:.2f})\n")
    sims = {k: json.load(open(p)) for k, p in (("slowed", sim_s), ("normal", sim_n))}

    def sim_jcts(d):
        (sched,) = d["schedulers"].values()
        return sched["episodes"][0]["jct_s"]

    js, jn = sim_jcts(sims["slowed"]), sim_jcts(sims["normal"])
    print("| query | real JCT normal s | real JCT slowed s | real increase | sim JCT normal s | sim JCT slowed s | sim increase | error of the increase |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    errs = []
    for k, (a, b) in enumerate(zip(runs["normal"]["jobs"], runs["slowed"]["jobs"])):
        rn, rs = a["real_jct_s"], b["real_jct_s"]
        if rn is None or rs is None:
            continue
        ri, si = rs / rn, js[k] / jn[k]
        errs.append(abs(si - ri) / ri)
        print(f"| q{a['query']} | {rn:.1f} | {rs:.1f} | {ri:.2f}x | {jn[k]:.1f} | {js[k]:.1f} | {si:.2f}x | {abs(si - ri) / ri:.1%} |")
    if errs:
        print(f"\nmedian error of the JCT increase: {statistics.median(errs):.1%}, max {max(errs):.1%}")


if __name__ == "__main__":
    main()
