"""mpda's agent inside a Spark driver: reports the application's progress to the mpda
controller and applies the executor counts it answers with.

The live run injects this module into each driver (one TPC-H query = one application) and
calls ``start(sc)`` right after the SparkContext exists. It needs only the Python standard
library and PySpark; the controller is ``mpda``'s server (``src/live/server.rs``), the
messages are those of ``src/live/protocol.rs`` (protocol version 1).

Configuration (environment of the driver process):

  MPDA_CONTROLLER_URL  base URL of the controller, e.g. ``http://127.0.0.1:40123``
  MPDA_SECRET_FILE     file holding the run's secret (64 hex digits, mode 0600)
  MPDA_JOB_NAME        the query / trace name the controller matches (default: sc.appName)
  MPDA_POLL_MS         milliseconds between two progress reports (default 500)
  MPDA_JOB_GROUP       report only the jobs of this job group (default: jobs of no group)

Without the first two the agent does nothing: the application runs as plain Spark.

Protocol: ``POST /v1/hello`` once, then ``POST /v1/progress`` every MPDA_POLL_MS, then
``POST /v1/goodbye`` from ``Agent.stop()`` (or an interpreter exit hook); each request carries
``Authorization: Bearer <secret>`` and each reply is ``{"target_executors": n|null,
"kill": [executor ids]}``.

Spark APIs it calls, and why:

* ``sc.statusTracker().getJobIdsForGroup(group)`` and ``getJobInfo(job_id)``: the
  application's jobs, their status and their stage ids (PySpark's public status API, backed by
  the driver's AppStatusStore; it keeps ``spark.ui.retainedJobs`` jobs).
* ``sc.statusTracker().getActiveStageIds()`` and ``getStageInfo(stage_id)``: each stage's
  current attempt and task counts (total, active, completed, failed). Neither says whether a
  stage that is not running is pending, skipped, done or failed, so the agent infers it (see
  ``stage_status``).
* ``GET {sc.uiWebUrl}/api/v1/applications/{sc.applicationId}/executors``: the live executors
  with their ids, hosts, cores and active tasks (Spark's monitoring REST API on the driver's
  own UI). The ids are what ``killExecutors`` takes; neither PySpark's status tracker nor
  ``getExecutorMemoryStatus`` (keyed by block-manager ``host:port``) gives them. With the UI
  off (``spark.ui.enabled=false``) the agent reports no executors: targets still work, kills
  the controller cannot choose.
* ``sc._jsc.sc().requestTotalExecutors(n, 0, <empty Scala Map>)``: sets the application's
  executor target (a public ``@DeveloperApi`` of SparkContext; on a standalone master with
  dynamic allocation off it raises or lowers the application's executor limit). The empty
  Scala Map (no locality preferences) is built with PySpark's own JVM helper
  ``org.apache.spark.api.python.PythonUtils.toScalaMap``.
* ``sc._jsc.sc().killExecutors(<Scala Seq of ids>)``: kills the named executors and lowers
  the target with them (``@DeveloperApi``; Spark refuses it while dynamic allocation is on).
  The Seq is built with ``PythonUtils.toSeq``. Kills are applied before the target, so that
  the target the controller asked for is the one left standing. An executor Spark accepted
  to kill is left out of later reports: the REST API goes on listing it as active for about
  5 s (on a 2-core machine), but it takes no more tasks, its JVM exits within about 1 s and
  the master has already given its cores back.

Verified on Spark 4.3.0 (standalone, dynamic allocation off) by ``tests/live_agent.rs``:
both py4j calls above work as written, the status tracker fields are those read here, and
the master shows the application's cores drop within about 0.2 s of a kill.

Failure behaviour: the agent runs on a daemon thread and never raises into the application.
If the controller cannot be reached or refuses a message, it logs once (to stderr, via
``logging``), backs off (doubling up to 30 s), keeps the last target Spark already has, and
the application goes on under Spark's own scheduling; when the controller answers again it
logs that once too. A failing JVM call is logged once and skipped.
"""

import atexit
import json
import logging
import os
import re
import sys
import threading
import time
import urllib.error
import urllib.request

PROTOCOL_VERSION = 1
DEFAULT_POLL_MS = 500
MAX_BACKOFF_S = 30.0
HTTP_TIMEOUT_S = 2.0
# The driver's own REST API answers its first request slowly while the JVM is still cold
# (measured: over 2 s with two drivers starting at once on 2 cores), so it gets longer.
UI_TIMEOUT_S = 10.0
_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_HEX_RE = re.compile(r"^[0-9a-f]{64}$")

