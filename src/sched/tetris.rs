//! Tetris*: Tetris's packing score combined with remaining work, as Decima's baseline.
//!
//! Tetris scores a (task, machine) pair by the dot product of the task's resource demand
//! and the machine's free resources, and mixes in shortest-remaining-time first. With
//! identical single-slot executors every task demands exactly one executor, so the
//! per-task dot product is constant; what still varies is how much of the free capacity a
//! choice fills. The adaptation scores each schedulable stage by its *alignment*
//! `min(unassigned tasks, free executors) / free executors` (1 when the stage can use every
//! free executor, as a perfectly packed machine) plus `weight` times its job's *shortness*
//! `1 - remaining work / largest remaining work` (SRTF), and gives the best stage every
//! executor it can use. Runnable stages come first. Decima uses the same combination with
//! its weight tuned; `weight` defaults to 1.

use super::Scheduler;
use crate::sim::{Action, Observation};

pub struct Tetris {
    weight: f64,
}

impl Tetris {
    /// Accepted `weight` of shortness against alignment (both in 0..=1): 0 (pure packing)
    /// to 10^6 (SRTF, alignment breaking ties). A negative weight would favour the longest
    /// job, which is not Tetris.
    pub const WEIGHT_RANGE: (f64, f64) = (0.0, 1e6);

    pub fn new(weight: f64) -> Self {
        Self { weight }
    }
}

impl Scheduler for Tetris {
    fn name(&self) -> String {
        format!("tetris[weight={}]", self.weight)
    }

    fn decide(&mut self, obs: &Observation) -> Action {
        let free = f64::from(obs.num_source_exec.max(1));
        let max_work = obs
            .jobs
            .iter()
            .map(|j| j.remaining_work_ms)
            .fold(0.0f64, f64::max)
            .max(1.0);
        let score = |s: usize| {
            let st = &obs.stages[s];
            let align = f64::from(st.unassigned_tasks()).min(free) / free;
            let short = 1.0 - obs.jobs[st.job as usize].remaining_work_ms / max_work;
            align + self.weight * short
        };
        let best = super::best_stage(obs, score);
        best.map_or_else(|| obs.idle(), |s| obs.send_all(s))
    }
}
