#!/usr/bin/env python3
"""Compares the GPU check's runs (scripts/gpu/check.sh): losses and entropies of the GPU
(cuda or wgpu) and CPU learners, and the speed of each device. Standard library only: the GPU machine has
Python but nothing may be installed there.

Tolerances, and why:
- Iteration 1 rolls out the same initial weights through the same host path on both
  devices, so its rollouts must be identical (decisions and training JCT equal). Its losses
  and entropy differ only by the order of floating-point reductions in the learner (GPU
  kernels against Burn's flex CPU kernels), so they must agree to
  |gpu - cpu| <= 1e-4 + 1e-3 * |cpu|.
- From iteration 2 on, the weights differ by that rounding, and a sampled action near a
  probability boundary can differ, so whole rollouts can diverge: entropy must stay within
  5% and the rest is reported, not checked.
Exit status 1 if a check fails or a run is missing.
"""
import csv, json, os, sys

out = sys.argv[1]
gpu = sys.argv[2] if len(sys.argv) > 2 else "cuda"


def rows(run):
    for name in ("check-host", "check-batched"):
        f = os.path.join(out, run, name, "metrics.csv")
        if os.path.exists(f):
            with open(f) as fh:
                return [r for r in csv.DictReader(fh) if int(r["iteration"]) > 0]
    return None


def mean(xs):
    return sum(xs) / len(xs) if xs else float("nan")


def speed(rs):
    """Per-iteration times: the first iteration alone (it pays the GPU's kernel compilation)
    and the mean of the others."""
    if not rs:
        return None
    rest = rs[1:] or rs
    r = lambda k, xs: mean([float(x[k]) for x in xs])
    return {
        "first_rollout_s": float(rs[0]["rollout_s"]),
        "first_learn_s": float(rs[0]["learn_s"]),
        "rollout_s": r("rollout_s", rest),
        "learn_s": r("learn_s", rest),
        "iterations_per_s": 1.0 / (r("rollout_s", rest) + r("learn_s", rest)),
        "decisions_per_s": r("decisions_per_s", rest),
        "inference_thread_s": r("inference_s", rest),
        "gradient_steps": r("gradient_steps", rest),
        "eval_s_total": sum(float(x["eval_s"]) for x in rs),
        "iterations": len(rs),
    }


dev, cpu = rows("gpu"), rows("cpu")
failures = []
checks = []
if not dev:
    failures.append(f"the {gpu} run wrote no iterations (see gpu.log)")
if not cpu:
    failures.append("the CPU run wrote no iterations (see cpu.log)")
if dev and cpu:
    a, b = dev[0], cpu[0]
    for k in ("decisions", "train_avg_jct_s"):
        ok = a[k] == b[k]
        checks.append((1, k, a[k], b[k], "equal", ok))
    for k in ("policy_loss", "value_loss", "entropy", "approx_kl", "grad_norm"):
        x, y = float(a[k]), float(b[k])
        ok = abs(x - y) <= 1e-4 + 1e-3 * abs(y)
        checks.append((1, k, x, y, "1e-4 + 1e-3|cpu|", ok))
    for a, b in zip(dev[1:], cpu[1:]):
        x, y = float(a["entropy"]), float(b["entropy"])
        checks.append((int(a["iteration"]), "entropy", x, y, "5%", abs(x - y) <= 0.05 * abs(y)))
        for k in ("policy_loss", "train_avg_jct_s"):
            checks.append((int(a["iteration"]), k, float(a[k]), float(b[k]), "reported", True))
    failures += [f"iteration {i}: {k} {gpu} {x} cpu {y} (tolerance {t})"
                 for i, k, x, y, t, ok in checks if not ok]

summary = {
    "gpu": gpu,
    "machine": open(os.path.join(out, "machine.txt")).read(),
    "steps": open(os.path.join(out, "steps.txt")).read() if os.path.exists(os.path.join(out, "steps.txt")) else "",
    "speed": {run: speed(rows(run)) for run in ("gpu", "cpu", "gpu-batched", "cpu-batched")},
    "checks": [dict(iteration=i, metric=k, gpu=x, cpu=y, tolerance=t, ok=ok)
               for i, k, x, y, t, ok in checks],
    "failures": failures,
}
tmp = os.path.join(out, "summary.json.tmp")
with open(tmp, "w") as f:
    json.dump(summary, f, indent=2)
os.replace(tmp, os.path.join(out, "summary.json"))

lines = [f"# GPU check ({gpu} against cpu)", "", "```", summary["machine"].strip(), summary["steps"].strip(), "```", "",
         "| run | iterations | first iteration rollout / learn s | rollout s | learn s | it/s | decisions/s | inference thread-s |",
         "|---|---|---|---|---|---|---|---|"]
for run, s in summary["speed"].items():
    if s:
        lines.append(f"| {run} | {s['iterations']} | {s['first_rollout_s']:.2f} / {s['first_learn_s']:.2f} | "
                     f"{s['rollout_s']:.2f} | {s['learn_s']:.2f} | {s['iterations_per_s']:.3f} | "
                     f"{s['decisions_per_s']:.0f} | {s['inference_thread_s']:.2f} |")
    else:
        lines.append(f"| {run} | none | | | | | | |")
lines += ["", f"| iteration | metric | {gpu} | cpu | tolerance | ok |", "|---|---|---|---|---|---|"]
lines += [f"| {i} | {k} | {x} | {y} | {t} | {'yes' if ok else 'NO'} |" for i, k, x, y, t, ok in checks]
lines += ["", "failures: " + ("; ".join(failures) if failures else "none")]
tmp = os.path.join(out, "summary.md.tmp")
with open(tmp, "w") as f:
    f.write("\n".join(lines) + "\n")
os.replace(tmp, os.path.join(out, "summary.md"))
print("\n".join(lines))
sys.exit(1 if failures else 0)
