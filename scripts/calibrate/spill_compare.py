#!/usr/bin/env python3
"""Memory calibration: real Spark runs that spill, against Spark's engine (docs/simulator.md,
"Calibration", memory). Called by scripts/calibrate/spill.sh compare.

  spill_compare.py OUT MPDA QUERIES REF_MB MB [MB ...]   (MODEL=peak|bytes in the environment)

OUT holds one run of scripts/tpch/run_tpch.py per executor memory (OUT/mem<MB>/runs.json
and eventlogs/) and OUT/trace, the traces imported from the reference run (REF_MB, large
enough that nothing spills). For each memory, Spark's engine replays the queries one at a
time from those traces on 2 hosts x 1 core with `executor_memory_mb` = MB and memory on,
and reports per job its spilled MB (working set beyond the execution memory granted) and
its total task time.

Two models of a task's working set (what it would hold in memory with enough of it):
  peak  (MODEL=peak, the default): the `Peak Execution Memory` the reference run measured
        for the stage's tasks x `memory.peak_factor` (the engine's rule when a trace has it);
  bytes (MODEL=bytes): the bytes the task reads x `memory.working_set_factor` (the rule for
        traces without peaks; run on a copy of the traces without them).
Fitted on the first MB after REF_MB (the smallest memory), never on the others:
  the factor:     least squares on log(1 + spilled MB) over the queries, on a grid;
  disk_mb_per_s:  least squares on the queries' total task time, on a grid.
The other memories are predicted with those values (held out). Real spill is Spark's
"Memory Bytes Spilled" (the in-memory size of what was spilled: what the engine's
working-set model counts); "Disk Bytes Spilled" (serialized) is shown beside it.

Prints markdown tables (per memory and query: real and simulated spill, total task time
and query time, with relative errors; medians) and writes OUT/spill-compare.json.
"""
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

MB = 1_048_576.0
GAP_MS = 600_000  # replayed arrivals 10 min apart: one query at a time
MODEL = os.environ.get("MODEL", "peak")
FACTORS = {
    "peak": ("peak_factor", [0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.2, 1.5]),
    "bytes": ("working_set_factor", [1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 15.0]),
}[MODEL]
DISK_RATES = [25.0, 50.0, 100.0, 200.0, 300.0, 500.0, 1000.0, 2000.0, 5000.0]


def measured(run_dir):
    """Per query (in run order): memory and disk spill (MB), total task time (s), query
    wall time (s), from the run's manifest and event logs."""
    runs = json.loads((run_dir / "runs.json").read_text())
    out = []
    for q in runs["queries"]:
        if q["status"] != "ok":
            raise SystemExit(f"{run_dir}: {q['query']} did not finish ({q['status']})")
        mem = disk = task_ms = 0
        for line in open(q["event_log"]):
            if '"SparkListenerTaskEnd"' not in line:
                continue
            e = json.loads(line)
            if e["Task End Reason"]["Reason"] != "Success":
                continue
            m = e.get("Task Metrics") or {}
            i = e["Task Info"]
            mem += m.get("Memory Bytes Spilled", 0)
            disk += m.get("Disk Bytes Spilled", 0)
            task_ms += i["Finish Time"] - i["Launch Time"]
        out.append({
            "query": q["query"],
            "mem_spill_mb": mem / MB,
            "disk_spill_mb": disk / MB,
            "task_time_s": task_ms / 1000.0,
            "query_s": q["query_wall_s"],
        })
    return out


def simulate(mpda, trace_dir, queries, mb, factor, disk, tmp):
    """Spark's engine on the replay: per job (spilled MB, task time s, JCT s)."""
    replay = tmp / "replay.json"
    jobs = [[f"tpch-sf2-{q}", k * GAP_MS] for k, q in enumerate(queries)]
    replay.write_text(json.dumps({"scenarios": {"sequential": {
        "settings": {"exec_cap": 2}, "episodes": [{"env_seed": 1, "jobs": jobs}]}}}))
    cfg = tmp / "sim.toml"
    cfg.write_text(f"""
name = "calibrate-spill-sim"
[workload]
traces = "{trace_dir}"
sizes = ["sf2"]
replay = {{ file = "{replay}", scenario = "sequential" }}
[sim]
executor_keys = "measured"
[[sim.cluster.hosts]]
count = 2
cores = 1
memory_mb = {max(mb, 1024)}
executor_memory_mb = {mb}
[sim.cluster.memory]
enabled = true
{FACTORS[0]} = {factor}
disk_mb_per_s = {disk}
[eval]
seeds = 1
schedulers = ["spark-fifo"]
""")
    js = tmp / "sim.json"
    subprocess.run([mpda, "eval", "--config", str(cfg), "--json", str(js)], check=True,
                   capture_output=True)
    (sched,) = json.loads(js.read_text())["schedulers"].values()
    ep = sched["episodes"][0]
    tot = ep["spark"]["jobs"]
    return [(t["spilled_mb"], t["task_time_s"], j) for t, j in zip(tot, ep["jct_s"])]


