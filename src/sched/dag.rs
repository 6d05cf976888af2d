//! DAG quantities heuristics share.

use std::ops::Range;

use crate::sim::Observation;

/// Remaining critical paths: for each stage, the largest remaining work (undispatched
/// tasks × mean task duration, ms) along any path from it to a sink. Buffers are reused.
#[derive(Debug, Default)]
pub struct CriticalPaths {
    pub cp: Vec<f64>,
    edges: Vec<[u32; 2]>,
}

impl CriticalPaths {
    /// Computes the paths of the stages in `range` (whole jobs), by relaxing the edges
    /// until nothing changes (at most the DAG's depth passes).
    pub fn compute(&mut self, obs: &Observation, range: Range<usize>) {
        self.cp.clear();
        self.cp.resize(obs.stages.len(), 0.0);
        let work =
            |s: usize| f64::from(obs.stages[s].remaining_tasks()) * obs.stages[s].mean_task_ms;
        for s in range.clone() {
            self.cp[s] = work(s);
        }
        self.edges.clear();
        self.edges.extend(
            obs.edges
                .iter()
                .filter(|e| range.contains(&(e[0] as usize))),
        );
        loop {
            let mut changed = false;
            for &[p, c] in &self.edges {
                let cand = work(p as usize) + self.cp[c as usize];
                if cand > self.cp[p as usize] {
                    self.cp[p as usize] = cand;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
    }
}
