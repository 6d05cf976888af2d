//! `mpda spark up | status | down`: the clap types and the command logic, kept in the
//! library so that `main.rs` stays a dispatcher.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use clap::{Args, Subcommand};

use super::cluster::{self, ClusterConfig, ClusterError, DEFAULT_CLUSTER_WORK, Ports, WorkerQuota};
use super::report::write_report;
use super::run::{LiveConfig, LiveError, Study, run_study, study_schedulers};
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
    /// Run a workload of TPC-H queries on the cluster under each scheduler (one application
    /// per job, executors per application set by the scheduler), read every JCT back from
    /// the event logs, simulate the same runs, and write the report.
    Run(RunArgs),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The study's config: [workload] as in `mpda eval`, [live], [predict]
    /// (see docs/live-spark.md).
    #[arg(long)]
    pub config: PathBuf,
    /// Schedulers to run (replaces the config's list); repeatable. Any of `mpda schedulers`,
    /// plus `spark-default` and `static`.
    #[arg(short = 's', long = "scheduler")]
    pub schedulers: Vec<String>,
    /// Output folder: runs/<scheduler>/rep<r>/ (kept: a rerun resumes), results.json,
    /// report.md, plots.
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub work: WorkArg,
    /// Markdown appended to report.md (conditions, remarks).
    #[arg(long)]
    pub notes: Option<PathBuf>,
    /// Run nothing on Spark: give the runs already in --out the simulator's prediction
    /// again with the config's [predict] settings, and render the report.
    #[arg(long)]
    pub predict_only: bool,
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
    /// Worker i on 127.0.0.(i+1) instead of all on 127.0.0.1: one Spark host per worker,
    /// so that reduce-task locality and `spark.locality.wait` come into play.
    #[arg(long)]
    pub distinct_hosts: bool,
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
            distinct_hosts: self.distinct_hosts,
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

fn stop_flag() -> Result<Arc<AtomicBool>, ClusterError> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // Without the handler Ctrl-C would kill mpda and leave processes it started (in
        // their own process groups) running; refuse to start instead.
        signal_hook::flag::register(sig, Arc::clone(&stop)).map_err(|e| ClusterError::Missing {
            what: "a signal handler".into(),
            hint: e.to_string(),
        })?;
    }
    Ok(stop)
}

fn live_run(a: RunArgs) -> Result<(), LiveError> {
    let mut cfg = LiveConfig::load(&a.config)?;
    if !a.schedulers.is_empty() {
        cfg.live.schedulers = a.schedulers.clone();
    }
    let name = cfg.name.clone().unwrap_or_else(|| {
        a.config
            .file_stem()
            .map_or("live".into(), |s| s.to_string_lossy().into_owned())
    });
    let repo = std::env::current_dir()
        .map_err(|e| LiveError::Run(format!("no working directory: {e}")))?;
    let study = Study::prepare(cfg, &a.config, &a.work.work, &a.out, &repo, a.predict_only)?;
    let schedulers = study_schedulers(&study.cfg.live.schedulers, study.cores_max)?;
    let stop = stop_flag()?;
    eprintln!(
        "live study {name}: {} scheduler(s) x {} repetition(s), {} jobs per run, {} executors, \
         master {}",
        schedulers.len(),
        study.episodes.len(),
        study.episodes.first().map_or(0, |e| e.jobs.len()),
        study.executors,
        study
            .cluster
            .as_ref()
            .map_or("none (predicting only)", |c| c.master_url.as_str())
    );
    let runs = run_study(&study, &schedulers, a.predict_only, &stop, &mut |m| {
        eprintln!("{m}")
    })?;
    let notes = match &a.notes {
        Some(f) => crate::io::read_text(f)?,
        None => String::new(),
    };
    let res = write_report(&a.out, &name, &runs, &notes)?;
    for s in &res.schedulers {
        println!(
            "{:<40} real {:>7.1} s ± {:>5.1}   sim {:>7.1} s ({:+.1}%){}",
            s.scheduler,
            s.real_mean_jct_s,
            s.real_ci95_s,
            s.sim_mean_jct_s,
            100.0 * s.rel_error,
            s.ratio_to_spark_default
                .map_or(String::new(), |[r, lo, hi]| format!(
                    "   vs spark-default {r:.3} [{lo:.3}, {hi:.3}]"
                ))
        );
    }
    println!("report: {}", a.out.join("report.md").display());
    Ok(())
}

/// Runs one `mpda spark` command, printing what it did.
pub fn run(args: SparkArgs) -> Result<(), LiveError> {
    match args.command {
        SparkCommand::Run(a) => live_run(a),
        SparkCommand::Up(a) => {
            let cfg = a.config()?;
            let stop = stop_flag()?;
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
