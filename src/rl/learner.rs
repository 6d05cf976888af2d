//! The gradient step: a minibatch of stored decisions through the Burn policy with
//! autodiff, the loss of the chosen algorithm, global-norm clipping and Adam.

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Int, Tensor, TensorData};
use rayon::prelude::*;

use super::RlError;
use super::adam::Adam;
use super::config::Algorithm;
use super::dist::{GradParts, Group};
use super::rollout::Trajectory;
use crate::model::batch::{GraphTensors, HostBatch};
use crate::model::segment::segment_sum;
use crate::model::{Policy, PolicyConfig};

/// One stored decision with its learning targets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub traj: u32,
    pub step: u32,
    pub advantage: f32,
    /// Value target (GAE return); unused without a critic.
    pub target: f32,
}

/// What one minibatch step measured.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StepStats {
    pub policy_loss: f64,
    pub value_loss: f64,
    pub entropy: f64,
    /// Approximate KL divergence of the new policy from the one that acted.
    pub approx_kl: f64,
    /// Fraction of samples whose probability ratio left the clip range (PPO).
    pub clip_fraction: f64,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
}

/// Field-wise sums: the trainer averages an iteration's steps with it, and a step adds
/// up its shards' (already weighted) stats.
impl std::ops::AddAssign for StepStats {
    fn add_assign(&mut self, o: Self) {
        self.policy_loss += o.policy_loss;
        self.value_loss += o.value_loss;
        self.entropy += o.entropy;
        self.approx_kl += o.approx_kl;
        self.clip_fraction += o.clip_fraction;
        self.grad_norm += o.grad_norm;
    }
}

/// Loss weights and clipping of one step.
#[derive(Debug, Clone, Copy)]
pub struct StepSettings {
    pub algorithm: Algorithm,
    pub lr: f64,
    pub entropy: f64,
    pub clip: f64,
    pub value_coef: f64,
    pub max_grad_norm: f64,
    /// Parts of a minibatch whose gradients are computed in parallel (`train.grad_shards`).
    pub shards: usize,
}

pub struct Learner {
    pub policy: Policy,
    pub cfg: PolicyConfig,
    pub optim: Adam,
    device: Device,
    /// The same device without autodiff: where gradients summed across ranks live.
    plain: Device,
    /// One host batch per shard, reused across steps.
    mbs: Vec<HostBatch>,
}

fn ints(v: Vec<i64>, dev: &Device) -> Tensor<1, Int> {
    let n = v.len();
    Tensor::from_data(TensorData::new(v, [n]), dev)
}

fn floats(v: Vec<f32>, dev: &Device) -> Tensor<1> {
    let n = v.len();
    Tensor::from_data(TensorData::new(v, [n]), dev)
}

fn scalar(t: Tensor<1>) -> f64 {
    f64::from(t.into_scalar::<f32>())
}

/// Sum of squares of every parameter's gradient, in f64 on the host, in the module's
/// visiting order: the same number for the same gradients, on any backend.
struct SquaredNorm<'a> {
    grads: &'a GradientsParams,
    total: f64,
}

impl ModuleVisitor for SquaredNorm<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.get::<D>(param.id) {
            let v = g.into_data().try_to_vec::<f32>().expect("f32 gradients");
            self.total += v.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>();
        }
    }
}

struct ScaleGrads<'a> {
    grads: &'a mut GradientsParams,
    factor: f32,
}

impl ModuleVisitor for ScaleGrads<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.remove::<D>(param.id) {
            self.grads.register(param.id, g.mul_scalar(self.factor));
        }
    }
}

/// Clips the gradients of all parameters together to `max_norm` (Burn's clipping works
/// per tensor) and returns the norm before clipping.
pub fn clip_global_norm(module: &Policy, grads: &mut GradientsParams, max_norm: f64) -> f64 {
    let mut sq = SquaredNorm { grads, total: 0.0 };
    module.visit(&mut sq);
    let norm = sq.total.sqrt();
    if norm > max_norm {
        module.visit(&mut ScaleGrads {
            grads,
            factor: (max_norm / norm) as f32,
        });
    }
    norm
}

