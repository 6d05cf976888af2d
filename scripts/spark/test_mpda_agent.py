"""Unit tests of mpda_agent with a fake SparkContext and a fake controller; no PySpark needed.

Run: python3 -m unittest discover -s scripts/spark -p 'test_*.py'
"""

import collections
import http.server
import json
import logging
import os
import socket
import tempfile
import threading
import types
import unittest

import mpda_agent as agent

JobInfo = collections.namedtuple("SparkJobInfo", "jobId stageIds status")
StageInfo = collections.namedtuple(
    "SparkStageInfo",
    "stageId currentAttemptId name numTasks numActiveTasks numCompletedTasks numFailedTasks")


class FakeTracker:
    """PySpark's StatusTracker surface the agent uses."""

    def __init__(self):
        self.jobs = {
            0: JobInfo(0, [0, 1], "SUCCEEDED"),
            1: JobInfo(1, [2, 3, 4], "RUNNING"),
        }
        self.stages = {
            0: StageInfo(0, 0, "scan", 4, 0, 4, 0),
            # stage 1 was skipped: no info, its job finished
            2: StageInfo(2, 1, "scan", 10, 3, 6, 2),
            3: StageInfo(3, 0, "agg", 5, 0, 0, 0),
        }
        self.active = [2]

    def getJobIdsForGroup(self, group=None):
        return list(self.jobs)

    def getActiveStageIds(self):
        return list(self.active)

    def getJobInfo(self, jid):
        return self.jobs.get(jid)

    def getStageInfo(self, sid):
        return self.stages.get(sid)


class FakeJvm:
    """The py4j surface: java.util collections, PythonUtils, the Scala SparkContext."""

    def __init__(self):
        self.calls = []
        jvm = self

        class ArrayList(list):
            def add(self, x):
                self.append(x)

        class ScalaSc:
            def killExecutors(self, seq):
                jvm.calls.append(("killExecutors", tuple(seq)))
                return True

            def requestTotalExecutors(self, n, locality, hosts):
                jvm.calls.append(("requestTotalExecutors", n, locality, dict(hosts)))
                return True

        utils = types.SimpleNamespace(toSeq=lambda l: tuple(l), toScalaMap=lambda m: dict(m))
        self.java = types.SimpleNamespace(util=types.SimpleNamespace(ArrayList=ArrayList,
                                                                     HashMap=dict))
        self.org = types.SimpleNamespace(apache=types.SimpleNamespace(spark=types.SimpleNamespace(
            api=types.SimpleNamespace(python=types.SimpleNamespace(PythonUtils=utils)))))
        self.scala_sc = ScalaSc()


class FakeSc:
    def __init__(self):
        self.applicationId = "app-20261127151000-0003"
        self.appName = "q9-2g"
        self.uiWebUrl = None
        self.tracker = FakeTracker()
        self._jvm = FakeJvm()
        self._jsc = types.SimpleNamespace(sc=lambda: self._jvm.scala_sc)

    def statusTracker(self):
        return self.tracker


REST_EXECUTORS = [
    {"id": "driver", "hostPort": "127.0.0.1:40000", "totalCores": 0, "activeTasks": 0,
     "isActive": True},
    {"id": "0", "hostPort": "127.0.0.1:41000", "totalCores": 1, "activeTasks": 1,
     "isActive": True},
    {"id": "1", "hostPort": "10.0.0.2:41001", "totalCores": 2, "activeTasks": 0,
     "isActive": True},
    {"id": "2", "hostPort": "10.0.0.3:41002", "totalCores": 1, "activeTasks": 0,
     "isActive": False},
]


