//! Fast per-decision inference on the CPU: the policy's forward pass in plain Rust over
//! weights exported from the Burn model.
//!
//! Why a second forward pass: one decision of MPDA is ~1,000 small tensor ops (8 recurrent
//! attention steps, a GRU over the jobs), and Burn's CPU backend costs a few microseconds
//! per op whatever the size, so a decision took ~4.7 ms. These networks are tiny (width 8
//! to 64), so plain loops over contiguous buffers do the same arithmetic in a fraction of
//! that, without allocating once the buffers have grown. It also scores the parallelism
//! limit only for the chosen stage's job, not for every job. Training stays in Burn
//! (batched, autodiff, any device).
//!
//! This folder mirrors the Burn side file for file: `layers.rs` is `model/layers.rs`,
//! `encoder/X.rs` is `model/encoder/X.rs`, and this file is `model/policy.rs`'s forward.
//! Each Burn module exports its own weights (`Policy::host`, `GatEncoder::host`,
//! `Mlp::host`, ...); nothing here reads a Burn module's fields. **A new encoder is
//! written in two places**: `model/encoder/X.rs` (Burn: training, GPUs) and
//! `model/host/encoder/X.rs` (CPU decisions), with a variant of [`HostEncoder`] and an arm
//! of `Policy::host`; `tests/model.rs` checks that both forward passes agree to 1e-5 for
//! every preset.

pub mod encoder;
pub mod layers;
mod memo;

use super::batch::{CLUSTER_FEATURES, HostBatch, JOB_FEATURES, LEVEL_SCALE, NODE_FEATURES};
use super::decode::{Choice, pick};
use super::partition::PART_FEATURES;
use super::policy::{JobSummaryKind, Policy, PolicyConfig};
use encoder::{EncoderScratch, HostEncoder};
use layers::{HostGru, HostMlp};
use memo::JobMemo;

/// Every part of a policy's weights, as the host forward pass holds them: exported by
/// [`Policy::host`], one part per part of the Burn model.
#[derive(Debug, Clone)]
pub struct HostWeights {
    pub encoder: HostEncoder,
    pub job_mlp: HostMlp,
    /// The global summary: an MLP summed over jobs (Decima), or else a GRU (MPDA).
    pub global_mlp: Option<HostMlp>,
    pub gru: Option<HostGru>,
    pub stage_head: HostMlp,
    /// None with a joint head (`stage_head` then scores (stage, level) pairs).
    pub limit_head: Option<HostMlp>,
    pub critic: Option<HostMlp>,
    pub partition_head: Option<HostMlp>,
    /// The key-query stage head's query (`PolicyConfig::key_dim`); `stage_head` then
    /// computes keys.
    pub query_head: Option<HostMlp>,
}

/// Reused buffers of the summaries and heads (the encoder has its own).
#[derive(Debug, Clone, Default)]
struct Scratch {
    row: Vec<f32>,
    a: Vec<f32>,
    b: Vec<f32>,
    c: Vec<f32>,
    job_sum: Vec<f32>,
    global: Vec<f32>,
    stage_logp: Vec<f32>,
    limit_logp: Vec<f32>,
    levels: Vec<u32>,
    part_logp: Vec<f32>,
    /// The key-query head's query of the decision, `[key_dim + 1]`.
    query: Vec<f32>,
    /// A joint head's log-probabilities of the decision's (stage, level) rows, valid node
    /// after valid node (`HostBatch::joint_rows`), and where each valid node's rows start
    /// (one more entry: the end).
    joint: Vec<f32>,
    joint_start: Vec<usize>,
}

