#!/usr/bin/env python3
"""Table of scripts/dscs/live.sh: measured (standalone heterogeneous cluster, 3 runs per
variant) against the simulator's predictions (mpda eval --json of configs/dscs-live/).

Per run, from runs.json: the job wall time (jobs.py's job seconds: the job's actions after
session start and executor registration). From the event log: total Memory + Disk Bytes
Spilled over all tasks, the task span (first task launch to last task end of the
application's jobs), the sum of stage spans (first launch to last end per stage), and per
executor its tasks' mean duration per stage (for the effective speed of the throttled worker).

  live_table.py --work W --plan W/plan-1024.json --out reports/dscs/live
  live_table.py --work W --fit-speed        # print the fitted speed of the slow worker
"""
import argparse
import glob
import json
import os
import statistics as st
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "calibrate"))
from spark_logs import lines_of  # noqa: E402

REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
VARIANTS = ("default", "dscs", "aqe")


def parse_log(path):
    tasks = []  # (stage, executor, launch, finish, mem_spill, disk_spill)
    execs = {}
    for line in lines_of(path):
        if '"SparkListenerTaskEnd"' in line:
            e = json.loads(line)
            ti, tm = e["Task Info"], e.get("Task Metrics") or {}
            tasks.append((e["Stage ID"], ti["Executor ID"], ti["Launch Time"], ti["Finish Time"],
                          tm.get("Memory Bytes Spilled", 0), tm.get("Disk Bytes Spilled", 0),
                          ti.get("Failed", False)))
        elif '"SparkListenerExecutorAdded"' in line:
            e = json.loads(line)
            info = e.get("Executor Info", {})
            execs[e["Executor ID"]] = {"host": info.get("Host"), "logs": info.get("Log Urls", {})}
    stages = {}
    for t in tasks:
        stages.setdefault(t[0], []).append(t)
    per_exec = {}
    for s, ts in stages.items():
        for t in ts:
            per_exec.setdefault(t[1], {}).setdefault(s, []).append(t[3] - t[2])
    return {
        "tasks": len(tasks),
        "failed_tasks": sum(1 for t in tasks if t[6]),
        "stages": len(stages),
        "memory_spill_bytes": sum(t[4] for t in tasks),
        "disk_spill_bytes": sum(t[5] for t in tasks),
        "task_span_s": (max(t[3] for t in tasks) - min(t[2] for t in tasks)) / 1000,
        "stage_spans_s": round(sum((max(t[3] for t in ts) - min(t[2] for t in ts)) / 1000
                                   for ts in stages.values()), 3),
        "task_time_s": sum(t[3] - t[2] for t in tasks) / 1000,
        "per_executor": {ex: {"tasks": sum(len(v) for v in d.values()),
                              "task_time_s": sum(sum(v) for v in d.values()) / 1000,
                              "worker_port": _worker_port(execs.get(ex, {}))}
                         for ex, d in per_exec.items()},
        "_per_exec_stage": per_exec,
    }


def _worker_port(info):
    for url in (info.get("logs") or {}).values():
        # http://127.0.0.1:8081/logPage/?appId=...  (worker UI port 8081 + i)
        try:
            return int(url.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])
        except (IndexError, ValueError):
            pass
    return None


def runs(work, variant):
    out = []
    for d in sorted(glob.glob(os.path.join(work, "runs", f"{variant}-r*"))):
        rj = json.load(open(os.path.join(d, "runs.json")))
        j = rj["jobs"][0]
        if j.get("status") != "ok":
            out.append({"run": os.path.basename(d), "status": j.get("status")})
            continue
        ev = parse_log(j["event_log"])
        ev.pop("_per_exec_stage")
        out.append({"run": os.path.basename(d), "status": "ok", "job_wall_s": j["job_wall_s"],
                    "app_wall_s": j["app_wall_s"], "loadavg_start": rj.get("loadavg_start"),
                    "salt": j.get("salt"), **ev})
    return out


def fit_speed(work, variant="default"):
    """Slow worker's speed: per stage, mean task time of the fast executor over the slow one,
    weighted by the slow executor's tasks, over the variant's runs (executors told apart by
    their worker UI port: worker i has 8081 + i; worker 1 has the quota)."""
    num = den = 0.0
    for d in sorted(glob.glob(os.path.join(work, "runs", f"{variant}-r*"))):
        j = json.load(open(os.path.join(d, "runs.json")))["jobs"][0]
        if j.get("status") != "ok":
            continue
        ev = parse_log(j["event_log"])
        pe = ev["_per_exec_stage"]
        ports = {ex: v["worker_port"] for ex, v in ev["per_executor"].items()}
        slow = [ex for ex, p in ports.items() if p == 8082]
        fast = [ex for ex, p in ports.items() if p == 8081]
        if not slow or not fast:
            continue
        for s, ds in pe[slow[0]].items():
            df = pe[fast[0]].get(s)
            if not df:
                continue
            w = len(ds)
            num += w * st.mean(df) / st.mean(ds)
            den += w
    return num / den if den else None


