//! What an episode produced: JCTs, makespan, utilisation and counts.

use serde::{Deserialize, Serialize};

use super::{ExecId, JobId};

/// Which measurement wave a task's duration was drawn from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Wave {
    Fresh,
    First,
    Rest,
}

/// Timeline events, by kind (decima's `sim_events`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventCounts {
    pub task: u64,
    pub job: u64,
    pub exec: u64,
}

impl EventCounts {
    pub fn total(&self) -> u64 {
        self.task + self.job + self.exec
    }
}

/// One executed task, recorded when `SimConfig::record_tasks` is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskRecord {
    pub job: JobId,
    /// Stage index within its job.
    pub stage: u32,
    pub task: u32,
    pub executor: ExecId,
    pub start_ms: u64,
    pub end_ms: u64,
    pub wave: Wave,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EpisodeStats {
    pub env_seed: u64,
    pub jobs: usize,
    pub finished: usize,
    /// Mean JCT over finished jobs, seconds.
    pub avg_jct_s: f64,
    pub p50_jct_s: f64,
    pub p95_jct_s: f64,
    pub p99_jct_s: f64,
    /// Simulated time when the episode ended, seconds.
    pub makespan_s: f64,
    /// Busy executor-time over executors × makespan.
    pub utilisation: f64,
    /// Scheduler decisions (`step` calls).
    pub decisions: u64,
    pub events: EventCounts,
    /// Task draws per wave.
    pub fresh_tasks: u64,
    pub first_wave_tasks: u64,
    pub rest_wave_tasks: u64,
    /// Sum of the rewards of the episode.
    pub total_reward: f64,
    /// Job-time (ms) the reward counted; equals the sum of JCTs of a finished episode
    /// unless Decima's unseen-job quirk dropped some jobs.
    pub reward_job_time_ms: u64,
    /// Jobs Decima's reward never counted (arrived and finished between two decisions).
    pub unseen_jobs: usize,
    /// JCT of each job in arrival order, seconds; `None` if it did not finish.
    pub jct_s: Vec<Option<f64>>,
    /// What only Spark's engine knows (spill, locality), absent on Decima's, so that its
    /// output stays as it was. Last, with a default, so the compact MessagePack form of
    /// an episode without it still decodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spark: Option<SparkTotals>,
}

/// Spark's engine's totals of an episode, per job in arrival order: what the memory and
/// locality calibrations compare with the task metrics of real event logs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SparkTotals {
    /// Working-set bytes beyond the execution memory granted, MB (Spark's "memory bytes
    /// spilled"), all jobs.
    pub spilled_mb: f64,
    pub jobs: Vec<SparkJobTotals>,
    /// Busy share of the task slots of the strongest hosts (highest speed × slots, DSCS's
    /// "strong nodes") over the episode, and of the other hosts' slots (0 when every host
    /// is as strong).
    #[serde(default)]
    pub strong_utilisation: f64,
    #[serde(default)]
    pub other_utilisation: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SparkJobTotals {
    pub spilled_mb: f64,
    /// Sum of its tasks' durations, seconds.
    pub task_time_s: f64,
    /// Tasks launched at NODE_LOCAL, NO_PREF, RACK_LOCAL and ANY.
    pub node_local: u64,
    pub no_pref: u64,
    pub rack_local: u64,
    pub any: u64,
}

/// Percentile by linear interpolation between order statistics (numpy's default).
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q / 100.0 * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// What an engine knows at the end of an episode, for [`EpisodeStats::summarize`].
pub struct EpisodeTotals<'a> {
    pub seed: u64,
    /// Per job in arrival order: (arrival, completion if done), ms.
    pub jobs: &'a mut dyn Iterator<Item = (u64, Option<u64>)>,
    pub now_ms: u64,
    pub busy_ms: u64,
    /// Executors (Decima) or task slots (Spark).
    pub capacity: u32,
    pub decisions: u64,
    pub events: EventCounts,
    /// Tasks per wave, indexed by [`Wave`].
    pub waves: [u64; 3],
    pub rewards: &'a super::reward::RewardBook,
}

impl EpisodeStats {
    /// The one summary of an episode, whichever engine ran it.
    pub fn summarize(t: EpisodeTotals<'_>) -> Self {
        let jct_s: Vec<Option<f64>> = t
            .jobs
            .map(|(arrival, done)| done.map(|c| (c - arrival) as f64 / 1000.0))
            .collect();
        let mut done: Vec<f64> = jct_s.iter().flatten().copied().collect();
        let finished = done.len();
        let avg = if finished > 0 {
            done.iter().sum::<f64>() / finished as f64
        } else {
            f64::NAN
        };
        done.sort_by(f64::total_cmp);
        let span = t.now_ms as f64;
        EpisodeStats {
            env_seed: t.seed,
            jobs: jct_s.len(),
            finished,
            avg_jct_s: avg,
            p50_jct_s: percentile(&done, 50.0),
            p95_jct_s: percentile(&done, 95.0),
            p99_jct_s: percentile(&done, 99.0),
            makespan_s: span / 1000.0,
            utilisation: if span > 0.0 {
                t.busy_ms as f64 / (span * f64::from(t.capacity))
            } else {
                0.0
            },
            decisions: t.decisions,
            events: t.events,
            fresh_tasks: t.waves[Wave::Fresh as usize],
            first_wave_tasks: t.waves[Wave::First as usize],
            rest_wave_tasks: t.waves[Wave::Rest as usize],
            total_reward: t.rewards.total,
            reward_job_time_ms: t.rewards.job_time_ms,
            unseen_jobs: t.rewards.unseen_jobs,
            jct_s,
            spark: None,
        }
    }
}