/// The policy's forward pass on the host, for one observation at a time.
#[derive(Debug, Clone)]
pub struct FastPolicy {
    cfg: PolicyConfig,
    encoder: HostEncoder,
    job_mlp: HostMlp,
    global_mlp: Option<HostMlp>,
    gru: Option<HostGru>,
    stage_head: HostMlp,
    limit_head: Option<HostMlp>,
    critic: Option<HostMlp>,
    partition_head: Option<HostMlp>,
    query_head: Option<HostMlp>,
    enc: EncoderScratch,
    s: Scratch,
    /// Per-job embeddings and summaries kept between decisions (`memo.rs`); `None`: every
    /// decision encodes every job.
    memo: Option<Box<JobMemo>>,
    /// The observation's node embeddings, `[nodes * dim]`, gathered from the memo.
    emb: Vec<f32>,
    /// Whether `emb` holds this decision's embeddings: a key-query model gathers them only
    /// when the critic or the partition head needs them.
    emb_ready: bool,
    /// What the jobs that missed the memo computed: summaries, and for key-query models
    /// their terms of the global summary.
    miss_sum: Vec<f32>,
    miss_global: Vec<f32>,
}

/// A decision from [`FastPolicy::decide`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FastDecision {
    /// Index of the stage in its observation.
    pub stage: usize,
    /// Index of the stage among the batch's schedulable stages (`HostBatch::valid_nodes`).
    pub valid_index: usize,
    /// Batch index of the stage's job.
    pub job: usize,
    /// Index of the level among the job's valid levels (its rows of the pairs).
    pub level_index: usize,
    pub level: u32,
    pub limit: u32,
    /// Log-probability of the whole action: stage, then level.
    pub logp: f32,
}

/// The maximum `m` of `v` and `ln(sum(exp(v - m)))`: a log-sum-exp that cannot overflow.
fn max_and_log_sum(v: &[f32]) -> (f32, f32) {
    let m = v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    (m, v.iter().map(|x| (x - m).exp()).sum::<f32>().ln())
}

/// `ln(sum(exp(v)))`, shifted by the maximum as `segment_log_sum_exp` is.
fn log_sum_exp(v: &[f32]) -> f32 {
    let (m, lz) = max_and_log_sum(v);
    m + lz
}

fn log_softmax(v: &mut [f32]) {
    let (m, lz) = max_and_log_sum(v);
    v.iter_mut().for_each(|x| *x = *x - m - lz);
}

impl FastPolicy {
    /// The host forward pass of `p`, from the weights it exports; `cfg` is the config `p`
    /// was built from.
    pub fn new(p: &Policy, cfg: &PolicyConfig) -> Self {
        let HostWeights {
            encoder,
            job_mlp,
            global_mlp,
            gru,
            stage_head,
            limit_head,
            critic,
            partition_head,
            query_head,
        } = p.host();
        Self {
            cfg: cfg.clone(),
            encoder,
            job_mlp,
            global_mlp,
            gru,
            stage_head,
            limit_head,
            critic,
            partition_head,
            query_head,
            enc: EncoderScratch::default(),
            s: Scratch::default(),
            memo: Some(Box::default()),
            emb: Vec::new(),
            emb_ready: false,
            miss_sum: Vec::new(),
            miss_global: Vec::new(),
        }
    }

    /// Keep each job's embeddings and summary between decisions (the default), or encode
    /// every job at every decision. Results are bit-identical either way.
    pub fn set_memo(&mut self, on: bool) {
        self.memo = on.then(Box::default);
    }

    /// Jobs found in the memo and jobs encoded, since this policy was built.
    pub fn memo_counts(&self) -> Option<(u64, u64)> {
        self.memo.as_ref().map(|m| (m.hits, m.misses))
    }

