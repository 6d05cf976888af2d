//! Config roots and their common shape. Every root (`EvalConfig` here, `rl::TrainConfig`,
//! `eval::experiment::ExperimentConfig`) is read the same way, by [`Config`]: parse the
//! TOML (unknown keys are errors, so a typo never silently falls back to a default), then
//! `validate()`, then errors that name the file and the field. Defaults live in
//! [`defaults`].

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use thiserror::Error;

use crate::io::FileError;
use crate::sim::SimConfig;
use crate::validate::{FieldError, in_range};
use crate::workload::arrivals::{ArrivalProcess, JobMix, Replay};
use crate::workload::{Episode, TraceError, TraceLibrary};

/// Defaults shared by several configs, in one place.
pub mod defaults {
    /// Seed of the first evaluation episode: Decima's test seeds start here.
    pub const FIRST_SEED: u64 = 10_000_000;
    /// The scheduler that ratios are taken against.
    pub const BASELINE: &str = "fair";
    /// Evaluation episodes.
    pub const SEEDS: usize = 20;
    /// The most episodes one evaluation may ask for (each is kept in memory).
    pub const MAX_SEEDS: usize = 100_000;
}

/// `configs/default.toml`, compiled into the binary.
pub const DEFAULT_CONFIG: &str = include_str!("../configs/default.toml");
pub const DEFAULT_CONFIG_NAME: &str = "embedded default (configs/default.toml)";

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error(transparent)]
    File(#[from] FileError),
    /// Not TOML, or not the config's shape (unknown key, wrong type).
    #[error("{}: {msg}", file.display())]
    Invalid { file: PathBuf, msg: String },
    /// A value out of its range.
    #[error("{}: {error}", file.display())]
    Field { file: PathBuf, error: FieldError },
    #[error(transparent)]
    Trace(#[from] TraceError),
}

impl ConfigError {
    /// For `map_err`: a field error found in the config read from `file`.
    pub fn field(file: &Path) -> impl FnOnce(FieldError) -> ConfigError + '_ {
        move |error| ConfigError::Field {
            file: file.to_path_buf(),
            error,
        }
    }
}

/// The shape of every config root: `parse` (TOML, unknown keys refused), then
/// [`validate`](Config::validate), with errors naming the file and the field.
pub trait Config: DeserializeOwned {
    /// Checks every value against its documented range; the error names the field.
    fn validate(&self) -> Result<(), FieldError>;

    /// Parses and validates TOML text; `origin` names it in errors.
    fn parse(text: &str, origin: &Path) -> Result<Self, ConfigError> {
        let cfg: Self = toml::from_str(text).map_err(|e| ConfigError::Invalid {
            file: origin.to_path_buf(),
            msg: e.to_string(),
        })?;
        cfg.validate().map_err(ConfigError::field(origin))?;
        Ok(cfg)
    }

    /// Reads, parses and validates a file.
    fn load(file: &Path) -> Result<Self, ConfigError> {
        Self::parse(&crate::io::read_text(file)?, file)
    }
}

/// The rule for names that become folder names (`runs/<name>/`, `reports/<name>/`):
/// letters, digits, '-', '_' and '.', not starting with '.'.
pub fn check_name(field: &str, name: &str) -> Result<(), FieldError> {
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if ok {
        Ok(())
    } else {
        Err(FieldError::new(
            field,
            format!("\"{name}\" must be letters, digits, '-', '_' or '.', not starting with '.'"),
        ))
    }
}

