//! The Spark cluster simulator: a faithful, deterministic and fast reimplementation of
//! Decima's `spark_env` (see `docs/simulator.md` for every mechanic and quirk).
//!
//! Nothing here knows about schedulers' insides or about neural networks: a scheduler sees
//! an [`Observation`] and answers with an [`Action`].

pub mod driver;
pub mod durations;
pub mod env;
pub mod observation;
pub mod reward;
pub mod stats;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::validate::FieldError;

pub use env::Env;
pub use observation::{JobView, Observation, StageView};
pub use reward::{Objective, RewardConfig};
pub use stats::{EpisodeStats, EventCounts, TaskRecord, Wave};

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
        }
    }
}

impl SimConfig {
    pub fn validate(&self) -> Result<(), FieldError> {
        if self.executors == 0 {
            return Err(FieldError::new("executors", "must be at least 1"));
        }
        if self.executor_data_points.is_empty() {
            return Err(FieldError::new("executor_data_points", "must not be empty"));
        }
        if self.executor_data_points.windows(2).any(|w| w[0] >= w[1]) {
            return Err(FieldError::new(
                "executor_data_points",
                "must be strictly ascending",
            ));
        }
        if self.executor_data_points[0] == 0 {
            return Err(FieldError::new("executor_data_points", "must be positive"));
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
