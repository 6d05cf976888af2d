//! Arrival processes: which jobs an episode runs, and when they arrive.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::numpy_rng::NumpyRandomState;
use super::{JobTrace, TraceError, TraceLibrary};
use crate::validate::{FieldError, finite_in, in_range};

/// One job of an episode and its arrival time.
#[derive(Debug, Clone)]
pub struct JobArrival {
    pub job: Arc<JobTrace>,
    pub arrival_ms: u64,
}

/// The jobs an episode runs, in arrival order (ties keep generation order).
pub type JobSequence = Vec<JobArrival>;

/// One episode to run: its job sequence and the seed of its random draws (task durations,
/// and a scheduler's own stream; see `crate::seed`).
#[derive(Debug, Clone)]
pub struct Episode {
    pub seed: u64,
    pub jobs: JobSequence,
}

/// Which (size, query) pairs a generator samples from, uniformly and independently.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobMix {
    pub sizes: Vec<String>,
    pub queries: Vec<String>,
}

impl JobMix {
    /// Every size and query of a library.
    pub fn all(lib: &TraceLibrary) -> Self {
        Self {
            sizes: lib.sizes(),
            queries: lib.queries(),
        }
    }

    /// Checks that every (size, query) pair exists, so that sampling never fails later.
    pub fn validate(&self, lib: &TraceLibrary) -> Result<(), String> {
        if self.sizes.is_empty() || self.queries.is_empty() {
            return Err("the job mix needs at least one size and one query".into());
        }
        for s in &self.sizes {
            for q in &self.queries {
                if lib.by_size_query(s, q).is_none() {
                    return Err(format!(
                        "no trace for size \"{s}\" query \"{q}\" in {} (sizes there: {:?})",
                        lib.dir.display(),
                        lib.sizes()
                    ));
                }
            }
        }
        Ok(())
    }
}

/// A generated arrival process. Sequences are drawn with numpy's legacy RandomState in
/// Decima's call order, so that for Decima's traces and size/query lists a seed gives
/// exactly decima-sim's job sequence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ArrivalProcess {
    /// `jobs` jobs, all present at t = 0.
    Batch { jobs: usize },
    /// `init_jobs` at t = 0, then `stream_jobs` with exponential gaps of mean
    /// `mean_interval_ms` (truncated to whole ms, as Decima does), `batch_jobs` at a time
    /// (default 1: Decima's stream; the branching A3C study pushes batches of 20).
    Poisson {
        init_jobs: usize,
        stream_jobs: usize,
        mean_interval_ms: f64,
        #[serde(default = "one", skip_serializing_if = "is_one")]
        batch_jobs: usize,
    },
}

fn one() -> usize {
    1
}

fn is_one(n: &usize) -> bool {
    *n == 1
}

/// Most jobs in one episode: 10,000 (the default workload has 20, Decima's streams 201).
/// Measured: a batch of 10,000 TPC-H jobs on 50 executors runs one episode in 163 s and
/// 29 MB with fair share; the cost grows with the square of the jobs present at once, so
/// 100,000 would take hours per episode.
pub const MAX_JOBS: usize = 10_000;
/// Mean gap between Poisson arrivals, ms: from 1 ms (gaps are truncated to whole ms, so
/// shorter means make most gaps 0) to 10^9 ms (11.6 days).
pub const MEAN_INTERVAL_MS_RANGE: (f64, f64) = (1.0, 1e9);

