#!/usr/bin/env python3
"""One DSCS workload (WordCount, TeraSort, k-means or PageRank) as one Spark application on
PySpark, with the event log on, following scripts/tpch/run_tpch.py's conventions.

The parent process writes OUT/runs.json and runs the application in a child process (own
driver JVM; master local-cluster[N,1,MB] gives N fresh 1-core executor JVMs). Every Spark job
of the application carries spark.jobGroup.id = NAME, so `mpda trace import` names the trace
NAME (e.g. wordcount-z0.8-p20).

Outputs under --out (one directory per run):
  eventlogs/        the application's event log (plain JSON lines, one file app-<id>)
  logs/NAME.log     stdout/stderr of the child (Spark's console log)
  results/NAME.json the job's result summary (wall time, counts, heavy keys, ...)
  runs.json         manifest: settings + one entry (app id, event log, times, status)

Example:
  SPARK_LOCAL_IP=127.0.0.1 nice -n 19 /work/spark-runs/.venv-tpch/bin/python jobs.py \
      --job wordcount --skew 0.8 --partitions 20 --out /work/spark-runs/dscs/runs/x
"""

import argparse
import datetime as _dt
import glob
import json
import math
import os
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_WORK = os.environ.get("DSCS_WORK", "/work/spark-runs/dscs")
JOBS = ("wordcount", "terasort", "kmeans", "pagerank")


def skew_label(s):
    return "%g" % s


def default_name(a):
    n = f"{a.job}-z{skew_label(a.skew)}-p{a.partitions}"
    if a.api == "df":
        n += "-df"
    if a.aqe:
        n += "-aqe"
    if a.combine:
        n += "-combine"
    if a.salt or a.salt_above:
        n += "-salt"
    return n


def spark_conf(a, out):
    conf = {
        "spark.eventLog.enabled": "true",
        "spark.eventLog.dir": "file://" + os.path.join(out, "eventlogs"),
        "spark.eventLog.compress": "false",
        "spark.eventLog.rolling.enabled": "false",
        "spark.default.parallelism": str(a.partitions),
        "spark.sql.shuffle.partitions": str(a.partitions),
        "spark.sql.adaptive.enabled": "true" if a.aqe else "false",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.driver.memory": a.driver_memory,
        "spark.executor.memory": f"{a.executor_mb}m",
        "spark.scheduler.minRegisteredResourcesRatio": "1.0",
        "spark.scheduler.maxRegisteredResourcesWaitingTime": "120s",
    }
    if a.aqe:
        conf.update({
            "spark.sql.adaptive.coalescePartitions.enabled": "true",
            "spark.sql.adaptive.skewJoin.enabled": "true",
            "spark.sql.adaptive.optimizeSkewsInRebalancePartitions.enabled": "true",
        })
    else:
        conf["spark.sql.autoBroadcastJoinThreshold"] = "-1"
    if a.master and a.master.startswith("spark://"):
        # standalone: one 1-core executor per worker (spark.cores.max = executors)
        conf["spark.executor.cores"] = "1"
        conf["spark.cores.max"] = str(a.executors)
    for kv in a.conf or []:
        k, _, v = kv.partition("=")
        conf[k] = v
    return conf


def read_properties(path):
    """spark-defaults.conf style 'key value' lines (used for `mpda spark up`'s cluster file:
    master, authentication; its values are never written to runs.json)."""
    out = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split(None, 1)
            out[parts[0]] = parts[1].strip() if len(parts) > 1 else ""
    return out


def sample_wordcount_keys(sc, a, paths, res):
    """DSCS's key sample of WordCount's shuffle: words counted on a sample (fraction
    --salt-fraction of the lines, one Spark job), counts scaled by 1 / fraction, and each
    word's shuffled bytes = estimated count x --sample-record-bytes (the shuffle bytes per
    (word, 1) record as Spark writes them: pickled, lz4-compressed batches). Written as
    mpda plan's JSON: total_bytes, distinct_keys, keys [{key, bytes}] (heaviest first; mpda
    rejects other fields), the estimate's details beside it in OUT.json.meta.json."""
    frac = a.salt_fraction
    est = sample_key_bytes(sc.textFile(paths), lambda l: [(w, 1) for w in l.split()],
                           frac, a.seed)
    rb = a.sample_record_bytes
    keys = sorted(({"key": k, "bytes": round(c * rb)} for k, c in est.items()),
                  key=lambda d: -d["bytes"])
    total_records = sum(est.values())
    doc = {"total_bytes": round(total_records * rb), "distinct_keys": len(keys), "keys": keys}
    meta = {"fraction": frac, "seed": a.seed, "record_bytes": rb,
            "sampled_records": round(total_records * frac),
            "total_records_est": round(total_records),
            "records_est": {k: round(c) for k, c in sorted(est.items(), key=lambda kv: -kv[1])},
            "note": "bytes = estimated records (sample count / fraction) x record_bytes"}
    for path, d in ((a.sample_keys, doc), (a.sample_keys + ".meta.json", meta)):
        with open(path + ".tmp", "w") as f:
            json.dump(d, f, indent=1)
        os.replace(path + ".tmp", path)
    res["summary"] = {"sample_keys": a.sample_keys, "distinct_keys": len(keys),
                      "total_bytes": doc["total_bytes"], "top": keys[:5]}


