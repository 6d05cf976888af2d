//! A real standalone Spark cluster on this machine, through the `mpda spark` commands:
//! `up` (2 workers x 1 core x 512 MB), the master's `/json`, every daemon listening on
//! 127.0.0.1 only, `status`, `down`, and no JVM left; then Ctrl-C during `up`.
//!
//! Needs Java and the PySpark of `scripts/spark/setup.sh`. Without them each test prints
//! `SKIPPED live_cluster: ...` and passes, unless `MPDA_REQUIRE_SPARK=1` (what
//! `scripts/spark/smoke.sh` sets), which turns the skip into a failure.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use mpda::live::cluster::{
    CgroupVersion, ClusterState, CpuCgroups, MasterState, cluster_jvms, find_java, find_spark_home,
};

/// One cluster at a time: two would fight over this machine's two cores.
mod live_common;

use live_common::{DownOnDrop, free_ports, mpda, run_or_skip, text, up_args};

static ONE_CLUSTER: Mutex<()> = Mutex::new(());

/// Whether the test can run; prints the skip line, or panics under MPDA_REQUIRE_SPARK=1.
fn spark_available(test: &str) -> bool {
    let missing = find_java()
        .err()
        .or_else(|| find_spark_home(None).err())
        .map(|e| e.to_string());
    run_or_skip(&format!("live_cluster: {test}"), missing)
}

/// Local addresses (hex, as in /proc/net/tcp*) listening on `port`.
fn listeners(port: u16) -> Vec<String> {
    let mut out = Vec::new();
    for f in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(t) = std::fs::read_to_string(f) else {
            continue;
        };
        for line in t.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(state)) = (cols.get(1), cols.get(3)) else {
                continue;
            };
            let Some((addr, p)) = local.split_once(':') else {
                continue;
            };
            if *state == "0A" && u16::from_str_radix(p, 16).ok() == Some(port) {
                out.push(addr.to_string());
            }
        }
    }
    out
}

/// 127.0.0.1 as /proc/net/tcp (IPv4) or tcp6 (IPv4-mapped) writes it.
fn is_loopback_hex(addr: &str) -> bool {
    addr == "0100007F" || addr == "0000000000000000FFFF00000100007F"
}

/// No daemon of `state` runs, no JVM of the cluster is left, and the state file is gone.
fn assert_nothing_left(state: &ClusterState, work: &std::path::Path) {
    for d in &state.daemons {
        assert!(!d.alive(), "{} (pid {}) still runs", d.role, d.pid);
    }
    let jvms = cluster_jvms(state);
    assert!(jvms.is_empty(), "{jvms:?}");
    assert!(!ClusterState::file(work).exists(), "the state file is left");
}