impl ArrivalProcess {
    /// Checks the job counts and the mean gap against their documented ranges; field names
    /// are relative to the arrival process (`jobs`, `mean_interval_ms`...).
    pub fn validate(&self) -> Result<(), FieldError> {
        match *self {
            ArrivalProcess::Batch { jobs } => in_range("jobs", jobs, 1, MAX_JOBS),
            ArrivalProcess::Poisson {
                init_jobs,
                stream_jobs,
                mean_interval_ms,
                batch_jobs,
            } => {
                in_range("init_jobs", init_jobs, 0, MAX_JOBS)?;
                in_range("stream_jobs", stream_jobs, 0, MAX_JOBS)?;
                in_range("batch_jobs", batch_jobs, 1, MAX_JOBS)?;
                if stream_jobs % batch_jobs != 0 {
                    return Err(FieldError::new(
                        "stream_jobs",
                        format!(
                            "{stream_jobs} is not a whole number of batches of {batch_jobs} (batch_jobs)"
                        ),
                    ));
                }
                // Both are at most MAX_JOBS here, so the sum cannot overflow.
                let total = init_jobs + stream_jobs;
                if !(1..=MAX_JOBS).contains(&total) {
                    return Err(FieldError::new(
                        "init_jobs + stream_jobs",
                        format!("must be in 1..={MAX_JOBS}, found {total}"),
                    ));
                }
                let (lo, hi) = MEAN_INTERVAL_MS_RANGE;
                finite_in("mean_interval_ms", mean_interval_ms, lo, hi)
            }
        }
    }

    /// Draws the job sequence of one episode. The caller must have validated `mix`.
    pub fn generate(&self, lib: &TraceLibrary, mix: &JobMix, seed: u64) -> JobSequence {
        // numpy seeds are 32-bit; Decima's seeds (10,000,000 + i) fit.
        let mut rng = NumpyRandomState::new(seed as u32);
        let pick = |size: u32, query: u32| {
            Arc::clone(
                lib.by_size_query(&mix.sizes[size as usize], &mix.queries[query as usize])
                    .expect("job mix validated against the library"),
            )
        };
        let (init, stream, interval, batch) = match *self {
            ArrivalProcess::Batch { jobs } => (jobs, 0, 0.0, 1),
            ArrivalProcess::Poisson {
                init_jobs,
                stream_jobs,
                mean_interval_ms,
                batch_jobs,
            } => (init_jobs, stream_jobs, mean_interval_ms, batch_jobs.max(1)),
        };
        let (ns, nq) = (mix.sizes.len() as u32, mix.queries.len() as u32);
        let mut seq = Vec::with_capacity(init + stream);
        for _ in 0..init {
            let q = rng.randint(nq);
            let s = rng.randint(ns);
            seq.push(JobArrival {
                job: pick(s, q),
                arrival_ms: 0,
            });
        }
        let mut t = 0u64;
        for k in 0..stream {
            // A gap before each batch; one job per batch draws as Decima does.
            if k % batch == 0 {
                t += rng.exponential(interval) as u64;
            }
            let s = rng.randint(ns);
            let q = rng.randint(nq);
            seq.push(JobArrival {
                job: pick(s, q),
                arrival_ms: t,
            });
        }
        seq
    }
}

// ---------------------------------------------------------------------------------------
// Replay files (the format of decima-tpch's reference-episodes.json).

