//! The rollout engine: many simulator episodes at once, each decision sampled from the
//! policy, stored compactly for learning.
//!
//! A trajectory keeps its decisions as one [`HostBatch`] (one graph per decision, flat
//! vectors), so a minibatch is gathered by copying graphs, and nothing is rebuilt from
//! observations.

use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;
use rayon::prelude::*;

use crate::model::batch::{HostBatch, Needs};
use crate::model::host::FastPolicy;
use crate::model::{Choice, PartChoice, Policy, PolicyConfig, decode, decode_part, infer};
use crate::sim::{Action, Env, EpisodeStats, Observation, SimConfig, SimError, driver};
use crate::workload::arrivals::JobSequence;

/// One episode to roll out.
#[derive(Debug, Clone)]
pub struct EpisodePlan {
    /// Seed of the task-duration draws (shared by rollouts of the same sequence).
    pub env_seed: u64,
    pub jobs: JobSequence,
    pub max_time_ms: Option<u64>,
    /// Seed of the action samples.
    pub sample_seed: u64,
    /// Index of the job sequence: rollouts of one sequence share it (Decima's baseline).
    pub sequence: usize,
}

/// The action taken at one decision, as positions inside its graph, so that it can be
/// found again in any minibatch the graph is copied into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Taken {
    /// Position among the graph's schedulable stages.
    pub valid: u32,
    /// The stage's job, among the graph's jobs.
    pub job: u32,
    /// Position among the job's valid levels.
    pub level: u32,
    /// The partition branch's level plus one (an index into the model's
    /// `partition_levels`); 0: the stage got no partition decision.
    pub part: u32,
}

impl Taken {
    fn of_part(part: Option<PartChoice>) -> u32 {
        part.map_or(0, |p| p.level as u32 + 1)
    }
}

/// Where a rollout's time went, seconds of thread time.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RolloutTimes {
    pub simulation_s: f64,
    pub observation_s: f64,
    pub inference_s: f64,
}

impl RolloutTimes {
    pub fn add(&mut self, o: &RolloutTimes) {
        self.simulation_s += o.simulation_s;
        self.observation_s += o.observation_s;
        self.inference_s += o.inference_s;
    }
}

/// MPI ranks exchange trajectories (`super::dist`'s codec).
#[derive(Debug, Clone, Default)]
pub struct Trajectory {
    pub sequence: usize,
    /// One graph per policy decision.
    pub batch: HostBatch,
    pub taken: Vec<Taken>,
    /// Log-probability of each action under the policy that took it.
    pub logp: Vec<f32>,
    /// The critic's value at each decision (empty without a critic).
    pub values: Vec<f32>,
    /// Reward from each decision to the next one (or the episode's end).
    pub rewards: Vec<f32>,
    /// Simulated time of each decision, ms.
    pub times_ms: Vec<u64>,
    /// Simulated time at the end of the episode, ms.
    pub end_ms: u64,
    pub stats: EpisodeStats,
    pub times: RolloutTimes,
}

impl Trajectory {
    pub fn len(&self) -> usize {
        self.taken.len()
    }

    pub fn is_empty(&self) -> bool {
        self.taken.is_empty()
    }

    fn record(&mut self, obs_time: u64, taken: Taken, logp: f32, value: Option<f32>) {
        self.times_ms.push(obs_time);
        self.taken.push(taken);
        self.logp.push(logp);
        self.rewards.push(0.0);
        if let Some(v) = value {
            self.values.push(v);
        }
    }

    /// Adds a step's reward to the latest decision (rewards before the first decision
    /// belong to no action and are dropped; there are none, as the first step is a decision).
    fn reward(&mut self, r: f64) {
        if let Some(last) = self.rewards.last_mut() {
            *last += r as f32;
        }
    }
}

