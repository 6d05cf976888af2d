//! `mpda spark up | status | down`: the clap types and the command logic, kept in the
//! library so that `main.rs` stays a dispatcher.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use clap::{Args, Subcommand};

use super::cluster::{self, ClusterConfig, ClusterError, DEFAULT_CLUSTER_WORK, Ports, WorkerQuota};
use crate::config::Config;

/// `mpda spark ...`.
#[derive(Debug, Args)]
pub struct SparkArgs {
    #[command(subcommand)]
    pub command: SparkCommand,
}

#[derive(Debug, Subcommand)]
pub enum SparkCommand {
    /// Start a standalone master, K workers and a history server on 127.0.0.1 (or record
    /// an existing master with --master), and wait until every worker is ALIVE.
    Up(UpArgs),
    /// Show the cluster's processes, workers, cores and applications.
    Status(WorkArg),
    /// Stop every process of the cluster, remove its cgroups, check no JVM is left.
    Down(DownArgs),
}

#[derive(Debug, Args)]
pub struct WorkArg {
    /// The cluster's work dir (state file, logs, event logs, worker dirs).
    #[arg(long, default_value = DEFAULT_CLUSTER_WORK)]
    pub work: PathBuf,
}

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Number of workers.
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// Cores per worker.
    #[arg(long, default_value_t = 1)]
    pub cores: u32,
    /// Memory per worker, in MB (at least 450: Spark's executor minimum).
    #[arg(long, default_value_t = 1024)]
    pub memory_mb: u32,
    /// CPU quota of one worker and its executors, in cores: WORKER=CORES (e.g. 1=0.5);
    /// repeat for several workers. Uses the cgroup cpu controller (v1, else v2).
    #[arg(long, value_name = "I=F")]
    pub cpu_quota: Vec<WorkerQuota>,
    #[command(flatten)]
    pub work: WorkArg,
    /// Where applications write event logs (default WORK/events).
    #[arg(long)]
    pub event_log_dir: Option<PathBuf>,
    /// A folder with bin/spark-class (default: $SPARK_HOME, else the pyspark of
    /// scripts/spark/setup.sh's venv).
    #[arg(long)]
    pub spark_home: Option<PathBuf>,
    /// Use this existing standalone master (spark://HOST:PORT) instead of starting one.
    #[arg(long)]
    pub master: Option<String>,
    /// The existing master's web UI (default http://HOST:8080).
    #[arg(long)]
    pub master_ui: Option<String>,
    /// Master RPC port.
    #[arg(long, default_value_t = Ports::default().master)]
    pub master_port: u16,
    /// Master web UI port (serves /json).
    #[arg(long, default_value_t = Ports::default().master_ui)]
    pub master_ui_port: u16,
    /// First worker UI port; worker i uses this + i.
    #[arg(long, default_value_t = Ports::default().worker_ui)]
    pub worker_ui_port: u16,
    /// History server UI port.
    #[arg(long, default_value_t = Ports::default().history)]
    pub history_port: u16,
    /// Seconds to wait for every worker to register.
    #[arg(long, default_value_t = ClusterConfig::default().start_timeout_s)]
    pub timeout_s: u64,
}

#[derive(Debug, Args)]
pub struct DownArgs {
    #[command(flatten)]
    pub work: WorkArg,
    /// Seconds between SIGTERM and SIGKILL.
    #[arg(long, default_value_t = 15)]
    pub grace_s: u64,
}

impl UpArgs {
    /// The config these flags describe; an invalid value names its flag.
    pub fn config(&self) -> Result<ClusterConfig, ClusterError> {
        let cfg = ClusterConfig {
            workers: self.workers,
            cores: self.cores,
            memory_mb: self.memory_mb,
            cpu_quota: self.cpu_quota.clone(),
            ports: Ports {
                master: self.master_port,
                master_ui: self.master_ui_port,
                worker_ui: self.worker_ui_port,
                history: self.history_port,
            },
            work_dir: self.work.work.clone(),
            event_log_dir: self.event_log_dir.clone(),
            spark_home: self.spark_home.clone(),
            master: self.master.clone(),
            master_ui: self.master_ui.clone(),
            start_timeout_s: self.timeout_s,
        };
        cfg.validate().map_err(|mut e| {
            e.msg = format!("{} (set by {})", e.msg, flag_of(&e.field));
            e
        })?;
        Ok(cfg)
    }
}

