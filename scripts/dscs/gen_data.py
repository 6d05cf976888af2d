#!/usr/bin/env python3
"""Deterministic input generators for the DSCS workloads (WordCount, TeraSort, k-means,
PageRank) with controlled key skew.

Every data set is a folder ROOT/<job>-z<skew>/ holding text files part-00000.txt ... and a
params.json (parameters, sizes, seed, and the heaviest keys with their shares). Jobs read
the glob ROOT/<job>-z<skew>/part-* (Spark's textFile), so params.json is never read as data.

Skew: the skew level is used directly as the exponent s of a Zipf law over the job's keys:
the key of rank r (1-based) has probability r^-s / sum_j j^-s; s = 0 is uniform. Ranks are
mapped to keys by a permutation that depends only on the seed (not on s), so the heaviest
key is the same key at every skew level.

  WordCount  lines of W words; each word drawn from a vocabulary of K distinct lowercase
             words with Zipf(s) frequencies.
  TeraSort   100-byte records: a 10-char key (4-char prefix drawn from K prefixes with
             Zipf(s) frequencies + 6 uniform random chars) and a 90-byte value (89 chars:
             12-digit row id + 77 filler chars, then the newline).
  k-means    N points in d dimensions from c spherical Gaussians (sigma), cluster sizes
             ~ Multinomial(N, Zipf(s) over the c clusters); points shuffled.
  PageRank   E directed edges "src dst" over V vertices: each edge's source is drawn with
             Zipf(s) over the V vertices (so out-degrees follow a power law), its destination
             uniformly (self-loops moved to the next vertex).

Usage:
  gen_data.py --job all --skew 0.2,0.4,0.6,0.8 [--root DIR] [--seed 42] [--scale 1.0]
"""

import argparse
import json
import os
import shutil
import sys
import time

import numpy as np

DEFAULT_ROOT = os.path.join(os.environ.get("DSCS_WORK", "/work/spark-runs/dscs"), "data")
JOB_IDS = {"wordcount": 1, "terasort": 2, "kmeans": 3, "pagerank": 4}
GENERATOR_VERSION = 1

# Default sizes at --scale 1 (chosen so that one job runs 20-90 s on local-cluster[2,1,1024]
# on this 2-core machine; see README.md).
DEFAULTS = {
    "wordcount": {"files": 16, "words": 16_000_000, "vocab": 1000, "words_per_line": 10},
    "terasort": {"files": 16, "records": 4_000_000, "prefixes": 1000},
    "kmeans": {"files": 16, "points": 1_000_000, "dims": 10, "clusters": 20, "sigma": 4.0,
               "box": 100.0},
    "pagerank": {"files": 16, "vertices": 100_000, "edges": 1_000_000},
}

