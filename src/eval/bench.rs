//! `mpda bench`: simulator throughput (events per second), job instantiation, and parallel
//! scaling over episodes, all measured in one run on the same episodes.

use std::fmt;
use std::time::Instant;

use super::{EvalError, evaluate, run_episode};
use crate::sched::{SchedulerFactory, SchedulerSpec};
use crate::sim::{Env, Observation, SimConfig};
use crate::workload::Episode;

/// decima-sim's measured event-loop speed on this machine class (docs: 71k–106k events/s).
pub const REFERENCE_EVENTS_PER_S: (f64, f64) = (71_000.0, 106_000.0);

/// The measurements of one `mpda bench` run.
#[derive(Debug, Clone)]
pub struct BenchResult {
    pub jobs: usize,
    pub reset_rounds: usize,
    /// Resetting an episode from already-parsed traces, per job.
    pub per_job_us: f64,
    pub runs: usize,
    pub events_per_s: f64,
    pub decisions_per_s: f64,
    pub ms_per_episode: f64,
    pub best_ms: f64,
    pub events_per_episode: f64,
    /// Per thread count: (threads, wall s, events/s, speed-up over 1 thread).
    pub scaling: Vec<(usize, f64, f64, f64)>,
    pub episodes: usize,
}

/// Measures `spec` on `episodes`: resets, then each episode `repeat` times on one thread,
/// then all episodes at 1 thread and at every core. `on_episode` is called after each
/// single-threaded episode (for a progress bar).
pub fn bench(
    sim: &SimConfig,
    spec: &SchedulerSpec,
    episodes: &[Episode],
    repeat: usize,
    on_episode: &dyn Fn(),
) -> Result<BenchResult, EvalError> {
    // Errors of the episode being run carry its seed; the set-up's carry seed 0.
    let sim_err = |error| EvalError::Sim {
        scheduler: spec.to_string(),
        seed: 0,
        error,
    };
    let mut env = Env::new(sim.clone()).map_err(sim_err)?;
    let jobs: usize = episodes.iter().map(|e| e.jobs.len()).sum();
    let rounds = 20;
    let t = Instant::now();
    for _ in 0..rounds {
        for e in episodes {
            env.reset(&e.jobs, e.seed).map_err(sim_err)?;
        }
    }
    let per_job_us = t.elapsed().as_secs_f64() * 1e6 / (rounds * jobs.max(1)) as f64;

    let mut obs = Observation::default();
    let mut sched = spec.build()?;
    let (mut events, mut decisions, mut best) = (0u64, 0u64, f64::INFINITY);
    let t = Instant::now();
    for e in episodes {
        for _ in 0..repeat {
            let t_ep = Instant::now();
            let s = run_episode(&mut env, sched.as_mut(), e, &mut obs).map_err(|error| {
                EvalError::Sim {
                    scheduler: spec.to_string(),
                    seed: e.seed,
                    error,
                }
            })?;
            best = best.min(t_ep.elapsed().as_secs_f64());
            events += s.events.total();
            decisions += s.decisions;
            on_episode();
        }
    }
    let wall = t.elapsed().as_secs_f64();
    let runs = episodes.len() * repeat;

    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut scaling = Vec::new();
    let mut base = 0.0;
    for threads in [1, cores] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .map_err(|e| EvalError::ThreadPool {
                threads,
                msg: e.to_string(),
            })?;
        let t = Instant::now();
        let results =
            pool.install(|| evaluate(sim, &[spec as &dyn SchedulerFactory], episodes, &|| {}))?;
        let wall = t.elapsed().as_secs_f64();
        let ev: f64 = results[0]
            .episodes
            .iter()
            .map(|e| e.events.total() as f64)
            .sum();
        if threads == 1 {
            base = wall;
        }
        scaling.push((threads, wall, ev / wall, base / wall));
    }
    Ok(BenchResult {
        jobs,
        reset_rounds: rounds,
        per_job_us,
        runs,
        events_per_s: events as f64 / wall,
        decisions_per_s: decisions as f64 / wall,
        ms_per_episode: wall * 1000.0 / runs as f64,
        best_ms: best * 1000.0,
        events_per_episode: events as f64 / runs as f64,
        scaling,
        episodes: episodes.len(),
    })
}

impl fmt::Display for BenchResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "job instantiation: {:.2} µs per job (reset of {} jobs x {})",
            self.per_job_us, self.jobs, self.reset_rounds
        )?;
        writeln!(
            f,
            "single thread: {:.0} events/s, {:.0} decisions/s, {:.1} ms per episode (best {:.1} ms), {:.0} events per episode",
            self.events_per_s,
            self.decisions_per_s,
            self.ms_per_episode,
            self.best_ms,
            self.events_per_episode
        )?;
        writeln!(
            f,
            "vs decima-sim's event loop (71k-106k events/s, measured on this machine class): {:.0}x-{:.0}x",
            self.events_per_s / REFERENCE_EVENTS_PER_S.1,
            self.events_per_s / REFERENCE_EVENTS_PER_S.0
        )?;
        for &(threads, wall, eps, speedup) in &self.scaling {
            writeln!(
                f,
                "rayon {threads} thread(s): {wall:.2} s for {} episodes, {eps:.0} events/s, speed-up {speedup:.2}x",
                self.episodes
            )?;
        }
        Ok(())
    }
}
