//! The Spark cluster simulator: a faithful, deterministic and fast reimplementation of
//! Decima's `spark_env` (see `docs/simulator.md` for every mechanic and quirk).
//!
//! Nothing here knows about schedulers' insides or about neural networks: a scheduler sees
//! an [`Observation`] and answers with an [`Action`].

pub mod cluster;
pub mod decima;
pub mod driver;
pub mod durations;
pub mod env;
pub mod live;
pub mod observation;
pub mod plan;
pub mod reward;
pub mod spark;
pub mod stats;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::validate::{FieldError, in_range};

pub use cluster::ClusterConfig;
pub use env::{Env, Step};
pub use observation::{
    HEAVY_TASKS, HostView, JobView, Observation, PoolView, StageData, StageView,
};
pub use reward::{Objective, RewardConfig};
pub use stats::{EpisodeStats, EventCounts, SparkJobTotals, SparkTotals, TaskRecord, Wave};

/// Episode-wide job index: position in the episode's job sequence (arrival order).
pub type JobId = u32;
/// Episode-wide stage index: stages of all jobs of an episode, job after job.
pub type StageId = u32;
/// Executor index, `0..executors`.
pub type ExecId = u32;

/// What a scheduler decides for the executors it is asked to place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Send executors to `stage`, so that its job holds at most `limit` executors in all
    /// (Decima's job-level parallelism limit). The simulator commits
    /// `min(limit - min_limit + 1, unassigned tasks of the stage, executors to place)`
    /// executors, where `min_limit` is the job's smallest valid limit
    /// ([`JobView::min_limit`]).
    Schedule { stage: StageId, limit: u32 },
    /// Leave `executors` of the executors to place idle (Decima's `(None, n)`).
    Idle { executors: u32 },
    /// Spark's engine only: start one task of `stage` now on a free slot of host `host`
    /// (an index into `Observation::hosts`), instead of leaving the slot to Spark's
    /// resource offers and delay scheduling: a capacity-aware scheduler (DSCS) picks the
    /// host itself. The stage must be schedulable and runnable; the task is the one most
    /// local to that host. Decima's engine and live runs refuse it.
    Place { stage: StageId, host: u32 },
    /// Spark's engine only: cut `stage`'s data into `partitions` tasks before any of its
    /// tasks starts (`spark.sql.shuffle.partitions` per stage, or AQE coalescing). The
    /// stage's bytes are kept: generated keys are re-hashed onto the new partitions, measured
    /// per-task data is re-cut over the partition index space. Durations then follow the
    /// data term (sample × task bytes / the trace's mean task bytes), and memory and spill
    /// follow the new sizes. Once per stage; takes no slot.
    Partition { stage: StageId, partitions: u32 },
    /// Spark's engine only: split task `task` of `stage`, not started yet, into `parts`
    /// tasks with equal shares of its data (AQE's skew split, by map-output ranges): the
    /// way to break up a heavy key. The first part keeps the task's index, the others are
    /// appended to the stage. Takes no slot.
    Split {
        stage: StageId,
        task: u32,
        parts: u32,
    },
}

impl Action {
    /// Whether this action changes a stage's partitions (and takes no slot).
    pub fn repartitions(&self) -> bool {
        matches!(self, Action::Partition { .. } | Action::Split { .. })
    }
}

/// How an executor count between two measured counts picks its measurement key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyInterpolation {
    /// Decima's rule: between data points l < n < r, choose l with probability
    /// (n - l) / (r - l). This is inverted (n = 9 between 5 and 10 picks 5 with
    /// probability 0.8), but it is what every published Decima number used.
    Decima,
    /// Corrected: choose l with probability (r - n) / (r - l), so the nearer point is likelier.
    Linear,
}

/// Which executor counts a task's duration is looked up at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecutorKeys {
    /// Decima: interpolate between the fixed `executor_data_points`; a key the stage did
    /// not measure falls back to its largest one. Right for Decima's traces (keys 2..100).
    DataPoints,
    /// Interpolate between the executor counts the stage was actually measured with, and
    /// never extrapolate: beyond the largest measured count, use that count. For traces
    /// measured at few counts (ours: 1 and 2 executors), this uses every measurement where
    /// it applies and assumes nothing about contention at counts never observed.
    Measured,
}

