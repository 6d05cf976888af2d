//! `mpda spark run`: a workload of TPC-H queries on a live standalone Spark, one application
//! per job, each submitted at its arrival time, under one scheduler at a time; then every
//! job's real JCT read back from its event log, and the simulator's prediction of the same
//! run in live semantics (`crate::sim::live`).
//!
//! A study is `schedulers × repetitions` runs. Each run writes `RUN/run.json` atomically when
//! it ends, and a run whose file exists is not run again, so an interrupted study resumes
//! where it stopped; the report (`super::report`) is rendered from those files.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::cluster::{ClusterError, ClusterState, MasterState};
use super::controller::{ControlLog, Controller, RunJob, SharedController};
use super::server::{ControlServer, Secret, SecretError, ServerError, default_bind};
use crate::config::{Config, ConfigError, WorkloadConfig, check_name, check_seeds};
use crate::io::{FileError, write_file};
use crate::model::Backend;
use crate::registry;
use crate::sched::{SchedError, SchedulerSpec};
use crate::sim::live::{AllocateError, LivePolicy, LiveSim, LiveTiming};
use crate::validate::{FieldError, in_range};
use crate::workload::eventlog::{self, EventLogError, Warning};
use crate::workload::{Episode, JobArrival};

/// Spark's own behaviour, by name in a live study (they have no simulator counterpart in
/// `mpda eval`, where executors are not applications').
pub const SPARK_DEFAULT: &str = "spark-default";
pub const STATIC_SPLIT: &str = "static";

/// A live study's config: `[workload]` as `mpda eval` has it, `[live]`, `[predict]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiveConfig {
    #[serde(default)]
    pub name: Option<String>,
    pub workload: WorkloadConfig,
    #[serde(default)]
    pub live: LiveSettings,
    #[serde(default)]
    pub predict: PredictSettings,
}

/// How jobs are submitted and run.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LiveSettings {
    /// Runs per scheduler; repetition r runs the workload's episode with seed
    /// `first_seed + r` (its own job order and arrival times).
    pub repetitions: usize,
    pub first_seed: u64,
    /// Schedulers: any of `mpda schedulers`, plus `spark-default` and `static`.
    pub schedulers: Vec<String>,
    /// The TPC-H scale factor of the data the queries read (text, as in `sf0.1`).
    pub scale_factor: String,
    /// TPC-H Parquet data (default: WORK/data/sf<scale_factor> next to the venv).
    pub data: Option<PathBuf>,
    /// Python with PySpark (default: scripts/spark/setup.sh's venv).
    pub python: Option<PathBuf>,
    /// `spark.sql.shuffle.partitions`; must match the traces' measurement.
    pub shuffle_partitions: u32,
    pub executor_memory_mb: u32,
    pub driver_memory_mb: u32,
    /// `spark.cores.max` of the static split; default: executors / jobs, at least 1.
    pub static_cores_max: Option<u32>,
    /// Agents' reporting period.
    pub poll_ms: u64,
    /// A job still running after this is killed and counted as failed.
    pub job_timeout_s: u64,
    /// More Spark settings for every application, e.g. `"spark.locality.wait" = "0"`;
    /// not one of those mpda sets itself ([`MPDA_OWNED_CONF`]).
    pub spark_conf: BTreeMap<String, String>,
}

/// Spark settings (or prefixes ending in `.`) a live run sets itself: event logs, the UI
/// the agent reads, allocation, executor shape, the traces' plan shape and security.
const MPDA_OWNED_CONF: [&str; 12] = [
    "spark.master",
    "spark.authenticate",
    "spark.eventLog.",
    "spark.ui.",
    "spark.dynamicAllocation.",
    "spark.executor.cores",
    "spark.executor.memory",
    "spark.driver.",
    "spark.cores.max",
    "spark.sql.adaptive.enabled",
    "spark.sql.autoBroadcastJoinThreshold",
    "spark.sql.shuffle.partitions",
];

impl Default for LiveSettings {
    fn default() -> Self {
        Self {
            repetitions: 3,
            first_seed: crate::config::defaults::FIRST_SEED,
            schedulers: vec![SPARK_DEFAULT.into(), STATIC_SPLIT.into(), "fair".into()],
            scale_factor: "0.1".into(),
            data: None,
            python: None,
            shuffle_partitions: 20,
            executor_memory_mb: 700,
            driver_memory_mb: 700,
            static_cores_max: None,
            poll_ms: 500,
            job_timeout_s: 1200,
            spark_conf: BTreeMap::new(),
        }
    }
}

/// The live timing the simulator's prediction uses (see `LiveTiming`), and how many duration
/// seeds it averages over.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PredictSettings {
    pub register_ms: u64,
    pub plan_ms: u64,
    pub executor_start_ms: u64,
    pub job_end_ms: u64,
    /// See `LiveTiming::duration_scale`.
    pub duration_scale: f64,
    /// See `LiveTiming::host_cores`: the CPU cores of the machine that runs every driver and
    /// executor (2 here); absent: no sharing.
    pub host_cores: Option<f64>,
    /// See `LiveTiming::driver_cores` and `executor_start_cores`.
    pub driver_cores: f64,
    pub executor_start_cores: f64,
    /// See `LiveTiming::driver_load_cores`.
    pub driver_load_cores: f64,
    pub seeds: usize,
}

