//! The one episode loop. Evaluation, the per-episode rollouts of training and the lockstep
//! (batched) rollouts all drive the simulator through these two functions, so that there
//! is one definition of a decision and one of when an episode ends.

use super::env::Engine;
use super::{Action, Env, Observation, SimError};

/// Advances the episode to its next decision at which the scheduler has a choice.
///
/// It observes into `obs`; while no stage is schedulable, the executors to place can only
/// stay idle, so it answers that itself (every scheduler would) and goes on, passing each
/// step's reward to `reward`. Returns `false` when the episode is over: the simulator is
/// done (Decima's rule: nothing left to place and no event left, or `max_time_ms` passed),
/// or the decision comes at or after `cut_ms`, training's stochastic episode length (which,
/// unlike Decima's `max_time`, really ends the episode at its first decision past the cut).
pub fn next_decision<E: Engine + ?Sized>(
    env: &mut E,
    obs: &mut Observation,
    cut_ms: Option<u64>,
    reward: &mut dyn FnMut(f64),
) -> Result<bool, SimError> {
    loop {
        if env.done() {
            return Ok(false);
        }
        env.observe(obs);
        if cut_ms.is_some_and(|cut| obs.time_ms >= cut) {
            return Ok(false);
        }
        if !obs.schedulable.is_empty() {
            return Ok(true);
        }
        reward(env.step(obs.idle())?.reward);
    }
}

/// Runs the episode that `env` was reset to until it is over (see [`next_decision`]),
/// asking `decide` at every decision with a choice and passing every step's reward to
/// `reward`.
pub fn run_to_end(
    env: &mut Env,
    obs: &mut Observation,
    cut_ms: Option<u64>,
    decide: &mut dyn FnMut(&Observation) -> Action,
    reward: &mut dyn FnMut(f64),
) -> Result<(), SimError> {
    match env {
        Env::Decima(e) => run_engine(e, obs, cut_ms, decide, reward),
        Env::Spark(e) => run_engine(e.as_mut(), obs, cut_ms, decide, reward),
    }
}

fn run_engine<E: Engine>(
    env: &mut E,
    obs: &mut Observation,
    cut_ms: Option<u64>,
    decide: &mut dyn FnMut(&Observation) -> Action,
    reward: &mut dyn FnMut(f64),
) -> Result<(), SimError> {
    while next_decision(env, obs, cut_ms, reward)? {
        let action = decide(obs);
        reward(env.step(action)?.reward);
    }
    Ok(())
}