impl Learner {
    /// A learner for `cfg` on `device` (plain; autodiff is added here).
    pub fn new(cfg: PolicyConfig, device: &Device) -> Self {
        let plain = device.clone();
        let device = device.clone().autodiff();
        Self {
            policy: cfg.init(&device),
            cfg,
            optim: Adam::default(),
            device,
            plain,
            mbs: vec![HostBatch::default()],
        }
    }

    pub fn from_parts(policy: Policy, cfg: PolicyConfig, optim: Adam, device: &Device) -> Self {
        Self {
            policy,
            cfg,
            optim,
            device: device.clone().autodiff(),
            plain: device.clone(),
            mbs: vec![HostBatch::default()],
        }
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The current weights without autodiff, for rollouts and saving.
    pub fn inference_policy(&self) -> Policy {
        self.policy.valid()
    }

    /// One gradient step on `samples`, split into `s.shards × group.size()` equal parts.
    /// This rank computes the gradients of its `s.shards` parts in parallel; the parts are
    /// then summed in part order (across ranks through [`GradParts`]). The learning step is
    /// Burn kernels that use one core; sharding is how it uses the others. The split
    /// depends only on the part count, never on the thread count, so results stay
    /// bit-identical for a given config whatever the number of threads, and `N` ranks with
    /// `g` shards equal one process with `g × N`.
    pub fn step(
        &mut self,
        trajs: &[Trajectory],
        samples: &[Sample],
        s: &StepSettings,
        group: &dyn Group,
    ) -> Result<StepStats, RlError> {
        let total = (s.shards * group.size()).clamp(1, samples.len().max(1));
        let per = samples.len().div_ceil(total).max(1);
        let parts: Vec<&[Sample]> = samples.chunks(per).collect();
        let mine = {
            let lo = (group.rank() * s.shards).min(parts.len());
            let hi = ((group.rank() + 1) * s.shards).min(parts.len());
            &parts[lo..hi]
        };
        if self.mbs.len() < mine.len() {
            self.mbs.resize_with(mine.len(), HostBatch::default);
        }
        let n = samples.len() as f64;
        let dev = &self.device;
        let cfg = &self.cfg;
        let outs: Vec<(GradientsParams, StepStats)> = if parts.len() == 1 {
            vec![shard_step(
                &self.policy,
                cfg,
                dev,
                &mut self.mbs[0],
                trajs,
                parts[0],
                1.0,
                s,
            )]
        } else {
            // Each shard gets its own leaves (`fork`), so the autodiff graphs of the
            // threads never meet; parameter ids, and so the gradients' keys, are kept.
            let forks: Vec<Policy> = mine.iter().map(|_| self.policy.clone().fork(dev)).collect();
            self.mbs
                .par_iter_mut()
                .zip(mine.par_iter())
                .zip(forks.par_iter())
                .map(|((mb, part), policy)| {
                    let weight = part.len() as f64 / n;
                    shard_step(policy, cfg, dev, mb, trajs, part, weight, s)
                })
                .collect()
        };
        let (mut grads, stats) = if group.size() == 1 || parts.len() == 1 {
            let mut outs = outs.into_iter();
            let (mut grads, mut stats) = outs.next().expect("at least one shard");
            for (g, st) in outs {
                self.policy.visit(&mut AddGrads {
                    into: &mut grads,
                    from: &g,
                });
                stats += st;
            }
            (grads, stats)
        } else {
            let mine = GradParts::new(&self.policy, &outs);
            GradParts::gather(group, &self.policy, &mine)?.sum(&self.policy, &self.plain)?
        };
        let grad_norm = clip_global_norm(&self.policy, &mut grads, s.max_grad_norm);
        self.policy = self.optim.step(s.lr, self.policy.clone(), &grads);
        Ok(StepStats { grad_norm, ..stats })
    }
}

/// Adds one shard's gradients into the running sum, parameter by parameter.
struct AddGrads<'a> {
    into: &'a mut GradientsParams,
    from: &'a GradientsParams,
}

