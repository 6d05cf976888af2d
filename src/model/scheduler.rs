//! The adapter from a policy to the `Scheduler` trait: the simulator's observation goes
//! through the same graph batch and network as in training, and the action comes back as a
//! stage and a parallelism limit. It lives beside the model so that `sched/` (the trait and
//! the heuristics) never depends on Burn.

use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;

use super::batch::HostBatch;
use super::host::FastPolicy;
use super::{Backend, Choice, Policy, PolicyConfig, decode, decode_part, infer};
use crate::sched::{SchedError, Scheduler, SchedulerFactory, SchedulerSpec};
use crate::seed::{stream, stream_rng};
use crate::sim::cluster::Reoffer;
use crate::sim::{Action, Observation};

/// Names that build a learned scheduler: the presets.
pub const LEARNED: &[&str] = &["mpda", "decima", "ba3c", "a3c"];

/// Where `model=NAME` looks when NAME is not a path: the shipped models.
pub const MODELS_DIR: &str = "models";

/// How a learned scheduler runs its network.
#[derive(Clone)]
enum Engine {
    /// On the CPU: the host forward pass (same weights, ~an order of magnitude faster per
    /// decision than Burn's per-op dispatch).
    Fast(Box<FastPolicy>),
    /// On a Burn device (a GPU).
    Burn(Box<Policy>, burn::tensor::Device),
}

impl Engine {
    /// The fast host path for the CPU backend, Burn otherwise.
    fn new(policy: Policy, cfg: &PolicyConfig, device: burn::tensor::Device) -> Self {
        if device == burn::tensor::Device::flex() {
            Engine::Fast(Box::new(FastPolicy::new(&policy, cfg)))
        } else {
            Engine::Burn(Box::new(policy), device)
        }
    }
}

pub struct LearnedScheduler {
    engine: Engine,
    cfg: PolicyConfig,
    label: String,
    greedy: bool,
    rng: Pcg64Mcg,
    host: HostBatch,
    /// The re-offer rule it was trained with, if given (`reoffer=stage|every_slot`).
    reoffer: Option<Reoffer>,
    /// The rest of a decision that the partition branch made several actions (re-cuts,
    /// then the stage and limit), last first.
    pending: Vec<Action>,
}

impl LearnedScheduler {
    /// A scheduler that runs `policy` on `device`: the fast host path for the CPU backend,
    /// Burn otherwise.
    pub fn new(
        policy: Policy,
        cfg: PolicyConfig,
        device: burn::tensor::Device,
        label: String,
        greedy: bool,
    ) -> Self {
        let engine = Engine::new(policy, &cfg, device);
        Self::with_engine(engine, cfg, label, greedy)
    }

    fn with_engine(engine: Engine, cfg: PolicyConfig, label: String, greedy: bool) -> Self {
        Self {
            engine,
            cfg,
            label,
            greedy,
            rng: Pcg64Mcg::seed_from_u64(0),
            host: HostBatch::default(),
            pending: Vec::new(),
            reoffer: None,
        }
    }
}

impl Scheduler for LearnedScheduler {
    fn name(&self) -> String {
        self.label.clone()
    }

    fn reoffer(&self) -> Option<Reoffer> {
        self.reoffer
    }

    fn reset(&mut self, seed: u64) {
        self.rng = stream_rng(seed, stream::LEARNED_ACTIONS);
        self.pending.clear();
    }

    fn decide(&mut self, obs: &Observation) -> Action {
        if obs.schedulable.is_empty() {
            return obs.idle();
        }
        // A re-cut takes no slot and no time, so the rest of the decision still applies;
        // the stage is checked anyway, in case a driver stepped the simulator between.
        match self.pending.pop() {
            Some(Action::Schedule { stage, .. })
                if !obs
                    .schedulable
                    .iter()
                    .any(|&s| obs.stages[s as usize].id == stage) =>
            {
                self.pending.clear();
            }
            Some(a) => return a,
            None => {}
        }
        self.host.clear();
        self.host.push_for(obs, &self.cfg);
        let choice = if self.greedy {
            Choice::Greedy
        } else {
            Choice::Sample(self.rng.random(), self.rng.random())
        };
        let (greedy, rng) = (self.greedy, &mut self.rng);
        let (stage, limit, part) = match &mut self.engine {
            Engine::Fast(fast) => {
                let d = fast.decide(&self.host, choice);
                let part = decode_part(fast.part_logp(&self.host, d.valid_index), greedy, || {
                    rng.random()
                });
                (d.stage, d.limit, part)
            }
            Engine::Burn(policy, device) => {
                let out = infer(policy, &self.host, self.cfg.needs(), device);
                let d = decode(
                    &self.host,
                    &out.stage_logp,
                    &out.limit_logp,
                    self.cfg.level_rows(),
                    0,
                    choice,
                );
                let part = decode_part(out.part_logp_of(&self.host, d.valid_index), greedy, || {
                    rng.random()
                });
                (d.stage, d.limit, part)
            }
        };
        let schedule = Action::Schedule {
            stage: obs.stages[stage].id,
            limit,
        };
        self.pending.push(schedule);
        if let Some(p) = part {
            let at = self.pending.len();
            self.cfg.partition_actions(obs, stage, p, &mut self.pending);
            self.pending[at..].reverse();
        }
        self.pending
            .pop()
            .expect("the decision has its schedule action")
    }
}

