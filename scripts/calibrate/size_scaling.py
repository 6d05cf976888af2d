#!/usr/bin/env python3
"""Data-size scaling, calibrated on held-out runs (issue 14, calibration 1).

Fit on the tpch/ traces measured at SF1, SF2 and SF5; predict SF10, which was measured
and is held out; all at 2 executors. Two quantities:

- per stage, the total task time (the sum of its tasks' durations);
- per query, the JCT of the query alone on 2 executors, simulated by `mpda eval` from
  (a) the predicted SF10 trace and (b) the measured SF10 trace, with the same seeds.

Stages are matched across scale factors by structure, not by Spark's stage ids (the order
of independent scans changes between runs): a stage's label is its kind (scan or shuffle)
and the sorted labels of its parents, and stages with the same label are told apart by the
rank of their shuffle bytes (a query scans the same tables at every scale factor).

Predictors of a stage's SF10 total, each from SF1, SF2 and SF5 only:
- `sf-proportional`: SF5's total x 10/5;
- `affine-sf`: least squares a + b x SF;
- `power-sf`: least squares in log-log, c x SF^k;
- `affine-bytes`: least squares a + b x the stage's shuffle bytes (read + written), with
  SF10's bytes, which a user knows before running (they follow the input).
The predictor used for the JCTs is chosen without looking at SF10: the one whose median
error is lowest when SF1 and SF2 predict SF5.

The predicted SF10 trace keeps SF10's DAG, task counts and bytes (the data layout, known
before running) and takes each stage's duration samples from SF5, scaled so that their mean
times SF10's task count is the predicted total.

Errors are relative to the measured value; "time-weighted" is the sum of absolute errors
over the sum of measured totals (what matters for a JCT: long stages count more).

Usage: scripts/calibrate/size_scaling.py [--mpda target/release/mpda] [--out DIR]
           [--traces DIR] [--queries 1,3,5]
Writes DIR/size-scaling.md and .json (default reports/calibration/). --traces (default
tpch/) takes another trace folder with sf1, sf2, sf5 and sf10 measured at 2 executors, such
as the quiet re-measurement of scripts/calibrate/size_remeasure.sh. Standard library only.
"""
import argparse
import copy
import gzip
import json
import math
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIT = [1, 2, 5]
HELD_OUT = 10
EXECUTORS = 2


TRACES = ROOT / "tpch"


def load(sf, q):
    with gzip.open(TRACES / f"sf{sf}" / f"{q}.json.gz") as f:
        return json.load(f)


def e2(stage):
    for d in stage["durations"]:
        if d["executors"] == EXECUTORS:
            return d
    raise ValueError("no samples at 2 executors")


def total_ms(stage):
    d = e2(stage)
    return sum(d["first_wave"]) + sum(d["rest_wave"])


def shuffle_bytes(stage):
    sh = stage.get("shuffle") or {}
    return sum(sh.get("read_bytes") or []) + sum(sh.get("write_bytes") or [])


def keys(trace):
    """A structural key per stage: (label, rank among stages of that label by bytes)."""
    stages = trace["stages"]
    labels = {}

    def label(i):
        if i not in labels:
            ps = sorted(label(p) for p in stages[i]["parents"])
            labels[i] = ("scan" if not ps else "shuffle", tuple(ps))
        return labels[i]

    for i in range(len(stages)):
        label(i)
    out = {}
    by_label = {}
    for i, lab in labels.items():
        by_label.setdefault(lab, []).append(i)
    for lab, idx in by_label.items():
        idx.sort(key=lambda i: (-shuffle_bytes(stages[i]), i))
        for rank, i in enumerate(idx):
            out[i] = (repr(lab), rank)
    return out


def lstsq(xs, ys):
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        return my, 0.0
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    return my - b * mx, b


def predictors(fit_sfs, target_sf, totals, bytes_, target_bytes):
    """Each predictor's total at target_sf from the totals at fit_sfs."""
    t = [totals[s] for s in fit_sfs]
    out = {"sf-proportional": t[-1] * target_sf / fit_sfs[-1]}
    a, b = lstsq(fit_sfs, t)
    out["affine-sf"] = a + b * target_sf
    if all(v > 0 for v in t):
        la, lb = lstsq([math.log(s) for s in fit_sfs], [math.log(v) for v in t])
        out["power-sf"] = math.exp(la + lb * math.log(target_sf))
    else:
        out["power-sf"] = out["sf-proportional"]
    bx = [bytes_[s] for s in fit_sfs]
    a, b = lstsq(bx, t)
    out["affine-bytes"] = a + b * target_bytes if len(set(bx)) > 1 else out["sf-proportional"]
    return {k: max(v, 0.0) for k, v in out.items()}


