#!/usr/bin/env python3
"""The data term of Spark's engine, checked on measured tasks (docs/simulator.md).

Spark's engine scales a task's sampled duration by its data over its stage's mean data
(`sample x bytes / mean bytes`) when data is generated with skew. This script asks whether
that holds for real tasks: within a stage, is a task's duration proportional to the bytes
it reads (storage input + shuffle read)?

Fit on the runs at one executor count and test on the held-out runs at the other, per stage
(tasks of one stage, one run = one fit group), three predictors of a task's duration:
  mean:         the stage's mean duration (what a bytes-blind sampler does on average);
  proportional: mean duration x bytes / mean bytes (the engine's data term);
  affine:       a + b x bytes, least squares on the fitting run, clamped at 0.
Only stages with at least 4 tasks and bytes that vary (max/min >= 1.5) are kept: elsewhere
the three are the same. First-wave tasks (JVM warm-up, first task per executor) are left
out, as the engine draws them from their own wave.

  scripts/calibrate/data_term.py [TRACE_DIR ...]   (default: tpch-live/sf0.1)

Prints median and 90th-percentile relative errors of per-task durations and writes nothing.
"""
import gzip
import json
import statistics
import sys
from pathlib import Path


def runs_of(stage, tasks):
    """Splits a stage's per-task arrays into runs of `tasks` entries."""
    sh = stage.get("shuffle") or {}
    d = sh.get("duration_ms") or []
    if not d:
        return []
    rb, ib, ex = sh["read_bytes"], sh.get("input_bytes") or [0] * len(d), sh.get("executor") or [""] * len(d)
    out = []
    for r in range(len(d) // tasks):
        sl = slice(r * tasks, (r + 1) * tasks)
        seen = set()
        rows = []
        for dur, a, b, e in zip(d[sl], rb[sl], ib[sl], ex[sl]):
            first = e not in seen
            seen.add(e)
            rows.append((dur, a + b, first))
        out.append(rows)
    return out


def rel(pred, real):
    return abs(pred - real) / max(real, 1)


def main():
    dirs = [Path(p) for p in sys.argv[1:]] or [Path("tpch-live/sf0.1")]
    errs = {"mean": [], "proportional": [], "affine": []}
    stages = 0
    for d in dirs:
        for f in sorted(d.glob("*.json*")):
            opener = gzip.open if f.suffix == ".gz" else open
            job = json.load(opener(f))
            for st in job["stages"]:
                runs = runs_of(st, st["num_tasks"])
                if len(runs) != 2 or st["num_tasks"] < 4:
                    continue
                rest = [[(t, b) for t, b, first in r if not first] for r in runs]
                if any(len(r) < 3 for r in rest):
                    continue
                bs = [b for _, b in rest[0]]
                if min(bs) <= 0 or max(bs) / min(bs) < 1.5:
                    continue
                stages += 1
                for fit, test in ((rest[0], rest[1]), (rest[1], rest[0])):
                    mt = statistics.fmean(t for t, _ in fit)
                    mb = statistics.fmean(b for _, b in fit)
                    sxx = sum((b - mb) ** 2 for _, b in fit)
                    slope = sum((b - mb) * (t - mt) for t, b in fit) / sxx if sxx > 0 else 0.0
                    icept = mt - slope * mb
                    # The test run's own stage mean stands for the duration sample the engine
                    # would draw; the question is only how bytes redistribute it over tasks.
                    tt = statistics.fmean(t for t, _ in test)
                    tb = statistics.fmean(b for _, b in test)
                    for t, b in test:
                        errs["mean"].append(rel(tt, t))
                        errs["proportional"].append(rel(tt * b / tb, t))
                        errs["affine"].append(rel(max(0.0, icept + slope * b) * tt / max(mt, 1), t))
    print(f"stages with varying data: {stages}, tasks tested: {len(errs['mean'])}")
    for k, v in errs.items():
        if not v:
            continue
        v = sorted(v)
        p90 = v[min(len(v) - 1, int(0.9 * len(v)))]
        print(f"{k:>13}: median {statistics.median(v):.1%}, p90 {p90:.1%}")


if __name__ == "__main__":
    main()
