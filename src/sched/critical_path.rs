//! Critical path: across all jobs, the schedulable stage that starts the longest remaining
//! critical path gets every executor it can use. Job boundaries are ignored, which is what
//! makes it a classic DAG-scheduling baseline (and a poor one for average JCT).
//! Runnable stages come before stages still waiting for their parents.

use super::Scheduler;
use super::dag::CriticalPaths;
use crate::sim::{Action, Observation};

#[derive(Default)]
pub struct CriticalPath {
    paths: CriticalPaths,
}

impl Scheduler for CriticalPath {
    fn name(&self) -> String {
        "critical-path".into()
    }

    fn decide(&mut self, obs: &Observation) -> Action {
        self.paths.compute(obs, 0..obs.stages.len());
        let cp = &self.paths.cp;
        let best = super::best_stage(obs, |s| cp[s]);
        best.map_or_else(|| obs.idle(), |s| obs.send_all(s))
    }
}