# sorted printable alphabet, so byte order = string order
ALPHABET = np.frombuffer(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", np.uint8)
ALPHABET = np.sort(np.concatenate([np.frombuffer(b"+/", np.uint8), ALPHABET]))  # 64 chars


def skew_label(s):
    return ("%g" % s)


def zipf_weights(n, s):
    r = np.arange(1, n + 1, dtype=np.float64)
    w = r ** (-float(s))
    return w / w.sum()


def rngs(seed, job, skew):
    """(rng_job, rng_data): rng_job depends on (seed, job) only (vocabulary, prefix table,
    rank -> key permutation, cluster centres); rng_data also on the skew level."""
    rj = np.random.default_rng(np.random.SeedSequence([seed, JOB_IDS[job]]))
    rd = np.random.default_rng(np.random.SeedSequence([seed, JOB_IDS[job], int(round(skew * 1000))]))
    return rj, rd


def split_even(n, parts):
    base, extra = divmod(n, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def top_keys(counts, keys, n=10):
    order = np.argsort(-counts, kind="stable")[:n]
    tot = counts.sum()
    return [{"key": keys[i], "count": int(counts[i]), "share": round(float(counts[i]) / tot, 5)}
            for i in order]


def write_part(out, i, data):
    with open(os.path.join(out, "part-%05d.txt" % i), "wb") as f:
        f.write(data)


# ------------------------------------------------------------------------------------------

def gen_wordcount(out, p, s, seed):
    rj, rd = rngs(seed, "wordcount", s)
    K = p["vocab"]
    vocab = []
    seen = set()
    while len(vocab) < K:
        L = int(rj.integers(4, 11))
        w = "".join(chr(97 + int(c)) for c in rj.integers(0, 26, L))
        if w not in seen:
            seen.add(w)
            vocab.append(w)
    perm = rj.permutation(K)  # rank r -> word vocab[perm[r]]
    weights = zipf_weights(K, s)
    words_of_rank = np.array([vocab[perm[r]] for r in range(K)], dtype=object)
    W = p["words_per_line"]
    counts = np.zeros(K, np.int64)
    nbytes = 0
    for i, n in enumerate(split_even(p["words"], p["files"])):
        n -= n % W
        ranks = rd.choice(K, size=n, p=weights)
        counts += np.bincount(ranks, minlength=K)
        ws = words_of_rank[ranks].reshape(-1, W)
        text = "\n".join(" ".join(row) for row in ws) + "\n"
        data = text.encode()
        nbytes += len(data)
        write_part(out, i, data)
    return {
        "records": int(counts.sum()), "record": "word", "bytes": nbytes,
        "lines": int(counts.sum()) // W,
        "top_keys": top_keys(counts, list(words_of_rank)),
        "distinct_keys_present": int((counts > 0).sum()),
    }


def gen_terasort(out, p, s, seed):
    rj, rd = rngs(seed, "terasort", s)
    K = p["prefixes"]
    table = set()
    while len(table) < K:
        table.add(bytes(ALPHABET[rj.integers(0, 64, 4)]))
    prefixes = sorted(table)
    perm = rj.permutation(K)  # rank r -> prefix prefixes[perm[r]] (heavy prefixes spread over the key range)
    ptab = np.frombuffer(b"".join(prefixes[perm[r]] for r in range(K)), np.uint8).reshape(K, 4)
    weights = zipf_weights(K, s)
    counts = np.zeros(K, np.int64)
    nbytes = 0
    row0 = 0
    fill = np.arange(77, dtype=np.int64)
    for i, n in enumerate(split_even(p["records"], p["files"])):
        ranks = rd.choice(K, size=n, p=weights)
        counts += np.bincount(ranks, minlength=K)
        a = np.empty((n, 100), np.uint8)
        a[:, 0:4] = ptab[ranks]
        a[:, 4:10] = ALPHABET[rd.integers(0, 64, (n, 6))]
        rowid = np.arange(row0, row0 + n, dtype=np.int64)
        for j in range(12):
            a[:, 10 + j] = 48 + (rowid // 10 ** (11 - j)) % 10
        a[:, 22:99] = 65 + (rowid[:, None] + fill[None, :]) % 26
        a[:, 99] = 10
        data = a.tobytes()
        nbytes += len(data)
        write_part(out, i, data)
        row0 += n
    return {
        "records": int(row0), "record": "100-byte line (10-byte key, 89-byte value + newline)",
        "bytes": nbytes,
        "top_keys": top_keys(counts, [prefixes[perm[r]].decode() for r in range(K)]),
        "key_prefix_chars": 4,
    }


def gen_kmeans(out, p, s, seed):
    rj, rd = rngs(seed, "kmeans", s)
    c, d, N = p["clusters"], p["dims"], p["points"]
    centers = rj.uniform(-p["box"] / 2, p["box"] / 2, (c, d))
    perm = rj.permutation(c)  # rank r -> cluster perm[r]
    w = np.empty(c)
    w[perm] = zipf_weights(c, s)
    sizes = rd.multinomial(N, w)
    labels = np.repeat(np.arange(c), sizes)
    rd.shuffle(labels)
    nbytes = 0
    start = 0
    for i, n in enumerate(split_even(N, p["files"])):
        lab = labels[start:start + n]
        pts = centers[lab] + rd.normal(0.0, p["sigma"], (n, d))
        lines = np.char.mod("%.3f", np.round(pts, 3))
        text = "\n".join(" ".join(row) for row in lines.tolist()) + "\n"
        data = text.encode()
        nbytes += len(data)
        write_part(out, i, data)
        start += n
    return {
        "records": N, "record": "point (d floats, space separated)", "bytes": nbytes,
        "cluster_sizes": [int(x) for x in sizes],
        "centers": np.round(centers, 3).tolist(),
        "top_keys": top_keys(sizes, list(range(c))),
    }


def gen_pagerank(out, p, s, seed):
    rj, rd = rngs(seed, "pagerank", s)
    V, E = p["vertices"], p["edges"]
    perm = rj.permutation(V)  # rank r -> vertex perm[r]
    weights = zipf_weights(V, s)
    outdeg = np.zeros(V, np.int64)
    nbytes = 0
    for i, n in enumerate(split_even(E, p["files"])):
        src = perm[rd.choice(V, size=n, p=weights)]
        dst = rd.integers(0, V, n)
        dst = np.where(dst == src, (dst + 1) % V, dst)
        outdeg += np.bincount(src, minlength=V)
        text = "\n".join(f"{a} {b}" for a, b in zip(src.tolist(), dst.tolist())) + "\n"
        data = text.encode()
        nbytes += len(data)
        write_part(out, i, data)
    return {
        "records": E, "record": "edge 'src dst'", "bytes": nbytes,
        "vertices_with_out_edges": int((outdeg > 0).sum()),
        "max_out_degree": int(outdeg.max()), "mean_out_degree": round(E / V, 3),
        "top_keys": top_keys(outdeg, list(range(V))),
    }


GENERATORS = {"wordcount": gen_wordcount, "terasort": gen_terasort,
              "kmeans": gen_kmeans, "pagerank": gen_pagerank}


def params_for(job, scale, overrides):
    p = dict(DEFAULTS[job])
    for k in p:
        if k in ("words", "records", "points", "edges", "vertices") and scale != 1.0:
            p[k] = max(1000, int(p[k] * scale))
    for kv in overrides:
        j, _, rest = kv.partition(".")
        k, _, v = rest.partition("=")
        if j == job:
            if k not in p:
                sys.exit(f"unknown parameter {job}.{k}")
            p[k] = type(p[k])(float(v)) if isinstance(p[k], (int, float)) else v
    return p


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--job", default="all", help="wordcount,terasort,kmeans,pagerank or all")
    ap.add_argument("--skew", default="0.2,0.4,0.6,0.8", help="Zipf exponents, comma separated")
    ap.add_argument("--root", default=DEFAULT_ROOT, help=f"data root (default {DEFAULT_ROOT})")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--scale", type=float, default=1.0, help="multiplies the record counts")
    ap.add_argument("--set", action="append", default=[], metavar="JOB.PARAM=V",
                    help="override a parameter, e.g. kmeans.points=500000 (repeatable)")
    ap.add_argument("--force", action="store_true", help="regenerate even if params.json matches")
    args = ap.parse_args(argv)
    jobs = list(JOB_IDS) if args.job == "all" else [j.strip() for j in args.job.split(",")]
    skews = [float(x) for x in args.skew.split(",") if x.strip()]
    for job in jobs:
        if job not in JOB_IDS:
            sys.exit(f"unknown job {job}")
        for s in skews:
            p = params_for(job, args.scale, args.set)
            out = os.path.join(os.path.abspath(args.root), f"{job}-z{skew_label(s)}")
            meta_path = os.path.join(out, "params.json")
            if not args.force and os.path.exists(meta_path):
                with open(meta_path) as f:
                    old = json.load(f)
                if old.get("parameters") == p and old.get("seed") == args.seed and \
                        old.get("generator_version") == GENERATOR_VERSION:
                    print(f"{out}: up to date ({old['bytes'] / 1e6:.1f} MB)")
                    continue
            if os.path.exists(out):
                shutil.rmtree(out)
            os.makedirs(out)
            t0 = time.time()
            stats = GENERATORS[job](out, p, s, args.seed)
            meta = {
                "job": job, "skew": s, "zipf_exponent": s, "seed": args.seed,
                "generator": "scripts/dscs/gen_data.py", "generator_version": GENERATOR_VERSION,
                "parameters": p, "files": p["files"], "glob": os.path.join(out, "part-*"),
                "gen_seconds": round(time.time() - t0, 2),
                "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            }
            meta.update(stats)
            tmp = meta_path + ".tmp"
            with open(tmp, "w") as f:
                json.dump(meta, f, indent=1)
            os.replace(tmp, meta_path)
            top = meta["top_keys"][0]
            print(f"{out}: {meta['records']} records, {meta['bytes'] / 1e6:.1f} MB, "
                  f"heaviest key {top['key']!r} {100 * top['share']:.2f}%, {meta['gen_seconds']} s",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
