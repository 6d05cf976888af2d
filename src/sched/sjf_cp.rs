//! SJF-CP: the job with the least remaining work goes first; within it, the stage that
//! starts the longest remaining critical path. A strict priority: no shares, no caps.

use super::Scheduler;
use crate::sim::{Action, Observation};

#[derive(Default)]
pub struct SjfCp {
    /// Remaining critical-path work from each stage to a sink, ms (reused buffer).
    cp: Vec<f64>,
    order: Vec<usize>,
    edges: Vec<[u32; 2]>,
}

impl SjfCp {
    /// Longest path of remaining work from each stage of `job` to a sink, by relaxing the
    /// edges until nothing changes (at most the DAG's depth passes).
    fn critical_paths(&mut self, obs: &Observation, job: usize) {
        let range = obs.jobs[job].stage_range();
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

impl Scheduler for SjfCp {
    fn name(&self) -> String {
        "sjf-cp".into()
    }

    fn decide(&mut self, obs: &Observation) -> Action {
        self.order.clear();
        self.order.extend(0..obs.jobs.len());
        self.order.sort_by(|&a, &b| {
            obs.jobs[a]
                .remaining_work_ms
                .total_cmp(&obs.jobs[b].remaining_work_ms)
                .then(a.cmp(&b))
        });
        for i in 0..self.order.len() {
            let j = self.order[i];
            let range = obs.jobs[j].stage_range();
            if !range.clone().any(|s| obs.stages[s].schedulable) {
                continue;
            }
            self.critical_paths(obs, j);
            let best = range
                .filter(|&s| obs.stages[s].schedulable)
                .max_by(|&a, &b| self.cp[a].total_cmp(&self.cp[b]).then(b.cmp(&a)))
                .expect("job has a schedulable stage");
            return Action::Schedule {
                stage: obs.stages[best].id,
                limit: obs.limit_for(j, obs.num_source_exec),
            };
        }
        Action::Idle {
            executors: obs.num_source_exec,
        }
    }
}