class MessageTests(unittest.TestCase):
    def test_jobs_and_stages_from_the_status_tracker(self):
        jobs, stages = agent.collect_jobs_and_stages(FakeTracker())
        self.assertEqual(jobs, [
            {"job_id": 0, "status": "succeeded", "stage_ids": [0, 1]},
            {"job_id": 1, "status": "running", "stage_ids": [2, 3, 4]},
        ])
        by_id = {s["stage_id"]: s for s in stages}
        self.assertEqual(sorted(by_id), [0, 1, 2, 3, 4])
        self.assertEqual(by_id[0]["status"], "complete")
        self.assertEqual(by_id[1]["status"], "skipped")
        self.assertEqual(by_id[2], {"stage_id": 2, "job_ids": [1], "status": "active",
                                    "attempt": 1, "num_tasks": 10, "active": 3,
                                    "complete": 6, "failed": 2})
        self.assertEqual(by_id[3]["status"], "pending")
        self.assertEqual(by_id[4]["status"], "pending")
        self.assertEqual(by_id[4]["num_tasks"], 0)

    def test_a_failed_job_marks_its_unfinished_stages_failed(self):
        t = FakeTracker()
        t.jobs[1] = JobInfo(1, [2, 3, 4], "FAILED")
        t.active = []
        _, stages = agent.collect_jobs_and_stages(t)
        self.assertEqual({s["stage_id"]: s["status"] for s in stages}[3], "failed")

    def test_counts_are_clamped_to_what_the_protocol_accepts(self):
        t = FakeTracker()
        t.stages[3] = StageInfo(3, -1, "agg", 5, -2, 9, None)
        _, stages = agent.collect_jobs_and_stages(t)
        s3 = {s["stage_id"]: s for s in stages}[3]
        self.assertEqual((s3["attempt"], s3["active"], s3["complete"], s3["failed"]),
                         (0, 0, 5, 0))
        self.assertEqual(s3["status"], "complete")

    def test_executors_from_the_rest_api_leave_out_the_driver_and_dead_ones(self):
        self.assertEqual(agent.executors_from_rest(REST_EXECUTORS), [
            {"id": "0", "host": "127.0.0.1", "cores": 1, "active": 1},
            {"id": "1", "host": "10.0.0.2", "cores": 2, "active": 0},
        ])

    def test_hello_progress_goodbye_shapes(self):
        h = agent.build_hello("app-1", "q9\n-2g", 42)
        self.assertEqual(h, {"version": 1, "app_id": "app-1", "job_name": "q9-2g", "pid": 42})
        self.assertEqual(agent.build_goodbye("app-1", "exploded")["outcome"], "unknown")
        p = agent.build_progress("app-1", 1234, [], [], [])
        self.assertEqual(set(p), {"version", "app_id", "time_ms", "jobs", "stages", "executors"})

    def test_replies_are_parsed_strictly(self):
        self.assertEqual(agent.parse_reply(b'{"target_executors":3,"kill":["1"]}'), (3, ["1"]))
        self.assertEqual(agent.parse_reply(b'{"target_executors":null,"kill":[]}'), (None, []))
        for bad in [b"", b"[]", b'{"target_executors":-1,"kill":[]}',
                    b'{"target_executors":true,"kill":[]}',
                    b'{"target_executors":1,"kill":["a b"]}',
                    b'{"target_executors":1,"kill":[],"more":1}']:
            self.assertIsNone(agent.parse_reply(bad), bad)

    def test_apply_kills_then_sets_the_target_once(self):
        sc = FakeSc()
        last, killed = agent.apply_reply(sc, (2, ["1", "3"]), None)
        self.assertEqual((last, killed), (2, ["1", "3"]))
        self.assertEqual(sc._jvm.calls, [("killExecutors", ("1", "3")),
                                         ("requestTotalExecutors", 2, 0, {})])
        # The same target again is not re-sent; a kill re-arms it.
        self.assertEqual(agent.apply_reply(sc, (2, []), last), (2, []))
        self.assertEqual(len(sc._jvm.calls), 2)
        agent.apply_reply(sc, (None, []), last)
        self.assertEqual(len(sc._jvm.calls), 2)
        # Spark killed none of them (unknown ids): nothing counts as killed.
        sc._jvm.scala_sc.killExecutors = lambda seq: False
        self.assertEqual(agent.apply_reply(sc, (None, ["9"]), 2), (None, []))