    /// Node embeddings and job summaries of graph 0 of `h` (`embeddings()`, `s.job_sum`),
    /// from the memo for jobs that did not change, then the global summary (`s.global`).
    /// A key-query model keeps each job's keys and term of the global summary in the memo
    /// too, and gathers the embeddings only on demand ([`embeddings`]).
    fn encode_and_summarise(&mut self, h: &HostBatch) {
        let (steps, d, f) = (self.cfg.steps, self.cfg.dim, self.cfg.input_features);
        let keyed = self.query_head.is_some();
        let mut sums = std::mem::take(&mut self.s.job_sum);
        self.emb_ready = false;
        let Some(memo) = self.memo.as_mut() else {
            self.encoder.encode(h, steps, &mut self.enc);
            job_sums(
                &self.cfg,
                &self.job_mlp,
                h,
                self.enc.embeddings(),
                &mut self.s,
                &mut sums,
            );
            self.s.job_sum = sums;
            self.global();
            return;
        };
        memo.lookup(h, f);
        self.miss_sum.clear();
        self.miss_global.clear();
        if memo.miss.nodes() > 0 {
            self.encoder.encode(&memo.miss, steps, &mut self.enc);
            let emb = self.enc.embeddings();
            job_sums(
                &self.cfg,
                &self.job_mlp,
                &memo.miss,
                emb,
                &mut self.s,
                &mut self.miss_sum,
            );
            if keyed {
                let global_mlp = self
                    .global_mlp
                    .as_ref()
                    .expect("key_dim needs a summed global summary");
                for js in self.miss_sum.chunks_exact(d) {
                    global_mlp.apply(js, &mut self.s.a, &mut self.s.b);
                    self.miss_global.extend_from_slice(&self.s.a);
                }
            }
        }
        memo.store_and_gather(
            memo::MissResults {
                dim: d,
                emb: self.enc.embeddings(),
                job_sum: &self.miss_sum,
                global: &self.miss_global,
                key_dim: self.cfg.key_dim.unwrap_or(0),
            },
            (!keyed).then_some(&mut self.emb),
            &mut sums,
        );
        self.emb_ready = !keyed;
        self.s.job_sum = sums;
        if keyed {
            self.s.global.resize(d, 0.0);
            memo.sum_global(&mut self.s.global);
        } else {
            self.global();
        }
    }

    /// The global summary (`s.global`) over the job summaries, in job order.
    fn global(&mut self) {
        let d = self.cfg.dim;
        let s = &mut self.s;
        let jobs = s.job_sum.len() / d.max(1);
        s.global.clear();
        s.global.resize(d, 0.0);
        if let Some(mlp) = &self.global_mlp {
            for j in 0..jobs {
                mlp.apply(&s.job_sum[j * d..(j + 1) * d], &mut s.a, &mut s.b);
                for (o, v) in s.global.iter_mut().zip(&s.a) {
                    *o += v;
                }
            }
        } else if let Some(gru) = &self.gru {
            let mut hstate = std::mem::take(&mut s.global);
            for j in 0..jobs {
                gru.step(
                    &s.job_sum[j * d..(j + 1) * d],
                    &mut hstate,
                    &mut s.a,
                    &mut s.b,
                );
            }
            s.global = hstate;
        }
    }