impl ModuleVisitor for AddGrads<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let Some(g) = self.from.get::<D>(param.id) else {
            return;
        };
        let sum = match self.into.remove::<D>(param.id) {
            Some(acc) => acc + g,
            None => g,
        };
        self.into.register(param.id, sum);
    }
}

/// The policy's view of stored decisions: each sample's action log-probability (stage,
/// limit and, where one was chosen, partition level) and the entropy of the distributions
/// it was drawn from, from one forward pass over the samples' graphs (gathered into `mb`).
struct Scored {
    logp: Tensor<1>,
    /// `[n, 1]`: per sample, Σ p log p over its stage, limit and level choices.
    neg_entropy: Tensor<2>,
    value: Option<Tensor<1>>,
}

fn score(
    policy: &Policy,
    cfg: &PolicyConfig,
    dev: &Device,
    mb: &mut HostBatch,
    trajs: &[Trajectory],
    samples: &[Sample],
) -> Scored {
    mb.clear();
    let n = samples.len();
    let (mut stage_idx, mut pair_idx, mut job_idx) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    // The partition branch's choices: row, sample and valid node of each.
    let (mut part_row, mut part_sample, mut part_node) = (Vec::new(), Vec::new(), Vec::new());
    // A joint head's level rows are per stage and its stage distribution sums over all of
    // a graph's rows; two branches need the chosen job's level rows only.
    let joint = cfg.joint();
    for (i, smp) in samples.iter().enumerate() {
        let t = &trajs[smp.traj as usize];
        let step = smp.step as usize;
        let g = mb.graphs;
        let taken = t.taken[step];
        mb.extend_graph_limits_of(&t.batch, step, (!joint).then_some(taken.job as usize));
        let job = mb.graph_jobs[g].0 + taken.job;
        let valid = mb.graph_valid[g].0 + taken.valid;
        if taken.part > 0 {
            part_row.push(i64::from(mb.valid_parts[valid as usize].0 + taken.part - 1));
            part_sample.push(i as i64);
            part_node.push(i64::from(valid));
        }
        stage_idx.push(i64::from(valid));
        if !joint {
            pair_idx.push(i64::from(mb.job_pairs[job as usize].0 + taken.level));
        }
        job_idx.push(i64::from(job));
    }
    if joint {
        // Row offsets of the valid nodes, once for the minibatch.
        let start = mb.joint_row_starts();
        pair_idx.extend(samples.iter().zip(&stage_idx).map(|(smp, &valid)| {
            let taken = trajs[smp.traj as usize].taken[smp.step as usize];
            i64::from(start[valid as usize] + taken.level)
        }));
    }
    let tensors = GraphTensors::new(mb, cfg.needs(), dev);
    let out = policy.forward(&tensors);
    let (v, p) = (out.stage_logp.dims()[0], out.limit_logp.dims()[0]);
    let mut logp = out
        .stage_logp
        .clone()
        .select(0, ints(stage_idx.clone(), dev))
        + out.limit_logp.clone().select(0, ints(pair_idx, dev));
    // Entropy of the stage choice plus that of the level given the choice: the chosen
    // job's distribution (two branches) or the chosen stage's (one joint head).
    let (level_owner, owners, chosen) = match &tensors.joint {
        Some(rows) => (rows.valid.clone(), v, stage_idx),
        None => (tensors.pair_job.clone(), tensors.jobs, job_idx),
    };
    let stage_plogp = out.stage_logp.clone().exp() * out.stage_logp.clone();
    let limit_plogp = out.limit_logp.clone().exp() * out.limit_logp.clone();
    let mut neg_entropy = segment_sum(
        stage_plogp.reshape([v, 1]),
        tensors.valid_node_graph.clone(),
        n,
    ) + segment_sum(limit_plogp.reshape([p, 1]), level_owner, owners)
        .select(0, ints(chosen, dev));
    // The partition branch's term, for the samples that made a partition choice: its
    // log-probability, and the entropy of the chosen stage's levels.
    if let (Some(part_logp), Some((part_valid, _))) = (&out.part_logp, &tensors.parts)
        && !part_row.is_empty()
    {
        let k = part_row.len();
        let to_samples = ints(part_sample, dev);
        logp = logp
            + segment_sum(
                part_logp
                    .clone()
                    .select(0, ints(part_row, dev))
                    .reshape([k, 1]),
                to_samples.clone(),
                n,
            )
            .reshape([n]);
        let r = part_logp.dims()[0];
        let plogp = (part_logp.clone().exp() * part_logp.clone()).reshape([r, 1]);
        let per_node = segment_sum(plogp, part_valid.clone(), v).select(0, ints(part_node, dev));
        neg_entropy = neg_entropy + segment_sum(per_node, to_samples, n);
    }
    Scored {
        logp,
        neg_entropy,
        value: out.value,
    }
}