/// `mpda eval`'s config: which workload, which cluster, which schedulers and seeds.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalConfig {
    #[serde(default)]
    pub name: Option<String>,
    pub workload: WorkloadConfig,
    #[serde(default)]
    pub sim: SimConfig,
    #[serde(default)]
    pub eval: EvalSettings,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadConfig {
    /// Trace directory (`DIR/<size>/<query>.json[.gz]`), relative to the working directory.
    pub traces: PathBuf,
    /// Sizes to sample; default: all in the directory.
    #[serde(default)]
    pub sizes: Option<Vec<String>>,
    /// Queries to sample; default: all. Numbers or strings.
    #[serde(default, deserialize_with = "labels")]
    pub queries: Option<Vec<String>>,
    /// A generated arrival process; exclusive with `replay`.
    #[serde(default)]
    pub arrivals: Option<ArrivalProcess>,
    #[serde(default)]
    pub replay: Option<ReplayConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayConfig {
    pub file: PathBuf,
    pub scenario: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvalSettings {
    /// Number of episodes (for a replay: the first `seeds` episodes of the scenario),
    /// `1..=100000`.
    pub seeds: usize,
    /// Seed of the first episode; episode i uses `first_seed + i` (Decima's test seeds).
    pub first_seed: u64,
    pub schedulers: Vec<String>,
    /// Adds Decima's tuned weighted fair ("opt-weighted-fair"), α chosen on these seeds.
    pub tune_weighted_fair: Option<TuneConfig>,
}

impl Default for EvalSettings {
    fn default() -> Self {
        Self {
            seeds: defaults::SEEDS,
            first_seed: defaults::FIRST_SEED,
            schedulers: vec![defaults::BASELINE.into()],
            tune_weighted_fair: None,
        }
    }
}

/// Decima's "opt. weighted fair": α swept on training episodes, the best one reported on
/// the test episodes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TuneConfig {
    /// Training episodes per α.
    pub train_seeds: usize,
    /// Seed of the first training episode; the range must not overlap the test seeds.
    pub first_seed: u64,
}

impl TuneConfig {
    /// Checks the training seeds, and that they are disjoint from the `seeds` test
    /// episodes from `first_seed` (α must be chosen on other episodes than it is reported on).
    pub fn validate(&self, seeds: usize, first_seed: u64) -> Result<(), FieldError> {
        check_seeds("train_seeds", self.train_seeds, self.first_seed)?;
        let (a, b) = (first_seed, first_seed + seeds as u64);
        let (c, d) = (self.first_seed, self.first_seed + self.train_seeds as u64);
        if a < d && c < b {
            return Err(FieldError::new(
                "first_seed",
                format!(
                    "training seeds {c}..{d} overlap the test seeds {a}..{b}; α must be \
                     chosen on other episodes than it is reported on"
                ),
            ));
        }
        Ok(())
    }
}

fn labels<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Label {
        Int(i64),
        Str(String),
    }
    let v: Option<Vec<Label>> = Option::deserialize(d)?;
    Ok(v.map(|v| {
        v.into_iter()
            .map(|l| match l {
                Label::Int(i) => i.to_string(),
                Label::Str(s) => s,
            })
            .collect()
    }))
}

/// `seeds` episodes from `first_seed` must not run past the largest seed.
pub fn check_seeds(field: &str, seeds: usize, first_seed: u64) -> Result<(), FieldError> {
    in_range(field, seeds, 1, defaults::MAX_SEEDS)?;
    if first_seed.checked_add(seeds as u64).is_none() {
        return Err(FieldError::new(
            field,
            format!("{seeds} episodes from seed {first_seed} run past the largest seed"),
        ));
    }
    Ok(())
}

impl Config for EvalConfig {
    fn validate(&self) -> Result<(), FieldError> {
        if let Some(n) = &self.name {
            check_name("name", n)?;
        }
        self.workload.validate().map_err(|e| e.within("workload"))?;
        self.sim.validate().map_err(|e| e.within("sim"))?;
        check_seeds("eval.seeds", self.eval.seeds, self.eval.first_seed)?;
        if self.eval.schedulers.is_empty() {
            return Err(FieldError::new(
                "eval.schedulers",
                "name at least one scheduler",
            ));
        }
        if let Some(t) = &self.eval.tune_weighted_fair {
            t.validate(self.eval.seeds, self.eval.first_seed)
                .map_err(|e| e.within("eval.tune_weighted_fair"))?;
        }
        for (i, s) in self.eval.schedulers.iter().enumerate() {
            crate::sched::SchedulerSpec::parse_list(s)
                .map_err(|e| FieldError::new(format!("eval.schedulers[{i}]"), e.to_string()))?;
        }
        Ok(())
    }
}

impl EvalConfig {
    /// The configuration `mpda eval` runs when given neither a config nor traces.
    pub fn embedded_default() -> Self {
        Self::parse(DEFAULT_CONFIG, Path::new(DEFAULT_CONFIG_NAME))
            .expect("the embedded default config is valid")
    }

    /// The config a command line asks for: `--config` if given, else an empty one when
    /// `--traces` is given, else the embedded default; then the flags on top, validated
    /// again. An error in a value a flag set names the flag.
    pub fn from_command_line(
        file: Option<&Path>,
        flags: &EvalFlags,
    ) -> Result<(Self, PathBuf), ConfigError> {
        let (mut cfg, origin) = match (file, &flags.traces) {
            (Some(p), _) => (Self::load(p)?, p.to_path_buf()),
            (None, Some(_)) => (Self::default(), PathBuf::from("command line")),
            (None, None) => (Self::embedded_default(), PathBuf::from(DEFAULT_CONFIG_NAME)),
        };
        flags.apply(&mut cfg);
        cfg.validate()
            .map_err(|e| flags.name_flag(e))
            .map_err(ConfigError::field(&origin))?;
        Ok((cfg, origin))
    }

