//! Experiment configs (TOML): which workload, which cluster, which schedulers and seeds.
//! Unknown keys are errors, so a typo never silently falls back to a default.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer};
use thiserror::Error;

use crate::eval::Episode;
use crate::sim::SimConfig;
use crate::workload::arrivals::{ArrivalProcess, JobMix, Replay};
use crate::workload::{TraceError, TraceLibrary};

/// `configs/default.toml`, compiled into the binary.
pub const DEFAULT_CONFIG: &str = include_str!("../configs/default.toml");
pub const DEFAULT_CONFIG_NAME: &str = "embedded default (configs/default.toml)";

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("{}: cannot read: {source}", file.display())]
    Io {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {msg}", file.display())]
    Invalid { file: PathBuf, msg: String },
    #[error(transparent)]
    Trace(#[from] TraceError),
}

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
    /// Number of episodes (for a replay: the first `seeds` episodes of the scenario).
    pub seeds: usize,
    /// Seed of the first episode; episode i uses `first_seed + i` (Decima's test seeds).
    pub first_seed: u64,
    pub schedulers: Vec<String>,
}

impl Default for EvalSettings {
    fn default() -> Self {
        Self {
            seeds: 20,
            first_seed: 10_000_000,
            schedulers: vec!["fair".into()],
        }
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

impl EvalConfig {
    pub fn load(file: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(file).map_err(|source| ConfigError::Io {
            file: file.to_path_buf(),
            source,
        })?;
        Self::parse(&text, file)
    }

    /// Parses TOML text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &Path) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Invalid {
            file: origin.to_path_buf(),
            msg: e.to_string(),
        })
    }

    /// The configuration `mpda eval` runs when given neither a config nor traces.
    pub fn embedded_default() -> Self {
        Self::parse(DEFAULT_CONFIG, Path::new(DEFAULT_CONFIG_NAME))
            .expect("the embedded default config is valid")
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
        let invalid = |msg: String| ConfigError::Invalid {
            file: origin.to_path_buf(),
            msg,
        };
        match (&self.arrivals, &self.replay) {
            (Some(_), Some(_)) => Err(invalid(
                "workload: give either `arrivals` or `replay`, not both".into(),
            )),
            (None, None) => Err(invalid(
                "workload: give `arrivals` (batch or poisson) or `replay`".into(),
            )),
            (None, Some(r)) => {
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
                Ok((
                    episodes,
                    replay.exec_cap,
                    format!(
                        "replay {} scenario {} ({n} episodes)",
                        r.file.display(),
                        r.scenario
                    ),
                ))
            }
            (Some(arrivals), None) => {
                arrivals
                    .validate()
                    .map_err(|e| invalid(e.within("workload.arrivals").to_string()))?;
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
    }
}