    /// Log-probabilities of the schedulable stages of graph 0, in `valid_nodes` order.
    pub fn stage_logp(&mut self, h: &HostBatch) -> &[f32] {
        debug_assert_eq!(
            h.graphs, 1,
            "the fast path scores one observation at a time"
        );
        self.encode_and_summarise(h);
        let (d, f) = (self.cfg.dim, self.cfg.input_features);
        let s = &mut self.s;
        s.stage_logp.clear();
        if self.limit_head.is_none() {
            // One joint head: a softmax over every (stage, level) row; a stage's
            // log-probability is its rows' log-sum-exp, as in `Policy::forward`.
            let emb = embeddings(&self.memo, &mut self.emb, &mut self.emb_ready, &self.enc);
            s.joint.clear();
            s.joint_start.clear();
            for &v in &h.valid_nodes {
                let v = v as usize;
                s.joint_start.push(s.joint.len());
                key_row(&mut s.row, h, v, f, d, emb, &s.job_sum);
                s.row.extend_from_slice(&s.global);
                let (p0, pn) = h.job_pairs[h.node_job[v] as usize];
                self.stage_head.apply_each_last(
                    &s.row,
                    h.pair_level[p0 as usize..(p0 + pn) as usize]
                        .iter()
                        .map(|&l| l as f32 / LEVEL_SCALE),
                    &mut s.joint,
                    [&mut s.a, &mut s.b, &mut s.c],
                );
            }
            s.joint_start.push(s.joint.len());
            log_softmax(&mut s.joint);
            for w in s.joint_start.windows(2) {
                s.stage_logp.push(log_sum_exp(&s.joint[w[0]..w[1]]));
            }
            return &s.stage_logp;
        }
        if let Some(query) = &self.query_head {
            let k = self.cfg.key_dim.unwrap_or(0);
            s.row.clear();
            s.row.extend_from_slice(&s.global);
            s.row.extend_from_slice(&h.cluster_x[..CLUSTER_FEATURES]);
            query.apply(&s.row, &mut s.query, &mut s.b);
            for &v in &h.valid_nodes {
                let (v, j) = (v as usize, h.node_job[v as usize] as usize);
                let key = match &mut self.memo {
                    Some(memo) => memo.key(
                        h,
                        v,
                        f,
                        &self.stage_head,
                        memo::KeyScratch {
                            row: &mut s.row,
                            a: &mut s.a,
                            b: &mut s.b,
                        },
                    ),
                    None => {
                        key_row(&mut s.row, h, v, f, d, self.enc.embeddings(), &s.job_sum);
                        self.stage_head.apply(&s.row, &mut s.a, &mut s.b);
                        &s.a
                    }
                };
                // Job feature 1 is +-2: whether the executors come from this job.
                let source = h.job_x[j * JOB_FEATURES + 1] * 0.5;
                let dot: f32 = key.iter().zip(&s.query).map(|(a, b)| a * b).sum();
                s.stage_logp.push(dot + s.query[k] * source);
            }
        } else {
            let emb = embeddings(&self.memo, &mut self.emb, &mut self.emb_ready, &self.enc);
            for &v in &h.valid_nodes {
                key_row(&mut s.row, h, v as usize, f, d, emb, &s.job_sum);
                s.row.extend_from_slice(&s.global);
                self.stage_head.apply(&s.row, &mut s.a, &mut s.b);
                s.stage_logp.push(s.a[0]);
            }
        }
        log_softmax(&mut s.stage_logp);
        &s.stage_logp
    }

    /// Log-probabilities of the levels of valid node `valid`'s job (an index into
    /// `h.valid_nodes`), given that stage, in the job's pair order: the level branch's
    /// distribution for the job (two branches), or the stage's joint rows over its
    /// probability (one joint head). Call after [`stage_logp`](Self::stage_logp) on the
    /// same batch.
    pub fn level_logp(&mut self, h: &HostBatch, valid: usize) -> &[f32] {
        let job = h.node_job[h.valid_nodes[valid] as usize] as usize;
        let Some(limit_head) = &self.limit_head else {
            let s = &mut self.s;
            let (p0, pn) = h.job_pairs[job];
            let rows = s.joint_start[valid]..s.joint_start[valid + 1];
            let stage = s.stage_logp[valid];
            s.limit_logp.clear();
            s.limit_logp
                .extend(s.joint[rows].iter().map(|&x| x - stage));
            s.levels.clear();
            s.levels
                .extend_from_slice(&h.pair_level[p0 as usize..(p0 + pn) as usize]);
            return &s.limit_logp;
        };
        let d = self.cfg.dim;
        let s = &mut self.s;
        let (p0, pn) = h.job_pairs[job];
        s.limit_logp.clear();
        s.levels.clear();
        for k in p0..p0 + pn {
            let level = h.pair_level[k as usize];
            s.row.clear();
            s.row
                .extend_from_slice(&h.job_x[job * JOB_FEATURES..(job + 1) * JOB_FEATURES]);
            s.row.extend_from_slice(&s.job_sum[job * d..(job + 1) * d]);
            s.row.extend_from_slice(&s.global);
            s.row.push(level as f32 / LEVEL_SCALE);
            limit_head.apply(&s.row, &mut s.a, &mut s.b);
            s.limit_logp.push(s.a[0]);
            s.levels.push(level);
        }
        log_softmax(&mut s.limit_logp);
        &s.limit_logp
    }

