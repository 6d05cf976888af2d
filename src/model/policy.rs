//! One policy family: encoder × job summary × global summary × heads × critic. Every
//! published design is a configuration of these parts (`PolicyConfig::mpda`, `::decima`,
//! `::ba3c`, `::a3c`), not a separate program.

use std::path::{Path, PathBuf};

use burn::config::Config;
use burn::module::{Module, ModuleMapper, Param, ParamId};
use burn::store::ModuleRecord;
use burn::tensor::{Bytes, Device, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::batch::{CLUSTER_FEATURES, GraphTensors, JOB_FEATURES, Needs};
use super::encoder::{DecimaEncoder, GatEncoder, GcnEncoder};
use super::host::HostWeights;
use super::host::encoder::HostEncoder;
use super::layers::{Activation, GruCell, Mlp};
use super::partition::{PART_FEATURES, PartitionLevel};
use super::segment::{segment_log_softmax, segment_log_sum_exp, segment_sum};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EncoderKind {
    /// MPDA: multi-head graph attention along the bottom-up schedule.
    Gat,
    /// Decima: bottom-up message passing with its f/g MLPs.
    Decima,
    /// Kipf-style GCN (branching A3C).
    Gcn,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobSummaryKind {
    /// Decima: an MLP on each node, then a sum over the job's unfinished nodes.
    NodeMlpThenSum,
    /// MPDA: a sum over the unfinished nodes of [features, embedding], then an MLP.
    SumThenMlp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GlobalSummaryKind {
    /// Decima: an MLP on each job summary, then a sum over jobs (order-free).
    Sum,
    /// MPDA: a GRU over the job summaries in arrival order.
    Gru,
}

/// How the policy scores an action (a stage and a parallelism level).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionHead {
    /// Two branches (Decima, MPDA, branching A3C): a softmax over the schedulable stages,
    /// then one over the chosen stage's job's levels. Scores `stages + levels` rows.
    Branching,
    /// One head (the branching study's single-head A3C): one softmax over every
    /// (schedulable stage, valid level of its job) pair. Scores `stages x levels` rows,
    /// and the level's score can depend on the stage.
    Joint,
}

/// The whole description of a model; saved as JSON beside its weights.
#[derive(Config, Debug, PartialEq)]
pub struct PolicyConfig {
    /// Which published design this configures (informational).
    pub preset: String,
    pub encoder: EncoderKind,
    /// Node features used: 5 (Decima's), 7 (plus in- and out-degree, MPDA) or 11 (plus Spark's
    /// engine's data, skew, locality wait and free-slot speed: `model::batch::spark_features`).
    pub input_features: usize,
    /// Width of embeddings and summaries.
    pub dim: usize,
    pub encoder_hidden: Vec<usize>,
    /// Attention heads (GAT).
    pub heads: usize,
    /// Message-passing steps (Decima's `max_depth`).
    pub steps: usize,
    /// GAT: one set of attention vectors for every step (MPDA's release) or one per step.
    pub share_attention: bool,
    pub job_summary: JobSummaryKind,
    pub global_summary: GlobalSummaryKind,
    pub summary_hidden: Vec<usize>,
    pub head_hidden: Vec<usize>,
    pub activation: Activation,
    pub critic: bool,
    pub critic_hidden: Vec<usize>,
    /// Parallelism levels the limit head scores: `1..=levels` (Decima: the cluster size).
    pub levels: usize,
    /// Seed of the parameter initialisation.
    pub seed: u64,
    /// MPDA's optional third branch (`model::partition`): the levels its head scores when
    /// a shuffle stage is first given slots. Absent: no branch (every model saved before
    /// it existed).
    pub partition_levels: Option<Vec<PartitionLevel>>,
    /// The key-query stage head, for decisions that stay cheap at hundreds of concurrent
    /// jobs: each schedulable stage's logit is its key (width `key_dim`, from its features,
    /// embedding and job summary) dotted with one query per decision (from the global
    /// summary and the cluster-wide inputs), plus a learned weight on "the executors come
    /// from this job". The cluster-wide node features (`batch::CLUSTER_COLUMNS`) move from
    /// the node rows to the query, so a job's embeddings, summary and keys depend on the job
    /// alone and are kept between decisions; with a summed global summary, a decision costs
    /// a few multiply-adds per job. Absent: Decima's MLP over [node, job, global] per stage,
    /// whose every row changes with the global summary at every decision.
    pub key_dim: Option<usize>,
    /// The action head; absent: two branches (every model saved before the joint head
    /// existed).
    pub action_head: Option<ActionHead>,
}

impl PolicyConfig {
    /// MPDA as released: 4-head GAT (dim 8, 8 steps, shared attention) on 7 features, a
    /// sum-then-MLP [64, 64] job summary, a GRU global summary, [64, 64] heads, tanh, critic.
    pub fn mpda() -> Self {
        Self {
            preset: "mpda".into(),
            encoder: EncoderKind::Gat,
            input_features: 7,
            dim: 8,
            encoder_hidden: vec![],
            heads: 4,
            steps: 8,
            share_attention: true,
            job_summary: JobSummaryKind::SumThenMlp,
            global_summary: GlobalSummaryKind::Gru,
            summary_hidden: vec![64, 64],
            head_hidden: vec![64, 64],
            activation: Activation::Tanh,
            critic: true,
            critic_hidden: vec![64, 64],
            levels: 50,
            seed: 0,
            partition_levels: None,
            key_dim: None,
            action_head: None,
        }
    }

    /// Decima: its 8-step GCN with [16, 8] MLPs on 5 features, node-MLP-then-sum
    /// summaries, [32, 16, 8] heads, leaky ReLU, no critic.
    pub fn decima() -> Self {
        Self {
            preset: "decima".into(),
            encoder: EncoderKind::Decima,
            input_features: 5,
            dim: 8,
            encoder_hidden: vec![16, 8],
            heads: 1,
            steps: 8,
            share_attention: true,
            job_summary: JobSummaryKind::NodeMlpThenSum,
            global_summary: GlobalSummaryKind::Sum,
            summary_hidden: vec![16, 8],
            head_hidden: vec![32, 16, 8],
            activation: Activation::LeakyRelu,
            critic: false,
            critic_hidden: vec![],
            levels: 50,
            seed: 0,
            partition_levels: None,
            key_dim: None,
            action_head: None,
        }
    }

    /// Branching A3C: a two-layer Kipf GCN, Decima's summaries, two action branches and a
    /// critic.
    pub fn ba3c() -> Self {
        Self {
            preset: "ba3c".into(),
            encoder: EncoderKind::Gcn,
            input_features: 7,
            dim: 8,
            encoder_hidden: vec![16],
            heads: 1,
            steps: 0,
            share_attention: true,
            job_summary: JobSummaryKind::NodeMlpThenSum,
            global_summary: GlobalSummaryKind::Sum,
            summary_hidden: vec![16, 8],
            head_hidden: vec![32, 16],
            activation: Activation::LeakyRelu,
            critic: true,
            critic_hidden: vec![32, 16],
            levels: 50,
            seed: 0,
            partition_levels: None,
            key_dim: None,
            action_head: None,
        }
    }

    /// Single-head A3C, the branching study's baseline: branching A3C's encoder,
    /// summaries and critic, with one head over (stage, level) pairs instead of two branches.
    pub fn a3c() -> Self {
        Self {
            preset: "a3c".into(),
            action_head: Some(ActionHead::Joint),
            ..Self::ba3c()
        }
    }

    pub fn preset(name: &str) -> Option<Self> {
        match name {
            "mpda" => Some(Self::mpda()),
            "decima" => Some(Self::decima()),
            "ba3c" => Some(Self::ba3c()),
            "a3c" => Some(Self::a3c()),
            _ => None,
        }
    }

    /// Whether one head scores (stage, level) pairs jointly ([`ActionHead::Joint`]).
    pub fn joint(&self) -> bool {
        self.action_head == Some(ActionHead::Joint)
    }

    /// How the level log-probabilities of this design's outputs are laid out.
    pub fn level_rows(&self) -> super::decode::LevelRows {
        if self.joint() {
            super::decode::LevelRows::PerStage
        } else {
            super::decode::LevelRows::PerJob
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        if !(1..=super::batch::NODE_FEATURES).contains(&self.input_features) {
            return Err(format!(
                "input_features must be 1..={}, found {}",
                super::batch::NODE_FEATURES,
                self.input_features
            ));
        }
        if self.dim == 0 || self.levels == 0 {
            return Err("dim and levels must be positive".into());
        }
        if self.encoder == EncoderKind::Gat && self.heads == 0 {
            return Err("a GAT needs at least one head".into());
        }
        if let Some(levels) = &self.partition_levels {
            super::partition::validate_levels(levels)?;
        }
        match self.key_dim {
            Some(0) => return Err("key_dim must be positive".into()),
            Some(_) if self.global_summary != GlobalSummaryKind::Sum => {
                return Err(
                    "key_dim needs global_summary = \"sum\": a GRU over the jobs costs every job at every decision"
                        .into(),
                );
            }
            _ => {}
        }
        if self.joint() {
            if self.key_dim.is_some() {
                return Err(
                    "key_dim needs the two-branch action head, not action_head = \"joint\"".into(),
                );
            }
            if self.partition_levels.is_some() {
                return Err(
                    "the partition branch needs the two-branch action head, not action_head = \"joint\""
                        .into(),
                );
            }
        }
        Ok(())
    }

    pub fn needs(&self) -> Needs {
        Needs {
            gcn: self.encoder == EncoderKind::Gcn,
            gru: self.global_summary == GlobalSummaryKind::Gru,
            steps: if self.encoder == EncoderKind::Gcn {
                0
            } else {
                self.steps
            },
            joint: self.joint(),
        }
    }

    pub fn init(&self, dev: &Device) -> Policy {
        Policy::new(self, dev)
    }

    /// Appends to `out` the simulator's actions for the partition branch's choice `part`
    /// on stage `s` of `obs` (none when it changes nothing or the model has no branch).
    pub fn partition_actions(
        &self,
        obs: &crate::sim::Observation,
        s: usize,
        part: super::PartChoice,
        out: &mut Vec<crate::sim::Action>,
    ) {
        if let Some(&level) = self
            .partition_levels
            .as_ref()
            .and_then(|l| l.get(part.level))
        {
            super::partition::level_actions(obs, s, level, out);
        }
    }
}

#[derive(Module, Debug)]
pub struct Policy {
    gat: Option<GatEncoder>,
    decima: Option<DecimaEncoder>,
    gcn: Option<GcnEncoder>,
    job_mlp: Mlp,
    global_mlp: Option<Mlp>,
    gru: Option<GruCell>,
    /// Scores schedulable stages (two branches), or (stage, level) pairs (one joint head).
    stage_head: Mlp,
    /// The level branch; none with a joint head.
    limit_head: Option<Mlp>,
    critic: Option<Mlp>,
    /// The partition branch's head, scoring (stage, level) rows.
    partition_head: Option<Mlp>,
    /// The key-query stage head's query (`PolicyConfig::key_dim`); `stage_head` then
    /// computes the keys.
    query_head: Option<Mlp>,
    #[module(skip)]
    input_features: usize,
    #[module(skip)]
    job_summary: JobSummaryKind,
}

/// Log-probabilities over the valid actions only: a masked action is not represented at
/// all, so its probability is exactly zero (Decima's `-10000` mask leaked a little).
#[derive(Debug, Clone)]
pub struct PolicyOutput {
    /// `[valid nodes]`: log-probability of each schedulable stage within its graph.
    pub stage_logp: Tensor<1>,
    /// `[pairs]`: log-probability of each (job, level) row within its job.
    pub limit_logp: Tensor<1>,
    /// `[graphs]`: the critic's value, if the design has one.
    pub value: Option<Tensor<1>>,
    /// `[partition rows]`: log-probability of each level within its stage, for a model
    /// with a partition branch and a batch with partition rows.
    pub part_logp: Option<Tensor<1>>,
}

/// Initialises every parameter from a generator seeded by the config, in the module's
/// visiting order: uniform in `±1/sqrt(fan_in)` (Burn's default bound for linear layers),
/// where `fan_in` is the first dimension of the latest matrix (a bias takes its layer's).
/// Parameters a module initialises to zero (the GAT's message bias) stay zero.
/// Burn's own initialisation draws from a backend-global generator, which parallel threads
/// (tests, rollout workers) interleave; this makes the same seed give the same weights
/// wherever and however often a model is built.
struct SeededInit {
    rng: rand_pcg::Pcg64Mcg,
    fan_in: usize,
    next_id: u64,
}

impl ModuleMapper for SeededInit {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let mut param = param.map(|t| {
            let dims = t.dims();
            if D >= 2 {
                self.fan_in = dims[0];
            }
            let tracked = t.is_require_grad();
            if t.clone().abs().max().into_scalar::<f32>() == 0.0 {
                return t;
            }
            let bound = 1.0 / (self.fan_in.max(1) as f32).sqrt();
            let n = dims.iter().product();
            let values: Vec<f32> = (0..n)
                .map(|_| self.rng.random_range(-bound..bound))
                .collect();
            Tensor::from_data(TensorData::new(values, dims), &t.device()).set_require_grad(tracked)
        });
        // Burn draws parameter ids at random; optimizer state is keyed by them and saved with
        // the checkpoint, so fixed ids (in visiting order) keep checkpoints bit-identical.
        self.next_id += 1;
        param.id = ParamId::from(self.next_id);
        param
    }
}

impl Policy {
    pub fn new(cfg: &PolicyConfig, dev: &Device) -> Self {
        let (f, d, act) = (cfg.input_features, cfg.dim, cfg.activation);
        let node_in = f + d;
        let (gat, decima, gcn) = match cfg.encoder {
            EncoderKind::Gat => (
                Some(GatEncoder::new(
                    f,
                    cfg.heads,
                    d,
                    cfg.steps,
                    cfg.share_attention,
                    dev,
                )),
                None,
                None,
            ),
            EncoderKind::Decima => (
                None,
                Some(DecimaEncoder::new(f, &cfg.encoder_hidden, d, dev)),
                None,
            ),
            EncoderKind::Gcn => (
                None,
                None,
                Some(GcnEncoder::new(f, &cfg.encoder_hidden, d, act, dev)),
            ),
        };
        let job_mlp = match cfg.job_summary {
            JobSummaryKind::NodeMlpThenSum => {
                Mlp::new(node_in, &cfg.summary_hidden, d, act, true, dev)
            }
            JobSummaryKind::SumThenMlp => {
                Mlp::new(node_in, &cfg.summary_hidden, d, act, false, dev)
            }
        };
        let (global_mlp, gru) = match cfg.global_summary {
            GlobalSummaryKind::Sum => (
                Some(Mlp::new(d, &cfg.summary_hidden, d, act, true, dev)),
                None,
            ),
            GlobalSummaryKind::Gru => (None, Some(GruCell::new(d, d, dev))),
        };
        let policy = Self {
            gat,
            decima,
            gcn,
            job_mlp,
            global_mlp,
            gru,
            stage_head: match cfg.key_dim {
                None if cfg.joint() => Mlp::logits(node_in + 2 * d + 1, &cfg.head_hidden, act, dev),
                None => Mlp::logits(node_in + 2 * d, &cfg.head_hidden, act, dev),
                Some(k) => Mlp::keys(node_in + d, &cfg.head_hidden, k, act, dev),
            },
            limit_head: (!cfg.joint())
                .then(|| Mlp::logits(JOB_FEATURES + 2 * d + 1, &cfg.head_hidden, act, dev)),
            critic: cfg.critic.then(|| {
                Mlp::new(
                    d + node_in + JOB_FEATURES + d,
                    &cfg.critic_hidden,
                    1,
                    act,
                    false,
                    dev,
                )
            }),
            partition_head: cfg
                .partition_levels
                .as_ref()
                .map(|_| Mlp::logits(node_in + 2 * d + PART_FEATURES, &cfg.head_hidden, act, dev)),
            query_head: cfg.key_dim.map(|k| {
                Mlp::new(
                    d + CLUSTER_FEATURES,
                    &cfg.head_hidden,
                    k + 1,
                    act,
                    false,
                    dev,
                )
            }),
            input_features: f,
            job_summary: cfg.job_summary,
        };
        policy.map(&mut SeededInit {
            rng: rand_pcg::Pcg64Mcg::seed_from_u64(cfg.seed),
            fan_in: 1,
            next_id: 0,
        })
    }

    /// Scores a batch. `t` must hold at least one schedulable stage per graph.
    pub fn forward(&self, t: &GraphTensors) -> PolicyOutput {
        let raw = t.x.clone().narrow(1, 0, self.input_features);
        let emb = if let Some(e) = &self.gat {
            e.forward(t)
        } else if let Some(e) = &self.decima {
            e.forward(t)
        } else {
            self.gcn.as_ref().expect("one encoder is set").forward(t)
        };
        let node = Tensor::cat(vec![raw, emb], 1);
        let live = t.unfinished.clone();
        let job_sum = match self.job_summary {
            JobSummaryKind::NodeMlpThenSum => segment_sum(
                self.job_mlp.forward(node.clone()) * live,
                t.node_job.clone(),
                t.jobs,
            ),
            JobSummaryKind::SumThenMlp => {
                self.job_mlp
                    .forward(segment_sum(node.clone() * live, t.node_job.clone(), t.jobs))
            }
        };
        let global = if let Some(mlp) = &self.global_mlp {
            segment_sum(mlp.forward(job_sum.clone()), t.job_graph.clone(), t.graphs)
        } else {
            let gru = self.gru.as_ref().expect("one global summary is set");
            let mut h = Tensor::zeros([t.graphs, gru.size()], &t.x.device());
            for (idx, mask) in &t.gru_steps {
                let next = gru.forward(job_sum.clone().select(0, idx.clone()), h.clone());
                h = next * mask.clone() + h * (Tensor::ones_like(mask) - mask.clone());
            }
            h
        };
        // Rows of the schedulable stages only, gathered before they are joined: a gather
        // over every node (and its backward) costs the whole batch, not the heads' rows.
        let valid_job = t.node_job.clone().select(0, t.valid_nodes.clone());
        let node_job_rows = Tensor::cat(
            vec![
                node.clone().select(0, t.valid_nodes.clone()),
                job_sum.clone().select(0, valid_job.clone()),
            ],
            1,
        );
        // The same rows with the global summary: what the MLP stage head and the partition
        // head read (a key-query model's stage head reads the global summary in its query).
        let node_rows = (self.query_head.is_none()
            || (self.partition_head.is_some() && t.parts.is_some()))
        .then(|| {
            Tensor::cat(
                vec![
                    node_job_rows.clone(),
                    global.clone().select(0, t.valid_node_graph.clone()),
                ],
                1,
            )
        });
        let part_logp = match (&self.partition_head, &t.parts, &node_rows) {
            (Some(head), Some((valid, x)), Some(rows)) => {
                let rows = Tensor::cat(vec![rows.clone().select(0, valid.clone()), x.clone()], 1);
                let logp = segment_log_softmax(head.forward(rows), valid.clone(), valid_count(t));
                let r = logp.dims()[0];
                Some(logp.reshape([r]))
            }
            _ => None,
        };
        let (stage_logp, limit_logp) = match &self.limit_head {
            None => {
                let rows = t
                    .joint
                    .as_ref()
                    .expect("a joint-head policy needs a batch with joint rows (Needs::joint)");
                // One head over (stage, level) pairs: a softmax over all of a graph's pairs;
                // the stage's log-probability is its pairs' log-sum-exp, and a level's is
                // the pair's minus its stage's (the level given the stage).
                // Rows [stage row, level]: the stage part of the first layer once per
                // stage, not once per (stage, level).
                let logits = self.stage_head.forward_shared_prefix(
                    node_rows.expect("computed for the joint head"),
                    rows.valid.clone(),
                    t.pair_level.clone().select(0, rows.pair.clone()),
                );
                let joint = segment_log_softmax(
                    logits,
                    t.valid_node_graph.clone().select(0, rows.valid.clone()),
                    t.graphs,
                );
                let stage = segment_log_sum_exp(joint.clone(), rows.valid.clone(), valid_count(t));
                let level = joint - stage.clone().select(0, rows.valid.clone());
                (stage, level)
            }
            Some(limit_head) => {
                let stage_logits = match &self.query_head {
                    None => self
                        .stage_head
                        .forward(node_rows.expect("computed for the MLP stage head")),
                    Some(query) => {
                        let keys = self.stage_head.forward(node_job_rows);
                        let k = keys.dims()[1];
                        let q = query
                            .forward(Tensor::cat(vec![global.clone(), t.cluster_x.clone()], 1))
                            .select(0, t.valid_node_graph.clone());
                        // Job feature 1 is +-2: whether the executors come from the node's job.
                        let source = t
                            .job_x
                            .clone()
                            .narrow(1, 1, 1)
                            .select(0, valid_job)
                            .mul_scalar(0.5);
                        (keys * q.clone().narrow(1, 0, k)).sum_dim(1) + q.narrow(1, k, 1) * source
                    }
                };
                let stage = segment_log_softmax(stage_logits, t.valid_node_graph.clone(), t.graphs);
                let job_rows = Tensor::cat(
                    vec![
                        t.job_x.clone(),
                        job_sum.clone(),
                        global.clone().select(0, t.job_graph.clone()),
                    ],
                    1,
                );
                let pair_rows = Tensor::cat(
                    vec![job_rows.select(0, t.pair_job.clone()), t.pair_level.clone()],
                    1,
                );
                let level =
                    segment_log_softmax(limit_head.forward(pair_rows), t.pair_job.clone(), t.jobs);
                (stage, level)
            }
        };
        let value = self.critic.as_ref().map(|c| {
            let input = Tensor::cat(
                vec![
                    global,
                    segment_sum(node, t.node_graph.clone(), t.graphs),
                    segment_sum(
                        Tensor::cat(vec![t.job_x.clone(), job_sum], 1),
                        t.job_graph.clone(),
                        t.graphs,
                    ),
                ],
                1,
            );
            c.forward(input).reshape([t.graphs])
        });
        let v = stage_logp.dims()[0];
        let p = limit_logp.dims()[0];
        PolicyOutput {
            stage_logp: stage_logp.reshape([v]),
            limit_logp: limit_logp.reshape([p]),
            value,
            part_logp,
        }
    }

    /// Every part's weights for the host forward pass (`model/host/`), each exported by its
    /// own module.
    pub fn host(&self) -> HostWeights {
        let encoder = if let Some(e) = &self.gat {
            HostEncoder::Gat(e.host())
        } else if let Some(e) = &self.decima {
            HostEncoder::Decima(e.host())
        } else {
            HostEncoder::Gcn(self.gcn.as_ref().expect("one encoder is set").host())
        };
        HostWeights {
            encoder,
            job_mlp: self.job_mlp.host(),
            global_mlp: self.global_mlp.as_ref().map(Mlp::host),
            gru: self.gru.as_ref().map(GruCell::host),
            stage_head: self.stage_head.host(),
            limit_head: self.limit_head.as_ref().map(Mlp::host),
            critic: self.critic.as_ref().map(Mlp::host),
            partition_head: self.partition_head.as_ref().map(Mlp::host),
            query_head: self.query_head.as_ref().map(Mlp::host),
        }
    }
}

/// Valid nodes of a batch on a device.
fn valid_count(t: &GraphTensors) -> usize {
    t.valid_nodes.dims()[0]
}

#[derive(Debug, Error)]
pub enum ModelError {
    #[error(transparent)]
    File(#[from] crate::io::FileError),
    #[error("{}: {msg}", file.display())]
    Invalid { file: PathBuf, msg: String },
    #[error("device {0}")]
    Device(String),
}

/// The config file that goes with a weights file: `x.bpk` -> `x.json`.
pub fn config_path(weights: &Path) -> PathBuf {
    weights.with_extension("json")
}

/// Saves weights (Burn's burnpack format) and config (JSON), each atomically.
pub fn save(policy: &Policy, cfg: &PolicyConfig, weights: &Path) -> Result<(), ModelError> {
    let bytes = policy
        .clone()
        .into_record()
        .into_bytes()
        .map_err(|e| ModelError::Invalid {
            file: weights.to_path_buf(),
            msg: format!("cannot serialise the weights: {e:?}"),
        })?;
    crate::io::write_file(weights, &bytes)?;
    let cfg_file = config_path(weights);
    let json = serde_json::to_string_pretty(cfg).expect("configs serialise");
    Ok(crate::io::write_file(&cfg_file, json.as_bytes())?)
}

/// Loads a model saved by [`save`] onto `dev` (any backend, whatever it was saved from).
pub fn load(weights: &Path, dev: &Device) -> Result<(Policy, PolicyConfig), ModelError> {
    let cfg_file = config_path(weights);
    let text = crate::io::read_text(&cfg_file)?;
    let cfg: PolicyConfig = serde_json::from_str(&text).map_err(|e| ModelError::Invalid {
        file: cfg_file.clone(),
        msg: format!("not a model config: {e}"),
    })?;
    cfg.validate().map_err(|msg| ModelError::Invalid {
        file: cfg_file,
        msg,
    })?;
    let bytes = crate::io::read_bytes(weights)?;
    let invalid = |msg: String| ModelError::Invalid {
        file: weights.to_path_buf(),
        msg,
    };
    let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(bytes))
        .map_err(|e| invalid(format!("not a burnpack model file: {e:?}")))?;
    let policy = Policy::new(&cfg, dev)
        .try_load_record(record)
        .map_err(|e| {
            invalid(format!(
                "weights do not match the config ({}): {e:?}",
                cfg.preset
            ))
        })?;
    Ok((policy, cfg))
}