/// The flag that sets a config field: `memory_mb` → `--memory-mb`,
/// `cpu_quota[1].cores` → `--cpu-quota`, `ports.master_ui` → `--master-ui-port`.
pub fn flag_of(field: &str) -> String {
    let head = field.split(['[', '.']).next().unwrap_or(field);
    let name = match (head, field.strip_prefix("ports.")) {
        ("ports", Some("master")) => "master-port".to_string(),
        ("ports", Some("master_ui")) => "master-ui-port".to_string(),
        ("ports", Some("worker_ui")) => "worker-ui-port".to_string(),
        ("ports", Some("history")) => "history-port".to_string(),
        ("start_timeout_s", _) => "timeout-s".to_string(),
        ("work_dir", _) => "work".to_string(),
        _ => head.replace('_', "-"),
    };
    format!("--{name}")
}

/// Runs one `mpda spark` command, printing what it did.
pub fn run(args: SparkArgs) -> Result<(), ClusterError> {
    match args.command {
        SparkCommand::Up(a) => {
            let cfg = a.config()?;
            let stop = Arc::new(AtomicBool::new(false));
            for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
                // Without the handler Ctrl-C would kill mpda and leave the daemons (in
                // their own process groups) running; refuse to start instead.
                signal_hook::flag::register(sig, Arc::clone(&stop)).map_err(|e| {
                    ClusterError::Missing {
                        what: "a signal handler".into(),
                        hint: e.to_string(),
                    }
                })?;
            }
            let state = cluster::up(&cfg, &stop, &mut |m| eprintln!("{m}"))?;
            println!("{}", cluster::status(&state.work_dir)?);
            if let Some(file) = &state.secret_file {
                println!(
                    "applications: spark-submit --properties-file {}",
                    file.with_file_name("spark-defaults.conf").display()
                );
            }
            Ok(())
        }
        SparkCommand::Status(w) => {
            print!("{}", cluster::status(&w.work)?);
            Ok(())
        }
        SparkCommand::Down(a) => {
            let r = cluster::down(&a.work.work, Duration::from_secs(a.grace_s))?;
            if r.external {
                println!("external cluster forgotten (mpda started nothing there)");
            } else {
                println!(
                    "stopped: {}; killed after the grace period: {}; cgroups removed: {}; \
                     no JVM of the cluster is left",
                    list(&r.stopped),
                    list(&r.killed),
                    r.cgroups_removed
                );
            }
            Ok(())
        }
    }
}

fn list(v: &[String]) -> String {
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct T {
        #[command(subcommand)]
        c: SparkCommand,
    }

    #[test]
    fn fields_map_to_their_flags() {
        assert_eq!(flag_of("memory_mb"), "--memory-mb");
        assert_eq!(flag_of("cpu_quota[1].cores"), "--cpu-quota");
        assert_eq!(flag_of("ports.master_ui"), "--master-ui-port");
        assert_eq!(flag_of("ports.worker_ui"), "--worker-ui-port");
        assert_eq!(flag_of("start_timeout_s"), "--timeout-s");
        assert_eq!(flag_of("workers"), "--workers");
    }

    #[test]
    fn up_flags_build_a_config_and_bad_values_name_the_flag() {
        let t = T::try_parse_from([
            "spark",
            "up",
            "--workers",
            "3",
            "--cpu-quota",
            "2=0.5",
            "--work",
            "/tmp/x",
        ])
        .unwrap();
        let SparkCommand::Up(a) = t.c else {
            panic!("not up")
        };
        let cfg = a.config().unwrap();
        assert_eq!(cfg.workers, 3);
        assert_eq!(
            cfg.cpu_quota,
            vec![WorkerQuota {
                worker: 2,
                cores: 0.5
            }]
        );
        let t = T::try_parse_from(["spark", "up", "--memory-mb", "100"]).unwrap();
        let SparkCommand::Up(a) = t.c else {
            panic!("not up")
        };
        let e = a.config().unwrap_err().to_string();
        assert!(
            e.contains("memory_mb") && e.contains("(set by --memory-mb)"),
            "{e}"
        );
        assert!(T::try_parse_from(["spark", "up", "--cpu-quota", "half"]).is_err());
    }
}