def stats(xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return None
    return {"mean": round(st.mean(xs), 3), "min": round(min(xs), 3), "max": round(max(xs), 3),
            "sd": round(st.stdev(xs), 3) if len(xs) > 1 else 0.0, "n": len(xs)}


def prediction(name):
    p = os.path.join(REPO, "reports", "dscs", "live", "sim", f"{name}.json")
    if not os.path.exists(p):
        return None
    d = json.load(open(p))
    out = {}
    for sched, s in d["schedulers"].items():
        eps = s["episodes"]
        out[sched] = {"mean_makespan_s": round(s["mean_makespan_s"], 3),
                      "sd_makespan_s": round(st.stdev([e["makespan_s"] for e in eps]), 3) if len(eps) > 1 else 0,
                      "spilled_mb": round(st.mean([e["spark"]["spilled_mb"] for e in eps]), 3),
                      "episodes": len(eps)}
    first = next(iter(out))
    cfg = os.path.join(REPO, "configs", "dscs-live", f"hetero-{name}.toml")
    if os.path.exists(cfg):  # the config's first scheduler (the JSON's map is sorted by name)
        import tomllib
        with open(cfg, "rb") as fh:
            want = tomllib.load(fh)["eval"]["schedulers"][0]
        if want in out:
            first = want
    return {"schedulers": out, "first": first}


def rel(pred, meas):
    return None if pred is None or not meas else round((pred - meas) / meas, 4)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--plan")
    ap.add_argument("--out")
    ap.add_argument("--fit-speed", action="store_true")
    a = ap.parse_args()
    if a.fit_speed:
        s = fit_speed(a.work)
        print("%.3f" % s if s else "")
        return
    res = {"work": a.work, "plan": json.load(open(a.plan)) if a.plan else None,
           "fitted_speed_slow_worker": fit_speed(a.work), "variants": {}}
    rows = []
    for v in VARIANTS:
        rs = runs(a.work, v)
        ok = [r for r in rs if r.get("status") == "ok"]
        m = {"job_wall_s": stats([r["job_wall_s"] for r in ok]),
             "task_span_s": stats([r["task_span_s"] for r in ok]),
             "stage_spans_s": stats([r["stage_spans_s"] for r in ok]),
             "spill_mb": stats([(r["memory_spill_bytes"] + r["disk_spill_bytes"]) / 2**20 for r in ok])}
        kinds = {"dscs": ("", "-fit", "-p2trace", "-p2trace-fit"), "aqe": ("", "-fit", "-nomem")}.get(v, ("", "-fit"))
        preds = {k: prediction(f"{v}{k}") for k in kinds}
        res["variants"][v] = {"runs": rs, "measured": m, "predicted": preds}
        for k, pr in preds.items():
            if not pr:
                continue
            ps = pr["schedulers"][pr["first"]]
            rows.append({"variant": v, "sim": f"hetero-{v}{k} ({pr['first']})",
                         "pred_s": ps["mean_makespan_s"], "pred_sd": ps["sd_makespan_s"],
                         "pred_spill_mb": ps["spilled_mb"],
                         "job": m["job_wall_s"], "span": m["task_span_s"], "spill": m["spill_mb"],
                         "err_job": rel(ps["mean_makespan_s"], m["job_wall_s"] and m["job_wall_s"]["mean"]),
                         "err_span": rel(ps["mean_makespan_s"], m["task_span_s"] and m["task_span_s"]["mean"])})
    res["rows"] = rows
    f = lambda s: "–" if not s else f"{s['mean']:.1f} ({s['min']:.1f}–{s['max']:.1f})"
    pc = lambda x: "–" if x is None else f"{100 * x:+.1f}%" + (" ✓" if abs(x) <= 0.2 else " ✗")
    lines = ["| variant | simulator config (scheduler) | measured job s, mean (min–max) | measured task span s | "
             "measured spill MB | predicted makespan s (±sd) | predicted spill MB | error vs job | error vs span |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['variant']} | {r['sim']} | {f(r['job'])} | {f(r['span'])} | "
                     f"{r['spill']['mean'] if r['spill'] else '–'} | {r['pred_s']:.1f} (±{r['pred_sd']:.1f}) | "
                     f"{r['pred_spill_mb']} | {pc(r['err_job'])} | {pc(r['err_span'])} |")
    table = "\n".join(lines)
    print(table)
    print("fitted speed of the slow worker:", res["fitted_speed_slow_worker"])
    if a.out:
        os.makedirs(a.out, exist_ok=True)
        with open(os.path.join(a.out, "results.json"), "w") as fh:
            json.dump(res, fh, indent=1)
        with open(os.path.join(a.out, "table.md"), "w") as fh:
            fh.write(table + "\n")


if __name__ == "__main__":
    main()
