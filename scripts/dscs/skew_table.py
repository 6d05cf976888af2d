#!/usr/bin/env python3
"""Per-task shuffle skew of imported DSCS traces.

For every trace (DIR/*.json[.gz]) and every reduce stage (a stage with shuffle reads), the
skew is max / mean of the per-task shuffle read bytes (stages[].shuffle.read_bytes; the mean
counts empty tasks); task-time max/mean is the same for the task durations (shuffle.duration_ms,
the first task on a fresh executor included). One line per trace: the heaviest reduce stage (most bytes read), the
largest max/mean over all reduce stages, and, with --runs, the job and application wall time
from the run's runs.json. --stages lists every reduce stage.

Usage: skew_table.py TRACE_SIZE_DIR [--runs RUNS_DIR] [--stages] [--markdown]
"""

import argparse
import glob
import gzip
import json
import os
import re
import statistics


def load(p):
    op = gzip.open if p.endswith(".gz") else open
    with op(p, "rt") as f:
        return json.load(f)


def order_key(name):
    m = re.match(r"(\w+)-z([\d.]+)-p(\d+)(.*)", name)
    if not m:
        return (name, 0, 0, "")
    return (m.group(1), int(m.group(3)), float(m.group(2)), m.group(4))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir")
    ap.add_argument("--runs", help="run dirs (RUNS/<name>/runs.json) for the wall times")
    ap.add_argument("--stages", action="store_true", help="one line per reduce stage")
    ap.add_argument("--markdown", action="store_true")
    a = ap.parse_args()
    rows = []
    for p in sorted(glob.glob(os.path.join(a.dir, "*.json")) + glob.glob(os.path.join(a.dir, "*.json.gz"))):
        t = load(p)
        q = t["query"]
        red = []
        for i, s in enumerate(t["stages"]):
            sh = s.get("shuffle")
            if not sh:
                continue
            rb = sh["read_bytes"][: s["num_tasks"]]  # the first (only) run
            tot = sum(rb)
            if tot == 0:
                continue
            mean = tot / len(rb)
            du = sh.get("duration_ms", [])[: s["num_tasks"]]
            dr = max(du) / (sum(du) / len(du)) if du and sum(du) else float("nan")
            red.append({"stage": i, "spark": s.get("spark_stage_id"), "tasks": s["num_tasks"],
                        "mb": tot / 1e6, "max_mb": max(rb) / 1e6, "ratio": max(rb) / mean,
                        "median_ratio": statistics.median(rb) / mean, "dur_ratio": dr})
        wall = app = None
        if a.runs:
            rp = os.path.join(a.runs, q, "runs.json")
            if os.path.exists(rp):
                with open(rp) as f:
                    e = json.load(f)["jobs"][0]
                wall, app = e.get("job_wall_s"), e.get("app_wall_s")
        heavy = max(red, key=lambda r: r["mb"]) if red else None
        rows.append((q, len(t["stages"]), sum(s["num_tasks"] for s in t["stages"]), red, heavy, wall, app))
    rows.sort(key=lambda r: order_key(r[0]))
    sep = " | " if a.markdown else "  "
    hdr = ["trace", "stages", "tasks", "reduce stages", "heaviest reduce stage: tasks",
           "MB read", "max/mean", "max MB", "task-time max/mean", "max of max/mean", "job s", "app s"]
    out = [hdr]
    for q, ns, nt, red, h, wall, app in rows:
        out.append([q, str(ns), str(nt), str(len(red)),
                    str(h["tasks"]) if h else "-", f"{h['mb']:.1f}" if h else "-",
                    f"{h['ratio']:.2f}" if h else "-", f"{h['max_mb']:.2f}" if h else "-",
                    f"{h['dur_ratio']:.2f}" if h else "-",
                    f"{max(r['ratio'] for r in red):.2f}" if red else "-",
                    f"{wall:.1f}" if wall is not None else "-", f"{app:.1f}" if app is not None else "-"])
    widths = [max(len(r[i]) for r in out) for i in range(len(hdr))]
    for j, r in enumerate(out):
        line = sep.join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
        print(("| " + line + " |") if a.markdown else line)
        if a.markdown and j == 0:
            print("|" + "|".join("---" for _ in hdr) + "|")
    if a.stages:
        print()
        for q, _, _, red, _, _, _ in rows:
            for r in red:
                print(f"{q:<30} stage {r['stage']:>3} (spark {r['spark']:>3}) tasks {r['tasks']:>4} "
                      f"read {r['mb']:9.2f} MB  max {r['max_mb']:8.3f} MB  max/mean {r['ratio']:6.2f}  "
                      f"median/mean {r['median_ratio']:5.2f}  task-time max/mean {r['dur_ratio']:5.2f}")


if __name__ == "__main__":
    main()