/// Loads (or initialises) a model once and hands out schedulers that share it.
pub struct LearnedFactory {
    engine: Engine,
    cfg: PolicyConfig,
    label: String,
    greedy: bool,
    reoffer: Option<Reoffer>,
}

/// Resolves `model=NAME`: a path as given, else `models/NAME.bpk`.
fn model_path(name: &str) -> PathBuf {
    let p = Path::new(name);
    if p.exists() || name.contains('/') || name.ends_with(".bpk") {
        p.to_path_buf()
    } else {
        Path::new(MODELS_DIR).join(format!("{name}.bpk"))
    }
}

impl LearnedFactory {
    /// `mpda[model=PATH|NAME, greedy=true|false, partition=true|false,
    /// reoffer=stage|every_slot]` (sampled by default, as Decima evaluates;
    /// `partition=false` turns a model's partition branch off; `reoffer=stage` keeps a freed
    /// slot on its stage while it has tasks, the rule a model trained with
    /// `[sim.cluster] reoffer = "stage"` learned under); without `model`, an untrained
    /// model of the preset, initialised with `seed` (default 0).
    pub fn from_spec(spec: &SchedulerSpec, backend: Backend) -> Result<Self, SchedError> {
        spec.allow(&["model", "greedy", "seed", "partition", "reoffer"])?;
        let err = |msg: String| SchedError::Spec {
            spec: spec.to_string(),
            msg,
        };
        let device = backend.device().map_err(|e| err(e.to_string()))?;
        let greedy = spec.get_bool("greedy", false)?;
        let (policy, cfg) = match spec.params.get("model") {
            Some(name) => {
                let (policy, cfg) = crate::model::load(&model_path(name), &device)
                    .map_err(|e| err(e.to_string()))?;
                if cfg.preset != spec.name {
                    return Err(err(format!(
                        "the model is a \"{}\" model, not \"{}\"",
                        cfg.preset, spec.name
                    )));
                }
                (policy, cfg)
            }
            None => {
                let mut cfg = PolicyConfig::preset(&spec.name)
                    .ok_or_else(|| err("not a learned preset".into()))?;
                cfg.seed = spec.get_u64("seed", 0)?;
                (cfg.init(&device), cfg)
            }
        };
        let mut cfg = cfg;
        if !spec.get_bool("partition", true)? {
            // The stage and limit heads alone: the branch's ablation.
            cfg.partition_levels = None;
        } else if spec.params.contains_key("partition") && cfg.partition_levels.is_none() {
            return Err(err(
                "partition=true needs a model trained with a partition branch".into(),
            ));
        }
        let reoffer = match spec.params.get("reoffer").map(String::as_str) {
            None => None,
            Some("stage") => Some(Reoffer::Stage),
            Some("every_slot") => Some(Reoffer::EverySlot),
            Some(v) => {
                return Err(err(format!("reoffer={v} must be stage or every_slot")));
            }
        };
        let mut factory = Self::from_policy(policy, cfg, device, spec.to_string(), greedy);
        factory.reoffer = reoffer;
        Ok(factory)
    }

    /// A factory for a model in memory (training evaluates its current weights this way).
    pub fn from_policy(
        policy: Policy,
        cfg: PolicyConfig,
        device: burn::tensor::Device,
        label: String,
        greedy: bool,
    ) -> Self {
        Self {
            engine: Engine::new(policy, &cfg, device),
            cfg,
            label,
            greedy,
            reoffer: None,
        }
    }
}

impl SchedulerFactory for LearnedFactory {
    fn label(&self) -> String {
        self.label.clone()
    }

    fn build(&self) -> Result<Box<dyn Scheduler>, SchedError> {
        let mut s = LearnedScheduler::with_engine(
            self.engine.clone(),
            self.cfg.clone(),
            self.label.clone(),
            self.greedy,
        );
        s.reoffer = self.reoffer;
        Ok(Box::new(s))
    }
}
