//! mpda's in-driver agent (`scripts/spark/mpda_agent.py`) in a real PySpark driver, end to
//! end: a real 2 x 1-core standalone cluster (`mpda spark up`), a real `ControlServer`, and
//! `scripts/spark/agent_probe.py` (three short jobs with a shuffle each, pauses between
//! them). The controller answers Hello with a target of 2 executors and, once Progress shows
//! two executors, with a target of 1 and a kill of one of them. The test checks the
//! messages (Hello with the app id, Progress with plausible stage counts over several
//! stages, executors, Goodbye), that Spark applied the reply (the master's `/json` shows the
//! application's cores go from 2 to 1, and the killed executor leaves the Progress reports),
//! and that `mpda spark down` leaves no JVM (the driver's included: it runs inside the
//! cluster's work dir, where `cluster_jvms` looks).
//!
//! Needs Java and the PySpark venv of `scripts/spark/setup.sh`. Without them it prints
//! `SKIPPED live_agent: ...` and passes, unless `MPDA_REQUIRE_SPARK=1`, which turns the skip
//! into a failure.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mpda::live::cluster::{ClusterState, MasterState, cluster_jvms, find_java, find_spark_home};
use mpda::live::protocol::{Message, Reply, StageStatus};
use mpda::live::server::{ControlServer, Handler, Secret, default_bind};

mod live_common;

use live_common::{DownOnDrop, free_ports, mpda, run_or_skip, text, up_args};

const TEST: &str = "live_agent";

/// The venv python that runs PySpark: the `bin/python` of the venv holding `spark_home`
/// (the pyspark package folder, `VENV/lib/pythonX.Y/site-packages/pyspark`).
fn venv_python(spark_home: &Path) -> Option<PathBuf> {
    spark_home
        .ancestors()
        .map(|d| d.join("bin/python"))
        .find(|p| p.is_file())
}

/// The venv python and Spark's home if the test can run; prints the skip line, or panics
/// under MPDA_REQUIRE_SPARK=1.
fn spark_python() -> Option<(PathBuf, PathBuf)> {
    let found = find_java()
        .map_err(|e| e.to_string())
        .and_then(|_| find_spark_home(None).map_err(|e| e.to_string()))
        .and_then(|home| {
            let python = venv_python(&home).ok_or_else(|| {
                format!(
                    "no bin/python in any folder above {} (run scripts/spark/setup.sh)",
                    home.display()
                )
            })?;
            Ok((python, home))
        });
    match found {
        Ok(found) => Some(found),
        Err(why) => {
            run_or_skip(TEST, Some(why));
            None
        }
    }
}

/// Kills the driver's process group (python and its gateway JVM) when dropped.
struct KillGroupOnDrop(i32);
impl Drop for KillGroupOnDrop {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the process group of a child this test started.
        unsafe {
            libc::kill(-self.0, libc::SIGKILL);
        }
    }
}

/// What the controller saw and decided, with the time of each.
#[derive(Default)]
struct Log {
    messages: Vec<(Instant, Message)>,
    /// When the reply asking for 1 executor went out, and the executor it killed.
    shrink: Option<(Instant, String)>,
}

/// Answers Hello with a target of 2; the first Progress with two executors with a target of
/// 1 and a kill of the less busy one; everything after that with a target of 1.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Log>>);

impl Handler for Recorder {
    fn handle(&mut self, msg: Message) -> Reply {
        let mut log = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let reply = match &msg {
            Message::Hello(_) => Reply {
                target_executors: Some(2),
                kill: vec![],
            },
            Message::Progress(p) if log.shrink.is_none() && p.executors.len() >= 2 => {
                let victim = p
                    .executors
                    .iter()
                    .min_by_key(|e| e.active)
                    .map(|e| e.id.clone())
                    .unwrap_or_default();
                log.shrink = Some((now, victim.clone()));
                Reply {
                    target_executors: Some(1),
                    kill: vec![victim],
                }
            }
            Message::Progress(_) => Reply {
                target_executors: Some(if log.shrink.is_some() { 1 } else { 2 }),
                kill: vec![],
            },
            Message::Goodbye(_) => Reply::default(),
        };
        log.messages.push((now, msg));
        reply
    }
}

