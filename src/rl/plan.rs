//! The plan of each training iteration: which job sequences, under which curriculum, and
//! the learning rate and entropy weight it learns with.
//!
//! Kept apart from the loop because it is the one place where the run's seed becomes job
//! sequences and sampling seeds: every draw comes from streams keyed by (seed, iteration,
//! sequence), so an iteration's episodes depend on nothing else (not on threads, not on
//! whether the run was resumed), which is what makes checkpoints reproducible.

use std::ops::Range;

use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;

use super::config::{Curriculum, TrainSettings};
use super::rollout::EpisodePlan;
use crate::seed::mix_words;
use crate::workload::TraceLibrary;
use crate::workload::arrivals::{ArrivalProcess, JobMix};

/// Everything the episodes of an iteration are drawn from.
pub struct Planner<'a> {
    pub train: &'a TrainSettings,
    pub curriculum: &'a Curriculum,
    /// The held-out sequence seeds: training never draws them.
    pub held_out: Range<u64>,
    pub library: &'a TraceLibrary,
    pub mix: &'a JobMix,
    /// The configured arrivals, before the curriculum adjusts them.
    pub arrivals: &'a ArrivalProcess,
}

/// The learning rate and entropy weight of an iteration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    pub lr: f64,
    pub entropy: f64,
}

impl Planner<'_> {
    /// Iteration `it`'s learning rate and entropy weight: linear from the configured start
    /// to the final values over the run's iterations. (The run's iteration count sets the
    /// slope, so a run cut short by `--iterations` anneals faster than the full run.)
    pub fn schedule(&self, it: usize) -> Schedule {
        let t = self.train;
        let f = it as f64 / (t.iterations.saturating_sub(1).max(1)) as f64;
        Schedule {
            lr: t.lr + (t.lr_final - t.lr) * f,
            entropy: t.entropy + (t.entropy_final - t.entropy) * f,
        }
    }

    /// Episodes of iteration `it`: `sequences` job sequences, each rolled out
    /// `rollouts_per_sequence` times with its own sampling seed.
    pub fn plans(&self, it: usize) -> Vec<EpisodePlan> {
        let t = self.train;
        let cur = self.curriculum;
        let n_eval = self.held_out.end - self.held_out.start;
        let jobs_now = cur.jobs.as_ref().map(|j| {
            let f = (it as f64 / j.over_iterations.max(1) as f64).min(1.0);
            (j.initial as f64 + (j.last as f64 - j.initial as f64) * f).round() as usize
        });
        let mut plans = Vec::with_capacity(t.sequences * t.rollouts_per_sequence);
        for q in 0..t.sequences {
            let key = [t.seed, it as u64, q as u64];
            let mut rng = Pcg64Mcg::seed_from_u64(mix_words(&key));
            // Sequences are drawn with 32-bit numpy seeds; keep clear of the held-out ones.
            let mut seq_seed = u64::from(mix_words(&[t.seed, it as u64, q as u64, 1]) as u32);
            while self.held_out.contains(&seq_seed) {
                seq_seed = u64::from((seq_seed + n_eval) as u32);
            }
            let arrivals = match self.arrivals.clone() {
                ArrivalProcess::Batch { jobs } => ArrivalProcess::Batch {
                    jobs: jobs_now.unwrap_or(jobs),
                },
                ArrivalProcess::Poisson {
                    init_jobs,
                    stream_jobs,
                    mean_interval_ms,
                    batch_jobs,
                } => ArrivalProcess::Poisson {
                    batch_jobs,
                    init_jobs,
                    stream_jobs: jobs_now.unwrap_or(stream_jobs),
                    mean_interval_ms: match &cur.mean_intervals_ms {
                        Some(list) => list[rng.random_range(0..list.len())],
                        None => mean_interval_ms,
                    },
                },
            };
            let max_time_ms = cur.episode_time.as_ref().map(|e| {
                let mean =
                    (e.initial_mean_s + e.growth_s_per_iteration * it as f64).min(e.max_mean_s);
                let u: f64 = rng.random();
                (-mean * (1.0 - u).ln() * 1000.0) as u64
            });
            let jobs = arrivals.generate(self.library, self.mix, seq_seed);
            for r in 0..t.rollouts_per_sequence {
                plans.push(EpisodePlan {
                    env_seed: seq_seed,
                    jobs: jobs.clone(),
                    max_time_ms,
                    sample_seed: mix_words(&[t.seed, it as u64, q as u64, 2, r as u64]),
                    sequence: q,
                });
            }
        }
        plans
    }
}