    /// Log-probabilities of the partition levels of valid node `valid` (an index into
    /// `h.valid_nodes`), in the model's level order; empty when the stage gets no
    /// partition decision or the model has no branch. Call after
    /// [`stage_logp`](Self::stage_logp) on the same batch.
    pub fn part_logp(&mut self, h: &HostBatch, valid: usize) -> &[f32] {
        self.s.part_logp.clear();
        let (Some(head), Some(&(r0, rn))) = (&self.partition_head, h.valid_parts.get(valid)) else {
            return &self.s.part_logp;
        };
        let (d, f) = (self.cfg.dim, self.cfg.input_features);
        let emb = embeddings(&self.memo, &mut self.emb, &mut self.emb_ready, &self.enc);
        let s = &mut self.s;
        let v = h.valid_nodes[valid] as usize;
        for r in r0 as usize..(r0 + rn) as usize {
            key_row(&mut s.row, h, v, f, d, emb, &s.job_sum);
            s.row.extend_from_slice(&s.global);
            s.row
                .extend_from_slice(&h.part_x[r * PART_FEATURES..(r + 1) * PART_FEATURES]);
            head.apply(&s.row, &mut s.a, &mut s.b);
            s.part_logp.push(s.a[0]);
        }
        log_softmax(&mut s.part_logp);
        &s.part_logp
    }

    /// Chooses a stage, then a limit for its job, for the single observation in `h`.
    pub fn decide(&mut self, h: &HostBatch, choice: Choice) -> FastDecision {
        let (u_stage, u_level) = match choice {
            Choice::Greedy => (None, None),
            Choice::Sample(a, b) => (Some(a), Some(b)),
        };
        let i = pick(self.stage_logp(h), u_stage);
        let stage_logp = self.s.stage_logp[i];
        let node = h.valid_nodes[i] as usize;
        let job = h.node_job[node] as usize;
        let k = pick(self.level_logp(h, i), u_level);
        let level = self.s.levels[k];
        FastDecision {
            stage: node,
            valid_index: i,
            job,
            level_index: k,
            level,
            limit: h.limit_for_level(job, level),
            logp: stage_logp + self.s.limit_logp[k],
        }
    }

    /// The critic's value of the observation last scored by [`stage_logp`](Self::stage_logp)
    /// or [`decide`](Self::decide); `None` for designs without a critic.
    pub fn value(&mut self, h: &HostBatch) -> Option<f32> {
        let critic = self.critic.as_ref()?;
        let (d, f) = (self.cfg.dim, self.cfg.input_features);
        let emb = embeddings(&self.memo, &mut self.emb, &mut self.emb_ready, &self.enc);
        let s = &mut self.s;
        // [global, sum over nodes of (features, embedding), sum over jobs of (job features,
        // job summary)], as in `Policy::forward`.
        s.row.clear();
        s.row.extend_from_slice(&s.global);
        s.row.resize(d + f + d + JOB_FEATURES + d, 0.0);
        let (nodes, jobs) = s.row[d..].split_at_mut(f + d);
        for i in 0..h.nodes() {
            let x = &h.x[i * NODE_FEATURES..i * NODE_FEATURES + f];
            for (o, v) in nodes
                .iter_mut()
                .zip(x.iter().chain(&emb[i * d..(i + 1) * d]))
            {
                *o += v;
            }
        }
        for j in 0..h.jobs() {
            let x = &h.job_x[j * JOB_FEATURES..(j + 1) * JOB_FEATURES];
            for (o, v) in jobs
                .iter_mut()
                .zip(x.iter().chain(&s.job_sum[j * d..(j + 1) * d]))
            {
                *o += v;
            }
        }
        critic.apply(&s.row, &mut s.a, &mut s.b);
        Some(s.a[0])
    }
}

