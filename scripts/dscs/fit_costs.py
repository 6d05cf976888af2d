#!/usr/bin/env python3
"""Fits a task's fixed cost and the map side's cost per output partition on the DSCS jobs.

Each job was measured at 20 and at 80 shuffle partitions (dscs-live/small/<job>-z0.8-p20
and -p80, the same data, the same 2-executor local-cluster). Per stage, the change of its
total task time between the two runs is modelled as

    d(total task time) = overhead x d(tasks) + write x (map tasks) x d(output partitions)

(a reduce stage gains tasks; a map stage writes to more partitions; a PageRank iteration
does both), and the two costs are fitted by least squares over every stage of the four jobs
(non-negative; the input stages, whose tasks and outputs do not change between the runs,
are left out, and so is a stage several children read: PageRank's cached links). The results are Spark's engine's `data.task_overhead_ms` and
`data.write_ms_per_partition` for these PySpark RDD jobs (configs/experiments/dscs-*.toml,
configs/dscs-live/*.toml).

  scripts/dscs/fit_costs.py [TRACE_DIR]     (default dscs-live/small)
"""
import json
import sys
from pathlib import Path


def stages(path):
    job = json.load(open(path))
    st = job["stages"]
    children = {i: [] for i in range(len(st))}
    for i, s in enumerate(st):
        for p in s.get("parents", []):
            children[p].append(i)
    out = []
    for i, s in enumerate(st):
        n = s["num_tasks"]
        d = ((s.get("shuffle") or {}).get("duration_ms") or [])[:n]
        parts = sum(st[c]["num_tasks"] for c in children[i])
        out.append((n, parts, sum(d) / 1000.0 if d else None, len(children[i])))
    return out


def main():
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "dscs-live/small")
    rows = []  # (d tasks, map tasks x d partitions, d seconds)
    for job in ["wordcount", "terasort", "kmeans", "pagerank"]:
        a, b = stages(root / f"{job}-z0.8-p20.json"), stages(root / f"{job}-z0.8-p80.json")
        for (n1, p1, t1, c1), (n2, p2, t2, _) in zip(a, b):
            # A stage read by several children (PageRank's cached links) writes once, not
            # once per child: left out.
            if t1 is None or t2 is None or (n1 == n2 and p1 == p2) or c1 > 1:
                continue
            rows.append((job, n2 - n1, n1 * (p2 - p1), t2 - t1))
    # Two-parameter least squares, x = (d tasks, map tasks x d partitions).
    sxx = sum(r[1] * r[1] for r in rows)
    syy = sum(r[2] * r[2] for r in rows)
    sxy = sum(r[1] * r[2] for r in rows)
    sxt = sum(r[1] * r[3] for r in rows)
    syt = sum(r[2] * r[3] for r in rows)
    det = sxx * syy - sxy * sxy
    o = (sxt * syy - syt * sxy) / det
    w = (syt * sxx - sxt * sxy) / det
    if w < 0:
        o, w = sxt / sxx, 0.0
    if o < 0:
        o, w = 0.0, syt / syy
    print(f"{len(rows)} stages of 4 jobs: task overhead {o * 1000:.0f} ms, "
          f"write cost {w * 1000:.2f} ms per map task and output partition")
    for job, dn, dp, dt in rows:
        pred = o * dn + w * dp
        print(f"  {job:10} d tasks {dn:4} d(map x parts) {dp:5}: {dt:7.2f} s measured, {pred:7.2f} s fitted")


if __name__ == "__main__":
    main()
