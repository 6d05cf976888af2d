#!/usr/bin/env python3
"""Run the 22 TPC-H queries on PySpark, one Spark application per query, with the event log on.

Every query runs in its own child process (own driver JVM, own SparkContext). With the default
master `local-cluster[N,1,MB]` each application starts N fresh 1-core executor JVMs, so the
first tasks on each executor carry the real "fresh executor" start-up cost.

Outputs (under --out, one directory per run):
  eventlogs/        one Spark event log per query application (file, or rolling folder)
  logs/qN.log       stdout/stderr of the child process (Spark's console log)
  results/qN.json   the rows the query returned (as strings)
  runs.json         manifest: settings + one entry per query (app id, event log path, times, rows)

Example:
  SPARK_LOCAL_IP=127.0.0.1 nice -n 19 /work/spark-runs/.venv-tpch/bin/python run_tpch.py \
      --sf 1 --executors 2 --check
"""

import argparse
import datetime as _dt
import decimal
import glob
import json
import os
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_WORK = os.environ.get("TPCH_WORK", "/work/spark-runs")
TABLES = ["nation", "region", "part", "supplier", "partsupp", "customer", "orders", "lineitem"]
SCHEMA_FILE = "_spark_schemas.json"


# ----------------------------------------------------------------------------------------------
# helpers shared by parent and child

def sf_str(sf):
    """Canonical text of a scale factor: 1, 0.01, 2.5 (no trailing zeros, no exponent)."""
    d = decimal.Decimal(str(sf)).normalize()
    s = format(d, "f")
    return s


def q11_fraction(sf):
    """TPC-H Q11 FRACTION = 0.0001 / SF, as a plain decimal literal."""
    d = (decimal.Decimal("0.0001") / decimal.Decimal(str(sf))).normalize()
    return format(d, "f")


def load_query(qnum, sf):
    with open(os.path.join(HERE, "queries", f"q{qnum}.sql")) as f:
        sql = f.read()
    sql = sql.replace("${FRACTION}", q11_fraction(sf))
    return sql.strip().rstrip(";")


def spark_conf(args):
    """The Spark settings of a run (also written to the manifest)."""
    conf = {
        # --- event log: one plain JSON-lines file per application unless asked otherwise
        "spark.eventLog.enabled": "true",
        "spark.eventLog.dir": "file://" + os.path.join(os.path.abspath(args.out), "eventlogs"),
        "spark.eventLog.compress": "true" if args.compress else "false",
        "spark.eventLog.rolling.enabled": "true" if args.rolling else "false",
        # --- plan shape: no AQE, no broadcast joins (fixed, Decima-like DAGs) unless --aqe
        "spark.sql.adaptive.enabled": "true" if args.aqe else "false",
        "spark.sql.shuffle.partitions": str(args.shuffle_partitions),
        # --- no UI, loopback only
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
        # --- memory
        "spark.driver.memory": args.driver_memory,
        "spark.executor.memory": f"{args.executor_mb}m",
        # --- wait until all executors registered before the first stage is scheduled
        "spark.scheduler.minRegisteredResourcesRatio": "1.0",
        "spark.scheduler.maxRegisteredResourcesWaitingTime": "120s",
    }
    if not args.aqe:
        conf["spark.sql.autoBroadcastJoinThreshold"] = "-1"
    if args.compress:
        conf["spark.eventLog.compression.codec"] = args.compress
    if args.rolling:
        conf["spark.eventLog.rolling.maxFileSize"] = args.rolling_max_file_size
    for kv in args.conf or []:
        k, _, v = kv.partition("=")
        conf[k] = v
    return conf


# ----------------------------------------------------------------------------------------------
# child: one query = one Spark application