/// Simulator settings. Defaults are decima-sim's, with 50 executors as in its README.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimConfig {
    /// Number of identical executors (`exec_cap`).
    pub executors: u32,
    /// Delay for an executor to join another job, ms.
    pub moving_delay_ms: u64,
    /// Added to a first-wave sample when a fresh executor has no fresh-duration data, ms.
    pub warmup_delay_ms: u32,
    /// Executor counts that the duration lookup interpolates between.
    pub executor_data_points: Vec<u32>,
    pub executor_keys: ExecutorKeys,
    pub key_interpolation: KeyInterpolation,
    pub reward: RewardConfig,
    /// Stop at the first decision after this simulated time (Decima's `max_time`).
    pub max_time_ms: Option<u64>,
    /// Keep a record of every task (for Gantt charts and property tests); costs memory.
    pub record_tasks: bool,
    /// Spark as it really runs (hosts, slots, data, memory, locality, pools); absent:
    /// Decima's engine, unchanged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterConfig>,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            executors: 50,
            moving_delay_ms: 2000,
            warmup_delay_ms: 1000,
            executor_data_points: vec![5, 10, 20, 40, 50, 60, 80, 100],
            executor_keys: ExecutorKeys::DataPoints,
            key_interpolation: KeyInterpolation::Decima,
            reward: RewardConfig::default(),
            max_time_ms: None,
            record_tasks: false,
            cluster: None,
        }
    }
}

/// Largest executor count: an episode of the default workload (20 TPC-H jobs) at 100,000
/// executors takes about 9 s and 20 MB on one core (measured; the event loop's cost grows
/// about quadratically with executors), and the duration key table holds one entry per
/// executor count. Beyond it a run would seem to hang or fail to allocate.
pub const MAX_EXECUTORS: u32 = 100_000;
/// Largest delay (moving, warm-up), ms: one day. Keeps `now + delay` and a task duration
/// plus its warm-up far from integer overflow.
pub const MAX_DELAY_MS: u64 = 86_400_000;
/// Most executor data points (Decima has 8).
pub const MAX_DATA_POINTS: usize = 1_000;
/// Largest `max_time_ms`: 10^12 ms, about 31 years of simulated time.
pub const MAX_TIME_MS: u64 = 1_000_000_000_000;

impl SimConfig {
    /// What a decision places at most: the executors, or the cluster's task slots (an
    /// invalid cluster counts as the executors; `validate` reports it).
    pub fn slots(&self) -> u32 {
        self.cluster
            .as_ref()
            .and_then(|c| c.resolve().ok())
            .map_or(self.executors, |c| c.slots())
    }

    /// What the episodes run on, for messages: "50 executors", or the cluster's slots and
    /// hosts.
    pub fn capacity(&self) -> String {
        match self.cluster.as_ref().map(ClusterConfig::resolve) {
            None => format!("{} executors", self.executors),
            Some(Ok(c)) => format!(
                "{} task slots on {} hosts ({} executors)",
                c.slots(),
                c.hosts.len(),
                c.executors.len()
            ),
            Some(Err(e)) => format!("an invalid cluster ({e})"),
        }
    }

    /// Checks every field against its documented range (docs/inputs.md); field names are
    /// relative to the `[sim]` section.
    pub fn validate(&self) -> Result<(), FieldError> {
        in_range("executors", self.executors, 1, MAX_EXECUTORS)?;
        in_range("moving_delay_ms", self.moving_delay_ms, 0, MAX_DELAY_MS)?;
        in_range(
            "warmup_delay_ms",
            u64::from(self.warmup_delay_ms),
            0,
            MAX_DELAY_MS,
        )?;
        let points = &self.executor_data_points;
        in_range(
            "executor_data_points.len()",
            points.len(),
            1,
            MAX_DATA_POINTS,
        )?;
        for (i, &p) in points.iter().enumerate() {
            in_range(&format!("executor_data_points[{i}]"), p, 1, MAX_EXECUTORS)?;
        }
        if let Some(i) = points.windows(2).position(|w| w[0] >= w[1]) {
            return Err(FieldError::new(
                format!("executor_data_points[{}]", i + 1),
                format!(
                    "must be strictly ascending, found {} after {}",
                    points[i + 1],
                    points[i]
                ),
            ));
        }
        if let Some(t) = self.max_time_ms {
            in_range("max_time_ms", t, 1, MAX_TIME_MS)?;
        }
        if let Some(c) = &self.cluster {
            c.validate().map_err(|e| e.within("cluster"))?;
        }
        self.reward.validate().map_err(|e| e.within("reward"))
    }
}

#[derive(Debug, Clone, Error, PartialEq)]
pub enum SimError {
    #[error("invalid action {action:?}: {reason}")]
    InvalidAction { action: Action, reason: String },
    #[error("the episode is over; call reset")]
    EpisodeOver,
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("an episode needs at least one job")]
    NoJobs,
}