impl Default for PredictSettings {
    fn default() -> Self {
        Self {
            register_ms: 6_500,
            plan_ms: 4_200,
            executor_start_ms: 3_000,
            job_end_ms: 100,
            duration_scale: 1.0,
            host_cores: None,
            driver_cores: 1.0,
            executor_start_cores: 1.0,
            driver_load_cores: 0.0,
            seeds: 20,
        }
    }
}

impl Config for LiveConfig {
    fn validate(&self) -> Result<(), FieldError> {
        if let Some(n) = &self.name {
            check_name("name", n)?;
        }
        self.workload.validate().map_err(|e| e.within("workload"))?;
        let l = &self.live;
        let within = |e: FieldError| e.within("live");
        check_seeds("repetitions", l.repetitions, l.first_seed).map_err(within)?;
        in_range("repetitions", l.repetitions, 1, 100).map_err(within)?;
        if l.schedulers.is_empty() {
            return Err(within(FieldError::new("schedulers", "must not be empty")));
        }
        let sf_ok = !l.scale_factor.is_empty()
            && l.scale_factor
                .parse::<f64>()
                .is_ok_and(|v| v > 0.0 && v <= 1000.0)
            && l.scale_factor
                .chars()
                .all(|c| c.is_ascii_digit() || c == '.');
        if !sf_ok {
            return Err(within(FieldError::new(
                "scale_factor",
                format!(
                    "must be a decimal number in (0, 1000], found {:?}",
                    l.scale_factor
                ),
            )));
        }
        in_range("shuffle_partitions", l.shuffle_partitions, 1, 100_000).map_err(within)?;
        in_range("executor_memory_mb", l.executor_memory_mb, 450, 1 << 20).map_err(within)?;
        in_range("driver_memory_mb", l.driver_memory_mb, 450, 1 << 20).map_err(within)?;
        if let Some(c) = l.static_cores_max {
            in_range("static_cores_max", c, 1, 100_000).map_err(within)?;
        }
        in_range("poll_ms", l.poll_ms, 50, 60_000).map_err(within)?;
        in_range("job_timeout_s", l.job_timeout_s, 10, 86_400).map_err(within)?;
        for (k, v) in &l.spark_conf {
            let field = format!("spark_conf.{k:?}");
            if !k.starts_with("spark.") || k.len() <= 6 {
                return Err(within(FieldError::new(
                    field,
                    "must be a Spark setting (spark.*)",
                )));
            }
            // An entry ending in '.' owns that prefix; another owns itself and its sub-keys.
            let owned = MPDA_OWNED_CONF.iter().find(|o| match k.strip_prefix(*o) {
                Some(rest) => o.ends_with('.') || rest.is_empty() || rest.starts_with('.'),
                None => false,
            });
            if let Some(o) = owned {
                return Err(within(FieldError::new(
                    field,
                    format!("is set by mpda itself (every {o}* setting is)"),
                )));
            }
            if v.trim().is_empty() || v.contains(['\n', '\r']) {
                return Err(within(FieldError::new(field, "must be one non-empty line")));
            }
        }
        let p = &self.predict;
        let within = |e: FieldError| e.within("predict");
        const DAY_MS: u64 = 86_400_000;
        in_range("register_ms", p.register_ms, 0, DAY_MS).map_err(within)?;
        in_range("plan_ms", p.plan_ms, 0, DAY_MS).map_err(within)?;
        in_range("executor_start_ms", p.executor_start_ms, 0, DAY_MS).map_err(within)?;
        in_range("job_end_ms", p.job_end_ms, 0, DAY_MS).map_err(within)?;
        in_range("seeds", p.seeds, 1, 10_000).map_err(within)?;
        crate::validate::finite_in("duration_scale", p.duration_scale, 0.01, 100.0)
            .map_err(within)?;
        if let Some(c) = p.host_cores {
            crate::validate::finite_in("host_cores", c, 0.01, 100_000.0).map_err(within)?;
        }
        crate::validate::finite_in("driver_cores", p.driver_cores, 0.01, 1024.0).map_err(within)?;
        crate::validate::finite_in("executor_start_cores", p.executor_start_cores, 0.01, 1024.0)
            .map_err(within)?;
        crate::validate::finite_in("driver_load_cores", p.driver_load_cores, 0.0, 1024.0)
            .map_err(within)?;
        Ok(())
    }
}

impl PredictSettings {
    pub fn timing(&self) -> LiveTiming {
        LiveTiming {
            register_ms: self.register_ms,
            plan_ms: self.plan_ms,
            executor_start_ms: self.executor_start_ms,
            job_end_ms: self.job_end_ms,
            duration_scale: self.duration_scale,
            host_cores: self.host_cores,
            driver_cores: self.driver_cores,
            executor_start_cores: self.executor_start_cores,
            driver_load_cores: self.driver_load_cores,
            // scripts/tpch/run_tpch.py waits 120 s for a first executor.
            executor_wait_ms: 120_000,
        }
    }
}