/// The log-probability `policy` gives each sample's stored action, as the learner computes
/// it: what a rollout recorded must equal this under the policy that acted.
pub fn rescore(
    policy: &Policy,
    cfg: &PolicyConfig,
    dev: &Device,
    trajs: &[Trajectory],
    samples: &[Sample],
) -> Vec<f32> {
    let scored = score(policy, cfg, dev, &mut HostBatch::default(), trajs, samples);
    scored
        .logp
        .into_data()
        .try_to_vec::<f32>()
        .expect("f32 log-probabilities")
}

/// Forward and backward of one shard. Its loss is the shard's mean weighted by
/// `weight` (its share of the minibatch), so the shards' gradients sum to the gradient
/// of the whole minibatch's mean loss; its stats are weighted the same way.
#[allow(clippy::too_many_arguments)]
fn shard_step(
    policy: &Policy,
    cfg: &PolicyConfig,
    dev: &Device,
    mb: &mut HostBatch,
    trajs: &[Trajectory],
    samples: &[Sample],
    weight: f64,
    s: &StepSettings,
) -> (GradientsParams, StepStats) {
    let n = samples.len();
    let Scored {
        logp,
        neg_entropy,
        value,
    } = score(policy, cfg, dev, mb, trajs, samples);
    let entropy = -neg_entropy.reshape([n]).mean();
    let (mut old, mut adv, mut target) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for smp in samples {
        old.push(trajs[smp.traj as usize].logp[smp.step as usize]);
        adv.push(smp.advantage);
        target.push(smp.target);
    }
    let old = floats(old, dev);
    let adv = floats(adv, dev);
    let log_ratio = logp.clone() - old;
    let (policy_loss, clip_fraction) = match s.algorithm {
        Algorithm::Ppo => {
            let ratio = log_ratio.clone().exp();
            let clipped = ratio.clone().clamp(1.0 - s.clip, 1.0 + s.clip);
            let surr = (ratio.clone() * adv.clone()).min_pair(clipped * adv);
            let outside = (ratio - 1.0).abs().greater_elem(s.clip).float().mean();
            (-surr.mean(), scalar(outside))
        }
        Algorithm::A2c | Algorithm::Reinforce => (-(logp * adv).mean(), 0.0),
    };
    let mut loss = policy_loss.clone() - entropy.clone().mul_scalar(s.entropy);
    let mut value_loss = 0.0;
    if s.algorithm != Algorithm::Reinforce
        && let Some(value) = value
    {
        let vl = (value - floats(target, dev)).powf_scalar(2.0).mean();
        value_loss = scalar(vl.clone().detach());
        loss = loss + vl.mul_scalar(s.value_coef);
    }
    let approx_kl = scalar((-log_ratio).detach().mean());
    let stats = StepStats {
        policy_loss: scalar(policy_loss.detach()) * weight,
        value_loss: value_loss * weight,
        entropy: scalar(entropy.detach()) * weight,
        approx_kl: approx_kl * weight,
        clip_fraction: clip_fraction * weight,
        grad_norm: 0.0,
    };
    let loss = if weight == 1.0 {
        loss
    } else {
        loss.mul_scalar(weight)
    };
    (GradientsParams::from_grads(loss.backward(), policy), stats)
}
