//! Running schedulers over episodes, in parallel and deterministically, and summarising;
//! experiments, reports and plots on top.

pub mod bench;
pub mod experiment;
pub mod report;
pub mod run;
pub mod stats;

use rayon::prelude::*;
use serde::Serialize;

pub use crate::sched::SchedulerFactory;
use crate::sched::{SchedError, Scheduler, SchedulerSpec};
use crate::sim::{Env, EpisodeStats, Observation, SimConfig, SimError, driver};
use crate::workload::Episode;

/// Runs one episode to the end with `sched`, reusing `env` and `obs`.
pub fn run_episode(
    env: &mut Env,
    sched: &mut dyn Scheduler,
    episode: &Episode,
    obs: &mut Observation,
) -> Result<EpisodeStats, SimError> {
    env.set_plan(sched.plan())?;
    env.set_reoffer(sched.reoffer())?;
    env.reset(&episode.jobs, episode.seed)?;
    sched.reset(episode.seed);
    driver::run_to_end(env, obs, None, &mut |o| sched.decide(o), &mut |_| {})?;
    Ok(env.stats())
}

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error(transparent)]
    Sched(#[from] SchedError),
    #[error("scheduler {scheduler}, episode with seed {seed}: {error}")]
    Sim {
        scheduler: String,
        seed: u64,
        error: SimError,
    },
    /// An episode that has no JCT to report: averaging it would print NaN as a result.
    #[error(
        "scheduler {scheduler}, episode with seed {seed}: no job finished ({decisions} decision(s), {events} event(s)), so there is no JCT to report"
    )]
    NoJobFinished {
        scheduler: String,
        seed: u64,
        decisions: u64,
        events: u64,
    },
    #[error("no episodes to run")]
    NoEpisodes,
    #[error("cannot start {threads} worker thread(s): {msg}")]
    ThreadPool { threads: usize, msg: String },
}

/// Results of one scheduler over all episodes.
#[derive(Debug, Clone, Serialize)]
pub struct SchedulerResult {
    pub name: String,
    pub mean_avg_jct_s: f64,
    pub std_avg_jct_s: f64,
    pub mean_makespan_s: f64,
    /// Percentiles of all JCTs of all episodes pooled, seconds.
    pub p50_jct_s: f64,
    pub p95_jct_s: f64,
    pub p99_jct_s: f64,
    pub mean_decisions: f64,
    pub mean_events: f64,
    pub mean_utilisation: f64,
    pub episodes: Vec<EpisodeStats>,
}

impl SchedulerResult {
    pub fn from_episodes(name: String, episodes: Vec<EpisodeStats>) -> Self {
        let n = episodes.len().max(1) as f64;
        let mean = |f: &dyn Fn(&EpisodeStats) -> f64| episodes.iter().map(f).sum::<f64>() / n;
        let m = mean(&|e| e.avg_jct_s);
        let var = if episodes.len() > 1 {
            episodes
                .iter()
                .map(|e| (e.avg_jct_s - m).powi(2))
                .sum::<f64>()
                / (episodes.len() - 1) as f64
        } else {
            0.0
        };
        let mut all: Vec<f64> = episodes
            .iter()
            .flat_map(|e| e.jct_s.iter().flatten().copied())
            .collect();
        all.sort_by(f64::total_cmp);
        Self {
            mean_avg_jct_s: m,
            std_avg_jct_s: var.sqrt(),
            mean_makespan_s: mean(&|e| e.makespan_s),
            p50_jct_s: crate::sim::stats::percentile(&all, 50.0),
            p95_jct_s: crate::sim::stats::percentile(&all, 95.0),
            p99_jct_s: crate::sim::stats::percentile(&all, 99.0),
            mean_decisions: mean(&|e| e.decisions as f64),
            mean_events: mean(&|e| e.events.total() as f64),
            mean_utilisation: mean(&|e| e.utilisation),
            name,
            episodes,
        }
    }
}