log = logging.getLogger("mpda_agent")
if not log.handlers:
    _h = logging.StreamHandler(sys.stderr)
    _h.setFormatter(logging.Formatter("mpda agent: %(message)s"))
    log.addHandler(_h)
    log.setLevel(logging.INFO)
    log.propagate = False


# ----------------------------------------------------------------------------------------------
# message building (pure: takes what Spark reported, returns protocol dicts)


def _u32(v, hi=2**31 - 1):
    """A Spark count or id as the protocol's non-negative integer (None and negatives: 0)."""
    try:
        v = int(v)
    except (TypeError, ValueError):
        return 0
    return min(max(v, 0), hi)


def clean_text(text, default="unnamed"):
    """Free text as the protocol takes it: printable, at most 256 UTF-8 bytes, not empty."""
    s = "".join(c for c in str(text) if c.isprintable())
    s = s.encode("utf-8")[:256].decode("utf-8", "ignore")
    return s or default


def build_hello(app_id, job_name, pid):
    return {
        "version": PROTOCOL_VERSION,
        "app_id": str(app_id),
        "job_name": clean_text(job_name),
        "pid": _u32(pid, 2**32 - 1),
    }


def build_goodbye(app_id, outcome):
    if outcome not in ("succeeded", "failed", "unknown"):
        outcome = "unknown"
    return {"version": PROTOCOL_VERSION, "app_id": str(app_id), "outcome": outcome}


def job_status(status):
    """PySpark's JobExecutionStatus text (RUNNING, SUCCEEDED, FAILED, UNKNOWN) in lower case."""
    s = str(status).lower()
    return s if s in ("running", "succeeded", "failed") else "unknown"


def stage_status(active, info, job_statuses):
    """Infer a stage's status: running now is active; all tasks done is complete; not done
    while every job it belongs to has finished is skipped (its output was reused), or failed
    if one of those jobs failed; anything else has not run yet (pending)."""
    if active:
        return "active"
    if info is not None and info["num_tasks"] > 0 and info["complete"] >= info["num_tasks"]:
        return "complete"
    if job_statuses and all(s in ("succeeded", "failed") for s in job_statuses):
        return "failed" if "failed" in job_statuses else "skipped"
    return "pending"


def collect_jobs_and_stages(tracker, job_group=None):
    """(jobs, stages) protocol lists from a PySpark StatusTracker (or anything with its
    methods)."""
    job_ids = sorted({_u32(j) for j in (tracker.getJobIdsForGroup(job_group) or [])})
    active_stages = {_u32(s) for s in (tracker.getActiveStageIds() or [])}
    jobs = []
    stage_jobs = {}
    job_state = {}
    for jid in job_ids[-2000:]:
        info = tracker.getJobInfo(jid)
        if info is None:
            continue
        status = job_status(info.status)
        stage_ids = sorted({_u32(s) for s in (info.stageIds or [])})[:4000]
        jobs.append({"job_id": jid, "status": status, "stage_ids": stage_ids})
        job_state[jid] = status
        for sid in stage_ids:
            stage_jobs.setdefault(sid, []).append(jid)
    for sid in active_stages:
        stage_jobs.setdefault(sid, [])
    stages = []
    for sid in sorted(stage_jobs)[:4000]:
        raw = tracker.getStageInfo(sid)
        info = None
        if raw is not None:
            num_tasks = _u32(raw.numTasks, 10_000_000)
            info = {
                "attempt": _u32(raw.currentAttemptId),
                "num_tasks": num_tasks,
                "active": _u32(raw.numActiveTasks, 10_000_000),
                "complete": min(_u32(raw.numCompletedTasks, 10_000_000), num_tasks),
                "failed": _u32(raw.numFailedTasks, 10_000_000),
            }
        jids = sorted(stage_jobs[sid])
        status = stage_status(sid in active_stages, info, [job_state[j] for j in jids])
        base = info or {"attempt": 0, "num_tasks": 0, "active": 0, "complete": 0, "failed": 0}
        stages.append(dict(stage_id=sid, job_ids=jids, status=status, **base))
    return jobs, stages


def executors_from_rest(entries):
    """Protocol executors from the REST API's ``/executors`` list (the driver left out)."""
    out = []
    seen = set()
    for e in entries or []:
        eid = str(e.get("id", ""))
        if eid == "driver" or not _ID_RE.match(eid) or eid in seen or not e.get("isActive", True):
            continue
        seen.add(eid)
        host = clean_text(str(e.get("hostPort", "")).rsplit(":", 1)[0], "unknown")
        out.append({
            "id": eid,
            "host": host,
            "cores": max(1, _u32(e.get("totalCores"), 100_000)),
            "active": _u32(e.get("activeTasks"), 10_000_000),
        })
    return out[:10_000]


