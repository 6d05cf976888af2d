//! A uniformly random policy: a lower bound that any scheduler should beat.

use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;

use super::Scheduler;
use crate::sim::{Action, Observation};

pub struct RandomScheduler {
    rng: Pcg64Mcg,
}

impl Default for RandomScheduler {
    fn default() -> Self {
        Self {
            rng: Pcg64Mcg::seed_from_u64(0),
        }
    }
}

impl Scheduler for RandomScheduler {
    fn name(&self) -> String {
        "random".into()
    }

    fn reset(&mut self, seed: u64) {
        // Its own stream, distinct from the simulator's duration stream for the same seed.
        self.rng = crate::seed::stream_rng(seed, crate::seed::stream::RANDOM_SCHEDULER);
    }

    fn decide(&mut self, obs: &Observation) -> Action {
        if obs.schedulable.is_empty() {
            return obs.idle();
        }
        let s = obs.schedulable[self.rng.random_range(0..obs.schedulable.len())] as usize;
        let job = obs.stages[s].job as usize;
        let n = self.rng.random_range(1..=obs.num_source_exec);
        Action::Schedule {
            stage: obs.stages[s].id,
            limit: obs.limit_for(job, n),
        }
    }
}