def rel(sim, real):
    return abs(sim - real) / real if real > 0 else (0.0 if sim == 0 else math.inf)


def main():
    out, mpda, queries = Path(sys.argv[1]), sys.argv[2], sys.argv[3].split(",")
    ref_mb, fit_mb, *held = [int(x) for x in sys.argv[4:]]
    real = {mb: measured(out / f"mem{mb}") for mb in [ref_mb, fit_mb, *held]}
    trace = out / "trace"
    if MODEL == "bytes":
        # The same traces without the measured peaks: the engine falls back to bytes.
        stripped = out / "trace-bytes"
        for f in trace.rglob("*.json"):
            d = json.loads(f.read_text())
            for st in d.get("stages", []):
                (st.get("shuffle") or {}).pop("peak_memory_bytes", None)
            dst = stripped / f.relative_to(trace)
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_text(json.dumps(d))
        trace = stripped
    tmp = Path(tempfile.mkdtemp(prefix="spill-"))

    # Fit the working-set factor on spill, then the disk rate on task time, at fit_mb.
    r = real[fit_mb]
    def spill_loss(f):
        sim = simulate(mpda, trace, queries, fit_mb, f, 200.0, tmp)
        return sum((math.log1p(s[0]) - math.log1p(q["mem_spill_mb"])) ** 2 for s, q in zip(sim, r))
    factor = min(FACTORS[1], key=spill_loss)
    def time_loss(d):
        sim = simulate(mpda, trace, queries, fit_mb, factor, d, tmp)
        return sum((s[1] - q["task_time_s"]) ** 2 for s, q in zip(sim, r))
    disk = min(DISK_RATES, key=time_loss)
    print(f"model {MODEL}: fitted on the {fit_mb} MB run: {FACTORS[0]} = {factor}, "
          f"disk_mb_per_s = {disk}\n")

    ref_sim = simulate(mpda, trace, queries, ref_mb, factor, disk, tmp)
    result = {"model": MODEL, "fitted_on_mb": fit_mb, FACTORS[0]: factor, "disk_mb_per_s": disk,
              "reference_mb": ref_mb, "runs": {}}
    for mb in [fit_mb, *held]:
        sim = simulate(mpda, trace, queries, mb, factor, disk, tmp)
        tag = "fitted" if mb == fit_mb else "held out"
        print(f"### executor memory {mb} MB ({tag})\n")
        print("| query | real memory spill MB | real disk spill MB | sim spill MB | real task time s | sim task time s | error | real query time increase | sim JCT increase | error |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        rows, e_time, e_jct, e_spill = [], [], [], []
        for k, (q, s) in enumerate(zip(real[mb], sim)):
            base, sbase = real[ref_mb][k], ref_sim[k]
            ri, si = q["query_s"] / base["query_s"], s[2] / sbase[2]
            et, ej = rel(s[1], q["task_time_s"]), rel(si, ri)
            es = rel(s[0], q["mem_spill_mb"])
            e_time.append(et)
            e_jct.append(ej)
            if q["mem_spill_mb"] > 0:
                e_spill.append(es)
            print(f"| {q['query']} | {q['mem_spill_mb']:.0f} | {q['disk_spill_mb']:.0f} | {s[0]:.0f} | "
                  f"{q['task_time_s']:.1f} | {s[1]:.1f} | {et:.1%} | {ri:.2f}x | {si:.2f}x | {ej:.1%} |")
            rows.append({**q, "sim_spill_mb": s[0], "sim_task_time_s": s[1],
                         "real_query_increase": ri, "sim_jct_increase": si})
        tot_r = sum(q["mem_spill_mb"] for q in real[mb])
        tot_s = sum(s[0] for s in sim)
        summary = {
            "total_real_memory_spill_mb": tot_r, "total_sim_spill_mb": tot_s,
            "median_spill_error": statistics.median(e_spill) if e_spill else None,
            "median_task_time_error": statistics.median(e_time),
            "median_jct_increase_error": statistics.median(e_jct),
            "queries_spilling_real": sum(q["mem_spill_mb"] > 0 for q in real[mb]),
            "queries_spilling_sim": sum(s[0] > 0 for s in sim),
        }
        ms = summary["median_spill_error"]
        print(f"\ntotal spill: real {tot_r:.0f} MB, sim {tot_s:.0f} MB; queries spilling: real "
              f"{summary['queries_spilling_real']}, sim {summary['queries_spilling_sim']}; median error: "
              f"spill {'n/a' if ms is None else f'{ms:.1%}'}, task time {summary['median_task_time_error']:.1%}, "
              f"JCT increase {summary['median_jct_increase_error']:.1%}\n")
        result["runs"][str(mb)] = {"held_out": mb != fit_mb, "queries": rows, **summary}
    tmpf = out / f"spill-compare-{MODEL}.json.tmp"
    tmpf.write_text(json.dumps(result, indent=1) + "\n")
    tmpf.rename(out / f"spill-compare-{MODEL}.json")


if __name__ == "__main__":
    main()
