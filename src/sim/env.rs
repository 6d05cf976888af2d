//! The environment every driver runs: `reset`, `observe`, `step`, on one of two engines.
//!
//! With no `[sim.cluster]` section it is Decima's engine ([`DecimaEnv`]), unchanged and
//! bit-identical to what it always was. With one, it is Spark's ([`SparkEnv`]): hosts,
//! slots, task data, memory, locality and pools. Both read the same [`Observation`] and
//! take the same [`Action`], so every scheduler, learned or not, runs on either.

use super::cluster::Reoffer;
use super::decima::DecimaEnv;
use super::plan::{PlanConfig, PlannerKind};
use super::spark::SparkEnv;
use super::{
    Action, EpisodeStats, EventCounts, JobId, Observation, SimConfig, SimError, TaskRecord,
};
use crate::workload::arrivals::JobArrival;

/// Outcome of one `step`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step {
    pub reward: f64,
    pub done: bool,
}

/// What the episode loop needs of an engine. The loop is generic over it so that a whole
/// episode runs on one engine with its calls inlined: dispatching through [`Env`] at every
/// call cost Decima's engine about 5% of its events/s (measured, `mpda bench`).
pub trait Engine {
    fn done(&self) -> bool;
    fn observe(&self, obs: &mut Observation);
    fn step(&mut self, action: Action) -> Result<Step, SimError>;
}

macro_rules! engine {
    ($t:ty) => {
        impl Engine for $t {
            fn done(&self) -> bool {
                <$t>::done(self)
            }
            fn observe(&self, obs: &mut Observation) {
                <$t>::observe(self, obs)
            }
            fn step(&mut self, action: Action) -> Result<Step, SimError> {
                <$t>::step(self, action)
            }
        }
    };
}
engine!(DecimaEnv);
engine!(SparkEnv);
engine!(Env);

/// One of the two engines, chosen by the config. Decima's engine stays inline (the
/// default path, whose speed `scripts/bench/old-vs-new.sh` guards); Spark's is boxed.
#[allow(clippy::large_enum_variant)]
pub enum Env {
    Decima(DecimaEnv),
    Spark(Box<SparkEnv>),
}

/// Forwards a call to whichever engine runs.
macro_rules! both {
    ($self:expr, $e:ident => $call:expr) => {
        match $self {
            Env::Decima($e) => $call,
            Env::Spark($e) => $call,
        }
    };
}

impl Env {
    pub fn new(cfg: SimConfig) -> Result<Self, SimError> {
        Ok(if cfg.cluster.is_some() {
            Env::Spark(Box::new(SparkEnv::new(cfg)?))
        } else {
            Env::Decima(DecimaEnv::new(cfg)?)
        })
    }

    pub fn config(&self) -> &SimConfig {
        both!(self, e => e.config())
    }

    /// Changes the time limit for the next episodes: training draws a different episode
    /// length for each episode (Decima's stochastic episode length).
    pub fn set_max_time(&mut self, max_time_ms: Option<u64>) {
        both!(self, e => e.set_max_time(max_time_ms))
    }

    pub fn now_ms(&self) -> u64 {
        both!(self, e => e.now_ms())
    }

    /// Name of job `id` of the current episode.
    pub fn job_name(&self, id: JobId) -> &str {
        both!(self, e => e.job_name(id))
    }

    pub fn num_jobs(&self) -> usize {
        both!(self, e => e.num_jobs())
    }

    /// Tasks run so far, if `record_tasks` is on.
    pub fn records(&self) -> &[TaskRecord] {
        both!(self, e => e.records())
    }

    /// Starts an episode.
    pub fn reset(&mut self, jobs: &[JobArrival], seed: u64) -> Result<(), SimError> {
        both!(self, e => e.reset(jobs, seed))
    }

    /// Nothing to place, and no event left or time is up.
    pub fn done(&self) -> bool {
        both!(self, e => e.done())
    }

    /// Applies a decision and runs the timeline to the next decision.
    pub fn step(&mut self, action: Action) -> Result<Step, SimError> {
        both!(self, e => e.step(action))
    }

    /// Writes the current decision's observation into `obs`, reusing its buffers.
    pub fn observe(&self, obs: &mut Observation) {
        both!(self, e => e.observe(obs))
    }

    /// Decisions made so far.
    pub fn decisions(&self) -> u64 {
        both!(self, e => e.decisions())
    }

    /// Events processed so far.
    pub fn events(&self) -> EventCounts {
        both!(self, e => e.events())
    }

    /// Sets the shuffle planner of the next episodes (`None`: the config's). Planners act
    /// on Spark's engine only: Decima's engine refuses any planner but `trace`.
    pub fn set_plan(&mut self, plan: Option<PlanConfig>) -> Result<(), SimError> {
        match self {
            Env::Spark(e) => {
                e.set_plan(plan);
                Ok(())
            }
            Env::Decima(_) => match plan {
                Some(p) if p.planner != PlannerKind::Trace => Err(SimError::Config(format!(
                    "planner \"{}\" needs Spark's engine: add a [sim.cluster] section",
                    p.planner.name()
                ))),
                _ => Ok(()),
            },
        }
    }

    /// Sets who decides what a freed slot runs next for the next episodes (`None`: the
    /// config's). Decima's engine always keeps a slot on its stage while it has tasks, so
    /// it refuses `every_slot`.
    pub fn set_reoffer(&mut self, reoffer: Option<Reoffer>) -> Result<(), SimError> {
        match self {
            Env::Spark(e) => {
                e.set_reoffer(reoffer);
                Ok(())
            }
            Env::Decima(_) => match reoffer {
                Some(Reoffer::EverySlot) => Err(SimError::Config(
                    "reoffer = every_slot needs Spark's engine: add a [sim.cluster] section".into(),
                )),
                _ => Ok(()),
            },
        }
    }

    /// Spark's engine, when it runs (for its own counters: locality, spill, memory).
    pub fn spark(&self) -> Option<&SparkEnv> {
        match self {
            Env::Spark(e) => Some(e),
            Env::Decima(_) => None,
        }
    }

    /// Summary of the episode so far (normally called once `done`).
    pub fn stats(&self) -> EpisodeStats {
        both!(self, e => e.stats())
    }
}