def child_main(spec_path):
    with open(spec_path) as f:
        spec = json.load(f)
    os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
    from pyspark.sql import SparkSession
    from pyspark.sql.types import StructType

    q = spec["query"]
    sql = spec.get("sql") or load_query(q, spec["sf"])
    schemas = spec.get("schemas")
    if schemas is None:  # a live run: the schemas cached next to the data, if any
        cache = os.path.join(spec["data"], SCHEMA_FILE)
        if os.path.exists(cache):
            with open(cache) as f:
                schemas = json.load(f)
    t_app0 = time.time()
    b = SparkSession.builder.master(spec["master"]).appName(spec["app_name"])
    for k, v in spec["conf"].items():
        b = b.config(k, v)
    spark = b.getOrCreate()
    sc = spark.sparkContext
    t_session = time.time()
    # A live run (`mpda spark run`) injects mpda's agent: it reports progress and applies
    # the controller's executor targets. Without MPDA_CONTROLLER_URL it is not loaded.
    agent = None
    if os.environ.get("MPDA_CONTROLLER_URL"):
        sys.path.insert(0, os.environ.get("MPDA_AGENT_DIR", os.path.join(HERE, "..", "spark")))
        import mpda_agent
        agent = mpda_agent.start(sc)

    # wait for the executors (local-cluster: exactly N; spark://: whatever registers)
    want = spec.get("wait_executors") or 0
    n_exec = 0
    deadline = time.time() + 120
    while True:
        n_exec = sc._jsc.sc().getExecutorMemoryStatus().size() - 1  # minus the driver
        if n_exec >= max(want, 1) or time.time() > deadline:
            break
        time.sleep(0.2)
    t_ready = time.time()

    for t in TABLES:
        path = os.path.join(spec["data"], f"{t}.parquet")
        r = spark.read
        if schemas:  # explicit schema: no footer-reading Spark job before the query
            r = r.schema(StructType.fromJson(schemas[t]))
        r.parquet(path).createOrReplaceTempView(t)

    sc.setJobGroup(f"q{q}", f"TPC-H Q{q} SF{spec['sf']}")
    t0 = time.time()
    try:
        rows = spark.sql(sql).collect()
    except Exception:
        if agent is not None:
            agent.stop("failed")
        raise
    wall = time.time() - t0
    if agent is not None:
        agent.stop("succeeded")

    out = {
        "app_id": sc.applicationId,
        "spark_version": spark.version,
        "executors_registered": n_exec,
        "rows": len(rows),
        "query_wall_s": round(wall, 3),
        "session_start_s": round(t_session - t_app0, 3),
        "executor_wait_s": round(t_ready - t_session, 3),
        "start_unix_ms": int(t_app0 * 1000),
        "query_start_unix_ms": int(t0 * 1000),
        "query_end_unix_ms": int((t0 + wall) * 1000),
        "agent": agent is not None,
    }
    with open(spec["result_rows_path"], "w") as f:
        json.dump({"columns": rows[0].__fields__ if rows else [],
                   "rows": [[None if v is None else str(v) for v in r] for r in rows]}, f)
    t_stop0 = time.time()
    spark.stop()
    out["stop_s"] = round(time.time() - t_stop0, 3)
    with open(spec["result_path"], "w") as f:
        json.dump(out, f)


# ----------------------------------------------------------------------------------------------
# parent