def rel(pred, meas):
    return abs(pred - meas) / meas


def pct(xs, p):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * p
    lo, hi = math.floor(k), math.ceil(k)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def simulate(mpda, traces, q, seeds):
    cfg = Path(traces) / "eval.toml"
    cfg.write_text(
        f'name = "size-scaling"\n[workload]\ntraces = "{traces}"\n'
        f'arrivals = {{ kind = "batch", jobs = 1 }}\n'
        f'[sim]\nexecutors = {EXECUTORS}\nexecutor_keys = "measured"\n'
        f'[eval]\nseeds = {seeds}\nfirst_seed = 1\nschedulers = ["fifo"]\n'
    )
    out = Path(traces) / f"q{q}.json"
    subprocess.run(
        [mpda, "eval", "--config", str(cfg), "--sizes", f"sf{HELD_OUT}", "--queries", str(q),
         "--threads", "1", "--json", str(out)],
        check=True, capture_output=True)
    res = json.loads(out.read_text())
    return mean_jct(res)


def mean_jct(res):
    """Mean JCT over the episodes of `mpda eval --json` (one job per episode)."""
    eps = res["schedulers"]["fifo"]["episodes"]
    vals = [e["avg_jct_s"] for e in eps]
    return sum(vals) / len(vals)


def main():
    global TRACES
    ap = argparse.ArgumentParser()
    ap.add_argument("--mpda", default=str(ROOT / "target/release/mpda"))
    ap.add_argument("--out", default=str(ROOT / "reports/calibration"))
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--traces", default=str(TRACES))
    ap.add_argument("--queries", default=",".join(str(q) for q in range(1, 23)))
    args = ap.parse_args()
    TRACES = Path(args.traces)
    queries = [int(q) for q in args.queries.split(",")]
    sfs = FIT + [HELD_OUT]
    stages = []  # one row per matched stage
    unmatched = 0
    traces = {}
    for q in queries:
        tr = {sf: load(sf, q) for sf in sfs}
        traces[q] = tr
        ks = {sf: keys(t) for sf, t in tr.items()}
        inv = {sf: {k: i for i, k in m.items()} for sf, m in ks.items()}
        for i, k in ks[HELD_OUT].items():
            if not all(k in inv[sf] for sf in FIT):
                unmatched += 1
                continue
            idx = {sf: inv[sf][k] for sf in sfs}
            st = {sf: tr[sf]["stages"][idx[sf]] for sf in sfs}
            stages.append({
                "query": q, "key": k, "index": idx,
                "total_ms": {sf: total_ms(st[sf]) for sf in sfs},
                "bytes": {sf: shuffle_bytes(st[sf]) for sf in sfs},
                "tasks": {sf: st[sf]["num_tasks"] for sf in sfs},
            })
    names = ["sf-proportional", "affine-sf", "power-sf", "affine-bytes"]
    errs = {n: [] for n in names}
    abs_err = {n: 0.0 for n in names}
    measured_sum = 0.0
    sel_errs = {n: [] for n in names}
    for s in stages:
        t, b = s["total_ms"], s["bytes"]
        if t[HELD_OUT] <= 0 or t[5] <= 0:
            continue
        p = predictors(FIT, HELD_OUT, t, b, b[HELD_OUT])
        s["pred_ms"] = p
        measured_sum += t[HELD_OUT]
        for n in names:
            errs[n].append(rel(p[n], t[HELD_OUT]))
            abs_err[n] += abs(p[n] - t[HELD_OUT])
        ps = predictors([1, 2], 5, t, b, b[5])
        for n in names:
            sel_errs[n].append(rel(ps[n], t[5]))
    chosen = min(names, key=lambda n: statistics.median(sel_errs[n]))

    # Per-query JCTs: the predicted SF10 trace against the measured one, both simulated.
    jct = []
    with tempfile.TemporaryDirectory() as tmp:
        meas_dir, pred_dir = Path(tmp) / "measured", Path(tmp) / "predicted"
        for d in (meas_dir, pred_dir):
            (d / f"sf{HELD_OUT}").mkdir(parents=True)
        by_q = {}
        for s in stages:
            by_q.setdefault(s["query"], []).append(s)
        for q in queries:
            t10 = traces[q][HELD_OUT]
            t5 = traces[q][5]
            pred = copy.deepcopy(t10)
            matched = {s["index"][HELD_OUT]: s for s in by_q.get(q, []) if "pred_ms" in s}
            if len(matched) != len(t10["stages"]):
                continue  # a stage without a prediction: leave the query out
            for i, st in enumerate(pred["stages"]):
                s = matched[i]
                src = e2(t5["stages"][s["index"][5]])
                samples = src["first_wave"] + src["rest_wave"]
                mean5 = sum(samples) / len(samples)
                factor = s["pred_ms"][chosen] / (mean5 * st["num_tasks"]) if mean5 > 0 else 1.0
                scaled = {k: [max(1, round(v * factor)) for v in src[k]]
                          for k in ("first_wave", "rest_wave", "fresh")}
                for d in st["durations"]:
                    if d["executors"] == EXECUTORS:
                        d.update(scaled)
                # Keep only the 2-executor samples: that is what is predicted.
                st["durations"] = [d for d in st["durations"] if d["executors"] == EXECUTORS]
            meas = copy.deepcopy(t10)
            for st in meas["stages"]:
                st["durations"] = [d for d in st["durations"] if d["executors"] == EXECUTORS]
            for d, tr in ((meas_dir, meas), (pred_dir, pred)):
                with gzip.open(d / f"sf{HELD_OUT}" / f"{q}.json.gz", "wt") as f:
                    json.dump(tr, f)
        for q in queries:
            if not (pred_dir / f"sf{HELD_OUT}" / f"{q}.json.gz").exists():
                continue
            m = simulate(args.mpda, meas_dir, q, args.seeds)
            p = simulate(args.mpda, pred_dir, q, args.seeds)
            jct.append({"query": q, "measured_trace_s": m, "predicted_trace_s": p,
                        "rel_err": rel(p, m)})

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    summary = {
        "traces": str(TRACES), "queries": queries,
        "fit": FIT, "held_out": HELD_OUT, "executors": EXECUTORS,
        "stages_matched": len(stages), "stages_unmatched": unmatched,
        "stage_total_error": {n: {"median": statistics.median(errs[n]),
                                  "p90": pct(errs[n], 0.9), "n": len(errs[n]),
                                  "time_weighted": abs_err[n] / measured_sum} for n in names},
        "selection_error_sf5": {n: statistics.median(sel_errs[n]) for n in names},
        "chosen": chosen,
        "jct": jct,
        "jct_error": {"median": statistics.median([j["rel_err"] for j in jct]),
                      "p90": pct([j["rel_err"] for j in jct], 0.9), "n": len(jct)},
    }
    (out / "size-scaling.json").write_text(json.dumps(summary, indent=1) + "\n")
    lines = [
        "# Data-size scaling: fit SF1, SF2, SF5; predict the held-out SF10 (2 executors)", "",
        f"Traces: `{TRACES}`, queries {', '.join(f'q{q}' for q in queries)}.", "",
        f"{len(stages)} stages matched across the four scale factors ({unmatched} not matched).",
        "Relative error of each stage's total task time at SF10:", "",
        "| predictor | median | p90 | time-weighted | chosen on SF1+SF2 -> SF5 (median) |",
        "|---|---:|---:|---:|---:|"]
    for n in names:
        e = summary["stage_total_error"][n]
        mark = " (chosen)" if n == chosen else ""
        lines.append(f"| {n}{mark} | {100 * e['median']:.1f}% | {100 * e['p90']:.1f}% | "
                     f"{100 * e['time_weighted']:.1f}% | "
                     f"{100 * summary['selection_error_sf5'][n]:.1f}% |")
    je = summary["jct_error"]
    lines += ["", f"Per-query JCT alone on 2 executors (`mpda eval`, fifo, {args.seeds} seeds), "
              f"the `{chosen}` prediction against the measured SF10 trace: median "
              f"{100 * je['median']:.1f}%, p90 {100 * je['p90']:.1f}% over {je['n']} queries.", "",
              "| query | JCT from the measured trace (s) | from the predicted trace (s) | error |",
              "|---|---:|---:|---:|"]
    for j in jct:
        lines.append(f"| q{j['query']} | {j['measured_trace_s']:.1f} | {j['predicted_trace_s']:.1f} | "
                     f"{100 * j['rel_err']:.1f}% |")
    (out / "size-scaling.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
