//! Training configs (TOML): workload, cluster, model, algorithm, curriculum and held-out
//! evaluation. Unknown keys are errors, as in every config of the project.

use serde::{Deserialize, Serialize};

use std::path::Path;

use crate::config::{Config, ConfigError, WorkloadConfig, check_name, check_seeds, defaults};
use crate::model::PolicyConfig;
use crate::sim::SimConfig;
use crate::validate::{FieldError, finite_in, in_range};

/// The largest count a training setting takes (iterations, sequences, minibatch...):
/// far above any real run, low enough that nothing overflows.
const MAX_COUNT: usize = 10_000_000;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Run name: checkpoints go to `runs/<name>/`.
    pub name: String,
    pub workload: WorkloadConfig,
    #[serde(default)]
    pub sim: SimConfig,
    pub model: ModelSettings,
    pub train: TrainSettings,
    #[serde(default)]
    pub curriculum: Curriculum,
    pub eval: TrainEval,
}

/// A preset with optional overrides of its size.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSettings {
    /// `mpda`, `decima`, `ba3c` or `a3c`.
    pub preset: String,
    /// Parameter initialisation seed.
    #[serde(default)]
    pub seed: u64,
    /// Levels the limit head scores; default: the cluster's executor count.
    pub levels: Option<usize>,
    pub dim: Option<usize>,
    pub steps: Option<usize>,
    pub heads: Option<usize>,
    pub head_hidden: Option<Vec<usize>>,
    pub summary_hidden: Option<Vec<usize>>,
    pub critic_hidden: Option<Vec<usize>>,
    /// Give a design without a critic one (needed by PPO and A2C).
    pub critic: Option<bool>,
    /// Opt into Spark's engine's node features: `true` reads 11 features (the preset's,
    /// then data, skew, locality wait and free-slot speed; `model::batch::spark_features`).
    /// Needs an MPDA-style preset (7 features); meant for a `[sim.cluster]`.
    #[serde(default)]
    pub spark_features: bool,
    /// MPDA's third action branch (`model::partition`): when a shuffle stage is first
    /// given slots, choose its partition count or a skew split. `true` uses the default
    /// levels (keep, 1, 2, 4 and 8 waves of the cluster's slots, split); needs Spark's
    /// engine (`[sim.cluster]`).
    #[serde(default)]
    pub partition: bool,
    /// The branch's levels ("keep", "split", "slots*F"), instead of the default ones;
    /// implies `partition`.
    pub partition_levels: Option<Vec<crate::model::partition::PartitionLevel>>,
    /// The global summary: `"sum"` (Decima's, order-free) or `"gru"` (MPDA's).
    pub global_summary: Option<crate::model::policy::GlobalSummaryKind>,
    /// The key-query stage head of this width (`PolicyConfig::key_dim`): decisions whose
    /// cost barely grows with the concurrent jobs. Needs `global_summary = "sum"`.
    pub key_dim: Option<usize>,
}

