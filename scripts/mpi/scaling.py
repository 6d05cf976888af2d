#!/usr/bin/env python3
"""Summarises scripts/mpi/scaling.sh: iterations per second at 1 and 2 ranks, where the
time went, and a projection to 16 and 64 ranks from measured parts.

Model, per iteration on one rank of N (mpda-decima-batch20: P = 16 rollouts, about 9
gradient steps of 1024 decisions):
- rollouts: the 1-rank rollout time x ceil(P / N) / P (episodes of similar length; at most
  P ranks have work, so nothing is gained past N = P);
- trajectory exchange: the 2-rank run's extra rollout-phase time over half the 1-rank one
  (encoding, transfer, and every rank decoding every trajectory: constant in N), plus the
  whole batch's bytes over the network;
- learning: from the sweep, learn_s of one thread computing N shards one after the other,
  divided by N: what each of N ranks computes (the per-step host work, clipping and Adam,
  is counted once and divided by N too, so this is slightly optimistic);
- gradient exchange: per step, an all-gather of every rank's gradient part (all-gather, not
  all-reduce, to keep the summation order fixed): (N - 1) parts over the network, plus a
  latency per ring step (2 all-gathers, ceil(log2 N) steps each).
Standard library only.
"""
import csv
import json
import math
import re
import sys
from pathlib import Path

BANDWIDTH = 1.25e9  # bytes/s: 10 Gb/s Ethernet
LATENCY = 50e-6  # s per message step on such a network


def rows(path):
    with open(path) as f:
        return [r for r in csv.DictReader(f) if int(r["iteration"]) > 0]


def summary(out, name):
    m = out / f"{name}.metrics.csv"
    if not m.exists():
        return None
    rs = rows(m)[1:]  # iteration 1 warms caches and allocators: left out
    if not rs:
        return None
    mean = lambda k: sum(float(r[k]) for r in rs) / len(rs)
    s = {
        "iterations": len(rs),
        "rollout_s": mean("rollout_s"),
        "learn_s": mean("learn_s"),
        "gradient_steps": mean("gradient_steps"),
        "decisions": mean("decisions"),
    }
    s["iteration_s"] = s["rollout_s"] + s["learn_s"]
    s["iterations_per_s"] = 1.0 / s["iteration_s"]
    log = (out / f"{name}.log").read_text() if (out / f"{name}.log").exists() else ""
    mm = re.search(
        r"received trajectories ([\d.]+) MB in ([\d.]+) s \((\d+) all-gathers\), "
        r"gradients ([\d.]+) MB in ([\d.]+) s \((\d+) all-gathers\)",
        log,
    )
    if mm:
        its = len(rs) + 1
        s["traj_mb_per_iter"] = float(mm[1]) / its
        s["traj_comm_s_per_iter"] = float(mm[2]) / its
        s["grad_mb_per_iter"] = float(mm[4]) / its
        s["grad_comm_s_per_iter"] = float(mm[5]) / its
    return s