    /// Loads the traces, draws the episodes and applies a replay's executor count (a flag
    /// still overrides it): everything `mpda eval` and `mpda bench` need to run.
    pub fn prepare(
        mut self,
        origin: &Path,
        flags: &EvalFlags,
    ) -> Result<PreparedEval, ConfigError> {
        let workload = self
            .workload
            .resolve(origin, self.eval.seeds, self.eval.first_seed)?;
        if let Some(n) = workload.replay_exec_cap {
            self.sim.executors = n;
        }
        if let Some(n) = flags.executors {
            self.sim.executors = n;
        }
        self.validate()
            .map_err(|e| flags.name_flag(e))
            .map_err(ConfigError::field(origin))?;
        Ok(PreparedEval {
            cfg: self,
            workload,
        })
    }
}

/// An evaluation ready to run: its config and its episodes.
pub struct PreparedEval {
    pub cfg: EvalConfig,
    pub workload: ResolvedWorkload,
}

/// What the command line's workload flags set on top of a config (`None`: leave it). The
/// flags of `mpda eval` and `mpda bench`, declared here so that the overlay and its flags
/// are one piece of code.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct EvalFlags {
    /// Trace folder: DIR/<size>/<query>.json[.gz].
    #[arg(long)]
    pub traces: Option<PathBuf>,
    /// Replay the job sequences of a file in reference-episodes.json format.
    #[arg(long, requires = "scenario")]
    pub replay: Option<PathBuf>,
    /// Scenario of the replay file.
    #[arg(long, requires = "replay")]
    pub scenario: Option<String>,
    /// Batch arrivals: N jobs at t = 0.
    #[arg(long, conflicts_with_all = ["replay", "stream"])]
    pub batch: Option<usize>,
    /// Poisson arrivals: N jobs after the initial ones.
    #[arg(long)]
    pub stream: Option<usize>,
    /// Jobs present at t = 0 with --stream.
    #[arg(long, default_value_t = 1, requires = "stream")]
    pub init_jobs: usize,
    /// Mean gap between arrivals with --stream, seconds.
    #[arg(long, default_value_t = 25.0, requires = "stream")]
    pub interval_s: f64,
    /// Sizes to sample, comma-separated (default: all).
    #[arg(long, value_delimiter = ',')]
    pub sizes: Option<Vec<String>>,
    /// Queries to sample, comma-separated (default: all).
    #[arg(long, value_delimiter = ',')]
    pub queries: Option<Vec<String>>,
    /// Number of executors (overrides the config and the replay scenario).
    #[arg(long)]
    pub executors: Option<u32>,
    /// Number of episodes (for a replay: its first N episodes).
    #[arg(long)]
    pub seeds: Option<usize>,
    /// Seed of the first episode.
    #[arg(long)]
    pub first_seed: Option<u64>,
}

impl EvalFlags {
    fn apply(&self, cfg: &mut EvalConfig) {
        let w = &mut cfg.workload;
        if let Some(t) = &self.traces {
            w.traces = t.clone();
        }
        if let (Some(file), Some(scenario)) = (&self.replay, &self.scenario) {
            w.replay = Some(ReplayConfig {
                file: file.clone(),
                scenario: scenario.clone(),
            });
            w.arrivals = None;
        }
        let arrivals = match (self.batch, self.stream) {
            (Some(jobs), _) => Some(ArrivalProcess::Batch { jobs }),
            (None, Some(stream_jobs)) => Some(ArrivalProcess::Poisson {
                init_jobs: self.init_jobs,
                stream_jobs,
                mean_interval_ms: self.interval_s * 1000.0,
                batch_jobs: 1,
            }),
            (None, None) => None,
        };
        if arrivals.is_some() {
            w.arrivals = arrivals;
            w.replay = None;
        }
        if self.sizes.is_some() {
            w.sizes = self.sizes.clone();
        }
        if self.queries.is_some() {
            w.queries = self.queries.clone();
        }
        if let Some(n) = self.executors {
            cfg.sim.executors = n;
        }
        if let Some(n) = self.seeds {
            cfg.eval.seeds = n;
        }
        if let Some(s) = self.first_seed {
            cfg.eval.first_seed = s;
        }
    }

