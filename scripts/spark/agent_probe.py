"""A small PySpark application that runs mpda's agent in a real driver, for
``tests/live_agent.rs`` (and by hand): a few short jobs with a shuffle each (so each job has
two stages, and there are several stage ids), with pauses between them so that the agent
polls while executors are idle as well as busy.

Usage (the venv's python, not spark-submit, so that the agent runs as a live run injects it):

  PYSPARK_SUBMIT_ARGS="--properties-file WORK/private/spark-defaults.conf pyspark-shell" \\
  MPDA_CONTROLLER_URL=http://127.0.0.1:PORT MPDA_SECRET_FILE=FILE \\
  python agent_probe.py [--rounds N] [--pause-s S] [--ui-port P] [--executor-memory M]

The properties file carries the cluster's master, secret and event-log settings (the secret
stays out of the command line and the environment). This script adds only what the agent
needs: dynamic allocation off (``killExecutors`` refuses to work with it on), the driver UI
on 127.0.0.1 (the agent reads executor ids from its REST API), one core per executor (so a
2 x 1-core cluster gives the application two executors) and an executor memory that fits
a small worker. It prints one ``probe: ...`` line per job, and exits non-zero if a job
fails or returns a wrong answer.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import mpda_agent  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3, help="jobs to run (1..=100)")
    ap.add_argument("--pause-s", type=float, default=2.0, help="sleep after each job")
    ap.add_argument("--ui-port", type=int, default=0, help="driver UI port (0: any free)")
    ap.add_argument("--executor-memory", default="450m",
                    help="spark.executor.memory; at least 450m (Spark's floor)")
    ap.add_argument("--partitions", type=int, default=4, help="tasks per stage")
    args = ap.parse_args()
    if not 1 <= args.rounds <= 100 or not 0 <= args.pause_s <= 600:
        ap.error("--rounds must be 1..=100 and --pause-s 0..=600")
    if not 0 <= args.ui_port <= 65535 or not 1 <= args.partitions <= 1000:
        ap.error("--ui-port must be 0..=65535 and --partitions 1..=1000")

    from pyspark import SparkConf, SparkContext

    conf = (SparkConf()
            .setAppName("mpda-agent-probe")
            .set("spark.dynamicAllocation.enabled", "false")
            .set("spark.ui.enabled", "true")
            .set("spark.ui.port", str(args.ui_port))
            .set("spark.executor.cores", "1")
            .set("spark.executor.memory", args.executor_memory))
    sc = SparkContext(conf=conf)
    sc.setLogLevel("WARN")
    agent = mpda_agent.start(sc, job_name="agent-probe")
    print("probe: app %s, ui %s, agent %s" % (sc.applicationId, sc.uiWebUrl,
                                               "on" if agent else "off"), flush=True)
    outcome = "failed"
    try:
        n = 20_000
        for r in range(args.rounds):
            t = time.time()
            got = dict(sc.parallelize(range(n), args.partitions)
                       .map(lambda x: (x % 10, 1))
                       .reduceByKey(lambda a, b: a + b, args.partitions)
                       .collect())
            if got != {k: n // 10 for k in range(10)}:
                raise RuntimeError("round %d: wrong answer %r" % (r, got))
            print("probe: job %d done in %.2f s" % (r, time.time() - t), flush=True)
            time.sleep(args.pause_s)
        outcome = "succeeded"
    finally:
        if agent is not None:
            agent.stop(outcome)
        sc.stop()
    print("probe: %s" % outcome, flush=True)


if __name__ == "__main__":
    main()
