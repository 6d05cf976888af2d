//! mpda: a lab for scheduling Apache Spark jobs: a Decima-faithful cluster simulator,
//! heuristic schedulers, and learned ones (Decima, MPDA, branching A3C) built on Burn and
//! trained with PPO, A2C or REINFORCE.
//!
//! Data flows one way: `workload` (traces, arrivals, episodes) → `sim` ⇄ `sched` (the
//! trait and the heuristics) and `model` (networks, and the adapter to the trait) →
//! `eval` (evaluation, experiments, reports) and `rl` (training). `io`, `validate` and
//! `seed` are the foundation; `registry` builds any scheduler by name; `config` is the
//! config pattern. `docs/architecture.md` says what may import what.

pub mod config;
pub mod eval;
pub mod io;
pub mod live;
pub mod model;
pub mod plot;
pub mod registry;
pub mod rl;
pub mod sched;
pub mod seed;
pub mod sim;
pub mod validate;
pub mod workload;

/// Most worker threads `--threads` accepts.
pub const MAX_THREADS: usize = 1024;

/// Sizes the global worker pool (`--threads`; default: all cores). Results never depend on
/// it: episodes own their generators, and gradient shards are fixed by the config.
pub fn set_threads(threads: Option<usize>) -> Result<(), validate::FieldError> {
    if let Some(n) = threads {
        validate::in_range("--threads", n, 1, MAX_THREADS)?;
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
            .map_err(|e| validate::FieldError::new("--threads", e.to_string()))?;
    }
    Ok(())
}
