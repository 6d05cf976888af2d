#!/usr/bin/env python3
"""Summarise a run directory written by run_tpch.py (plain Python, no dependencies).

Per query: Spark jobs (and how many carry the q<N> job group), stages run / skipped, tasks,
sum of task durations (Finish - Launch), executors seen, and each executor's first task
duration (the "fresh executor" task). Reads plain, .zstd/.lz4 (via the zstd/lz4 CLIs) and
rolling (eventlog_v2_*) logs.

Usage: summarize_run.py RUN_DIR [--json OUT.json]
"""
import glob
import json
import os
import subprocess
import sys


def read_lines(path):
    files = sorted(glob.glob(os.path.join(path, "events_*"))) if os.path.isdir(path) else [path]
    for f in files:
        if f.endswith(".zstd") or f.endswith(".zst"):
            data = subprocess.run(["zstd", "-dc", f], capture_output=True, check=True).stdout
        elif f.endswith(".lz4"):
            data = subprocess.run(["lz4", "-dc", f], capture_output=True, check=True).stdout
        else:
            with open(f, "rb") as fh:
                data = fh.read()
        for line in data.decode("utf-8").splitlines():
            if line.strip():
                yield json.loads(line)


def summarize(path, group):
    jobs, tagged, stages_listed, submitted, tasks = 0, 0, set(), set(), []
    for e in read_lines(path):
        ev = e["Event"]
        if ev == "SparkListenerJobStart":
            jobs += 1
            if (e.get("Properties") or {}).get("spark.jobGroup.id") == group:
                tagged += 1
            stages_listed.update(e["Stage IDs"])
        elif ev == "SparkListenerStageSubmitted":
            submitted.add(e["Stage Info"]["Stage ID"])
        elif ev == "SparkListenerTaskEnd":
            ti = e["Task Info"]
            tasks.append((ti["Launch Time"], ti["Finish Time"], ti["Executor ID"]))
    tasks.sort()
    first = {}
    for lt, ft, ex in tasks:
        first.setdefault(ex, ft - lt)
    return {
        "jobs": jobs, "jobs_in_group": tagged,
        "stages_run": len(submitted), "stages_skipped": len(stages_listed - submitted),
        "tasks": len(tasks), "task_time_s": round(sum(f - l for l, f, _ in tasks) / 1000, 1),
        "executors": sorted(first), "first_task_ms": first,
    }


def main():
    run = sys.argv[1]
    m = json.load(open(os.path.join(run, "runs.json")))
    out = {}
    print(f"{m['run']}: {m['master']} sf {m['sf_text']} aqe {m['aqe']} spark {m['spark_version']}")
    print("query  app_s  query_s  jobs(grp)  stages run/skip  tasks  task_s  first task ms per executor")
    for q in m["queries"]:
        if q.get("status") != "ok":
            print(f"{q['query']:<5} {q['status']}")
            continue
        s = summarize(q["event_log"], q["query"])
        out[q["query"]] = dict(s, app_wall_s=q["app_wall_s"], query_wall_s=q["query_wall_s"], rows=q["rows"])
        print(f"{q['query']:<5} {q['app_wall_s']:6.1f} {q['query_wall_s']:7.1f}  {s['jobs']:3d}({s['jobs_in_group']:d})"
              f"      {s['stages_run']:3d}/{s['stages_skipped']:<3d}     {s['tasks']:5d} {s['task_time_s']:7.1f}  "
              f"{s['first_task_ms']}")
    if "--json" in sys.argv:
        with open(sys.argv[sys.argv.index("--json") + 1], "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