# ==========================================================================================
# salting helpers (run on the driver)

def parse_salt(text, key_type):
    """'k1=4,k2=8' -> {k1: 4, k2: 8}."""
    out = {}
    for item in (text or "").split(","):
        item = item.strip()
        if not item:
            continue
        k, _, m = item.rpartition("=")
        if not k:
            raise SystemExit(f"--salt: expected KEY=M, got {item!r}")
        m = int(m)
        if m >= 2:
            out[key_type(k)] = m
    return out


def heavy_from_estimate(est_bytes, threshold, max_m):
    """Keys whose estimated bytes exceed threshold get M = ceil(bytes / threshold) sub-keys."""
    return {k: min(max_m, int(math.ceil(b / threshold)))
            for k, b in est_bytes.items() if b > threshold}


def sample_key_bytes(rdd, key_and_bytes, fraction, seed):
    """One Spark job: a sample of the input, bytes per key summed per partition and merged on
    the driver, scaled by 1 / fraction."""
    def part(it):
        acc = {}
        for rec in it:
            for k, b in key_and_bytes(rec):
                acc[k] = acc.get(k, 0) + b
        return [acc]
    tot = {}
    for acc in rdd.sample(False, fraction, seed).mapPartitions(part).collect():
        for k, b in acc.items():
            tot[k] = tot.get(k, 0) + b
    return {k: b / fraction for k, b in tot.items()}


def salt_keys_rr(heavy):
    """mapPartitionsWithIndex function: (k, v) -> (i#k, v) for heavy k, i round-robin."""
    def f(idx, it):
        cnt = {}
        for k, v in it:
            m = heavy.get(k)
            if m:
                c = cnt.get(k, idx)
                cnt[k] = c + 1
                yield (f"{c % m}#{k}", v)
            else:
                yield (k, v)
    return f


def unsalt(key_type):
    def f(kv):
        k, v = kv
        if isinstance(k, str) and "#" in k:
            return (key_type(k.split("#", 1)[1]), v)
        return (k, v)
    return f


# ==========================================================================================
# the jobs (child process)

def job_wordcount(spark, sc, a, paths, res):
    P = a.partitions
    if a.api == "df":
        return job_wordcount_df(spark, sc, a, paths, res)
    lines = sc.textFile(paths)
    heavy = parse_salt(a.salt, str)
    if a.salt_above:
        est = sample_key_bytes(lines, lambda l: [(w, len(w) + 1) for w in l.split()],
                               a.salt_fraction, a.seed)
        heavy.update(heavy_from_estimate(est, a.salt_above, a.salt_max))
    res["salt"] = heavy
    pairs = lines.flatMap(lambda l: [(w, 1) for w in l.split()])
    if heavy:
        pairs = pairs.mapPartitionsWithIndex(salt_keys_rr(heavy))
    if a.combine:
        counts = pairs.reduceByKey(lambda x, y: x + y, P)
    else:
        def count_part(it):
            acc = {}
            for k, _ in it:
                acc[k] = acc.get(k, 0) + 1
            return iter(acc.items())
        counts = pairs.partitionBy(P).mapPartitions(count_part)
    if heavy:  # second step: combine the partial counts of the salted keys by original key
        counts = counts.map(unsalt(str)).reduceByKey(lambda x, y: x + y, P)
    rows = counts.collect()
    rows.sort(key=lambda kv: -kv[1])
    res["summary"] = {"distinct_words": len(rows), "total_words": sum(c for _, c in rows),
                      "top": rows[:5]}


