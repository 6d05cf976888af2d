//! The partition family: decima-sim's `DynamicPartitionAgent` (fair share), its
//! `SparkAgent` (FIFO), and weighted fair share. They share one decision structure:
//! executors stay in their own job while it has work, otherwise the jobs are visited in
//! arrival order and the first one below its cap gets executors up to that cap.

use std::collections::HashMap;

use super::Scheduler;
use crate::sim::{Action, JobId, Observation};

/// The shared decision structure. `cap(j)` is job `j`'s executor cap and `held(j)` the
/// executors it is deemed to hold (indices into `obs.jobs`).
pub struct Partition;

impl Partition {
    /// The stage a job would run next: its earliest runnable schedulable stage, else its
    /// first schedulable stage (which will wait for its parents).
    pub fn next_stage(obs: &Observation, job: usize) -> Option<usize> {
        let range = obs.jobs[job].stage_range();
        let runnable = range
            .clone()
            .filter(|&s| obs.stages[s].runnable && obs.stages[s].schedulable)
            .min_by_key(|&s| obs.stages[s].runnable_since);
        runnable.or_else(|| range.clone().find(|&s| obs.stages[s].schedulable))
    }

    pub fn decide(
        obs: &Observation,
        cap: impl Fn(usize) -> u32,
        held: impl Fn(usize) -> u32,
    ) -> (Action, Option<(usize, u32)>) {
        let nse = obs.num_source_exec;
        if let Some((sj, s)) = obs
            .source_job
            .and_then(|sj| Self::next_stage(obs, sj).map(|s| (sj, s)))
        {
            let limit = obs.limit_for(sj, nse);
            return (
                Action::Schedule {
                    stage: obs.stages[s].id,
                    limit,
                },
                None,
            );
        }
        for j in 0..obs.jobs.len() {
            let (c, h) = (cap(j), held(j));
            if h >= c {
                continue;
            }
            if let Some(s) = Self::next_stage(obs, j) {
                let n = obs.stages[s].unassigned_tasks().min(c - h).min(nse);
                return (
                    Action::Schedule {
                        stage: obs.stages[s].id,
                        limit: obs.limit_for(j, n),
                    },
                    Some((j, n)),
                );
            }
        }
        (obs.idle(), None)
    }
}

/// Weighted fair share: job j's cap is `ceil(executors * w_j / sum w)` over the jobs with
/// unassigned work, with `w_j = remaining_work_j ^ alpha`. `alpha = 0` is Decima's
/// dynamic partition (fair share) exactly: `ceil(executors / jobs)`.
pub struct WeightedFair {
    alpha: f64,
    caps: Vec<u32>,
}

impl WeightedFair {
    /// Accepted `alpha`: -10 to 10. A weight is `max(work, 1)^alpha` with work in ms; with
    /// traces' documented bounds (docs/inputs.md) work stays below 10^20 ms, so weights
    /// stay below 10^200 and their sum over 100,000 jobs is finite. Far larger |alpha|
    /// overflows to inf, the shares become NaN and no executor is ever placed.
    pub const ALPHA_RANGE: (f64, f64) = (-10.0, 10.0);

    pub fn new(alpha: f64) -> Self {
        Self {
            alpha,
            caps: Vec::new(),
        }
    }

    pub fn fair() -> Self {
        Self::new(0.0)
    }
}

impl Scheduler for WeightedFair {
    fn name(&self) -> String {
        if self.alpha == 0.0 {
            "fair".into()
        } else {
            format!("weighted-fair[alpha={}]", self.alpha)
        }
    }

    fn decide(&mut self, obs: &Observation) -> Action {
        let exec = f64::from(obs.exec_cap);
        self.caps.clear();
        if self.alpha == 0.0 {
            let n = obs.jobs.iter().filter(|j| j.unsaturated).count().max(1) as f64;
            let cap = (exec / n).ceil() as u32;
            self.caps.resize(obs.jobs.len(), cap);
        } else {
            let weight = |w: f64| w.max(1.0).powf(self.alpha);
            let total: f64 = obs
                .jobs
                .iter()
                .filter(|j| j.unsaturated)
                .map(|j| weight(j.remaining_work_ms))
                .sum();
            self.caps.extend(obs.jobs.iter().map(|j| {
                if total > 0.0 {
                    (exec * weight(j.remaining_work_ms) / total).ceil() as u32
                } else {
                    obs.exec_cap
                }
            }));
        }
        let caps = &self.caps;
        Partition::decide(obs, |j| caps[j], |j| obs.jobs[j].exec_map).0
    }
}

/// Spark's FIFO: every job may hold all executors, so the oldest job with work takes what
/// it can use. With `cumulative`, the per-job count is decima-sim's `SparkAgent` counter of
/// executors ever granted (never decremented), which makes it move executors far more.
pub struct Fifo {
    cumulative: bool,
    granted: HashMap<JobId, u32>,
}

impl Fifo {
    pub fn new(cumulative: bool) -> Self {
        Self {
            cumulative,
            granted: HashMap::new(),
        }
    }
}

impl Scheduler for Fifo {
    fn name(&self) -> String {
        if self.cumulative {
            "fifo[cumulative=true]".into()
        } else {
            "fifo".into()
        }
    }

    fn reset(&mut self, _seed: u64) {
        self.granted.clear();
    }

    fn decide(&mut self, obs: &Observation) -> Action {
        if !self.cumulative {
            return Partition::decide(obs, |_| obs.exec_cap, |j| obs.jobs[j].exec_map).0;
        }
        self.granted
            .retain(|id, _| obs.jobs.iter().any(|j| j.id == *id));
        for j in &obs.jobs {
            self.granted.entry(j.id).or_insert(0);
        }
        let granted = &self.granted;
        let (action, grant) =
            Partition::decide(obs, |_| obs.exec_cap, |j| granted[&obs.jobs[j].id]);
        if let Some((j, n)) = grant {
            *self
                .granted
                .get_mut(&obs.jobs[j].id)
                .expect("inserted above") += n;
        }
        action
    }
}