def infer_schemas(data_dir, python):
    """Read the Parquet footers once (tiny local[1] app, no event log) and cache the schemas
    next to the data, so the per-query applications need no schema-inference job."""
    cache = os.path.join(data_dir, SCHEMA_FILE)
    if os.path.exists(cache):
        with open(cache) as f:
            return json.load(f)
    code = (
        "import json,os,sys\n"
        "os.environ['SPARK_LOCAL_IP']='127.0.0.1'\n"
        "from pyspark.sql import SparkSession\n"
        "s=SparkSession.builder.master('local[1]').config('spark.ui.enabled','false')"
        ".config('spark.driver.host','127.0.0.1').config('spark.driver.bindAddress','127.0.0.1')"
        ".getOrCreate()\n"
        f"d={data_dir!r}\n"
        f"out={{t: json.loads(s.read.parquet(os.path.join(d, t + '.parquet')).schema.json()) for t in {TABLES!r}}}\n"
        "json.dump(out, open(sys.argv[1], 'w'), indent=1)\n"
        "s.stop()\n"
    )
    tmp = cache + ".tmp"
    subprocess.run([python, "-c", code, tmp], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.replace(tmp, cache)
    with open(cache) as f:
        return json.load(f)


def find_event_log(evdir, app_id):
    hits = sorted(glob.glob(os.path.join(evdir, app_id + "*")) +
                  glob.glob(os.path.join(evdir, "eventlog_v2_" + app_id + "*")))
    return hits[0] if hits else None


def path_size(p):
    if p is None:
        return None
    if os.path.isdir(p):
        return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(p) for f in fs)
    return os.path.getsize(p)


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sf", type=float, default=1.0, help="scale factor (default 1)")
    ap.add_argument("--queries", default="all", help="e.g. 1,3,5 (default: all 22)")
    ap.add_argument("--work", default=DEFAULT_WORK, help=f"work dir (default {DEFAULT_WORK})")
    ap.add_argument("--data", help="TPC-H Parquet dir (default WORK/data/sfSF)")
    ap.add_argument("--out", help="run dir (default WORK/runs/sfSF-eN-<variant>-<time>)")
    ap.add_argument("--executors", type=int, default=2, choices=[1, 2, 3, 4],
                    help="N in local-cluster[N,1,MB] (default 2)")
    ap.add_argument("--executor-mb", type=int, default=2048, help="executor memory MB (default 2048)")
    ap.add_argument("--driver-memory", default="4g", help="driver memory (default 4g)")
    ap.add_argument("--master", help="Spark master; default local-cluster[N,1,MB]; spark://host:port accepted")
    ap.add_argument("--aqe", action="store_true",
                    help="AQE on and broadcast joins back to Spark's default (default: both off)")
    ap.add_argument("--shuffle-partitions", type=int, default=200)
    ap.add_argument("--compress", nargs="?", const="zstd", default=None,
                    help="compress the event log (codec: zstd default, lz4, snappy, lzf)")
    ap.add_argument("--rolling", action="store_true", help="rolling event log (a folder per app)")
    ap.add_argument("--rolling-max-file-size", default="128m", help="rolling file size (Spark min 10m)")
    ap.add_argument("--conf", action="append", help="extra Spark setting key=value (repeatable)")
    ap.add_argument("--check", action="store_true",
                    help="at SF1 compare row counts with expected_sf1.json; exit 1 on mismatch")
    ap.add_argument("--timeout", type=int, default=3600, help="seconds per query application")
    ap.add_argument("--_child", help=argparse.SUPPRESS)
    return ap.parse_args(argv)