def build_progress(app_id, now_ms, jobs, stages, executors):
    return {
        "version": PROTOCOL_VERSION,
        "app_id": str(app_id),
        "time_ms": _u32(now_ms, 10_000_000_000_000),
        "jobs": jobs,
        "stages": stages,
        "executors": executors,
    }


def parse_reply(body):
    """The controller's reply as (target or None, [executor ids]); None if it is not one."""
    try:
        r = json.loads(body)
    except (ValueError, TypeError):
        return None
    if not isinstance(r, dict) or set(r) != {"target_executors", "kill"}:
        return None
    target, kill = r["target_executors"], r["kill"]
    if target is not None and (not isinstance(target, int) or isinstance(target, bool)
                               or target < 0):
        return None
    if not isinstance(kill, list) or not all(isinstance(k, str) and _ID_RE.match(k) for k in kill):
        return None
    return target, kill


# ----------------------------------------------------------------------------------------------
# applying a reply through the driver's JVM


def apply_reply(sc, reply, last_target):
    """Kills, then sets the target (so the controller's target is what stands). Returns
    ``(target, killed)``: the target now in force as far as the agent knows (None after a
    kill: Spark lowered it) and the executor ids Spark accepted to kill (empty when it
    killed none of them, e.g. ids it does not know)."""
    target, kill = reply
    jvm = sc._jvm
    utils = jvm.org.apache.spark.api.python.PythonUtils
    jsc = sc._jsc.sc()
    killed = []
    if kill:
        ids = jvm.java.util.ArrayList()
        for k in kill:
            ids.add(k)
        if jsc.killExecutors(utils.toSeq(ids)):
            killed = list(kill)
        last_target = None
    if target is not None and target != last_target:
        no_locality = utils.toScalaMap(jvm.java.util.HashMap())
        jsc.requestTotalExecutors(int(target), 0, no_locality)
        last_target = target
    return last_target, killed


# ----------------------------------------------------------------------------------------------
# the agent


