#!/usr/bin/env python3
"""Locality calibration: a real cluster on two hosts with `spark.locality.wait` 0 and 3 s,
against Spark's engine with the same waits (docs/simulator.md, "Calibration", locality).
Called by scripts/calibrate/locality.sh compare.

  locality_compare.py OUT

OUT holds the two live studies (OUT/wait-0, OUT/wait-3s: runs/spark-default/rep*/run.json
and their eventlogs/) and the engine's `mpda eval --json` on the same replay
(OUT/sim-wait-0.json, OUT/sim-wait-3000.json).

Per wait: tasks launched per locality level (Spark's TaskInfo "Locality"), real (mean over
repetitions) against simulated. Spark's TaskSetManager.dequeueTask launches a task without
a preferred location as PROCESS_LOCAL, not NO_PREF; with no cached data nothing else is
process-local, so the real PROCESS_LOCAL count is the engine's NO_PREF. per query: the span of its Spark jobs (first job
submitted to last job ended, from the event log: no driver start-up, which the engine does
not model) at both waits, and the change from 0 to 3 s, real against simulated. Prints
markdown tables and writes OUT/locality-compare.json.
"""
import json
import statistics
import sys
from pathlib import Path

from spark_logs import lines_of

LEVELS = ["PROCESS_LOCAL", "NODE_LOCAL", "NO_PREF", "RACK_LOCAL", "ANY"]


def app_log(events, app_id):
    for cand in (events / f"eventlog_v2_{app_id}", events / app_id):
        if cand.exists():
            return cand
    raise SystemExit(f"{events}: no event log for {app_id}")


def app_summary(log):
    """(tasks per locality level, span of the app's jobs in s)."""
    levels = dict.fromkeys(LEVELS, 0)
    start, end = None, None
    for line in lines_of(log):
        if '"SparkListenerTaskEnd"' in line:
            e = json.loads(line)
            if e["Task End Reason"]["Reason"] == "Success":
                lv = e["Task Info"]["Locality"]
                levels["NO_PREF" if lv == "PROCESS_LOCAL" else lv] += 1
        elif '"SparkListenerJobStart"' in line:
            t = json.loads(line)["Submission Time"]
            start = t if start is None else min(start, t)
        elif '"SparkListenerJobEnd"' in line:
            t = json.loads(line)["Completion Time"]
            end = t if end is None else max(end, t)
    return levels, (end - start) / 1000.0


def real_study(study):
    """Per repetition: list of (query, levels, span s) in run order."""
    reps = []
    for run in sorted((study / "runs" / "spark-default").glob("rep*/run.json")):
        d = json.loads(run.read_text())
        rows = []
        for j in d["jobs"]:
            if not j.get("succeeded"):
                raise SystemExit(f"{run}: {j['name']} did not succeed")
            levels, span = app_summary(app_log(run.parent / "eventlogs", j["app_id"]))
            rows.append((j["query"], levels, span))
        reps.append(rows)
    if not reps:
        raise SystemExit(f"{study}: no runs")
    return reps


def sim_study(path):
    """Per seed: list of (levels, JCT s) per job."""
    (sched,) = json.loads(Path(path).read_text())["schedulers"].values()
    out = []
    for ep in sched["episodes"]:
        rows = []
        for t, j in zip(ep["spark"]["jobs"], ep["jct_s"]):
            lv = {"NODE_LOCAL": t["node_local"], "NO_PREF": t["no_pref"],
                  "RACK_LOCAL": t["rack_local"], "ANY": t["any"]}
            rows.append((lv, j))
        out.append(rows)
    return out


def main():
    out = Path(sys.argv[1])
    real = {w: real_study(out / f"wait-{w}") for w in ("0", "3s")}
    sim = {w: sim_study(out / f"sim-wait-{ms}.json") for w, ms in (("0", 0), ("3s", 3000))}
    result = {"levels": {}, "queries": []}

    print("| wait | tasks | real NODE_LOCAL | sim NODE_LOCAL | real no preference (PROCESS_LOCAL) | sim NO_PREF | real ANY | sim ANY |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for w in ("0", "3s"):
        r_lv = {lv: statistics.fmean(sum(q[1][lv] for q in rep) for rep in real[w]) for lv in LEVELS}
        s_lv = {lv: statistics.fmean(sum(q[0].get(lv, 0) for q in ep) for ep in sim[w]) for lv in LEVELS}
        tasks = sum(r_lv.values())
        share = lambda d, lv: d[lv] / sum(d.values())
        print(f"| {w} | {tasks:.0f} | {share(r_lv, 'NODE_LOCAL'):.1%} | {share(s_lv, 'NODE_LOCAL'):.1%} | "
              f"{share(r_lv, 'NO_PREF'):.1%} | {share(s_lv, 'NO_PREF'):.1%} | {share(r_lv, 'ANY'):.1%} | {share(s_lv, 'ANY'):.1%} |")
        result["levels"][w] = {"real": r_lv, "sim": s_lv}

    print("\n| query | real span wait 0 s | real span wait 3 s | real change | sim JCT wait 0 s | sim JCT wait 3 s | sim change |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    n = len(real["0"][0])
    d_real, d_sim, e0, e3 = [], [], [], []
    for k in range(n):
        q = real["0"][0][k][0]
        r0 = statistics.fmean(rep[k][2] for rep in real["0"])
        r3 = statistics.fmean(rep[k][2] for rep in real["3s"])
        s0 = statistics.fmean(ep[k][1] for ep in sim["0"])
        s3 = statistics.fmean(ep[k][1] for ep in sim["3s"])
        d_real.append(r3 - r0)
        d_sim.append(s3 - s0)
        e0.append(abs(s0 - r0) / r0)
        e3.append(abs(s3 - r3) / r3)
        print(f"| q{q} | {r0:.1f} | {r3:.1f} | {r3 - r0:+.1f} | {s0:.1f} | {s3:.1f} | {s3 - s0:+.1f} |")
        result["queries"].append({"query": q, "real_span_s": [r0, r3], "sim_jct_s": [s0, s3]})
    noise = [abs(a[k][2] - b[k][2]) for w in ("0", "3s") for a, b in zip(real[w], real[w][1:]) for k in range(n)]
    summary = {
        "real_total_change_s": sum(d_real), "sim_total_change_s": sum(d_sim),
        "median_error_wait_0": statistics.median(e0), "median_error_wait_3s": statistics.median(e3),
        "repetition_noise_median_s": statistics.median(noise) if noise else None,
    }
    result.update(summary)
    print(f"\nsum over queries of the change 0 -> 3 s: real {sum(d_real):+.1f} s, sim {sum(d_sim):+.1f} s; "
          f"median |sim - real| / real of the job span: wait 0 {summary['median_error_wait_0']:.1%}, "
          f"wait 3 s {summary['median_error_wait_3s']:.1%}"
          + (f"; repetition noise (median |rep1 - rep0|) {summary['repetition_noise_median_s']:.1f} s" if noise else ""))
    tmp = out / "locality-compare.json.tmp"
    tmp.write_text(json.dumps(result, indent=1) + "\n")
    tmp.rename(out / "locality-compare.json")


if __name__ == "__main__":
    main()