def main(argv=None):
    args = parse_args(argv if argv is not None else sys.argv[1:])
    if args._child:
        child_main(args._child)
        return 0

    sf = sf_str(args.sf)
    if args.queries == "all":
        queries = list(range(1, 23))
    else:
        queries = [int(x.strip().lstrip("qQ")) for x in args.queries.split(",") if x.strip()]
        for q in queries:
            if not 1 <= q <= 22:
                sys.exit(f"bad query number {q}")
    data = os.path.abspath(args.data or os.path.join(args.work, "data", f"sf{sf}"))
    if not os.path.exists(os.path.join(data, "lineitem.parquet")):
        sys.exit(f"no TPC-H data in {data} (run setup.sh --sf {sf})")

    if args.master:
        master = args.master
        wait_executors = args.executors if args.master.startswith("local-cluster") else 0
    else:
        master = f"local-cluster[{args.executors},1,{args.executor_mb}]"
        wait_executors = args.executors
    variant = "aqe" if args.aqe else "noaqe"
    if args.compress:
        variant += "-" + args.compress
    if args.rolling:
        variant += "-rolling"
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    ex_tag = f"e{args.executors}" if not args.master or master.startswith("local") else "ecluster"
    if not args.out:
        args.out = os.path.join(args.work, "runs", f"sf{sf}-{ex_tag}-{variant}-{stamp}")
    out = os.path.abspath(args.out)
    evdir = os.path.join(out, "eventlogs")
    for d in (evdir, os.path.join(out, "logs"), os.path.join(out, "results"), os.path.join(out, "tmp")):
        os.makedirs(d, exist_ok=True)

    conf = spark_conf(args)
    python = sys.executable
    schemas = infer_schemas(data, python)

    manifest = {
        "run": os.path.basename(out),
        "sf": float(sf), "sf_text": sf,
        "data": data,
        "master": master,
        "executors_requested": args.executors if master.startswith("local-cluster") else None,
        "executor_memory_mb": args.executor_mb,
        "driver_memory": args.driver_memory,
        "aqe": args.aqe,
        "eventlog_compress": args.compress,
        "eventlog_rolling": args.rolling,
        "settings": conf,
        "spark_version": None,
        "hostname": socket.gethostname(),
        "nproc": os.cpu_count(),
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "loadavg_start": os.getloadavg(),
        "command": " ".join([os.path.basename(sys.argv[0])] + sys.argv[1:]),
        "queries": [],
    }
    expected = None
    if args.check:
        with open(os.path.join(HERE, "expected_sf1.json")) as f:
            expected = json.load(f)
        if float(sf) != 1.0:
            print(f"--check: expected row counts exist only for SF1; not checking SF{sf}")
            expected = None

    mpath = os.path.join(out, "runs.json")

    def save():
        tmp = mpath + ".tmp"
        with open(tmp, "w") as f:
            json.dump(manifest, f, indent=1)
        os.replace(tmp, mpath)

    failures = []
    t_run0 = time.time()
    print(f"run {out}\n  master {master}, sf {sf}, aqe {args.aqe}, queries {queries}", flush=True)
    for q in queries:
        spec = {
            "query": q, "sf": sf, "master": master, "conf": conf, "data": data,
            "schemas": schemas, "sql": load_query(q, sf),
            "app_name": f"tpch-q{q}-sf{sf}-{ex_tag}-{variant}",
            "wait_executors": wait_executors,
            "result_path": os.path.join(out, "tmp", f"q{q}.result.json"),
            "result_rows_path": os.path.join(out, "results", f"q{q}.json"),
        }
        spec_path = os.path.join(out, "tmp", f"q{q}.spec.json")
        with open(spec_path, "w") as f:
            json.dump(spec, f)
        env = dict(os.environ, SPARK_LOCAL_IP="127.0.0.1", PYSPARK_PYTHON=python)
        t0 = time.time()
        with open(os.path.join(out, "logs", f"q{q}.log"), "w") as logf:
            try:
                rc = subprocess.run([python, os.path.abspath(__file__), "--_child", spec_path],
                                    stdout=logf, stderr=subprocess.STDOUT, env=env,
                                    timeout=args.timeout).returncode
            except subprocess.TimeoutExpired:
                rc = "timeout"
        app_wall = time.time() - t0
        entry = {"query": f"q{q}", "status": "ok" if rc == 0 else f"failed ({rc})",
                 "app_wall_s": round(app_wall, 3)}
        if rc == 0:
            with open(spec["result_path"]) as f:
                res = json.load(f)
            entry.update(res)
            ev = find_event_log(evdir, res["app_id"])
            entry["event_log"] = ev
            entry["event_log_bytes"] = path_size(ev)
            manifest["spark_version"] = res["spark_version"]
            if expected is not None:
                want = expected.get(f"q{q}")
                entry["expected_rows"] = want
                entry["check"] = "ok" if want == res["rows"] else "MISMATCH"
                if want != res["rows"]:
                    failures.append(f"q{q}: {res['rows']} rows, expected {want}")
        else:
            failures.append(f"q{q}: application failed ({rc}), see logs/q{q}.log")
        manifest["queries"].append(entry)
        manifest["total_wall_s"] = round(time.time() - t_run0, 3)
        manifest["loadavg_end"] = os.getloadavg()
        save()
        print(f"  q{q:<2} {entry['status']:<10} app {app_wall:7.1f} s  query "
              f"{entry.get('query_wall_s', float('nan')):7.1f} s  rows {entry.get('rows')}"
              f"{'  ' + entry['check'] if 'check' in entry else ''}", flush=True)

    for p in glob.glob(os.path.join(out, "tmp", "*")):
        os.remove(p)
    os.rmdir(os.path.join(out, "tmp"))
    manifest["failures"] = failures
    save()
    print(f"done in {time.time() - t_run0:.1f} s; manifest {mpath}")
    if failures:
        print("FAILURES:\n  " + "\n  ".join(failures))
        return 1
    if expected is not None:
        print(f"check: all {len(queries)} row counts match expected_sf1.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