def job_wordcount_df(spark, sc, a, paths, res):
    from pyspark.sql import functions as F
    heavy = parse_salt(a.salt, str)
    if a.salt_above:
        est = sample_key_bytes(sc.textFile(paths), lambda l: [(w, len(w) + 1) for w in l.split()],
                               a.salt_fraction, a.seed)
        heavy.update(heavy_from_estimate(est, a.salt_above, a.salt_max))
    res["salt"] = heavy
    words = spark.read.text(paths).select(F.explode(F.split("value", " ")).alias("word"))
    if heavy:
        lits = []
        for k, m in heavy.items():
            lits += [F.lit(k), F.lit(m)]
        m = F.coalesce(F.element_at(F.create_map(*lits), F.col("word")), F.lit(1))
        skey = F.when(m > 1, F.concat(F.floor(F.rand(a.seed) * m).cast("string"), F.lit("#"),
                                      F.col("word"))).otherwise(F.col("word"))
        part = words.withColumn("skey", skey).groupBy("skey", "word").count()
        counts = part.groupBy("word").agg(F.sum("count").alias("count"))
    else:
        counts = words.groupBy("word").count()
    rows = [(r["word"], int(r["count"])) for r in counts.collect()]
    rows.sort(key=lambda kv: -kv[1])
    res["summary"] = {"distinct_words": len(rows), "total_words": sum(c for _, c in rows),
                      "top": rows[:5]}