#[test]
fn a_cluster_goes_up_reports_and_goes_down_leaving_no_jvm() {
    if !spark_available("a_cluster_goes_up_reports_and_goes_down_leaving_no_jvm") {
        return;
    }
    let _one = ONE_CLUSTER.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("cluster");
    let _down = DownOnDrop(&work);
    let base = free_ports(5);
    let mut args = up_args(&work, base, 512);
    // Worker 1 at half a core, where this machine lets us make cgroups.
    let cgroups = CpuCgroups::detect(Path::new("/sys/fs/cgroup"));
    match &cgroups {
        Ok(_) => args.extend(["--cpu-quota".to_string(), "1=0.5".to_string()]),
        Err(e) => println!("live_cluster: no CPU quota checked: {e}"),
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();

    let t = Instant::now();
    let o = mpda(&args);
    assert!(o.status.success(), "up failed: {}", text(&o));
    println!("up took {:.1} s", t.elapsed().as_secs_f64());

    let state = ClusterState::load(&work).unwrap();
    assert_eq!(state.phase, "up");
    assert_eq!(state.daemons.len(), 4, "{state:?}");
    if let Ok(cg) = &cgroups {
        let dir = cg.worker_dir(&state.id, 1);
        assert!(state.cgroups.contains(&dir), "{state:?}");
        let limit = match cg.version {
            CgroupVersion::V1 => ("cpu.cfs_quota_us", "50000"),
            CgroupVersion::V2 => ("cpu.max", "50000 100000"),
        };
        let got = std::fs::read_to_string(dir.join(limit.0)).unwrap();
        assert_eq!(got.trim(), limit.1, "{}", dir.display());
        let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap();
        let worker1 = state.daemons.iter().find(|d| d.role == "worker-1").unwrap();
        assert!(
            procs.lines().any(|l| l.trim() == worker1.pid.to_string()),
            "worker-1 (pid {}) is not in {}: {procs:?}",
            worker1.pid,
            dir.display()
        );
    }
    let m = MasterState::fetch(&format!("http://127.0.0.1:{}", base + 1)).unwrap();
    assert_eq!(m.status, "ALIVE");
    let alive: Vec<_> = m.alive().collect();
    assert_eq!(alive.len(), 2, "{m:?}");
    for w in &alive {
        assert_eq!(w.host, "127.0.0.1", "{w:?}");
        assert_eq!((w.cores, w.memory), (1, 512), "{w:?}");
    }
    for port in base..base + 5 {
        let l = listeners(port);
        assert!(!l.is_empty(), "nothing listens on port {port}");
        assert!(
            l.iter().all(|a| is_loopback_hex(a)),
            "port {port} listens on {l:?}"
        );
    }

    let o = mpda(&["spark", "status", "--work", &work.display().to_string()]);
    assert!(o.status.success(), "status failed: {}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("2 worker(s) ALIVE of 2"), "{}", text(&o));
    assert!(
        out.contains("applications: 0 active, 0 completed"),
        "{}",
        text(&o)
    );
    assert!(!out.contains("NOT RUNNING"), "{}", text(&o));

    // The same cluster, used as an existing one: recorded, reported, forgotten, untouched.
    let ext = dir.path().join("external");
    let ext_s = ext.display().to_string();
    let master = format!("spark://127.0.0.1:{base}");
    let ui = format!("http://127.0.0.1:{}", base + 1);
    let o = mpda(&[
        "spark",
        "up",
        "--master",
        &master,
        "--master-ui",
        &ui,
        "--work",
        &ext_s,
    ]);
    assert!(o.status.success(), "up --master failed: {}", text(&o));
    let o = mpda(&["spark", "status", "--work", &ext_s]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("(external)"),
        "{}",
        text(&o)
    );
    let o = mpda(&["spark", "down", "--work", &ext_s]);
    assert!(
        o.status.success(),
        "down of the external cluster: {}",
        text(&o)
    );
    assert!(
        state.daemons.iter().all(|d| d.alive()),
        "down --master stopped a daemon"
    );

    let t = Instant::now();
    let o = mpda(&["spark", "down", "--work", &work.display().to_string()]);
    assert!(o.status.success(), "down failed: {}", text(&o));
    println!("down took {:.1} s", t.elapsed().as_secs_f64());
    assert_nothing_left(&state, &work);
    for g in &state.cgroups {
        assert!(!g.exists(), "cgroup {} is left", g.display());
    }
    let o = mpda(&["spark", "status", "--work", &work.display().to_string()]);
    assert!(!o.status.success(), "status after down: {}", text(&o));
}

#[test]
fn ctrl_c_during_up_leaves_no_jvm() {
    if !spark_available("ctrl_c_during_up_leaves_no_jvm") {
        return;
    }
    let _one = ONE_CLUSTER.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("cluster");
    let _down = DownOnDrop(&work);
    let args = up_args(&work, free_ports(5), 512);
    let mut child = Command::new(env!("CARGO_BIN_EXE_mpda"))
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupt once the master and a worker have been started, before they register.
    let deadline = Instant::now() + Duration::from_secs(60);
    let state = loop {
        if let Ok(s) = ClusterState::load(&work)
            && s.daemons.len() >= 2
        {
            break s;
        }
        assert!(Instant::now() < deadline, "up never started two daemons");
        assert!(child.try_wait().unwrap().is_none(), "up exited early");
        std::thread::sleep(Duration::from_millis(50));
    };
    // SAFETY: kill(2) on our own child.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let o = child.wait_with_output().unwrap();
    assert!(!o.status.success(), "up survived Ctrl-C: {}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("interrupted"),
        "{}",
        text(&o)
    );
    // Every daemon `up` had started by then, and any it started after, is gone.
    let state = ClusterState::load(&work).unwrap_or(state);
    assert_nothing_left(&state, &work);
}

#[test]
fn a_failed_up_names_the_daemon_and_leaves_nothing() {
    if !spark_available("a_failed_up_names_the_daemon_and_leaves_nothing") {
        return;
    }
    let _one = ONE_CLUSTER.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("cluster");
    let _down = DownOnDrop(&work);
    let base = free_ports(5);
    // Worker 1's UI port is taken: that worker cannot start, and nothing may fall back.
    let _taken = TcpListener::bind(("127.0.0.1", base + 4)).unwrap();
    let mut args = up_args(&work, base, 512);
    let cgroups = CpuCgroups::detect(Path::new("/sys/fs/cgroup"));
    if cgroups.is_ok() {
        args.extend(["--cpu-quota".to_string(), "1=0.5".to_string()]);
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_mpda"))
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Remember what `up` started while it runs: it removes the state file when it fails.
    let mut seen: Option<ClusterState> = None;
    while child.try_wait().unwrap().is_none() {
        if let Ok(s) = ClusterState::load(&work) {
            seen = Some(s);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let o = child.wait_with_output().unwrap();
    assert!(
        !o.status.success(),
        "up succeeded on a taken port: {}",
        text(&o)
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("worker-1"), "{}", text(&o));
    let state = seen.expect("up never wrote its state");
    assert_nothing_left(&state, &work);
    if let Ok(cg) = &cgroups {
        let parent = cg.cluster_dir(&state.id);
        assert!(!parent.exists(), "cgroup {} is left", parent.display());
    }
}