#[test]
fn the_agent_reports_a_real_application_and_spark_applies_its_executor_target() {
    let Some((python, spark_home)) = spark_python() else {
        return;
    };
    let t_start = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("cluster");
    let work_s = work.display().to_string();
    let _down = DownOnDrop(&work);
    let args = up_args(&work, free_ports(5), 512);
    let o = mpda(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(o.status.success(), "up failed: {}", text(&o));
    let t_up = t_start.elapsed();
    let state = ClusterState::load(&work).unwrap();
    let master_ui = state.master_ui.clone();

    let secret = Secret::generate().unwrap();
    let secret_file = dir.path().join("secret");
    secret.write_to(&secret_file).unwrap();
    let rec = Recorder::default();
    let server = ControlServer::start(default_bind(), secret, rec.clone()).unwrap();

    let probe = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/spark/agent_probe.py");
    let props = work.join("private/spark-defaults.conf");
    assert!(props.is_file(), "{} is missing", props.display());
    let out_file = dir.path().join("probe.out");
    let err_file = dir.path().join("probe.err");
    // The driver works inside the cluster's work dir, so that `cluster_jvms` (and `down`)
    // see its gateway JVM too; its own process group lets a failing test kill it.
    let mut child = Command::new(&python)
        .arg(&probe)
        .args(["--rounds", "3", "--pause-s", "2"])
        .current_dir(&work)
        .env(
            "PYSPARK_SUBMIT_ARGS",
            format!("--properties-file {} pyspark-shell", props.display()),
        )
        // The Spark the cluster runs, whatever $SPARK_HOME says (an invalid one makes
        // find_spark_home fall back to the venv, but PySpark would still use it).
        .env("SPARK_HOME", &spark_home)
        .env("MPDA_CONTROLLER_URL", server.url())
        .env("MPDA_SECRET_FILE", &secret_file)
        .env("MPDA_POLL_MS", "250")
        .env("SPARK_LOCAL_IP", "127.0.0.1")
        .env("PYTHONUNBUFFERED", "1")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_file).unwrap())
        .stderr(std::fs::File::create(&err_file).unwrap())
        .process_group(0)
        .spawn()
        .unwrap();
    let _kill = KillGroupOnDrop(child.id() as i32);
    let logs = || {
        format!(
            "probe stdout:\n{}\nprobe stderr (end):\n{}",
            std::fs::read_to_string(&out_file).unwrap_or_default(),
            tail(
                &std::fs::read_to_string(&err_file).unwrap_or_default(),
                4000
            )
        )
    };

    // While it runs, sample the application's cores at the master, and after the reply,
    // watch for the killed executor's JVM to exit.
    let mut samples: Vec<(Instant, String, i64)> = Vec::new();
    let mut victim_exited: Option<Instant> = None;
    let deadline = Instant::now() + Duration::from_secs(150);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "the probe ran past 150 s\n{}",
            logs()
        );
        if let Ok(m) = MasterState::fetch(&master_ui) {
            for a in &m.activeapps {
                samples.push((Instant::now(), a.id.clone(), a.cores));
            }
        }
        if victim_exited.is_none() {
            let shrink = rec.0.lock().unwrap().shrink.clone();
            if let Some((_, victim)) = shrink
                && executor_pids(&victim).is_empty()
            {
                victim_exited = Some(Instant::now());
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let t_app = t_start.elapsed() - t_up;
    assert!(status.success(), "the probe failed: {status}\n{}", logs());
    server.stop();
    let out = std::fs::read_to_string(&out_file).unwrap();
    assert!(out.contains("agent on"), "{}", logs());
    assert!(out.contains("probe: succeeded"), "{}", logs());
    // The agent swallows a failing py4j call or a refused message (logging it once) so as
    // never to break the application: here any such line is a failure. Only a slow first
    // read of the driver's UI (still starting) is tolerated.
    let err = std::fs::read_to_string(&err_file).unwrap();
    let complaints: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("mpda agent:") && !l.contains("cannot read executors"))
        .collect();
    assert!(complaints.is_empty(), "{complaints:?}\n{}", logs());

    let log = rec.0.lock().unwrap();
    let msgs: Vec<&Message> = log.messages.iter().map(|(_, m)| m).collect();

    // Hello first, with the application's id; Goodbye last, succeeded.
    let Some(Message::Hello(hello)) = msgs.first() else {
        panic!("the first message is not a Hello: {msgs:?}")
    };
    let app_id = hello.app_id.clone();
    assert!(app_id.starts_with("app-"), "{hello:?}");
    assert_eq!(hello.job_name, "agent-probe");
    assert!(msgs.iter().all(|m| m.app_id() == app_id), "{msgs:?}");
    match msgs.last() {
        Some(Message::Goodbye(g)) => {
            assert_eq!(g.outcome, mpda::live::protocol::Outcome::Succeeded, "{g:?}")
        }
        other => panic!("the last message is not a Goodbye: {other:?}"),
    }

    // Progress: several reports, plausible counts, at least 2 distinct stages, one complete,
    // executors reported.
    let progress: Vec<_> = log
        .messages
        .iter()
        .filter_map(|(t, m)| match m {
            Message::Progress(p) => Some((*t, p)),
            _ => None,
        })
        .collect();
    assert!(progress.len() >= 5, "only {} Progress", progress.len());
    let mut stage_ids = std::collections::BTreeSet::new();
    let mut completed = false;
    for (_, p) in &progress {
        for s in &p.stages {
            assert!(s.num_tasks > 0, "{s:?}");
            assert!(s.complete <= s.num_tasks, "{s:?}");
            stage_ids.insert(s.stage_id);
            completed |= s.status == StageStatus::Complete && s.complete == s.num_tasks;
        }
    }
    assert!(stage_ids.len() >= 2, "stages seen: {stage_ids:?}");
    assert!(completed, "no stage completed in any Progress");
    let last = progress.last().unwrap().1;
    assert_eq!(last.jobs.len(), 3, "{last:?}");
    assert!(
        last.stages
            .iter()
            .all(|s| s.status == StageStatus::Complete),
        "{last:?}"
    );

    // The reply: the controller asked for 1 executor once it saw 2, and Spark applied it.
    let (t_shrink, victim) = log
        .shrink
        .clone()
        .unwrap_or_else(|| panic!("Progress never showed two executors\n{}", logs()));
    let gone = progress
        .iter()
        .find(|(t, p)| *t > t_shrink && p.executors.iter().all(|e| e.id != victim))
        .map(|(t, p)| (*t, p.executors.len()))
        .unwrap_or_else(|| panic!("executor {victim} never left the Progress reports"));
    assert_eq!(gone.1, 1, "executors after the kill: {}", gone.1);
    let ours: Vec<_> = samples.iter().filter(|(_, id, _)| *id == app_id).collect();
    let before = ours.iter().filter(|(t, ..)| *t <= t_shrink).map(|s| s.2);
    assert_eq!(
        before.max(),
        Some(2),
        "the master never showed 2 cores before the reply"
    );
    let first_one = ours
        .iter()
        .find(|(t, _, c)| *t > t_shrink && *c == 1)
        .map(|s| s.0)
        .unwrap_or_else(|| panic!("the master never showed 1 core after the reply: {ours:?}"));
    assert!(
        ours.iter().all(|(t, _, c)| *t < first_one || *c <= 1),
        "the application got a second executor back: {ours:?}"
    );
    // Nothing asked for 2 again, so no stage after the reply ran on the killed executor.
    assert!(
        progress
            .iter()
            .filter(|(t, _)| *t > gone.0)
            .all(|(_, p)| p.executors.len() <= 1),
        "an executor came back"
    );

    let exited = victim_exited
        .unwrap_or_else(|| panic!("executor {victim}'s JVM never exited while the app ran"));

    let t = Instant::now();
    let o = mpda(&["spark", "down", "--work", &work_s]);
    assert!(o.status.success(), "down failed: {}", text(&o));
    let t_down = t.elapsed();
    for d in &state.daemons {
        assert!(!d.alive(), "{} (pid {}) still runs", d.role, d.pid);
    }
    let jvms = cluster_jvms(&state);
    assert!(jvms.is_empty(), "{jvms:?}");

    println!(
        "live_agent: up {:.1} s, application {:.1} s, down {:.1} s, total {:.1} s; \
         {} Progress, stages {:?}; reply -> master shows 1 core {:.2} s, \
         reply -> executor {victim} gone from Progress {:.2} s, its JVM exited {:.2} s",
        t_up.as_secs_f64(),
        t_app.as_secs_f64(),
        t_down.as_secs_f64(),
        t_start.elapsed().as_secs_f64(),
        progress.len(),
        stage_ids,
        (first_one - t_shrink).as_secs_f64(),
        (gone.0 - t_shrink).as_secs_f64(),
        exited.saturating_duration_since(t_shrink).as_secs_f64(),
    );
}

fn tail(s: &str, n: usize) -> &str {
    let mut start = s.len().saturating_sub(n);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

/// Pids of executor JVMs with Spark executor id `id` (their command line has
/// `--executor-id ID`); one cluster runs at a time in this test, with one application.
fn executor_pids(id: &str) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
                return false;
            };
            let args: Vec<&[u8]> = cmd.split(|b| *b == 0).collect();
            args.iter()
                .any(|a| a.ends_with(b"CoarseGrainedExecutorBackend"))
                && args
                    .windows(2)
                    .any(|w| w[0] == b"--executor-id" && w[1] == id.as_bytes())
        })
        .collect()
}