class Agent:
    """Polls the driver and talks to the controller on a daemon thread. Build it with
    ``start(sc)``; ``stop(outcome)`` says goodbye."""

    def __init__(self, sc, url, secret, job_name, poll_ms=DEFAULT_POLL_MS, job_group=None,
                 fetch_executors=None, clock=time.time):
        self.sc = sc
        self.url = url.rstrip("/")
        self._auth = "Bearer " + secret
        self.job_name = job_name
        self.poll_s = max(0.05, poll_ms / 1000.0)
        self.job_group = job_group
        self.app_id = sc.applicationId
        self._fetch_executors = fetch_executors or self._executors_from_ui
        self._clock = clock
        self._said_hello = False
        self._last_target = None
        # Executors Spark accepted to kill. The driver's REST API still lists one as active
        # for about 5 s after the kill on this machine, although the master frees its cores
        # within 0.2 s, its JVM exits within about 1 s and the driver sends it no more
        # tasks; so the agent leaves them out of its reports: the controller sees the
        # executors the application can still use.
        self._killed = set()
        self._last_executors = []
        self._backoff = self.poll_s
        self._down = False  # the controller is unreachable (logged once)
        self._warned = set()  # other problems already logged
        self._stop = threading.Event()
        self._thread = None
        self._done = False
        # Never let a proxy from the environment see the secret.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    # -- transport

    def _post(self, path, msg):
        """POSTs a message; the parsed reply, or None on any failure (logged once)."""
        data = json.dumps(msg, separators=(",", ":")).encode()
        req = urllib.request.Request(self.url + path, data=data, method="POST", headers={
            "Content-Type": "application/json", "Authorization": self._auth})
        try:
            with self._opener.open(req, timeout=HTTP_TIMEOUT_S) as resp:
                body = resp.read(1 << 20)
        except urllib.error.HTTPError as e:
            # Reachable, but it refused the message: say why once per status.
            detail = ""
            try:
                detail = e.read(4096).decode("utf-8", "replace")
            except Exception:
                pass
            self._warn_once(("http", e.code),
                            "controller refused %s with %s %s; the application continues "
                            "under Spark's own scheduling" % (path, e.code, detail))
            self._reachable()
            return None
        except Exception as e:  # URLError, timeouts, resets: the controller is not there
            if not self._down:
                log.warning("controller %s unreachable (%s); the application continues under "
                            "Spark's own scheduling, retrying with back-off", self.url, e)
                self._down = True
            self._backoff = min(self._backoff * 2, MAX_BACKOFF_S)
            return None
        self._reachable()
        reply = parse_reply(body)
        if reply is None:
            self._warn_once("reply", "controller sent a reply that is not one; ignored")
        return reply

    def _reachable(self):
        if self._down:
            log.warning("controller %s reachable again", self.url)
        self._down = False
        self._backoff = self.poll_s

    def _warn_once(self, key, text):
        if key not in self._warned:
            self._warned.add(key)
            log.warning("%s", text)

    # -- Spark side

    def _executors_from_ui(self):
        ui = self.sc.uiWebUrl
        if not ui:
            self._warn_once("no-ui", "the driver UI is off: executors are not reported")
            return []
        url = "%s/api/v1/applications/%s/executors" % (ui.rstrip("/"), self.app_id)
        with self._opener.open(url, timeout=UI_TIMEOUT_S) as resp:
            return executors_from_rest(json.loads(resp.read(8 << 20)))

    def progress_message(self):
        jobs, stages = collect_jobs_and_stages(self.sc.statusTracker(), self.job_group)
        try:
            executors = self._fetch_executors()
            self._last_executors = executors
        except Exception as e:
            # Report the last list read rather than none: an empty list would tell the
            # controller the application holds no executor at all.
            self._warn_once("executors", "cannot read executors: %s" % e)
            executors = self._last_executors
        # An id Spark no longer lists as active needs no filtering: forget it (bounded set).
        self._killed &= {e["id"] for e in executors}
        executors = [e for e in executors if e["id"] not in self._killed]
        return build_progress(self.app_id, int(self._clock() * 1000), jobs, stages, executors)

    def _apply(self, reply):
        if reply is None:
            return
        try:
            self._last_target, killed = apply_reply(self.sc, reply, self._last_target)
            self._killed.update(killed)
        except Exception as e:  # py4j errors, a stopped context
            self._warn_once("apply", "cannot apply the controller's reply: %s" % e)

    # -- loop

    def step(self):
        """One round: hello (until it is answered), then one progress report."""
        if not self._said_hello:
            hello = build_hello(self.app_id, self.job_name, os.getpid())
            reply = self._post("/v1/hello", hello)
            if reply is None:
                return
            self._said_hello = True
            self._apply(reply)
        self._apply(self._post("/v1/progress", self.progress_message()))

    def _run(self):
        while not self._stop.is_set():
            try:
                self.step()
            except Exception as e:  # never into the application
                self._warn_once(("step", type(e).__name__), "agent step failed: %r" % e)
            self._stop.wait(self._backoff if self._down else self.poll_s)

    def start(self):
        self._thread = threading.Thread(target=self._run, name="mpda-agent", daemon=True)
        self._thread.start()
        atexit.register(self.stop, "unknown")
        return self

    def stop(self, outcome="unknown"):
        """Stops polling and says goodbye (once). Never raises."""
        if self._done:
            return
        self._done = True
        self._stop.set()
        try:
            if self._thread is not None and self._thread is not threading.current_thread():
                self._thread.join(timeout=HTTP_TIMEOUT_S * 2 + 1)
            if self._said_hello:
                self._post("/v1/goodbye", build_goodbye(self.app_id, outcome))
        except Exception as e:
            self._warn_once("goodbye", "goodbye failed: %r" % e)


def read_secret(path):
    """The run's secret from its file, or None (logged) if it cannot be read."""
    try:
        with open(path) as f:
            s = f.read().strip()
    except OSError as e:
        log.warning("cannot read the secret file %s: %s; agent disabled", path, e)
        return None
    if not _HEX_RE.match(s):
        log.warning("the secret file %s does not hold a secret; agent disabled", path)
        return None
    return s


def start(sc, job_name=None, environ=None):
    """Starts the agent for ``sc`` from the environment; returns it, or None when it is not
    configured or cannot start (the application then runs as plain Spark). Never raises."""
    env = os.environ if environ is None else environ
    try:
        url, secret_file = env.get("MPDA_CONTROLLER_URL"), env.get("MPDA_SECRET_FILE")
        if not url or not secret_file:
            return None
        if not url.startswith("http://"):
            log.warning("MPDA_CONTROLLER_URL must be an http:// URL, found %r; agent disabled",
                        url)
            return None
        secret = read_secret(secret_file)
        if secret is None:
            return None
        try:
            poll_ms = int(env.get("MPDA_POLL_MS", DEFAULT_POLL_MS))
        except ValueError:
            poll_ms = DEFAULT_POLL_MS
        name = job_name or env.get("MPDA_JOB_NAME") or sc.appName
        return Agent(sc, url, secret, name, poll_ms=poll_ms,
                     job_group=env.get("MPDA_JOB_GROUP") or None).start()
    except Exception as e:
        log.warning("agent not started: %r", e)
        return None
