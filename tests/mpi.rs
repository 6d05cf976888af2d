//! `mpirun -n 2 mpda train` (feature `mpi`, Open MPI from scripts/mpi/setup.sh): the same
//! weights as one process with 2 gradient shards, a killed rank that stops the whole job
//! within seconds, an exact resume after it, ranks that disagree on their config, and the
//! cross-host path through network namespaces (scripts/mpi/netns.sh).
//!
//! `.ci/run` runs this file with `--features mpi` and `MPDA_REQUIRE_NETNS=1`: there the
//! namespace test fails rather than skips when it cannot create namespaces.
#![cfg(feature = "mpi")]

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_mpda");

mod common;

/// The tiny PPO run of tests/train.rs with `shards` gradient shards: 8 rollouts per
/// iteration, split 4 and 4 between two ranks.
fn tiny_config(iterations: usize, shards: usize) -> String {
    common::tiny_train_config(iterations, 3, 8)
        .replace("epochs = 2", &format!("epochs = 2\ngrad_shards = {shards}"))
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let f = dir.join(name);
    std::fs::write(&f, text).unwrap();
    f
}

/// `mpirun -n ranks` with root allowed (CI runs as root) and oversubscription allowed
/// (a one-core runner still gets two ranks).
fn mpirun(ranks: usize) -> Command {
    let mut c = Command::new("mpirun");
    c.env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .args(["--oversubscribe", "-n", &ranks.to_string()]);
    c
}

fn train_args(c: &mut Command, threads: &str, config: &Path, runs: &Path) {
    c.args(["train", "--threads", threads, "--config"])
        .arg(config)
        .arg("--runs")
        .arg(runs);
}

fn ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn checkpoint(runs: &Path, it: usize) -> PathBuf {
    runs.join("tiny/checkpoints").join(format!("iter-{it:06}"))
}

fn assert_same_weights(a: &Path, b: &Path, it: usize, what: &str) {
    for f in ["model.bpk", "adam.bin"] {
        let (x, y) = (
            read(&checkpoint(a, it).join(f)),
            read(&checkpoint(b, it).join(f)),
        );
        assert!(!x.is_empty());
        assert!(x == y, "{f} after iteration {it}: {what}");
    }
}

/// Writes the one-shard config a rank runs, and trains its reference: one process with 2
/// gradient shards, in `dir/single`. Returns (the rank's config, the reference's runs).
fn reference(dir: &Path, iterations: usize) -> (PathBuf, PathBuf) {
    let one_proc = write(dir, "two-shards.toml", &tiny_config(iterations, 2));
    let per_rank = write(dir, "one-shard.toml", &tiny_config(iterations, 1));
    let single = dir.join("single");
    let mut c = Command::new(BIN);
    train_args(&mut c, "2", &one_proc, &single);
    ok(&c.output().unwrap(), "the one-process run");
    (per_rank, single)
}

