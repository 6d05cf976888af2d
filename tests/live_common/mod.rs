//! Helpers shared by the live-Spark tests (`tests/live_cluster.rs`, `tests/live_agent.rs`):
//! the skip rule, free ports, running `mpda`, and tearing a cluster down on failure.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};

use mpda::live::cluster::ClusterState;

/// Whether a test that found `missing` (why Spark cannot run, if it cannot) should run:
/// prints `SKIPPED <label>: <why>`, or panics under MPDA_REQUIRE_SPARK=1.
pub fn run_or_skip(label: &str, missing: Option<String>) -> bool {
    match missing {
        None => true,
        Some(why) if std::env::var("MPDA_REQUIRE_SPARK").as_deref() == Ok("1") => {
            panic!("{label}: MPDA_REQUIRE_SPARK=1 but {why}")
        }
        Some(why) => {
            println!("SKIPPED {label}: {why}");
            false
        }
    }
}

/// The first of `n` consecutive free loopback ports, below the kernel's ephemeral range:
/// a port from that range could be taken by an outgoing connection (the workers' own, or
/// a test's polls) between this probe and the daemon's bind.
pub fn free_ports(n: u16) -> u16 {
    let low: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse().ok())
        .unwrap_or(32768);
    let (lo, hi) = (10_000u16, low.saturating_sub(n).max(10_001));
    let seed = std::process::id() as u64
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos() as u64)
            .unwrap_or(0);
    for k in 0..500u64 {
        let first = lo
            + ((seed.wrapping_mul(2654435761).wrapping_add(k * 7919)) % u64::from(hi - lo)) as u16;
        let all: Vec<_> = (first..first + n)
            .map(|p| TcpListener::bind(("127.0.0.1", p)))
            .collect();
        if all.iter().all(Result::is_ok) {
            return first;
        }
    }
    panic!("no block of {n} free ports in {lo}..{hi}");
}

pub fn mpda(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mpda"))
        .args(args)
        .output()
        .expect("run mpda")
}

pub fn text(o: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Runs `mpda spark down` when dropped, so a failing test leaves no cluster behind.
pub struct DownOnDrop<'a>(pub &'a Path);

impl Drop for DownOnDrop<'_> {
    fn drop(&mut self) {
        if ClusterState::file(self.0).exists() {
            let _ = mpda(&["spark", "down", "--work", &self.0.display().to_string()]);
        }
    }
}

/// `up` flags for a 2 x 1-core cluster of `memory_mb` per worker on the ports from `base`
/// (5 of them).
pub fn up_args(work: &Path, base: u16, memory_mb: u32) -> Vec<String> {
    [
        "spark",
        "up",
        "--workers",
        "2",
        "--cores",
        "1",
        "--timeout-s",
        "240",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([
        "--memory-mb".into(),
        memory_mb.to_string(),
        "--work".into(),
        work.display().to_string(),
        "--master-port".into(),
        base.to_string(),
        "--master-ui-port".into(),
        (base + 1).to_string(),
        "--history-port".into(),
        (base + 2).to_string(),
        "--worker-ui-port".into(),
        (base + 3).to_string(),
    ])
    .collect()
}