/// Applies a decision to `env`: the partition branch's re-cut first (it takes no slot, so
/// the stage stays schedulable), then the stage and limit. Returns the reward of both.
fn act(
    env: &mut Env,
    cfg: &PolicyConfig,
    obs: &Observation,
    stage: usize,
    limit: u32,
    part: Option<PartChoice>,
) -> Result<f64, SimError> {
    let mut reward = 0.0;
    if let Some(p) = part {
        let mut recuts = Vec::new();
        cfg.partition_actions(obs, stage, p, &mut recuts);
        for a in recuts {
            reward += env.step(a)?.reward;
        }
    }
    let step = env.step(Action::Schedule {
        stage: obs.stages[stage].id,
        limit,
    })?;
    Ok(reward + step.reward)
}

fn sample(rng: &mut Pcg64Mcg, greedy: bool) -> Choice {
    if greedy {
        Choice::Greedy
    } else {
        Choice::Sample(rng.random(), rng.random())
    }
}

/// Runs every plan to its end with the host forward pass, episodes in parallel. Each
/// episode depends only on its plan, so results are the same for any number of threads.
pub fn rollout_host(
    policy: &FastPolicy,
    cfg: &PolicyConfig,
    sim: &SimConfig,
    plans: &[EpisodePlan],
    greedy: bool,
) -> Result<Vec<Trajectory>, SimError> {
    plans
        .par_iter()
        .map_init(
            || {
                (
                    Env::new(sim.clone()),
                    policy.clone(),
                    Observation::default(),
                )
            },
            |(env, fast, obs), plan| {
                let env = env.as_mut().map_err(|e| e.clone())?;
                env.set_max_time(plan.max_time_ms);
                env.reset(&plan.jobs, plan.env_seed)?;
                let mut rng = Pcg64Mcg::seed_from_u64(plan.sample_seed);
                let mut t = Trajectory {
                    sequence: plan.sequence,
                    ..Trajectory::default()
                };
                let mut single = HostBatch::default();
                let mut clock = Instant::now();
                let lap = |clock: &mut Instant| {
                    let now = Instant::now();
                    let d = now.duration_since(*clock).as_secs_f64();
                    *clock = now;
                    d
                };
                while driver::next_decision(env, obs, plan.max_time_ms, &mut |r| t.reward(r))? {
                    t.times.simulation_s += lap(&mut clock);
                    single.clear();
                    single.push_for(obs, cfg);
                    t.batch.extend_graph(&single, 0);
                    t.times.observation_s += lap(&mut clock);
                    let d = fast.decide(&single, sample(&mut rng, greedy));
                    let part = decode_part(fast.part_logp(&single, d.valid_index), greedy, || {
                        rng.random()
                    });
                    let value = fast.value(&single);
                    t.record(
                        obs.time_ms,
                        Taken {
                            valid: d.valid_index as u32,
                            job: d.job as u32,
                            level: d.level_index as u32,
                            part: Taken::of_part(part),
                        },
                        d.logp + part.map_or(0.0, |p| p.logp),
                        value,
                    );
                    t.times.inference_s += lap(&mut clock);
                    t.reward(act(env, cfg, obs, d.stage, d.limit, part)?);
                }
                t.times.simulation_s += lap(&mut clock);
                t.end_ms = env.now_ms();
                t.stats = env.stats();
                Ok(t)
            },
        )
        .collect()
}

/// One episode of a lockstep rollout.
struct Lane {
    env: Env,
    obs: Observation,
    rng: Pcg64Mcg,
    traj: Trajectory,
    /// Graph of this lane in the current shared batch.
    waiting: Option<usize>,
    max_time_ms: Option<u64>,
    /// The episode is over.
    over: bool,
}