impl ModelSettings {
    pub fn policy_config(&self, executors: u32) -> Result<PolicyConfig, String> {
        let mut c = PolicyConfig::preset(&self.preset).ok_or_else(|| {
            format!(
                "model.preset: unknown preset \"{}\" (expected mpda, decima, ba3c or a3c)",
                self.preset
            )
        })?;
        c.seed = self.seed;
        c.levels = self.levels.unwrap_or(executors as usize);
        if let Some(v) = self.dim {
            c.dim = v;
        }
        if let Some(v) = self.steps {
            c.steps = v;
        }
        if let Some(v) = self.heads {
            c.heads = v;
        }
        if let Some(v) = &self.head_hidden {
            c.head_hidden = v.clone();
        }
        if let Some(v) = &self.summary_hidden {
            c.summary_hidden = v.clone();
        }
        if let Some(v) = &self.critic_hidden {
            c.critic_hidden = v.clone();
        }
        if let Some(v) = self.critic {
            c.critic = v;
            if v && c.critic_hidden.is_empty() {
                c.critic_hidden = c.head_hidden.clone();
            }
        }
        if let Some(v) = self.global_summary {
            c.global_summary = v;
        }
        c.key_dim = self.key_dim;
        if self.spark_features {
            if c.input_features != 7 {
                return Err(format!(
                    "spark_features extends the 7 features of MPDA's design; preset \"{}\" reads {}",
                    self.preset, c.input_features
                ));
            }
            c.input_features = crate::model::batch::NODE_FEATURES;
        }
        if self.partition || self.partition_levels.is_some() {
            c.partition_levels = Some(
                self.partition_levels
                    .clone()
                    .unwrap_or_else(crate::model::partition::default_levels),
            );
        }
        c.validate().map_err(|m| format!("model: {m}"))?;
        Ok(c)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Algorithm {
    /// Clipped surrogate, GAE, minibatches, several epochs, early stop on KL.
    Ppo,
    /// One gradient step per iteration on GAE advantages from the critic.
    A2c,
    /// Decima: several rollouts of each job sequence, advantage against their
    /// time-indexed average return.
    Reinforce,
}

/// Where an action's advantage comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AdvantageKind {
    /// GAE(gamma, lambda) on the critic's values.
    Gae,
    /// Decima's input-dependent baseline: the return-to-go against the average, over the
    /// other rollouts of the same job sequence, at the same simulated time. It needs no
    /// critic, and with common random numbers its variance is far below a learned
    /// critic's early in training, which is where the critic-based runs stalled.
    Rollouts,
}

/// How rollouts compute the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Inference {
    /// Each episode runs to its end on the host forward pass, episodes in parallel. The
    /// fastest on a CPU: a decision costs ~0.1-0.2 ms and needs no synchronisation.
    #[default]
    Host,
    /// All episodes advance in lockstep; the observations of every episode waiting for a
    /// decision go into one batched forward pass on the training device (a GPU).
    Batched,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainSettings {
    pub algorithm: Algorithm,
    /// Default: `gae` for PPO and A2C, `rollouts` for REINFORCE (which has no other).
    pub advantage: Option<AdvantageKind>,
    pub iterations: usize,
    /// Job sequences per iteration.
    pub sequences: usize,
    /// Rollouts of each sequence (same jobs, same task draws, different action samples).
    pub rollouts_per_sequence: usize,
    /// Seed of everything random in training: sequences, task draws, action samples,
    /// minibatch order. Draws are keyed by (seed, iteration, index), so a resumed run
    /// continues exactly.
    pub seed: u64,
    pub lr: f64,
    /// Learning rate at the last iteration (linear schedule).
    pub lr_final: f64,
    pub entropy: f64,
    /// Entropy weight at the last iteration (linear schedule).
    pub entropy_final: f64,
    /// Discount per decision, for GAE and for the rollouts baseline alike.
    pub gamma: f64,
    /// Continuous-time discount: a reward this many simulated seconds after a decision
    /// counts 1/e as much (spark-sched-sim's continuous discounting). Unset: none, as in
    /// Decima. On Decima's stream, 200 s did not beat no discount (docs/training.md,
    /// "Choosing the recipe").
    pub discount_time_s: Option<f64>,
    pub gae_lambda: f64,
    pub clip: f64,
    pub epochs: usize,
    /// Decisions per gradient step (PPO).
    pub minibatch: usize,
    /// Parts of each minibatch whose forward and backward passes run in parallel, their
    /// gradients summed in a fixed order. Burn's CPU kernels use one core for the learning
    /// step, which is most of an iteration's time; 2 shards use both cores of a 2-core
    /// machine. Results depend on this number (summation order), never on `--threads`.
    pub grad_shards: usize,
    /// Stop an iteration's PPO epochs when the approximate KL exceeds this.
    pub target_kl: Option<f64>,
    pub value_coef: f64,
    /// Global gradient-norm clip (all parameters together).
    pub max_grad_norm: f64,
    pub normalize_advantages: bool,
    pub checkpoint_every: usize,
    pub inference: Inference,
}

impl Default for TrainSettings {
    fn default() -> Self {
        Self {
            algorithm: Algorithm::Ppo,
            advantage: None,
            iterations: 200,
            sequences: 8,
            rollouts_per_sequence: 2,
            seed: 1,
            lr: 1e-3,
            lr_final: 3e-4,
            entropy: 0.01,
            entropy_final: 0.001,
            gamma: 1.0,
            discount_time_s: None,
            gae_lambda: 0.95,
            clip: 0.2,
            epochs: 4,
            minibatch: 512,
            grad_shards: 1,
            target_kl: Some(0.03),
            value_coef: 0.5,
            max_grad_norm: 0.5,
            normalize_advantages: true,
            checkpoint_every: 5,
            inference: Inference::Host,
        }
    }
}

impl TrainSettings {
    pub fn advantage_kind(&self) -> AdvantageKind {
        self.advantage.unwrap_or(match self.algorithm {
            Algorithm::Reinforce => AdvantageKind::Rollouts,
            Algorithm::Ppo | Algorithm::A2c => AdvantageKind::Gae,
        })
    }
}

/// Curricula of Decima and MPDA; all optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Curriculum {
    /// Stochastic episode length (Decima): each sequence stops at a time drawn from an
    /// exponential distribution whose mean grows each iteration.
    pub episode_time: Option<EpisodeTime>,
    /// Number of jobs (batch jobs, or stream jobs of a Poisson process) growing linearly.
    pub jobs: Option<JobsSchedule>,
    /// Hybrid workloads (MPDA): each sequence's Poisson mean interval is drawn from this
    /// list, ms.
    pub mean_intervals_ms: Option<Vec<f64>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EpisodeTime {
    pub initial_mean_s: f64,
    pub growth_s_per_iteration: f64,
    pub max_mean_s: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobsSchedule {
    pub initial: usize,
    pub last: usize,
    /// Iterations over which the count grows from `initial` to `last`.
    pub over_iterations: usize,
}

/// Held-out evaluation during training, on fixed seeds, against a baseline.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainEval {
    pub every: usize,
    pub seeds: usize,
    /// Episode i uses `first_seed + i`; training never draws a sequence seed in this range.
    pub first_seed: u64,
    pub baseline: String,
    /// Argmax decisions instead of samples. Off by default: Decima evaluates its policy by
    /// sampling (seeded, so still reproducible), and a policy trained with an entropy bonus
    /// is a distribution, not its mode. Measured on Decima batch-20 after 300 REINFORCE
    /// iterations: sampled 115.7 s, greedy 132.0 s (its argmax limits leave executors idle).
    pub greedy: bool,
}

impl Default for TrainEval {
    fn default() -> Self {
        Self {
            every: 5,
            seeds: defaults::SEEDS,
            first_seed: defaults::FIRST_SEED,
            baseline: defaults::BASELINE.into(),
            greedy: false,
        }
    }
}

impl TrainConfig {
    /// Parses and validates `text` (`origin` names it), with `--iterations`, if given, in
    /// place of the file's count and validated again.
    pub fn parse_with_iterations(
        text: &str,
        origin: &Path,
        iterations: Option<usize>,
    ) -> Result<Self, ConfigError> {
        let mut cfg = <Self as Config>::parse(text, origin)?;
        if let Some(n) = iterations {
            cfg.train.iterations = n;
            cfg.validate().map_err(|e| ConfigError::Invalid {
                file: "--iterations".into(),
                msg: e.msg,
            })?;
        }
        Ok(cfg)
    }
}

impl Config for TrainConfig {
    fn validate(&self) -> Result<(), FieldError> {
        let t = &self.train;
        check_name("name", &self.name)?;
        self.sim.validate().map_err(|e| e.within("sim"))?;
        let policy = self
            .model
            .policy_config(self.sim.slots())
            .map_err(|m| FieldError::new("model", m))?;
        if policy.partition_levels.is_some() && self.sim.cluster.is_none() {
            return Err(FieldError::new(
                "model.partition",
                "the partition branch re-cuts shuffles on Spark's engine: add a [sim.cluster] section",
            ));
        }
        self.workload.validate().map_err(|e| e.within("workload"))?;
        if self.workload.arrivals.is_none() {
            return Err(FieldError::new(
                "workload.arrivals",
                "training needs generated arrivals (batch or poisson), not a replay",
            ));
        }
        let positive = [
            ("train.iterations", t.iterations),
            ("train.sequences", t.sequences),
            ("train.rollouts_per_sequence", t.rollouts_per_sequence),
            ("train.epochs", t.epochs),
            ("train.minibatch", t.minibatch),
            ("train.grad_shards", t.grad_shards),
            ("train.checkpoint_every", t.checkpoint_every),
            ("eval.every", self.eval.every),
        ];
        for (k, v) in positive {
            in_range(k, v, 1, MAX_COUNT)?;
        }
        check_seeds("eval.seeds", self.eval.seeds, self.eval.first_seed)?;
        let rates = [
            ("train.lr", t.lr),
            ("train.lr_final", t.lr_final),
            ("train.max_grad_norm", t.max_grad_norm),
        ];
        let time_constant = t.discount_time_s.map(|v| ("train.discount_time_s", v));
        for (k, v) in rates.into_iter().chain(time_constant) {
            if !(v.is_finite() && v > 0.0) {
                return Err(FieldError::new(k, format!("must be positive, found {v}")));
            }
        }
        let unit = [
            ("train.gamma", t.gamma),
            ("train.gae_lambda", t.gae_lambda),
            ("train.clip", t.clip),
        ];
        for (k, v) in unit {
            finite_in(k, v, 0.0, 1.0)?;
        }
        for (k, v) in [
            ("train.entropy", t.entropy),
            ("train.entropy_final", t.entropy_final),
            ("train.value_coef", t.value_coef),
        ] {
            finite_in(k, v, 0.0, 1e6)?;
        }
        if let Some(kl) = t.target_kl {
            finite_in("train.target_kl", kl, 0.0, 1e6)?;
        }
        match (t.algorithm, t.advantage_kind()) {
            (Algorithm::Reinforce, AdvantageKind::Gae) => {
                return Err(FieldError::new(
                    "train.advantage",
                    "reinforce has no critic for \"gae\"; use \"rollouts\" (or algorithm = \"a2c\")",
                ));
            }
            (_, AdvantageKind::Gae) if !policy.critic => {
                return Err(FieldError::new(
                    "train.algorithm",
                    format!(
                        "{:?} with GAE needs a critic; the \"{}\" model has none (set model.critic = true, advantage = \"rollouts\", or use reinforce)",
                        t.algorithm, self.model.preset
                    ),
                ));
            }
            (_, AdvantageKind::Rollouts) if t.rollouts_per_sequence < 2 => {
                return Err(FieldError::new(
                    "train.rollouts_per_sequence",
                    "the \"rollouts\" advantage (Decima's baseline) needs at least 2 rollouts per sequence",
                ));
            }
            _ => {}
        }
        if let Some(e) = &self.curriculum.episode_time
            && !(e.initial_mean_s.is_finite()
                && e.max_mean_s.is_finite()
                && e.growth_s_per_iteration.is_finite()
                && e.initial_mean_s > 0.0
                && e.max_mean_s >= e.initial_mean_s
                && e.growth_s_per_iteration >= 0.0)
        {
            return Err(FieldError::new(
                "curriculum.episode_time",
                "need finite 0 < initial_mean_s <= max_mean_s and growth_s_per_iteration >= 0",
            ));
        }
        if let Some(j) = &self.curriculum.jobs {
            in_range("curriculum.jobs.initial", j.initial, 1, MAX_COUNT)?;
            in_range("curriculum.jobs.last", j.last, 1, MAX_COUNT)?;
        }
        if let Some(v) = &self.curriculum.mean_intervals_ms {
            if v.is_empty() {
                return Err(FieldError::new(
                    "curriculum.mean_intervals_ms",
                    "need a non-empty list",
                ));
            }
            let (lo, hi) = crate::workload::arrivals::MEAN_INTERVAL_MS_RANGE;
            for (i, &x) in v.iter().enumerate() {
                finite_in(&format!("curriculum.mean_intervals_ms[{i}]"), x, lo, hi)?;
            }
            if !matches!(
                self.workload.arrivals,
                Some(crate::workload::arrivals::ArrivalProcess::Poisson { .. })
            ) {
                return Err(FieldError::new(
                    "curriculum.mean_intervals_ms",
                    "needs poisson arrivals",
                ));
            }
        }
        crate::sched::SchedulerSpec::parse(&self.eval.baseline)
            .map_err(|e| FieldError::new("eval.baseline", e.to_string()))?;
        Ok(())
    }
}