def main():
    out = Path(sys.argv[1])
    order = lambda name: (name.startswith("sweep"), name.endswith("-tcp"),
                          int("".join(c for c in name if c.isdigit()) or 1), name)
    names = sorted((f.name[: -len(".metrics.csv")] for f in out.glob("*.metrics.csv")
                    if not f.name.startswith("sweep")), key=order)
    res = {n: summary(out, n) for n in names}
    one, two = res["1rank"], res["2ranks"]
    if not one or not two:
        sys.exit("scaling.py: the 1rank and 2ranks runs are needed")
    sweep = {1: one["learn_s"]}
    for f in sorted(out.glob("sweep*.metrics.csv"),
                    key=lambda f: int(f.name[len("sweep"):].split(".")[0])):
        n = int(f.name[len("sweep"):].split(".")[0])
        s = summary(out, f"sweep{n}")
        if s:
            sweep[n] = s["learn_s"]
            res[f"sweep{n}"] = s
    plans = 16
    steps = two["gradient_steps"]
    b_traj = two.get("traj_mb_per_iter", 0.0) * 1e6
    g_part = two.get("grad_mb_per_iter", 0.0) * 1e6 / max(steps, 1) / 2
    exchange = max(two["rollout_s"] - one["rollout_s"] / 2, 0.0)
    proj = {}
    for n in sorted(sweep):
        roll = one["rollout_s"] * math.ceil(plans / n) / plans
        learn = sweep[n] / n
        net = 0.0
        serial = 0.0
        if n > 1:
            serial = exchange
            net = b_traj / BANDWIDTH + steps * ((n - 1) * g_part / BANDWIDTH
                                                + 2 * math.ceil(math.log2(n)) * LATENCY)
        t = roll + serial + learn + net
        proj[n] = {"iteration_s": t, "iterations_per_s": 1 / t,
                   "speedup": one["iteration_s"] / t, "rollout_s": roll,
                   "exchange_s": serial, "learn_s": learn, "network_s": net}
    data = {
        "runs": res,
        "model": {"plans": plans, "gradient_steps": steps,
                  "traj_bytes_per_iter": b_traj, "grad_bytes_per_part": g_part,
                  "exchange_serial_s": exchange,
                  "bandwidth_bytes_per_s": BANDWIDTH, "latency_s": LATENCY},
        "projection": proj,
    }
    (out / "results.json").write_text(json.dumps(data, indent=2) + "\n")
    machine = (out / "machine.txt").read_text().strip() if (out / "machine.txt").exists() else ""
    lines = ["# Data-parallel scaling of `mpda train` (mpda-decima-batch20)", "",
             "```", machine, "```", "",
             "Mean over iterations 2.. of each run (iteration 1 warms up); rollout and learning",
             "phases from metrics.csv, exchange from rank 0's `MPI:` line.", "",
             "| run | iterations/s | iteration (s) | rollout (s) | learn (s) | speed-up vs 1 rank | trajectories received (MB/iter, s/iter) | gradients received (MB/iter, s/iter) |",
             "|---|---|---|---|---|---|---|---|"]
    for n, s in res.items():
        if not s:
            continue
        tr = (f"{s['traj_mb_per_iter']:.1f}, {s['traj_comm_s_per_iter']:.3f}"
              if "traj_mb_per_iter" in s else "-")
        gr = (f"{s['grad_mb_per_iter']:.1f}, {s['grad_comm_s_per_iter']:.3f}"
              if "grad_mb_per_iter" in s else "-")
        lines.append(f"| {n} | {s['iterations_per_s']:.3f} | {s['iteration_s']:.2f} | "
                     f"{s['rollout_s']:.2f} | {s['learn_s']:.2f} | "
                     f"{one['iteration_s'] / s['iteration_s']:.2f}x | {tr} | {gr} |")
    lines += ["", "## Projection", "",
              f"{plans} rollouts and {steps:.1f} gradient steps per iteration; "
              f"{b_traj / 1e6:.1f} MB of trajectories per iteration (constant serial "
              f"exchange {exchange:.2f} s measured at 2 ranks), {g_part / 1e3:.0f} KB per "
              f"gradient part; network {BANDWIDTH * 8 / 1e9:.0f} Gb/s, "
              f"{LATENCY * 1e6:.0f} us per message step. Learning per rank from the sweep.", "",
              "| ranks | rollout (s) | exchange (s) | learn (s) | network (s) | iteration (s) | iterations/s | speed-up | measured on one machine |",
              "|---|---|---|---|---|---|---|---|---|"]
    for n, p in proj.items():
        m = res.get("1rank" if n == 1 else f"{n}ranks")
        seen = (f"{m['iteration_s']:.3f} s, {one['iteration_s'] / m['iteration_s']:.2f}x"
                if m else "-")
        lines.append(f"| {n} | {p['rollout_s']:.3f} | {p['exchange_s']:.3f} | "
                     f"{p['learn_s']:.3f} | {p['network_s']:.3f} | {p['iteration_s']:.3f} | "
                     f"{p['iterations_per_s']:.2f} | {p['speedup']:.2f}x | {seen} |")
    (out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