/// Runs every plan with all episodes in lockstep: each round, the episodes advance in
/// parallel to their next decision, and the observations of all waiting episodes go
/// through one batched forward pass of `policy` on `device` (the path for a GPU).
pub fn rollout_batched(
    policy: &Policy,
    cfg: &PolicyConfig,
    sim: &SimConfig,
    plans: &[EpisodePlan],
    greedy: bool,
) -> Result<Vec<Trajectory>, SimError> {
    let needs: Needs = cfg.needs();
    let level_rows = cfg.level_rows();
    let mut lanes: Vec<Lane> = plans
        .iter()
        .map(|plan| {
            let mut env = Env::new(sim.clone())?;
            env.set_max_time(plan.max_time_ms);
            env.reset(&plan.jobs, plan.env_seed)?;
            Ok(Lane {
                env,
                obs: Observation::default(),
                rng: Pcg64Mcg::seed_from_u64(plan.sample_seed),
                traj: Trajectory {
                    sequence: plan.sequence,
                    ..Trajectory::default()
                },
                waiting: None,
                max_time_ms: plan.max_time_ms,
                over: false,
            })
        })
        .collect::<Result<_, SimError>>()?;
    let mut shared = HostBatch::default();
    let device = policy_device(policy);
    loop {
        // Advance every unfinished lane to a decision that needs the policy.
        lanes.par_iter_mut().try_for_each(|lane| {
            let start = Instant::now();
            lane.waiting = None;
            if !lane.over {
                let traj = &mut lane.traj;
                let more = driver::next_decision(
                    &mut lane.env,
                    &mut lane.obs,
                    lane.max_time_ms,
                    &mut |r| traj.reward(r),
                )?;
                lane.over = !more;
                if more {
                    lane.waiting = Some(0);
                }
            }
            lane.traj.times.simulation_s += start.elapsed().as_secs_f64();
            Ok::<_, SimError>(())
        })?;
        let start = Instant::now();
        shared.clear();
        for lane in lanes.iter_mut().filter(|l| l.waiting.is_some()) {
            lane.waiting = Some(shared.graphs);
            shared.push_for(&lane.obs, cfg);
        }
        if shared.graphs == 0 {
            break;
        }
        let observe_s = start.elapsed().as_secs_f64();
        let start = Instant::now();
        let out = infer(policy, &shared, needs, &device);
        let waiting = lanes.iter().filter(|l| l.waiting.is_some()).count() as f64;
        let infer_s = start.elapsed().as_secs_f64();
        lanes.par_iter_mut().try_for_each(|lane| {
            let Some(g) = lane.waiting else {
                return Ok(());
            };
            let start = Instant::now();
            let d = decode(
                &shared,
                &out.stage_logp,
                &out.limit_logp,
                level_rows,
                g,
                sample(&mut lane.rng, greedy),
            );
            let part = decode_part(out.part_logp_of(&shared, d.valid_index), greedy, || {
                lane.rng.random()
            });
            let (v0, _) = shared.graph_valid[g];
            let (j0, _) = shared.graph_jobs[g];
            let (p0, _) = shared.job_pairs[d.job];
            lane.traj.batch.extend_graph(&shared, g);
            lane.traj.record(
                lane.obs.time_ms,
                Taken {
                    valid: (d.valid_index - v0 as usize) as u32,
                    job: (d.job - j0 as usize) as u32,
                    level: (d.pair - p0 as usize) as u32,
                    part: Taken::of_part(part),
                },
                d.stage_logp + d.limit_logp + part.map_or(0.0, |p| p.logp),
                out.value.as_ref().map(|v| v[g]),
            );
            lane.traj.times.observation_s += observe_s / waiting;
            lane.traj.times.inference_s += infer_s / waiting + start.elapsed().as_secs_f64();
            let start = Instant::now();
            let reward = act(&mut lane.env, cfg, &lane.obs, d.stage, d.limit, part)?;
            lane.traj.reward(reward);
            lane.traj.times.simulation_s += start.elapsed().as_secs_f64();
            Ok::<_, SimError>(())
        })?;
    }
    Ok(lanes
        .into_iter()
        .map(|mut l| {
            l.traj.end_ms = l.env.now_ms();
            l.traj.stats = l.env.stats();
            l.traj
        })
        .collect())
}

fn policy_device(policy: &Policy) -> burn::tensor::Device {
    use burn::module::Module;
    policy
        .devices()
        .into_iter()
        .next()
        .unwrap_or_else(burn::tensor::Device::flex)
}