/// Waits for `child` to end, at most `limit_s` seconds after `since` happened (else kills
/// it and fails); returns its status and stderr.
fn end_of(child: &mut std::process::Child, limit_s: u64, since: &str) -> (ExitStatus, String) {
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > Duration::from_secs(limit_s) {
            child.kill().unwrap();
            panic!("the job still runs {limit_s} s after {since}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    (status, err)
}

/// The columns of metrics.csv that do not measure time, row by row.
fn learning_columns(runs: &Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(runs.join("tiny/metrics.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let keep = [
        "iteration",
        "decisions",
        "train_avg_jct_s",
        "mean_return",
        "entropy",
        "policy_loss",
        "value_loss",
        "approx_kl",
        "clip_fraction",
        "grad_norm",
        "eval_avg_jct_s",
        "baseline_avg_jct_s",
        "eval_ratio",
    ];
    lines
        .map(|l| {
            header
                .iter()
                .zip(l.split(','))
                .filter(|(h, _)| keep.contains(h))
                .map(|(_, v)| v.to_string())
                .collect()
        })
        .collect()
}

/// The process of `rank` among the children of `parent` (mpirun starts local ranks itself).
fn rank_pid(parent: u32, rank: usize) -> Option<u32> {
    let want = format!("OMPI_COMM_WORLD_RANK={rank}");
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid != Some(parent) {
            continue;
        }
        let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        if env.split(|&b| b == 0).any(|v| v == want.as_bytes()) {
            return Some(pid);
        }
    }
    None
}

#[test]
fn two_ranks_equal_two_shards_and_a_killed_rank_resumes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let iterations = 10;
    let (per_rank, single) = reference(dir.path(), iterations);

    // Two ranks, one shard each: the same parts summed in the same order.
    let ranks = dir.path().join("ranks");
    let mut c = mpirun(2);
    c.arg(BIN);
    train_args(&mut c, "1", &per_rank, &ranks);
    let out = c.output().unwrap();
    ok(&out, "mpirun -n 2");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("data-parallel over 2 MPI ranks"), "{err}");
    assert!(
        err.contains("MPI: 2 ranks; rank 0 received trajectories"),
        "{err}"
    );
    assert_same_weights(&single, &ranks, iterations, "2 ranks differ from 2 shards");
    // Every iteration's learning statistics and held-out JCTs (evaluated by the ranks in
    // shares) agree to the written digit, and only rank 0 wrote: one row per iteration.
    let (a, b) = (learning_columns(&single), learning_columns(&ranks));
    assert_eq!(a.len(), iterations + 1);
    assert_eq!(a, b, "metrics.csv: 2 ranks against 2 shards");

    // SIGKILL rank 1 mid-run: mpirun must end the whole job within seconds, non-zero.
    let killed = dir.path().join("killed");
    let mut c = mpirun(2);
    c.arg(BIN);
    train_args(&mut c, "1", &per_rank, &killed);
    let mut child = c
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let latest = killed.join("tiny/LATEST");
    let start = Instant::now();
    while std::fs::read_to_string(&latest).unwrap_or_default().trim() < "iter-000003" {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no checkpoint appeared"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let victim = rank_pid(child.id(), 1).expect("rank 1 among mpirun's children");
    let kill_at = Instant::now();
    // SAFETY: kill(2) on a pid we just found; no memory is touched.
    assert_eq!(unsafe { libc::kill(victim as i32, libc::SIGKILL) }, 0);
    let (status, err) = end_of(&mut child, 30, "rank 1 was killed");
    let stopped_in = kill_at.elapsed();
    assert!(!status.success(), "mpirun exited 0 after a rank was killed");
    assert!(
        err.contains("rank 1") && err.contains("signal 9"),
        "the error does not name the killed rank:\n{err}"
    );
    eprintln!("the job stopped {stopped_in:?} after rank 1 was killed");
    let at_kill = std::fs::read_to_string(&latest).unwrap();
    let killed_at: usize = at_kill.trim().trim_start_matches("iter-").parse().unwrap();
    assert!(
        killed_at < iterations,
        "the run finished before it was killed; the test did not interrupt it"
    );

    // Resume under MPI: it continues exactly to the uninterrupted weights.
    let mut c = mpirun(2);
    c.arg(BIN);
    train_args(&mut c, "1", &per_rank, &killed);
    c.arg("--resume");
    let out = c.output().unwrap();
    ok(&out, "the resumed mpirun -n 2");
    assert!(String::from_utf8_lossy(&out.stderr).contains("resuming after iteration"));
    assert_same_weights(
        &single,
        &killed,
        iterations,
        "the resumed 2-rank run differs from the uninterrupted one",
    );
}

#[test]
fn ranks_that_disagree_on_their_config_stop_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(dir.path(), "a.toml", &tiny_config(2, 1));
    let b = write(
        dir.path(),
        "b.toml",
        &tiny_config(2, 1).replace("seed = 7", "seed = 8"),
    );
    let runs = dir.path().join("runs");
    // One rank with each config (MPMD: `-n 1 A : -n 1 B`).
    let mut c = mpirun(1);
    c.arg(BIN);
    train_args(&mut c, "1", &a, &runs);
    c.args([":", "-n", "1", BIN]);
    train_args(&mut c, "1", &b, &runs);
    let out = c.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "ranks with different configs trained:\n{err}"
    );
    assert!(
        err.contains("the ranks disagree on the config and arguments") && err.contains("rank 1"),
        "{err}"
    );
    assert!(
        !runs.join("tiny/LATEST").exists(),
        "a checkpoint was written"
    );
}

#[test]
fn ranks_in_separate_network_namespaces_train_over_tcp() {
    let root = unsafe { libc::geteuid() } == 0;
    let has_ip = Command::new("ip").arg("-V").output().is_ok();
    if !(root && has_ip) {
        assert!(
            std::env::var_os("MPDA_REQUIRE_NETNS").is_none(),
            "MPDA_REQUIRE_NETNS is set, but this needs root and iproute2"
        );
        eprintln!("SKIPPED: network namespaces need root and iproute2 (ip)");
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/mpi/netns.sh");
    let up = Command::new("bash")
        .arg(&script)
        .args(["up", "2"])
        .output()
        .unwrap();
    ok(&up, "netns.sh up");
    let dir = tempfile::tempdir().unwrap();
    let iterations = 3;
    let (per_rank, single) = reference(dir.path(), iterations);
    let hosts = dir.path().join("hosts");
    let mut c = Command::new("bash");
    c.arg(&script).args(["run", "2", BIN]);
    train_args(&mut c, "1", &per_rank, &hosts);
    let out = c.output().unwrap();
    let down = Command::new("bash")
        .arg(&script)
        .arg("down")
        .output()
        .unwrap();
    ok(&out, "2 ranks over network namespaces");
    ok(&down, "netns.sh down");
    assert_same_weights(
        &single,
        &hosts,
        iterations,
        "2 ranks over TCP between namespaces differ from 2 shards",
    );
}

#[test]
fn a_rank_that_fails_alone_ends_the_job() {
    // Rank 0 refuses a folder that already holds a run, while rank 1 goes on to wait for
    // it in a collective: the job must end (MPI_Abort), not hang in MPI_Finalize.
    let dir = tempfile::tempdir().unwrap();
    let (per_rank, single) = reference(dir.path(), 1);
    std::fs::rename(single.join("tiny"), dir.path().join("held")).unwrap();
    let runs = dir.path().join("runs");
    std::fs::create_dir_all(&runs).unwrap();
    std::fs::rename(dir.path().join("held"), runs.join("tiny")).unwrap();
    let mut c = mpirun(2);
    c.arg(BIN);
    train_args(&mut c, "1", &per_rank, &runs);
    let mut child = c
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (status, err) = end_of(&mut child, 60, "rank 0 failed");
    assert!(!status.success());
    assert!(
        err.contains("error (rank 0)") && err.contains("already holds a run"),
        "{err}"
    );
}
