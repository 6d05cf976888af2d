//! The reward: minus the job-time accumulated since the previous decision, so that an
//! episode's rewards sum to minus the total job completion time (Decima §7).

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::validate::{FieldError, finite_in, in_range};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Objective {
    /// Average JCT: reward = -(job-time in the system since the last step) / scale.
    Mean,
    /// Makespan: reward = -(time since the last step) / scale.
    Makespan,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RewardConfig {
    pub objective: Objective,
    /// Divisor applied to rewards in ms (Decima: 1e5, so 1.0 = 100 job-seconds).
    pub scale: f64,
    /// Average-reward RL: subtract the running average reward rate times the step length.
    pub differential: bool,
    /// Number of recent (reward, duration) samples the average is taken over.
    pub differential_window: usize,
    /// Decima's quirk: a job that arrives and finishes entirely between two decisions is
    /// never counted. `true` (the default, faithful) reproduces it; `false` counts every job,
    /// so rewards always sum to exactly minus the total job time.
    pub skip_unseen_jobs: bool,
}

impl Default for RewardConfig {
    fn default() -> Self {
        Self {
            objective: Objective::Mean,
            scale: 1e5,
            differential: false,
            differential_window: 100_000,
            skip_unseen_jobs: true,
        }
    }
}

/// Reward scales accepted: 10^-3 to 10^12 (Decima: 10^5; this project's training: 10^6).
pub const SCALE_RANGE: (f64, f64) = (1e-3, 1e12);
/// Most samples in the differential reward's window.
pub const MAX_DIFFERENTIAL_WINDOW: usize = 10_000_000;

impl RewardConfig {
    /// Checks every field against its documented range; field names are relative to the
    /// `reward` section.
    pub fn validate(&self) -> Result<(), FieldError> {
        finite_in("scale", self.scale, SCALE_RANGE.0, SCALE_RANGE.1)?;
        in_range(
            "differential_window",
            self.differential_window,
            1,
            MAX_DIFFERENTIAL_WINDOW,
        )
    }
}

/// Running average reward per ms over a window of recent steps (Decima's
/// `AveragePerStepReward`); steps of zero length are skipped, as there.
#[derive(Debug, Clone, Default)]
pub struct AverageRewardRate {
    window: VecDeque<(f64, f64)>,
    sum_reward: f64,
    sum_time: f64,
}

impl AverageRewardRate {
    pub fn add(&mut self, reward: f64, dt_ms: f64, capacity: usize) {
        if dt_ms <= 0.0 {
            return;
        }
        if self.window.len() == capacity
            && let Some((r, t)) = self.window.pop_front()
        {
            self.sum_reward -= r;
            self.sum_time -= t;
        }
        self.window.push_back((reward, dt_ms));
        self.sum_reward += reward;
        self.sum_time += dt_ms;
    }

    pub fn rate(&self) -> f64 {
        if self.sum_time > 0.0 {
            self.sum_reward / self.sum_time
        } else {
            0.0
        }
    }
}

/// The reward bookkeeping of an episode, shared by both engines (Decima's and Spark's) so
/// that a reward means the same in each: `RewardCalculator.get_reward` plus the
/// differential option.
#[derive(Debug, Clone, Default)]
pub struct RewardBook {
    prev_ms: u64,
    /// Whether a job has been active at a decision (Decima's `job_dags` membership).
    seen: Vec<bool>,
    /// Seen jobs not yet finished at the last decision.
    tracked: Vec<super::JobId>,
    /// Jobs that finished without ever being seen.
    unseen_done: Vec<super::JobId>,
    avg_rate: AverageRewardRate,
    pub total: f64,
    pub job_time_ms: u64,
    pub unseen_jobs: usize,
}

impl RewardBook {
    pub fn reset(&mut self, jobs: usize) {
        self.prev_ms = 0;
        self.seen.clear();
        self.seen.resize(jobs, false);
        self.tracked.clear();
        self.unseen_done.clear();
        self.avg_rate = AverageRewardRate::default();
        self.total = 0.0;
        self.job_time_ms = 0;
        self.unseen_jobs = 0;
    }

    /// Job `j` finished: if no decision ever saw it, Decima never counts it.
    pub fn job_done(&mut self, j: super::JobId) {
        if !self.seen[j as usize] {
            self.unseen_done.push(j);
            self.unseen_jobs += 1;
        }
    }

    /// The reward of the step that ends at `now`. `active` lists the active jobs; `times(j)`
    /// gives a job's arrival and, once it is done, its completion.
    pub fn step(
        &mut self,
        now: u64,
        active: &[super::JobId],
        times: impl Fn(super::JobId) -> (u64, Option<u64>),
        rc: &RewardConfig,
    ) -> f64 {
        let prev = self.prev_ms;
        for &j in active {
            if !self.seen[j as usize] {
                self.seen[j as usize] = true;
                self.tracked.push(j);
            }
        }
        let mut job_time = 0u64;
        self.tracked.retain(|&j| {
            let (arrival, completion) = times(j);
            let end = completion.map_or(now, |c| c.min(now));
            job_time += end.saturating_sub(arrival.max(prev));
            completion.is_none()
        });
        if !rc.skip_unseen_jobs {
            for &j in &self.unseen_done {
                let (arrival, completion) = times(j);
                job_time += completion.unwrap_or(now) - arrival;
            }
        }
        self.unseen_done.clear();
        self.job_time_ms += job_time;
        let dt = now - prev;
        self.prev_ms = now;
        let raw = match rc.objective {
            Objective::Mean => job_time,
            Objective::Makespan => dt,
        };
        let mut r = -(raw as f64) / rc.scale;
        if rc.differential {
            self.avg_rate.add(r, dt as f64, rc.differential_window);
            r -= self.avg_rate.rate() * dt as f64;
        }
        self.total += r;
        r
    }
}