TS_PREFIX = 4  # key prefix length (gen_data.py: 4-char Zipf prefix + 6 random chars)
TS_ALPHABET = "+/0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def job_terasort(spark, sc, a, paths, res):
    import bisect
    P = a.partitions
    if a.api == "df":
        from pyspark.sql import functions as F
        df = spark.read.text(paths).select(F.substring("value", 1, 10).alias("key"),
                                           F.substring("value", 11, 89).alias("value"))
        df.orderBy("key").write.format("noop").mode("overwrite").save()
        res["summary"] = {"note": "orderBy(key) written to the noop sink"}
        return
    lines = sc.textFile(paths)
    heavy = parse_salt(a.salt, str)
    # Sampling job (as Spark's RangePartitioner / TeraSort's sampler): the prefixes of a
    # sample of the records give the range bounds; with --salt-above also the prefix bytes.
    sample = lines.sample(False, a.salt_fraction, a.seed).map(lambda l: l[:10]).collect()
    if a.salt_above:
        est = {}
        for k in sample:
            est[k[:TS_PREFIX]] = est.get(k[:TS_PREFIX], 0) + 100 / a.salt_fraction
        heavy.update(heavy_from_estimate(est, a.salt_above, a.salt_max))
    res["salt"] = heavy
    alpha = {c: i for i, c in enumerate(TS_ALPHABET)}

    def pkey(k):
        """Partitioning key: the prefix; a salted (heavy) prefix also gets the index of its
        key's suffix among M equal ranges of the alphabet (order preserving)."""
        p = k[:TS_PREFIX]
        m = heavy.get(p)
        if m:
            return (p, alpha.get(k[TS_PREFIX], 0) * m // len(TS_ALPHABET))
        return (p, 0)

    skeys = sorted(pkey(k) for k in sample)
    bounds = []
    for i in range(1, P):
        b = skeys[min(len(skeys) - 1, i * len(skeys) // P)] if skeys else None
        if b is not None and (not bounds or b > bounds[-1]):
            bounds.append(b)
    res["range_bounds"] = len(bounds)

    def part_of(k):
        return bisect.bisect_right(bounds, pkey(k))

    recs = lines.map(lambda l: (l[:10], l[10:]))
    srt = recs.repartitionAndSortWithinPartitions(P, part_of, True, lambda k: k)

    def check(idx, it):  # TeraValidate-like: count, first and last key, sorted within
        n, first, last, ok = 0, None, None, True
        for k, _ in it:
            if last is not None and k < last:
                ok = False
            if first is None:
                first = k
            last = k
            n += 1
        return [(idx, n, first, last, ok)]
    parts = srt.mapPartitionsWithIndex(check).collect()
    parts.sort()
    ok = all(p[4] for p in parts)
    prev = None
    for p in parts:
        if p[1]:
            if prev is not None and p[2] < prev:
                ok = False
            prev = p[3]
    res["summary"] = {"records": sum(p[1] for p in parts), "sorted": ok,
                      "partition_records": [p[1] for p in parts]}


def job_kmeans(spark, sc, a, paths, res):
    import numpy as np
    P, c = a.partitions, a.clusters
    seed = a.seed

    def parse(it):
        rows = [l for l in it if l]
        if rows:
            yield np.array([r.split() for r in rows], dtype=np.float64)
    blocks = sc.textFile(paths).mapPartitions(parse).cache()  # one (n, d) array per partition

    # init job: a sample of each block; on the driver, farthest-point initialisation
    # (Gonzalez): a random first centre, then each next centre is the sampled point farthest
    # from the centres so far. Deterministic, and with well-separated clusters it puts one
    # centre in each generated cluster (k-means++ missed 3-4 of 20 clusters at some seeds, so
    # two Gaussians shared a centre and the shuffle skew no longer followed the data).
    frac = a.salt_fraction

    def samp(idx, it):
        r = np.random.default_rng([seed, idx])
        for b in it:
            k = max(1, int(len(b) * frac))
            yield b[r.choice(len(b), k, replace=False)]
    sample = np.concatenate(blocks.mapPartitionsWithIndex(samp).collect())
    rng = np.random.default_rng(seed)
    centers = [sample[rng.integers(len(sample))]]
    d2 = ((sample - centers[0]) ** 2).sum(-1)
    for _ in range(1, c):
        j = int(np.argmax(d2))
        centers.append(sample[j])
        d2 = np.minimum(d2, ((sample - sample[j]) ** 2).sum(-1))
    C0 = np.array(centers)
    heavy = parse_salt(a.salt, int)
    if a.salt_above:  # cluster bytes estimated from the sample assigned to the initial centres
        lab = np.argmin(((sample[:, None, :] - C0[None]) ** 2).sum(-1), axis=1)
        cnt = np.bincount(lab, minlength=c)
        est = {k: cnt[k] / frac * C0.shape[1] * 8 for k in range(c)}
        heavy.update(heavy_from_estimate(est, a.salt_above, a.salt_max))
    res["salt"] = {str(k): m for k, m in heavy.items()}
    combine = a.combine

    def assign(pair):
        """(block, (0, C)) -> per cluster: (key, points) [no combine] or (key, (sum, n))."""
        b, (_, C) = pair
        lab = np.argmin(((b[:, None, :] - C[None]) ** 2).sum(-1), axis=1)
        out = []
        for k in np.unique(lab).tolist():
            pts = b[lab == k]
            m = heavy.get(k)
            chunks = np.array_split(pts, m) if m else [pts]
            for i, ch in enumerate(chunks):
                key = f"{i}#{k}" if m else k
                out.append((key, (ch.sum(0), len(ch)) if combine else ch))
        return out

    def add_sc(x, y):
        return (x[0] + y[0], x[1] + y[1])

    def sum_part(it):  # no map-side combine: the raw points arrive here, summed per key
        acc = {}
        for k, pts in it:
            s = acc.get(k)
            acc[k] = (pts.sum(0), len(pts)) if s is None else (s[0] + pts.sum(0), s[1] + len(pts))
        return iter(acc.items())

    def new_centers(vals):
        old = [v for t, v in vals if t == "old"][0]
        C = old.copy()
        for t, v in vals:
            if t == "new":
                k, (s, n) = v
                if n:
                    C[k] = s / n
        return C

    # All iterations are one Spark job: the centres stay an RDD of one partition, paired with
    # every block through cartesian(), so the stages of consecutive iterations are linked by
    # shuffle dependencies (a driver-side loop would give unconnected 2-stage jobs).
    cur = sc.parallelize([(0, C0)], 1)
    for _ in range(a.iterations):
        assigned = blocks.cartesian(cur).flatMap(assign)
        if combine:
            part = assigned.reduceByKey(add_sc, P)
        else:
            part = assigned.partitionBy(P).mapPartitions(sum_part)
        if heavy:  # second step: combine the salted partial sums by original cluster
            part = part.map(unsalt(int)).reduceByKey(add_sc, P)
        upd = part.map(lambda kv: (0, [("new", kv)])).union(
            cur.map(lambda kv: (0, [("old", kv[1])])))
        cur = upd.reduceByKey(lambda x, y: x + y, 1).mapValues(new_centers)
    C = cur.collect()[0][1]
    res["summary"] = {"iterations": a.iterations, "clusters": c,
                      "centers": np.round(C, 3).tolist()}


def job_pagerank(spark, sc, a, paths, res):
    P = a.partitions
    edges = sc.textFile(paths).map(lambda l: tuple(int(x) for x in l.split()))
    heavy = parse_salt(a.salt, int)
    if a.salt_above:
        est = sample_key_bytes(sc.textFile(paths), lambda l: [(int(l.split(None, 1)[0]), len(l) + 1)],
                               a.salt_fraction, a.seed)
        heavy.update(heavy_from_estimate(est, a.salt_above, a.salt_max))
    res["salt"] = {str(k): m for k, m in heavy.items()}
    if heavy:
        # A heavy source k is split into M salted sub-vertices i#k, each holding about 1/M of
        # k's out-edges: the adjacency grouping and every iteration's join run on the salted
        # keys; k's rank is replicated to its M sub-vertices, and the contributions (rank /
        # total out-degree of k) are combined by original destination in reduceByKey.
        links = edges.mapPartitionsWithIndex(salt_keys_rr(heavy)).groupByKey(P).mapValues(list).cache()
        deg = links.filter(lambda kv: isinstance(kv[0], str)) \
            .map(lambda kv: (int(kv[0].split("#", 1)[1]), len(kv[1]))) \
            .reduceByKey(lambda x, y: x + y).collectAsMap()
        bdeg = sc.broadcast(deg)
        ranks = links.map(lambda kv: (int(kv[0].split("#", 1)[1]) if isinstance(kv[0], str) else kv[0], 1.0)) \
            .reduceByKey(lambda x, y: x, P)

        def spread(kv):
            k, r = kv
            m = heavy.get(k)
            return [(f"{i}#{k}", r) for i in range(m)] if m else [(k, r)]

        def contribs(kv):
            k, (nbrs, r) = kv
            d = bdeg.value[int(k.split("#", 1)[1])] if isinstance(k, str) else len(nbrs)
            return [(n, r / d) for n in nbrs]
        for _ in range(a.iterations):
            ranks = links.join(ranks.flatMap(spread), P).flatMap(contribs) \
                .reduceByKey(lambda x, y: x + y, P).mapValues(lambda r: 0.15 + 0.85 * r)
    else:
        links = edges.groupByKey(P).mapValues(list).cache()
        ranks = links.mapValues(lambda _: 1.0)

        def contribs(kv):
            _, (nbrs, r) = kv
            d = len(nbrs)
            return [(n, r / d) for n in nbrs]
        for _ in range(a.iterations):
            ranks = links.join(ranks, P).flatMap(contribs) \
                .reduceByKey(lambda x, y: x + y, P).mapValues(lambda r: 0.15 + 0.85 * r)

    def summ(it):
        n, s, top = 0, 0.0, []
        for k, r in it:
            n += 1
            s += r
            top.append((r, k))
            if len(top) > 50:
                top = sorted(top, reverse=True)[:5]
        return [(n, s, sorted(top, reverse=True)[:5])]
    parts = ranks.mapPartitions(summ).collect()
    top = sorted([t for p in parts for t in p[2]], reverse=True)[:5]
    res["summary"] = {"iterations": a.iterations, "vertices_ranked": sum(p[0] for p in parts),
                      "rank_sum": round(sum(p[1] for p in parts), 3),
                      "top": [(k, round(r, 4)) for r, k in top]}


JOB_FNS = {"wordcount": job_wordcount, "terasort": job_terasort, "kmeans": job_kmeans,
           "pagerank": job_pagerank}


def child_main(spec_path):
    with open(spec_path) as f:
        spec = json.load(f)
    a = argparse.Namespace(**spec["args"])
    os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
    from pyspark.sql import SparkSession
    t_app0 = time.time()
    b = SparkSession.builder.master(spec["master"]).appName(spec["name"])
    if a.properties_file:
        for k, v in read_properties(a.properties_file).items():
            if k != "spark.master":
                b = b.config(k, v)
    for k, v in spec["conf"].items():
        b = b.config(k, v)
    spark = b.getOrCreate()
    sc = spark.sparkContext
    t_session = time.time()
    want = spec["wait_executors"]
    n_exec = 0
    deadline = time.time() + 120
    while True:
        n_exec = sc._jsc.sc().getExecutorMemoryStatus().size() - 1
        if n_exec >= max(want, 1) or time.time() > deadline:
            break
        time.sleep(0.2)
    t_ready = time.time()
    sc.setJobGroup(spec["name"], f"DSCS {a.job} skew {a.skew} P{a.partitions}")
    res = {}
    t0 = time.time()
    if getattr(a, "sample_keys", None):
        sample_wordcount_keys(sc, a, spec["paths"], res)
    else:
        JOB_FNS[a.job](spark, sc, a, spec["paths"], res)
    wall = time.time() - t0
    res.update({
        "name": spec["name"], "app_id": sc.applicationId, "spark_version": spark.version,
        "executors_registered": n_exec, "job_wall_s": round(wall, 3),
        "session_start_s": round(t_session - t_app0, 3),
        "executor_wait_s": round(t_ready - t_session, 3),
        "start_unix_ms": int(t_app0 * 1000), "job_start_unix_ms": int(t0 * 1000),
        "job_end_unix_ms": int((t0 + wall) * 1000),
    })
    t_stop0 = time.time()
    spark.stop()
    res["stop_s"] = round(time.time() - t_stop0, 3)
    with open(spec["result_path"], "w") as f:
        json.dump(res, f, indent=1, default=str)


# ==========================================================================================
# parent

def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--job", choices=JOBS, help="wordcount, terasort, kmeans or pagerank")
    ap.add_argument("--skew", type=float, default=0.8, help="Zipf exponent of the data set (default 0.8)")
    ap.add_argument("--data-root", default=os.path.join(DEFAULT_WORK, "data"),
                    help="gen_data.py's root (data in ROOT/<job>-z<skew>/)")
    ap.add_argument("--data", help="data folder (overrides --data-root/--skew)")
    ap.add_argument("--partitions", type=int, default=20,
                    help="reduce-side partitions (numPartitions of every shuffle, spark.default.parallelism, "
                         "spark.sql.shuffle.partitions); default 20")
    ap.add_argument("--api", choices=["rdd", "df"], default="rdd",
                    help="rdd (default) or df (DataFrame: wordcount, terasort; needed for AQE to act)")
    ap.add_argument("--aqe", action="store_true", help="spark.sql.adaptive.* on (acts on --api df only)")
    ap.add_argument("--combine", action="store_true",
                    help="wordcount/kmeans: map-side combine (reduceByKey); default: raw records shuffled")
    ap.add_argument("--salt", help="heavy keys to salt: KEY=M,... (key i#KEY for i in 0..M)")
    ap.add_argument("--salt-above", type=float, metavar="BYTES",
                    help="salt every key whose estimated bytes (sampling job) exceed BYTES, M = ceil(bytes/BYTES)")
    ap.add_argument("--salt-max", type=int, default=16, help="largest M for --salt-above (default 16)")
    ap.add_argument("--salt-fraction", type=float, default=0.01,
                    help="sample fraction for --salt-above, TeraSort's bounds and k-means init (default 0.01)")
    ap.add_argument("--iterations", type=int, default=10, help="pagerank / kmeans iterations (default 10)")
    ap.add_argument("--clusters", type=int, default=0, help="kmeans k (default: the generator's c)")
    ap.add_argument("--seed", type=int, default=7, help="seed of the job's sampling")
    ap.add_argument("--executors", type=int, default=2)
    ap.add_argument("--executor-mb", type=int, default=1024)
    ap.add_argument("--driver-memory", default="2g")
    ap.add_argument("--master", help="default local-cluster[N,1,MB]")
    ap.add_argument("--name", help="job group id = trace query name (default <job>-z<skew>-p<P>[-df][-aqe][-combine][-salt])")
    ap.add_argument("--out", help="run dir (default WORK/runs/NAME)")
    ap.add_argument("--conf", action="append", help="extra Spark setting key=value (repeatable)")
    ap.add_argument("--timeout", type=int, default=1200, help="seconds for the application")
    ap.add_argument("--properties-file", help="spark-defaults.conf of a standalone cluster (`mpda spark up`: "
                    "WORK/private/spark-defaults.conf), applied before this script's settings")
    ap.add_argument("--sample-keys", metavar="OUT.json",
                    help="wordcount: instead of the job, a sampling job writing mpda plan's key sample")
    ap.add_argument("--sample-record-bytes", type=float, default=2.33,
                    help="shuffled bytes per (word, 1) record for --sample-keys (default 2.33: shuffle "
                         "write bytes / words of the measured wordcount-z0.8-p80)")
    ap.add_argument("--_child", help=argparse.SUPPRESS)
    return ap.parse_args(argv)


def main(argv=None):
    a = parse_args(argv if argv is not None else sys.argv[1:])
    if a._child:
        child_main(a._child)
        return 0
    if not a.job:
        sys.exit("--job is required")
    if a.api == "df" and a.job not in ("wordcount", "terasort"):
        sys.exit("--api df exists for wordcount and terasort")
    data = os.path.abspath(a.data or os.path.join(a.data_root, f"{a.job}-z{skew_label(a.skew)}"))
    params_path = os.path.join(data, "params.json")
    if not os.path.exists(params_path):
        sys.exit(f"no data in {data} (run gen_data.py)")
    with open(params_path) as f:
        params = json.load(f)
    if a.job == "kmeans" and not a.clusters:
        a.clusters = params["parameters"]["clusters"]
    if a.sample_keys and a.job != "wordcount":
        sys.exit("--sample-keys exists for wordcount")
    if a.sample_keys:
        a.sample_keys = os.path.abspath(a.sample_keys)
    name = a.name or (default_name(a) + ("-sample" if a.sample_keys else ""))
    out = os.path.abspath(a.out or os.path.join(DEFAULT_WORK, "runs", name))
    for d in ("eventlogs", "logs", "results", "tmp"):
        os.makedirs(os.path.join(out, d), exist_ok=True)
    master = a.master or f"local-cluster[{a.executors},1,{a.executor_mb}]"
    conf = spark_conf(a, out)
    python = sys.executable
    child_args = {k: v for k, v in vars(a).items() if k != "_child"}
    spec = {"name": name, "master": master, "conf": conf, "args": child_args,
            "paths": os.path.join(data, "part-*"),
            "wait_executors": a.executors,
            "result_path": os.path.join(out, "results", f"{name}.json")}
    spec_path = os.path.join(out, "tmp", f"{name}.spec.json")
    with open(spec_path, "w") as f:
        json.dump(spec, f)
    manifest = {
        "run": name, "job": a.job, "skew": a.skew, "data": data, "data_params": params["parameters"],
        "data_bytes": params["bytes"], "data_seed": params["seed"],
        "master": master, "executors_requested": a.executors, "executor_memory_mb": a.executor_mb,
        "driver_memory": a.driver_memory, "partitions": a.partitions, "api": a.api, "aqe": a.aqe,
        "combine": a.combine, "salt": a.salt, "salt_above": a.salt_above, "settings": conf,
        "hostname": socket.gethostname(), "nproc": os.cpu_count(),
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "loadavg_start": os.getloadavg(),
        "command": " ".join([os.path.basename(sys.argv[0])] + sys.argv[1:]),
        "jobs": [],
    }
    env = dict(os.environ, SPARK_LOCAL_IP="127.0.0.1", PYSPARK_PYTHON=python)
    t0 = time.time()
    with open(os.path.join(out, "logs", f"{name}.log"), "w") as logf:
        try:
            rc = subprocess.run([python, os.path.abspath(__file__), "--_child", spec_path],
                                stdout=logf, stderr=subprocess.STDOUT, env=env,
                                timeout=a.timeout).returncode
        except subprocess.TimeoutExpired:
            rc = "timeout"
    app_wall = time.time() - t0
    entry = {"name": name, "status": "ok" if rc == 0 else f"failed ({rc})", "app_wall_s": round(app_wall, 3)}
    if rc == 0:
        with open(spec["result_path"]) as f:
            r = json.load(f)
        entry.update({k: v for k, v in r.items() if k != "summary"})
        hits = sorted(glob.glob(os.path.join(out, "eventlogs", r["app_id"] + "*")))
        entry["event_log"] = hits[0] if hits else None
        entry["event_log_bytes"] = os.path.getsize(hits[0]) if hits else None
        manifest["spark_version"] = r["spark_version"]
    manifest["jobs"].append(entry)
    manifest["loadavg_end"] = os.getloadavg()
    manifest["total_wall_s"] = round(app_wall, 3)
    tmp = os.path.join(out, "runs.json.tmp")
    with open(tmp, "w") as f:
        json.dump(manifest, f, indent=1)
    os.replace(tmp, os.path.join(out, "runs.json"))
    os.remove(spec_path)
    print(f"{name:<28} {entry['status']:<10} app {app_wall:7.1f} s  job "
          f"{entry.get('job_wall_s', float('nan')):7.1f} s", flush=True)
    return 0 if rc == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