/// The row a key-query model's stage head reads for node `v` of `h`: its first `f`
/// features, its embedding and its job's summary, as in `Policy::forward`. The MLP stage
/// head (and the partition head, before its level's features) reads it followed by the
/// global summary.
fn key_row(
    row: &mut Vec<f32>,
    h: &HostBatch,
    v: usize,
    f: usize,
    d: usize,
    emb: &[f32],
    job_sum: &[f32],
) {
    let j = h.node_job[v] as usize;
    row.clear();
    row.extend_from_slice(&h.x[v * NODE_FEATURES..v * NODE_FEATURES + f]);
    row.extend_from_slice(&emb[v * d..(v + 1) * d]);
    row.extend_from_slice(&job_sum[j * d..(j + 1) * d]);
}

/// The node embeddings of the last observation scored: the encoder's own output when there
/// is no memo, else gathered from the memo into `gathered`, once per decision (`ready`; a
/// key-query model's decisions do not need them, only its critic and partition head). (A
/// function of the fields, so that the caller can borrow the scratch mutably beside it.)
fn embeddings<'a>(
    memo: &Option<Box<JobMemo>>,
    gathered: &'a mut Vec<f32>,
    ready: &mut bool,
    enc: &'a EncoderScratch,
) -> &'a [f32] {
    match memo {
        None => enc.embeddings(),
        Some(m) => {
            if !*ready {
                m.gather_embeddings(gathered);
                *ready = true;
            }
            gathered
        }
    }
}

/// Job summaries of every job of `h` into `out` (`[jobs * dim]`), from the node embeddings
/// `emb`: each job's unfinished nodes through the job MLP then summed (Decima), or summed
/// then through it (MPDA), in node order.
fn job_sums(
    cfg: &PolicyConfig,
    job_mlp: &HostMlp,
    h: &HostBatch,
    emb: &[f32],
    s: &mut Scratch,
    out: &mut Vec<f32>,
) {
    let (n, jobs) = (h.nodes(), h.jobs());
    let (d, f) = (cfg.dim, cfg.input_features);
    let node_in = f + d;
    let node_row = |s: &mut Scratch, i: usize| {
        s.row.clear();
        s.row
            .extend_from_slice(&h.x[i * NODE_FEATURES..i * NODE_FEATURES + f]);
        s.row.extend_from_slice(&emb[i * d..(i + 1) * d]);
    };
    out.clear();
    out.resize(jobs * d, 0.0);
    match cfg.job_summary {
        JobSummaryKind::NodeMlpThenSum => {
            for i in (0..n).filter(|&i| h.unfinished[i] > 0.0) {
                node_row(s, i);
                job_mlp.apply(&s.row, &mut s.a, &mut s.b);
                let j = h.node_job[i] as usize;
                for (o, v) in out[j * d..(j + 1) * d].iter_mut().zip(&s.a) {
                    *o += v;
                }
            }
        }
        JobSummaryKind::SumThenMlp => {
            s.c.clear();
            s.c.resize(jobs * node_in, 0.0);
            for i in (0..n).filter(|&i| h.unfinished[i] > 0.0) {
                node_row(s, i);
                let j = h.node_job[i] as usize;
                for (o, v) in s.c[j * node_in..(j + 1) * node_in].iter_mut().zip(&s.row) {
                    *o += v;
                }
            }
            for j in 0..jobs {
                job_mlp.apply(&s.c[j * node_in..(j + 1) * node_in], &mut s.a, &mut s.b);
                out[j * d..(j + 1) * d].copy_from_slice(&s.a);
            }
        }
    }
}