    /// Adds the flag that set a field to its error, so that `--executors 0` is reported
    /// as the flag's fault, not the config file's.
    fn name_flag(&self, mut e: FieldError) -> FieldError {
        let flag = match e.field.as_str() {
            "sim.executors" if self.executors.is_some() => "--executors",
            "eval.seeds" if self.seeds.is_some() => "--seeds",
            "eval.seeds" if self.first_seed.is_some() => "--first-seed",
            f if f.starts_with("workload.arrivals")
                && (self.batch.is_some() || self.stream.is_some()) =>
            {
                "--batch/--stream/--init-jobs/--interval-s"
            }
            _ => return e,
        };
        e.msg = format!("{} (set by {flag})", e.msg);
        e
    }
}

/// A workload resolved against its traces: the episodes to run.
pub struct ResolvedWorkload {
    pub library: TraceLibrary,
    pub episodes: Vec<Episode>,
    /// Executor count a replay scenario asks for.
    pub replay_exec_cap: Option<u32>,
    pub description: String,
}

impl WorkloadConfig {
    /// The checks that need no traces: exactly one of `arrivals` and `replay`, and valid
    /// arrivals. (That the sizes and queries exist is checked when the traces are loaded.)
    pub fn validate(&self) -> Result<(), FieldError> {
        match (&self.arrivals, &self.replay) {
            (Some(_), Some(_)) => Err(FieldError::new(
                "",
                "give either `arrivals` or `replay`, not both",
            )),
            (None, None) => Err(FieldError::new(
                "",
                "give `arrivals` (batch or poisson) or `replay`",
            )),
            (Some(a), None) => a.validate().map_err(|e| e.within("arrivals")),
            (None, Some(_)) => Ok(()),
        }?;
        for (field, list) in [("sizes", &self.sizes), ("queries", &self.queries)] {
            if list.as_ref().is_some_and(|l| l.is_empty()) {
                return Err(FieldError::new(field, "must not be empty when given"));
            }
        }
        Ok(())
    }

    /// Loads the traces and draws (or reads) the episodes. `origin` names the config file
    /// or the command line in errors.
    pub fn resolve(
        &self,
        origin: &Path,
        seeds: usize,
        first_seed: u64,
    ) -> Result<ResolvedWorkload, ConfigError> {
        let library = TraceLibrary::load_dir(&self.traces)?;
        let (episodes, replay_exec_cap, description) =
            self.episodes(&library, origin, seeds, first_seed)?;
        Ok(ResolvedWorkload {
            library,
            episodes,
            replay_exec_cap,
            description,
        })
    }

    /// The job mix that generated arrivals sample from.
    pub fn mix(&self, library: &TraceLibrary, origin: &Path) -> Result<JobMix, ConfigError> {
        let all = JobMix::all(library);
        let mix = JobMix {
            sizes: self.sizes.clone().unwrap_or(all.sizes),
            queries: self.queries.clone().unwrap_or(all.queries),
        };
        mix.validate(library).map_err(|m| ConfigError::Invalid {
            file: origin.to_path_buf(),
            msg: format!("workload: {m}"),
        })?;
        Ok(mix)
    }

    /// The episodes on already-loaded traces, with the replay scenario's executor count (if
    /// any) and a description; lets experiments with many settings parse the traces once.
    pub fn episodes(
        &self,
        library: &TraceLibrary,
        origin: &Path,
        seeds: usize,
        first_seed: u64,
    ) -> Result<(Vec<Episode>, Option<u32>, String), ConfigError> {
        self.validate()
            .map_err(|e| e.within("workload"))
            .map_err(ConfigError::field(origin))?;
        if let Some(r) = &self.replay {
            let replay = Replay::load(&r.file, &r.scenario, library)?;
            let n = seeds.min(replay.sequences.len());
            let episodes = replay
                .episodes
                .iter()
                .zip(&replay.sequences)
                .take(n)
                .map(|(e, jobs)| Episode {
                    seed: e.env_seed,
                    jobs: jobs.clone(),
                })
                .collect();
            return Ok((
                episodes,
                replay.exec_cap,
                format!(
                    "replay {} scenario {} ({n} episodes)",
                    r.file.display(),
                    r.scenario
                ),
            ));
        }
        let arrivals = self.arrivals.as_ref().expect("validated: arrivals");
        let mix = self.mix(library, origin)?;
        let episodes = (0..seeds as u64)
            .map(|i| {
                let seed = first_seed + i;
                Episode {
                    seed,
                    jobs: arrivals.generate(library, &mix, seed),
                }
            })
            .collect();
        Ok((
            episodes,
            None,
            format!(
                "{arrivals:?} over {} sizes x {} queries",
                mix.sizes.len(),
                mix.queries.len()
            ),
        ))
    }
}
