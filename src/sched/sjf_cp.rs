//! SJF-CP: the job with the least remaining work goes first; within it, the stage that
//! starts the longest remaining critical path. A strict priority with no shares or caps,
//! made work-conserving: a stage that can run now always beats one still waiting for its
//! parents (which Decima's frontier also offers), whatever the job sizes.

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
        // Executors stay in the job they come from while it can use them, as in every
        // decima-sim heuristic: a move costs 2 s plus a fresh executor's warm-up.
        if let Some(sj) = obs.source_job {
            self.order.push(sj);
        }
        let first = self.order.len();
        self.order
            .extend((0..obs.jobs.len()).filter(|&j| Some(j) != obs.source_job));
        self.order[first..].sort_by(|&a, &b| {
            obs.jobs[a]
                .remaining_work_ms
                .total_cmp(&obs.jobs[b].remaining_work_ms)
                .then(a.cmp(&b))
        });
        // First pass: stages that can start tasks now. Only then stages whose parents are
        // still running, where executors would wait idle in the job's pool.
        for runnable_only in [true, false] {
            for i in 0..self.order.len() {
                let j = self.order[i];
                let eligible = |s: usize| {
                    obs.stages[s].schedulable && (obs.stages[s].runnable || !runnable_only)
                };
                if !obs.jobs[j].stage_range().any(eligible) {
                    continue;
                }
                self.critical_paths(obs, j);
                let best = obs.jobs[j]
                    .stage_range()
                    .filter(|&s| eligible(s))
                    .max_by(|&a, &b| self.cp[a].total_cmp(&self.cp[b]).then(b.cmp(&a)))
                    .expect("job has an eligible stage");
                return Action::Schedule {
                    stage: obs.stages[best].id,
                    limit: obs.limit_for(j, obs.num_source_exec),
                };
            }
        }
        Action::Idle {
            executors: obs.num_source_exec,
        }
    }
}