/// Runs every scheduler on every episode, episodes in parallel. Results do not depend on
/// the number of threads: each (scheduler, episode) pair runs alone from its own seed, and
/// results are collected in input order.
pub fn evaluate(
    cfg: &SimConfig,
    schedulers: &[&dyn SchedulerFactory],
    episodes: &[Episode],
    on_done: &(dyn Fn() + Sync),
) -> Result<Vec<SchedulerResult>, EvalError> {
    if episodes.is_empty() {
        return Err(EvalError::NoEpisodes);
    }
    for f in schedulers {
        f.build()?;
    }
    let pairs: Vec<(usize, usize)> = (0..schedulers.len())
        .flat_map(|s| (0..episodes.len()).map(move |e| (s, e)))
        .collect();
    let results: Vec<Result<EpisodeStats, EvalError>> = pairs
        .par_iter()
        .map_init(
            || (Env::new(cfg.clone()), Observation::default()),
            |(env, obs), &(s, e)| {
                let env = env.as_mut().map_err(|err| EvalError::Sim {
                    scheduler: schedulers[s].label(),
                    seed: episodes[e].seed,
                    error: err.clone(),
                })?;
                let mut sched = schedulers[s].build()?;
                let r = run_episode(env, sched.as_mut(), &episodes[e], obs).map_err(|error| {
                    EvalError::Sim {
                        scheduler: schedulers[s].label(),
                        seed: episodes[e].seed,
                        error,
                    }
                });
                on_done();
                r
            },
        )
        .collect();
    let mut it = results.into_iter();
    schedulers
        .iter()
        .map(|f| {
            let eps = it
                .by_ref()
                .take(episodes.len())
                .collect::<Result<Vec<_>, _>>()?;
            if let Some(e) = eps.iter().find(|e| !e.avg_jct_s.is_finite()) {
                return Err(EvalError::NoJobFinished {
                    scheduler: f.label(),
                    seed: e.env_seed,
                    decisions: e.decisions,
                    events: e.events.total(),
                });
            }
            Ok(SchedulerResult::from_episodes(f.label(), eps))
        })
        .collect()
}

/// Label of the tuned weighted fair scheduler in tables and plots.
pub const OPT_WEIGHTED_FAIR: &str = "opt-weighted-fair";

/// The α grid of Decima's tuned weighted fair: −2 to 2 in steps of 0.1. Built from
/// integers so that every α prints as written (no 0.30000000000000004).
pub fn alpha_grid() -> Vec<f64> {
    (-20..=20).map(|i| f64::from(i) / 10.0).collect()
}

/// Weighted fair with exponent `alpha`.
pub fn weighted_fair(alpha: f64) -> SchedulerSpec {
    SchedulerSpec::parse(&format!("weighted-fair[alpha={alpha}]")).expect("valid spec")
}

/// The α sweep of Decima's "opt. weighted fair" on training episodes.
#[derive(Debug, Clone, Serialize)]
pub struct AlphaSweep {
    pub train_seeds: Vec<u64>,
    /// (α, mean average JCT) over the grid.
    pub mean_avg_jct_s: Vec<(f64, f64)>,
    pub best_alpha: f64,
}

/// Sweeps weighted fair's α over [`alpha_grid`] on `train` and picks the best (ties to the
/// α nearest 0, the least opinionated weighting).
pub fn tune_weighted_fair(
    cfg: &SimConfig,
    train: &[Episode],
    on_done: &(dyn Fn() + Sync),
) -> Result<AlphaSweep, EvalError> {
    let grid = alpha_grid();
    let specs: Vec<SchedulerSpec> = grid.iter().map(|&a| weighted_fair(a)).collect();
    let refs: Vec<&dyn SchedulerFactory> =
        specs.iter().map(|s| s as &dyn SchedulerFactory).collect();
    let results = evaluate(cfg, &refs, train, on_done)?;
    let sweep: Vec<(f64, f64)> = grid
        .iter()
        .zip(&results)
        .map(|(&a, r)| (a, r.mean_avg_jct_s))
        .collect();
    let best = sweep
        .iter()
        .min_by(|x, y| x.1.total_cmp(&y.1).then(x.0.abs().total_cmp(&y.0.abs())))
        .expect("the grid is not empty")
        .0;
    Ok(AlphaSweep {
        train_seeds: train.iter().map(|e| e.seed).collect(),
        mean_avg_jct_s: sweep,
        best_alpha: best,
    })
}
