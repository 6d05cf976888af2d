//! A learned policy behind the `Scheduler` trait: the simulator's observation goes through
//! the same graph batch and network as in training, and the action comes back as a stage
//! and a parallelism limit.

use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;

use super::{SchedError, Scheduler, SchedulerFactory, SchedulerSpec};
use crate::model::batch::{GraphTensors, HostBatch};
use crate::model::{Backend, Choice, Policy, PolicyConfig, decode};
use crate::sim::{Action, Observation};

/// Names that build a learned scheduler: the presets.
pub const LEARNED: &[&str] = &["mpda", "decima", "ba3c"];

/// Where `model=NAME` looks when NAME is not a path: the shipped models.
pub const MODELS_DIR: &str = "models";

pub struct LearnedScheduler {
    policy: Policy,
    cfg: PolicyConfig,
    device: burn::tensor::Device,
    label: String,
    greedy: bool,
    rng: Pcg64Mcg,
    host: HostBatch,
}

impl LearnedScheduler {
    pub fn new(
        policy: Policy,
        cfg: PolicyConfig,
        device: burn::tensor::Device,
        label: String,
        greedy: bool,
    ) -> Self {
        Self {
            policy,
            cfg,
            device,
            label,
            greedy,
            rng: Pcg64Mcg::seed_from_u64(0),
            host: HostBatch::default(),
        }
    }
}

impl Scheduler for LearnedScheduler {
    fn name(&self) -> String {
        self.label.clone()
    }

    fn reset(&mut self, seed: u64) {
        self.rng = Pcg64Mcg::seed_from_u64(seed ^ 0x1ea7_ed00_0000_0001);
    }

    fn decide(&mut self, obs: &Observation) -> Action {
        if obs.schedulable.is_empty() {
            return Action::Idle {
                executors: obs.num_source_exec,
            };
        }
        self.host.clear();
        self.host.push(obs, self.cfg.levels as u32);
        let t = GraphTensors::new(&self.host, self.cfg.needs(), &self.device);
        let out = self.policy.forward(&t);
        let stage = out
            .stage_logp
            .into_data()
            .try_to_vec::<f32>()
            .expect("f32 log-probs");
        let limit = out
            .limit_logp
            .into_data()
            .try_to_vec::<f32>()
            .expect("f32 log-probs");
        let choice = if self.greedy {
            Choice::Greedy
        } else {
            Choice::Sample(self.rng.random(), self.rng.random())
        };
        let d = decode(&self.host, &stage, &limit, 0, choice);
        Action::Schedule {
            stage: obs.stages[d.stage].id,
            limit: d.limit,
        }
    }
}

/// Loads (or initialises) a model once and hands out schedulers that share it.
pub struct LearnedFactory {
    policy: Policy,
    cfg: PolicyConfig,
    device: burn::tensor::Device,
    label: String,
    greedy: bool,
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
    /// `mpda[model=PATH|NAME, greedy=true|false]`; without `model`, an untrained model of
    /// the preset, initialised with `seed` (default 0).
    pub fn from_spec(spec: &SchedulerSpec, backend: Backend) -> Result<Self, SchedError> {
        spec.allow(&["model", "greedy", "seed"])?;
        let err = |msg: String| SchedError::Spec {
            spec: spec.to_string(),
            msg,
        };
        let device = backend.device().map_err(|e| err(e.to_string()))?;
        let greedy = spec.get_bool("greedy", true)?;
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
                cfg.seed = spec.get_f64("seed", 0.0)? as u64;
                (cfg.init(&device), cfg)
            }
        };
        Ok(Self {
            policy,
            cfg,
            device,
            label: spec.to_string(),
            greedy,
        })
    }
}

impl SchedulerFactory for LearnedFactory {
    fn label(&self) -> String {
        self.label.clone()
    }

    fn build(&self) -> Result<Box<dyn Scheduler>, SchedError> {
        Ok(Box::new(LearnedScheduler::new(
            self.policy.clone(),
            self.cfg.clone(),
            self.device.clone(),
            self.label.clone(),
            self.greedy,
        )))
    }
}