class FakeController(http.server.BaseHTTPRequestHandler):
    """Answers like mpda's server: checks the bearer token, records the messages."""

    secret = "ab" * 32
    seen = []
    reply = {"target_executors": 3, "kill": []}

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.headers.get("Authorization") != "Bearer " + self.secret:
            self.send_response(401)
            self.end_headers()
            return
        type(self).seen.append((self.path, json.loads(body)))
        out = json.dumps(self.reply).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args):
        pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AgentTests(unittest.TestCase):
    def setUp(self):
        FakeController.seen = []
        self.server = http.server.HTTPServer(("127.0.0.1", 0), FakeController)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        logging.getLogger("mpda_agent").setLevel(logging.CRITICAL)

    def tearDown(self):
        self.server.shutdown()
        self.server.server_close()
        logging.getLogger("mpda_agent").setLevel(logging.INFO)

    def make(self, url=None, secret=FakeController.secret):
        return agent.Agent(FakeSc(), url or self.url, secret, "q9-2g",
                           fetch_executors=lambda: agent.executors_from_rest(REST_EXECUTORS),
                           clock=lambda: 1764256000.0)

    def test_a_round_says_hello_reports_and_applies_the_reply(self):
        a = self.make()
        a.step()
        a.step()
        paths = [p for p, _ in FakeController.seen]
        self.assertEqual(paths, ["/v1/hello", "/v1/progress", "/v1/progress"])
        self.assertEqual(FakeController.seen[0][1]["job_name"], "q9-2g")
        progress = FakeController.seen[1][1]
        self.assertEqual(progress["time_ms"], 1764256000000)
        self.assertEqual(len(progress["executors"]), 2)
        # Target 3 applied once, although three replies carried it.
        self.assertEqual(a.sc._jvm.calls, [("requestTotalExecutors", 3, 0, {})])
        a.stop("succeeded")
        self.assertEqual(FakeController.seen[-1],
                         ("/v1/goodbye", {"version": 1, "app_id": a.app_id,
                                          "outcome": "succeeded"}))

    def test_a_killed_executor_leaves_the_reports_while_spark_still_lists_it(self):
        a = self.make()
        a.step()  # hello and a progress with both executors
        self.assertEqual([e["id"] for e in FakeController.seen[1][1]["executors"]], ["0", "1"])
        FakeController.reply = {"target_executors": 1, "kill": ["1"]}
        try:
            a.step()  # the reply kills executor 1
        finally:
            FakeController.reply = {"target_executors": 3, "kill": []}
        a.step()  # the REST list still has executor 1: not reported
        self.assertEqual([e["id"] for e in FakeController.seen[3][1]["executors"]], ["0"])
        self.assertEqual(a._killed, {"1"})
        # Once Spark lists it no more, the agent forgets it.
        a._fetch_executors = lambda: agent.executors_from_rest(REST_EXECUTORS[:2])
        a.step()
        self.assertEqual(a._killed, set())

    def test_a_wrong_secret_is_refused_and_nothing_is_applied(self):
        a = self.make(secret="cd" * 32)
        a.step()
        a.step()
        self.assertEqual(FakeController.seen, [])
        self.assertEqual(a.sc._jvm.calls, [])

    def test_an_unreachable_controller_never_raises_and_backs_off(self):
        a = self.make(url="http://127.0.0.1:%d" % free_port())
        for _ in range(4):
            a.step()  # must not raise
        self.assertTrue(a._down)
        self.assertGreater(a._backoff, a.poll_s)
        self.assertLessEqual(a._backoff, agent.MAX_BACKOFF_S)
        self.assertEqual(a.sc._jvm.calls, [])
        a.stop("failed")  # no hello was answered: no goodbye, and no error

    def test_a_failing_jvm_call_is_logged_not_raised(self):
        a = self.make()

        def boom(*_):
            raise RuntimeError("py4j: SparkContext stopped")
        a.sc._jvm.scala_sc.requestTotalExecutors = boom
        a.step()
        self.assertEqual([p for p, _ in FakeController.seen], ["/v1/hello", "/v1/progress"])

    def test_the_background_thread_runs_and_stops(self):
        a = self.make()
        a.poll_s = 0.05
        a.start()
        deadline = threading.Event()
        for _ in range(100):
            if len(FakeController.seen) >= 3:
                break
            deadline.wait(0.05)
        a.stop("succeeded")
        self.assertGreaterEqual(len(FakeController.seen), 3)
        self.assertFalse(a._thread.is_alive())


class StartTests(unittest.TestCase):
    def test_not_configured_means_no_agent(self):
        self.assertIsNone(agent.start(FakeSc(), environ={}))

    def test_a_bad_secret_file_disables_the_agent(self):
        logging.getLogger("mpda_agent").setLevel(logging.CRITICAL)
        try:
            with tempfile.TemporaryDirectory() as d:
                path = os.path.join(d, "secret")
                with open(path, "w") as f:
                    f.write("not a secret\n")
                env = {"MPDA_CONTROLLER_URL": "http://127.0.0.1:1", "MPDA_SECRET_FILE": path}
                self.assertIsNone(agent.start(FakeSc(), environ=env))
                env["MPDA_SECRET_FILE"] = os.path.join(d, "missing")
                self.assertIsNone(agent.start(FakeSc(), environ=env))
        finally:
            logging.getLogger("mpda_agent").setLevel(logging.INFO)


if __name__ == "__main__":
    unittest.main()