#[derive(Debug, Clone, Deserialize)]
pub struct ReplayFile {
    #[serde(default)]
    pub common_settings: ReplaySettings,
    pub scenarios: BTreeMap<String, ReplayScenario>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ReplaySettings {
    pub exec_cap: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ReplayScenario {
    pub exec_cap: Option<u32>,
    pub episodes: Vec<ReplayEpisode>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ReplayEpisode {
    pub env_seed: u64,
    /// `[job name, arrival ms]` in arrival order.
    pub jobs: Vec<(String, u64)>,
    /// Results recorded by whoever produced the file (kept for comparisons).
    #[serde(default)]
    pub results: serde_json::Value,
}

/// One scenario of a replay file, resolved against a trace library.
#[derive(Debug, Clone)]
pub struct Replay {
    pub file: PathBuf,
    pub scenario: String,
    /// Executors from the scenario, else from the common settings.
    pub exec_cap: Option<u32>,
    pub episodes: Vec<ReplayEpisode>,
    pub sequences: Vec<JobSequence>,
}

impl Replay {
    pub fn load(file: &Path, scenario: &str, lib: &TraceLibrary) -> Result<Self, TraceError> {
        let bytes = super::read_file(file)?;
        let replay: ReplayFile = super::parse_json(file, &bytes)?;
        let field = |field: String, msg: String| TraceError::invalid(file, field, msg);
        let Some(sc) = replay.scenarios.get(scenario) else {
            return Err(field(
                "scenarios".into(),
                format!(
                    "no scenario \"{scenario}\" (available: {})",
                    replay
                        .scenarios
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        };
        let mut sequences = Vec::with_capacity(sc.episodes.len());
        for (e, ep) in sc.episodes.iter().enumerate() {
            let mut seq = Vec::with_capacity(ep.jobs.len());
            let mut last = 0;
            for (j, (name, arrival_ms)) in ep.jobs.iter().enumerate() {
                let at = format!("scenarios.{scenario}.episodes[{e}].jobs[{j}]");
                let job = lib.by_name(name).ok_or_else(|| {
                    field(
                        at.clone(),
                        format!(
                            "job \"{name}\" is not in the traces at {}",
                            lib.dir.display()
                        ),
                    )
                })?;
                if *arrival_ms < last {
                    return Err(field(at, "arrival times must not decrease".into()));
                }
                last = *arrival_ms;
                seq.push(JobArrival {
                    job: Arc::clone(job),
                    arrival_ms: *arrival_ms,
                });
            }
            if seq.is_empty() {
                return Err(field(
                    format!("scenarios.{scenario}.episodes[{e}].jobs"),
                    "an episode needs at least one job".into(),
                ));
            }
            sequences.push(seq);
        }
        Ok(Self {
            file: file.to_path_buf(),
            scenario: scenario.to_string(),
            exec_cap: sc.exec_cap.or(replay.common_settings.exec_cap),
            episodes: sc.episodes.clone(),
            sequences,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tpch() -> TraceLibrary {
        TraceLibrary::load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tpch"))
            .expect("the shipped tpch/ traces load")
    }

    /// Batched Poisson arrivals: the initial jobs at t = 0, then whole batches sharing one
    /// arrival time each, the gaps growing; one job per batch is Decima's stream exactly.
    #[test]
    fn poisson_batches_arrive_together_and_one_per_batch_is_the_plain_stream() {
        let lib = tpch();
        let mix = JobMix::all(&lib);
        let batched = ArrivalProcess::Poisson {
            init_jobs: 1,
            stream_jobs: 60,
            mean_interval_ms: 30_000.0,
            batch_jobs: 20,
        };
        batched.validate().unwrap();
        let seq = batched.generate(&lib, &mix, 7);
        assert_eq!(seq.len(), 61);
        assert_eq!(seq[0].arrival_ms, 0);
        let times: Vec<u64> = seq[1..].iter().map(|a| a.arrival_ms).collect();
        for batch in times.chunks(20) {
            assert!(batch.iter().all(|&t| t == batch[0]), "{batch:?}");
        }
        assert!(times[0] < times[20] && times[20] < times[40], "{times:?}");
        assert!(
            seq.iter()
                .map(|a| &a.job.name)
                .collect::<std::collections::HashSet<_>>()
                .len()
                > 10
        );
        // batch_jobs = 1 draws exactly as before the field existed.
        let plain = |b| ArrivalProcess::Poisson {
            init_jobs: 2,
            stream_jobs: 30,
            mean_interval_ms: 25_000.0,
            batch_jobs: b,
        };
        let old: ArrivalProcess = toml::from_str(
            "kind = \"poisson\"\ninit_jobs = 2\nstream_jobs = 30\nmean_interval_ms = 25000.0",
        )
        .unwrap();
        assert_eq!(old, plain(1));
        let a = plain(1).generate(&lib, &mix, 11);
        assert!(a.windows(2).all(|w| w[0].arrival_ms <= w[1].arrival_ms));
        assert!(a[2..].windows(2).any(|w| w[0].arrival_ms < w[1].arrival_ms));
        // A stream that is not whole batches, and empty batches, are errors naming the field.
        let e = ArrivalProcess::Poisson {
            init_jobs: 1,
            stream_jobs: 30,
            mean_interval_ms: 1000.0,
            batch_jobs: 20,
        }
        .validate()
        .unwrap_err();
        assert!(e.to_string().contains("stream_jobs"), "{e}");
        let e = plain(0).validate().unwrap_err();
        assert!(e.to_string().contains("batch_jobs"), "{e}");
    }
}