#[derive(Debug, Error)]
pub enum LiveError {
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Sched(#[from] SchedError),
    #[error(transparent)]
    Server(#[from] ServerError),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error(transparent)]
    File(#[from] FileError),
    #[error(transparent)]
    EventLog(#[from] EventLogError),
    #[error(transparent)]
    Plot(#[from] crate::plot::PlotError),
    #[error("simulating {scheduler}: {error}")]
    Predict {
        scheduler: String,
        error: AllocateError,
    },
    #[error("{0}")]
    Run(String),
    #[error("interrupted (Ctrl-C); the runs that finished are kept, and `mpda spark run` resumes")]
    Interrupted,
}

/// One scheduler of a study: an mpda scheduler, or one of Spark's own behaviours.
pub enum StudyScheduler {
    Mpda {
        label: String,
        factory: Box<dyn crate::sched::SchedulerFactory>,
    },
    Spark {
        label: String,
        policy: LivePolicy,
    },
}

impl StudyScheduler {
    pub fn label(&self) -> &str {
        match self {
            Self::Mpda { label, .. } | Self::Spark { label, .. } => label,
        }
    }

    fn policy(&self) -> LivePolicy {
        match self {
            Self::Mpda { .. } => LivePolicy::Scheduler,
            Self::Spark { policy, .. } => *policy,
        }
    }
}

/// Builds the study's schedulers; `static` gets `cores_max`.
pub fn study_schedulers(
    names: &[String],
    cores_max: u32,
) -> Result<Vec<StudyScheduler>, SchedError> {
    let mut out = Vec::new();
    for n in names {
        for spec in SchedulerSpec::parse_list(n)? {
            match spec.name.as_str() {
                SPARK_DEFAULT => out.push(StudyScheduler::Spark {
                    label: SPARK_DEFAULT.into(),
                    policy: LivePolicy::SparkDefault,
                }),
                STATIC_SPLIT => out.push(StudyScheduler::Spark {
                    label: format!("{STATIC_SPLIT}[cores_max={cores_max}]"),
                    policy: LivePolicy::Static { cores_max },
                }),
                _ => {
                    let factory = registry::factory(&spec, Backend::Cpu)?;
                    out.push(StudyScheduler::Mpda {
                        label: factory.label(),
                        factory,
                    });
                }
            }
        }
    }
    Ok(out)
}

/// One job of a finished run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobResult {
    pub name: String,
    pub trace: String,
    pub query: String,
    pub arrival_ms: u64,
    /// Wall clock (Unix ms) when mpda started its driver.
    pub submit_unix_ms: u64,
    pub app_id: Option<String>,
    pub exit_code: Option<i32>,
    pub succeeded: bool,
    /// Last Spark job of the query ended, minus submission, from the event log.
    pub real_jct_s: Option<f64>,
    /// The simulator's mean over its seeds.
    pub sim_jct_s: f64,
    /// Executors of the application, from the event log: (added, removed) in ms since the
    /// run started; removal `None` when the application ended with it.
    pub executors: Vec<(u64, Option<u64>)>,
    pub app_end_ms: Option<u64>,
    /// From submission to the SparkContext's start (`ApplicationStart`), and to the first
    /// Spark job of the application, s: the start-up the simulator's `[predict]` models.
    pub context_start_s: Option<f64>,
    pub first_job_s: Option<f64>,
    /// From submission to its agent's hello (the application had registered), s.
    pub registered_s: Option<f64>,
}

/// One run: one scheduler, one repetition.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunResult {
    pub scheduler: String,
    pub repetition: usize,
    pub seed: u64,
    pub executors: u32,
    pub started: String,
    pub wall_s: f64,
    pub jobs: Vec<JobResult>,
    /// Mean real JCT over the jobs that succeeded; `None` if none did.
    pub real_mean_jct_s: Option<f64>,
    pub sim_mean_jct_s: f64,
    /// The controller's log (decisions, kills, refused messages); none for Spark's own.
    pub control: Option<ControlLogSummary>,
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ControlLogSummary {
    pub decisions: usize,
    pub kills: u64,
    pub messages: u64,
    pub errors: Vec<String>,
    /// Executors that left without a kill (see `ControlLog::lost_executors`).
    #[serde(default)]
    pub lost_executors: Vec<String>,
}

impl From<&ControlLog> for ControlLogSummary {
    fn from(l: &ControlLog) -> Self {
        Self {
            decisions: l.decisions.len(),
            kills: l.kills,
            messages: l.messages,
            errors: l.errors.clone(),
            lost_executors: l.lost_executors.clone(),
        }
    }
}

/// Where everything a study needs lives.
pub struct Study {
    pub cfg: LiveConfig,
    pub origin: PathBuf,
    pub episodes: Vec<Episode>,
    /// `None` when only predicting again (`--predict-only`): nothing is submitted.
    pub cluster: Option<ClusterState>,
    pub executors: u32,
    pub out: PathBuf,
    pub python: PathBuf,
    pub data: PathBuf,
    pub run_tpch: PathBuf,
    pub agent_dir: PathBuf,
    pub cores_max: u32,
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The default work folder of the TPC-H pipeline (`$TPCH_WORK`, else `/work/spark-runs`).
fn tpch_work() -> PathBuf {
    std::env::var_os("TPCH_WORK").map_or_else(|| PathBuf::from("/work/spark-runs"), PathBuf::from)
}

impl Study {
    /// Loads the config, the traces and the cluster, and checks that the data, Python and the
    /// scripts are there, before anything runs.
    /// With `predict_only`, the cluster may be down: the executor count is read from the runs
    /// already in `out`.
    pub fn prepare(
        cfg: LiveConfig,
        origin: &Path,
        cluster_work: &Path,
        out: &Path,
        repo: &Path,
        predict_only: bool,
    ) -> Result<Self, LiveError> {
        let l = &cfg.live;
        let resolved = cfg.workload.resolve(origin, l.repetitions, l.first_seed)?;
        let (cluster, executors) = if predict_only {
            (None, executors_of_runs(out)?)
        } else {
            let cluster = ClusterState::load(cluster_work)?;
            let executors = if cluster.phase == "external" {
                let ui = MasterState::fetch(&cluster.master_ui)?;
                ui.alive().map(|w| w.cores).sum::<u32>()
            } else {
                cluster.workers as u32 * cluster.cores
            };
            (Some(cluster), executors)
        };
        if executors == 0 {
            return Err(LiveError::Run(format!(
                "the cluster in {} has no alive worker core",
                cluster_work.display()
            )));
        }
        let python = l
            .python
            .clone()
            .unwrap_or_else(|| tpch_work().join(".venv-tpch/bin/python"));
        let data = l
            .data
            .clone()
            .unwrap_or_else(|| tpch_work().join(format!("data/sf{}", l.scale_factor)));
        let run_tpch = repo.join("scripts/tpch/run_tpch.py");
        let agent_dir = repo.join("scripts/spark");
        for (what, path, hint) in [
            ("Python with PySpark", &python, "run scripts/spark/setup.sh"),
            (
                "TPC-H data",
                &data.join("lineitem.parquet"),
                "run scripts/tpch/setup.sh --no-venv --sf SF",
            ),
            (
                "the TPC-H runner",
                &run_tpch,
                "run from the repository root",
            ),
            (
                "the agent",
                &agent_dir.join("mpda_agent.py"),
                "run from the repository root",
            ),
        ] {
            if !path.exists() {
                return Err(LiveError::Run(format!(
                    "{what} not found at {} ({hint})",
                    path.display()
                )));
            }
        }
        for ep in &resolved.episodes {
            for j in &ep.jobs {
                if j.job
                    .query
                    .parse::<u32>()
                    .map_or(true, |q| !(1..=22).contains(&q))
                {
                    return Err(LiveError::Run(format!(
                        "{}: trace {} is not a TPC-H query (query {:?}); a live run submits \
                         TPC-H queries 1-22",
                        origin.display(),
                        j.job.name,
                        j.job.query
                    )));
                }
            }
        }
        let episodes = repeat_episodes(resolved.episodes, l.repetitions);
        let jobs = episodes.first().map_or(1, |e| e.jobs.len()) as u32;
        let cores_max = l
            .static_cores_max
            .unwrap_or((executors / jobs.max(1)).max(1));
        fs::create_dir_all(out).map_err(FileError::on(out, "create"))?;
        Ok(Self {
            cfg,
            origin: origin.to_path_buf(),
            episodes,
            cluster,
            executors,
            out: out.to_path_buf(),
            python,
            data,
            run_tpch,
            agent_dir,
            cores_max,
        })
    }

    fn cluster(&self) -> Result<&ClusterState, LiveError> {
        self.cluster
            .as_ref()
            .ok_or_else(|| LiveError::Run("no cluster: only predicting".into()))
    }

    pub fn run_dir(&self, scheduler: &str, repetition: usize) -> PathBuf {
        let safe: String = scheduler
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        self.out
            .join("runs")
            .join(safe)
            .join(format!("rep{repetition}"))
    }

    /// The simulator's prediction: per job, the mean JCT (s) over the prediction seeds.
    pub fn predict(
        &self,
        sched: &StudyScheduler,
        episode: &Episode,
    ) -> Result<Vec<f64>, LiveError> {
        let p = &self.cfg.predict;
        let mut sim = LiveSim::new(self.executors, p.timing(), sched.policy());
        // Spark's own policies ask no scheduler (`LiveSim` never calls `decide` for them).
        let mut scheduler = match sched {
            StudyScheduler::Mpda { factory, .. } => Some(factory.build()?),
            StudyScheduler::Spark { .. } => None,
        };
        let mut sum = vec![0.0; episode.jobs.len()];
        for k in 0..p.seeds as u64 {
            let seed = crate::seed::mix_words(&[episode.seed, k]);
            let ep = match scheduler.as_mut() {
                Some(s) => {
                    s.reset(seed);
                    sim.run(&episode.jobs, seed, &mut |o| s.decide(o))
                }
                None => sim.run(&episode.jobs, seed, &mut |o| o.idle()),
            }
            .map_err(|error| LiveError::Predict {
                scheduler: sched.label().to_string(),
                error,
            })?;
            for (s, &j) in sum.iter_mut().zip(&ep.jct_ms) {
                *s += j / 1000.0;
            }
        }
        Ok(sum.into_iter().map(|s| s / p.seeds as f64).collect())
    }

    /// The Spark settings of every application of a run.
    fn spark_conf(
        &self,
        sched: &StudyScheduler,
        run_dir: &Path,
    ) -> Result<BTreeMap<String, String>, LiveError> {
        let l = &self.cfg.live;
        let mut conf: BTreeMap<String, String> = self.cluster()?.app_conf()?.into_iter().collect();
        let ev = run_dir.join("eventlogs");
        for (k, v) in [
            ("spark.eventLog.enabled", "true".to_string()),
            ("spark.eventLog.dir", format!("file://{}", ev.display())),
            ("spark.executor.cores", "1".into()),
            (
                "spark.executor.memory",
                format!("{}m", l.executor_memory_mb),
            ),
            ("spark.driver.memory", format!("{}m", l.driver_memory_mb)),
            // The agent reads executor ids from the driver's REST API: UI on, loopback,
            // a free port each (several drivers run at once).
            ("spark.ui.enabled", "true".into()),
            ("spark.ui.port", "0".into()),
            ("spark.ui.showConsoleProgress", "false".into()),
            ("spark.dynamicAllocation.enabled", "false".into()),
            // The plan shape the traces were measured with (scripts/tpch/run_tpch.py).
            ("spark.sql.adaptive.enabled", "false".into()),
            ("spark.sql.autoBroadcastJoinThreshold", "-1".into()),
            (
                "spark.sql.shuffle.partitions",
                l.shuffle_partitions.to_string(),
            ),
        ] {
            conf.insert(k.into(), v);
        }
        if let StudyScheduler::Spark {
            policy: LivePolicy::Static { cores_max },
            ..
        } = sched
        {
            conf.insert("spark.cores.max".into(), cores_max.to_string());
        }
        for (k, v) in &l.spark_conf {
            conf.insert(k.clone(), v.clone());
        }
        Ok(conf)
    }
}

/// A running driver process.
struct Driver {
    index: usize,
    child: Child,
    started: Instant,
}

fn private_dir(dir: &Path) -> Result<(), LiveError> {
    fs::create_dir_all(dir).map_err(FileError::on(dir, "create"))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
        .map_err(FileError::on(dir, "chmod"))?;
    Ok(())
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), LiveError> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(FileError::on(path, "create"))?;
    f.write_all(bytes).map_err(FileError::on(path, "write"))?;
    Ok(())
}

/// Stops a driver's process group: SIGTERM (PySpark stops its SparkContext and gateway JVM),
/// then SIGKILL after 5 s.
fn stop_driver(child: &mut Child) {
    let pgid = child.id() as i32;
    // SAFETY: kill(2) with a negative pid signals the process group; no memory involved.
    unsafe { libc::kill(-pgid, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // SAFETY: as above.
    unsafe { libc::kill(-pgid, libc::SIGKILL) };
    let _ = child.wait();
}

/// Runs one (scheduler, repetition), writes its `run.json`, and returns it.
pub fn run_one(
    study: &Study,
    sched: &StudyScheduler,
    repetition: usize,
    stop: &AtomicBool,
    say: &mut dyn FnMut(&str),
) -> Result<RunResult, LiveError> {
    let episode = &study.episodes[repetition];
    let run_dir = study.run_dir(sched.label(), repetition);
    let _ = fs::remove_dir_all(&run_dir);
    for d in ["eventlogs", "logs", "results"] {
        fs::create_dir_all(run_dir.join(d)).map_err(FileError::on(&run_dir.join(d), "create"))?;
    }
    let private = run_dir.join("private");
    private_dir(&private)?;
    let jobs: Vec<RunJob> = episode
        .jobs
        .iter()
        .enumerate()
        .map(|(i, a)| RunJob {
            name: format!("job-{i}"),
            trace: Arc::clone(&a.job),
        })
        .collect();

    // The controller, for mpda's schedulers.
    let mut control: Option<(ControlServer, Arc<Mutex<Controller>>, PathBuf)> = None;
    if let StudyScheduler::Mpda { factory, .. } = sched {
        let controller = Arc::new(Mutex::new(Controller::new(
            jobs.clone(),
            study.executors,
            factory.build()?,
            episode.seed,
        )));
        let secret = Secret::generate()?;
        let secret_file = private.join("secret");
        secret.write_to(&secret_file)?;
        let server = ControlServer::start(
            default_bind(),
            secret,
            SharedController(Arc::clone(&controller)),
        )?;
        control = Some((server, controller, secret_file));
    }

    let conf = study.spark_conf(sched, &run_dir)?;
    let cluster = study.cluster()?;
    let l = &study.cfg.live;
    let started = crate::workload::eventlog::today_utc();
    let t0 = Instant::now();
    let mut submit_unix = vec![0u64; jobs.len()];
    let mut exit_codes: Vec<Option<i32>> = vec![None; jobs.len()];
    let mut running: Vec<Driver> = Vec::new();
    let mut next = 0;
    let timeout = Duration::from_secs(l.job_timeout_s);
    let mut finished = 0;
    let label = sched.label().to_string();
    let result = loop {
        if stop.load(Ordering::Relaxed) {
            break Err(LiveError::Interrupted);
        }
        // Submit every job whose arrival time has come.
        while next < jobs.len() && t0.elapsed().as_millis() as u64 >= episode.jobs[next].arrival_ms
        {
            let a: &JobArrival = &episode.jobs[next];
            let spec = serde_json::json!({
                "query": a.job.query.parse::<u32>().unwrap_or(0),
                "sf": l.scale_factor,
                "master": cluster.master_url,
                "app_name": format!("mpda-live-{}-q{}-{}", jobs[next].name, a.job.query, label),
                "conf": conf,
                "data": study.data,
                "wait_executors": 0,
                "result_path": run_dir.join("results").join(format!("{}.json", jobs[next].name)),
                "result_rows_path": run_dir.join("results").join(format!("{}.rows.json", jobs[next].name)),
            });
            let spec_file = private.join(format!("{}.json", jobs[next].name));
            write_private(&spec_file, spec.to_string().as_bytes())?;
            let log_file = run_dir
                .join("logs")
                .join(format!("{}.log", jobs[next].name));
            let log = fs::File::create(&log_file).map_err(FileError::on(&log_file, "create"))?;
            let log2 = log.try_clone().map_err(FileError::on(&log_file, "open"))?;
            let mut cmd = Command::new(&study.python);
            // Its own process group, so that a Ctrl-C in the terminal reaches mpda alone and
            // mpda stops each driver (and the JVM it started) as a whole; and the cluster's
            // work dir as its working dir, where `mpda spark down` looks for JVMs left over.
            cmd.process_group(0).current_dir(&cluster.work_dir);
            cmd.arg(&study.run_tpch)
                .arg("--_child")
                .arg(&spec_file)
                .env("SPARK_LOCAL_IP", "127.0.0.1")
                .env("MPDA_AGENT_DIR", &study.agent_dir)
                .env_remove("MPDA_CONTROLLER_URL")
                .env_remove("MPDA_SECRET_FILE")
                .stdin(Stdio::null())
                .stdout(log)
                .stderr(log2);
            if let Some((server, _, secret_file)) = &control {
                cmd.env("MPDA_CONTROLLER_URL", server.url())
                    .env("MPDA_SECRET_FILE", secret_file)
                    .env("MPDA_JOB_NAME", &jobs[next].name)
                    .env("MPDA_JOB_GROUP", format!("q{}", a.job.query))
                    .env("MPDA_POLL_MS", l.poll_ms.to_string());
            }
            submit_unix[next] = unix_ms();
            let child = cmd.spawn().map_err(|e| {
                LiveError::Run(format!("cannot start {}: {e}", study.python.display()))
            })?;
            say(&format!(
                "  [{:>6.1} s] submitted {} (q{}, {}) [{}/{} submitted]",
                t0.elapsed().as_secs_f64(),
                jobs[next].name,
                a.job.query,
                a.job.size,
                next + 1,
                jobs.len()
            ));
            running.push(Driver {
                index: next,
                child,
                started: Instant::now(),
            });
            next += 1;
        }
        // Reap finished drivers; kill ones past the timeout.
        let mut k = 0;
        while k < running.len() {
            let d = &mut running[k];
            let status = d.child.try_wait().ok().flatten();
            let timed_out = status.is_none() && d.started.elapsed() > timeout;
            if timed_out {
                stop_driver(&mut d.child);
            }
            if status.is_some() || timed_out {
                let d = running.swap_remove(k);
                exit_codes[d.index] = status.and_then(|s| s.code());
                finished += 1;
                if let Some((_, c, _)) = &control
                    && let Ok(mut c) = c.lock()
                {
                    c.job_exited(&jobs[d.index].name);
                }
                say(&format!(
                    "  [{:>6.1} s] {} {} after {:.1} s [{}/{} done]",
                    t0.elapsed().as_secs_f64(),
                    jobs[d.index].name,
                    if timed_out {
                        "timed out".to_string()
                    } else {
                        match exit_codes[d.index] {
                            Some(0) => "finished".into(),
                            Some(c) => format!("failed (exit {c})"),
                            None => "killed by a signal".into(),
                        }
                    },
                    d.started.elapsed().as_secs_f64(),
                    finished,
                    jobs.len()
                ));
                continue;
            }
            k += 1;
        }
        if next == jobs.len() && running.is_empty() {
            break Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    if result.is_err() {
        for d in &mut running {
            stop_driver(&mut d.child);
        }
    }
    let wall_s = t0.elapsed().as_secs_f64();
    let control_log = control.map(|(server, c, _)| {
        server.stop();
        c.lock().map(|c| c.log().clone()).unwrap_or_default()
    });
    result?;

    // Read every job back from its event log.
    let sim = study.predict(sched, episode)?;
    let run_start = submit_unix.first().copied().unwrap_or(0);
    let mut warnings = Vec::new();
    let mut out_jobs = Vec::new();
    let logs = eventlog::discover(&run_dir.join("eventlogs"))?;
    for (i, a) in episode.jobs.iter().enumerate() {
        // Seconds from this job's submission to a Unix-ms time.
        let since = |t: u64| t.saturating_sub(submit_unix[i]) as f64 / 1000.0;
        let result_file = run_dir
            .join("results")
            .join(format!("{}.json", jobs[i].name));
        let app_id = fs::read_to_string(&result_file)
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| v.get("app_id").and_then(|x| x.as_str()).map(String::from))
            .or_else(|| {
                control_log
                    .as_ref()
                    .and_then(|l| l.app_ids.get(i).cloned().flatten())
            });
        let mut job = JobResult {
            name: jobs[i].name.clone(),
            trace: a.job.name.clone(),
            query: a.job.query.clone(),
            arrival_ms: a.arrival_ms,
            submit_unix_ms: submit_unix[i],
            app_id: app_id.clone(),
            exit_code: exit_codes[i],
            succeeded: false,
            real_jct_s: None,
            sim_jct_s: sim[i],
            executors: Vec::new(),
            app_end_ms: None,
            context_start_s: None,
            first_job_s: None,
            registered_s: control_log
                .as_ref()
                .and_then(|l| l.hello_unix_ms.get(i).copied().flatten())
                .map(since),
        };
        match &app_id {
            None => warnings.push(format!(
                "{}: no application id (its driver failed early; see logs/{}.log)",
                jobs[i].name, jobs[i].name
            )),
            Some(id) => match read_back(&logs, id, &format!("q{}", a.job.query), &mut warnings)? {
                None => warnings.push(format!("{}: no event log for {id}", jobs[i].name)),
                Some(app) => {
                    let rel = |t: u64| t.saturating_sub(run_start);
                    job.succeeded = exit_codes[i] == Some(0) && app.last_job_end_ms.is_some();
                    if job.succeeded {
                        job.real_jct_s = app.last_job_end_ms.map(since);
                    }
                    job.executors = app
                        .executors
                        .iter()
                        .map(|&(a, r)| (rel(a), r.map(rel)))
                        .collect();
                    job.app_end_ms = app.end_ms.map(rel);
                    job.context_start_s = app.start_ms.map(since);
                    job.first_job_s = app.first_job_ms.map(since);
                }
            },
        }
        out_jobs.push(job);
    }
    let ok: Vec<f64> = out_jobs.iter().filter_map(|j| j.real_jct_s).collect();
    let run = RunResult {
        scheduler: label,
        repetition,
        seed: episode.seed,
        executors: study.executors,
        started,
        wall_s,
        real_mean_jct_s: (!ok.is_empty()).then(|| ok.iter().sum::<f64>() / ok.len() as f64),
        sim_mean_jct_s: sim.iter().sum::<f64>() / sim.len().max(1) as f64,
        jobs: out_jobs,
        control: control_log.as_ref().map(ControlLogSummary::from),
        warnings,
    };
    let json = serde_json::to_string_pretty(&run).map_err(|e| LiveError::Run(e.to_string()))?;
    write_file(&run_dir.join("run.json"), json.as_bytes())?;
    Ok(run)
}

/// The executor count of the runs already in `out` (all must agree).
fn executors_of_runs(out: &Path) -> Result<u32, LiveError> {
    let mut found: Option<u32> = None;
    let runs = out.join("runs");
    for sched in fs::read_dir(&runs)
        .map_err(FileError::on(&runs, "list"))?
        .flatten()
    {
        for rep in fs::read_dir(sched.path()).into_iter().flatten().flatten() {
            let file = rep.path().join("run.json");
            let Ok(text) = fs::read_to_string(&file) else {
                continue;
            };
            let r: RunResult = serde_json::from_str(&text)
                .map_err(|e| LiveError::Run(format!("{}: {e}", file.display())))?;
            if found.is_some_and(|n| n != r.executors) {
                return Err(LiveError::Run(format!(
                    "{}: {} executors, other runs had {}",
                    file.display(),
                    r.executors,
                    found.unwrap_or(0)
                )));
            }
            found = Some(r.executors);
        }
    }
    found.ok_or_else(|| LiveError::Run(format!("no run.json under {}", runs.display())))
}

/// What a live run needs from one application's event log.
pub struct AppReadBack {
    /// The end of the last Spark job of the query's job group, Unix ms.
    pub last_job_end_ms: Option<u64>,
    pub end_ms: Option<u64>,
    pub start_ms: Option<u64>,
    pub first_job_ms: Option<u64>,
    /// (added, removed) Unix ms.
    pub executors: Vec<(u64, Option<u64>)>,
}

/// Finds application `app_id`'s log among a run's `logs` (`eventlog::discover` of its
/// event-log folder) and reads it with the importer's reader.
pub fn read_back(
    logs: &[eventlog::LogInput],
    app_id: &str,
    group: &str,
    warnings: &mut Vec<String>,
) -> Result<Option<AppReadBack>, LiveError> {
    let Some(log) = logs.iter().find(|l| {
        l.path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.trim_start_matches("eventlog_v2_").starts_with(app_id))
    }) else {
        return Ok(None);
    };
    let mut w: Vec<Warning> = Vec::new();
    let app = eventlog::parse::read_app(log, eventlog::DEFAULT_GROUP_PROPERTY, &mut w)?;
    warnings.extend(w.iter().map(|w| w.to_string()));
    let in_group: Vec<_> = app
        .jobs
        .iter()
        .filter(|j| j.group.as_deref() == Some(group))
        .collect();
    let all_ok = !in_group.is_empty() && in_group.iter().all(|j| j.succeeded == Some(true));
    Ok(Some(AppReadBack {
        last_job_end_ms: if all_ok {
            in_group.iter().filter_map(|j| j.end_ms).max()
        } else {
            None
        },
        end_ms: app.end_ms,
        start_ms: app.start_ms,
        first_job_ms: in_group.iter().filter_map(|j| j.submit_ms).min(),
        executors: app
            .executor_spans
            .iter()
            .filter(|s| s.id != "driver")
            .map(|s| (s.added_ms, s.removed_ms))
            .collect(),
    }))
}

/// Runs every (scheduler, repetition) not run yet, then renders the report.
/// With `predict_only`, runs nothing: the runs already done get the simulator's prediction
/// again with the config's current `[predict]` settings (after a calibration), and the
/// others are left out.
pub fn run_study(
    study: &Study,
    schedulers: &[StudyScheduler],
    predict_only: bool,
    stop: &AtomicBool,
    say: &mut dyn FnMut(&str),
) -> Result<Vec<RunResult>, LiveError> {
    let mut results = Vec::new();
    let total = schedulers.len() * study.episodes.len();
    let mut done = 0;
    for rep in 0..study.episodes.len() {
        for sched in schedulers {
            done += 1;
            let file = study.run_dir(sched.label(), rep).join("run.json");
            if let Ok(text) = fs::read_to_string(&file)
                && let Ok(mut r) = serde_json::from_str::<RunResult>(&text)
            {
                if predict_only {
                    let sim = study.predict(sched, &study.episodes[rep])?;
                    for (j, s) in r.jobs.iter_mut().zip(&sim) {
                        j.sim_jct_s = *s;
                    }
                    r.sim_mean_jct_s = sim.iter().sum::<f64>() / sim.len().max(1) as f64;
                    let json = serde_json::to_string_pretty(&r)
                        .map_err(|e| LiveError::Run(e.to_string()))?;
                    write_file(&file, json.as_bytes())?;
                }
                say(&format!(
                    "run {done}/{total}: {} repetition {rep}: kept from {}",
                    sched.label(),
                    file.display()
                ));
                results.push(r);
                continue;
            }
            if predict_only {
                continue;
            }
            say(&format!(
                "run {done}/{total}: {} repetition {rep} (seed {}, {} jobs, {} executors)",
                sched.label(),
                study.episodes[rep].seed,
                study.episodes[rep].jobs.len(),
                study.executors
            ));
            let r = run_one(study, sched, rep, stop, say)?;
            say(&format!(
                "  mean JCT: real {} s, simulated {:.1} s",
                r.real_mean_jct_s
                    .map_or("n/a".into(), |v| format!("{v:.1}")),
                r.sim_mean_jct_s
            ));
            results.push(r);
        }
    }
    Ok(results)
}

/// The episodes of `repetitions` live runs per scheduler. A replay holds as many job
/// sequences as it holds, often one: its sequences are repeated in turn, since on a real
/// cluster each repetition of the same sequence is a new measurement (its noise). Generated
/// arrivals already give one sequence per repetition.
fn repeat_episodes(mut episodes: Vec<Episode>, repetitions: usize) -> Vec<Episode> {
    let n = episodes.len();
    if n > 0 {
        for r in n..repetitions {
            let again = episodes[r % n].clone();
            episodes.push(again);
        }
    }
    episodes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_conf(entries: &str) -> Result<LiveConfig, ConfigError> {
        let text = format!(
            "[workload]\ntraces = \"tpch-live\"\nsizes = [\"sf0.1\"]\narrivals = {{ kind = \"batch\", jobs = 2 }}\n\
             [live]\nspark_conf = {{ {entries} }}\n"
        );
        LiveConfig::parse(&text, Path::new("live.toml"))
    }

    #[test]
    fn extra_spark_settings_reach_the_applications_and_bad_ones_name_the_key() {
        let cfg =
            with_conf(r#""spark.locality.wait" = "0", "spark.executor.memoryOverhead" = "384m""#)
                .unwrap();
        assert_eq!(cfg.live.spark_conf["spark.locality.wait"], "0");
        for (entries, expected) in [
            (r#""spark.eventLog.dir" = "/tmp""#, "set by mpda itself"),
            (r#""spark.ui.port" = "4040""#, "set by mpda itself"),
            (r#""spark.authenticate.secret" = "x""#, "set by mpda itself"),
            (
                r#""spark.sql.shuffle.partitions" = "8""#,
                "set by mpda itself",
            ),
            (r#""locality.wait" = "0""#, "must be a Spark setting"),
            (r#""spark.locality.wait" = " ""#, "one non-empty line"),
            (r#""spark.locality.wait" = "1\n2""#, "one non-empty line"),
        ] {
            let e = with_conf(entries).unwrap_err().to_string();
            assert!(
                e.contains("live.spark_conf") && e.contains(expected) && e.contains("live.toml"),
                "{entries}: {e}"
            );
        }
    }

    /// A replay of one sequence still gives `repetitions` runs, the sequence repeated;
    /// nothing is dropped (the workload already took at most `repetitions` sequences).
    #[test]
    fn replays_are_repeated_to_the_repetitions() {
        let ep = |seed| Episode {
            seed,
            jobs: Vec::new(),
        };
        let seeds = |v: Vec<Episode>| v.iter().map(|e| e.seed).collect::<Vec<_>>();
        assert_eq!(seeds(repeat_episodes(vec![ep(7)], 3)), [7, 7, 7]);
        assert_eq!(
            seeds(repeat_episodes(vec![ep(1), ep(2)], 5)),
            [1, 2, 1, 2, 1]
        );
        assert_eq!(seeds(repeat_episodes(vec![ep(1), ep(2)], 1)), [1, 2]);
        assert!(repeat_episodes(Vec::new(), 3).is_empty());
    }
}
