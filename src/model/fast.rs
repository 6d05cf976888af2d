//! Fast per-decision inference on the CPU: the policy's forward pass in plain Rust over
//! weights exported from the Burn model.
//!
//! Why a second forward pass: one decision of MPDA is ~1,000 small tensor ops (8 recurrent
//! attention steps, a GRU over the jobs), and Burn's CPU backend costs a few microseconds
//! per op whatever the size, so a decision took ~4.7 ms. These networks are tiny (width 8
//! to 64), so plain loops over contiguous buffers do the same arithmetic in a fraction of
//! that, without allocating once the buffers have grown. It also scores the parallelism
//! limit only for the chosen stage's job, not for every job. Training stays in Burn
//! (batched, autodiff, any device); `tests/model.rs` checks that both forward passes agree
//! to 1e-5 for every preset.

use burn::module::Param;
use burn::nn::Linear;
use burn::tensor::Tensor;

use super::batch::{HostBatch, JOB_FEATURES, LEVEL_SCALE, NODE_FEATURES};
use super::decode::{Choice, pick};
use super::layers::{Activation, GruCell, Mlp};
use super::policy::{EncoderKind, JobSummaryKind, Policy, PolicyConfig};

fn values<const D: usize>(p: &Param<Tensor<D>>) -> Vec<f32> {
    p.val()
        .into_data()
        .try_to_vec::<f32>()
        .expect("f32 parameters")
}

/// `y = x W + b`, with `W` stored `[input][output]` as in Burn.
#[derive(Debug, Clone)]
struct Dense {
    w: Vec<f32>,
    b: Option<Vec<f32>>,
    input: usize,
    output: usize,
}

impl Dense {
    fn new(l: &Linear) -> Self {
        let [input, output] = l.weight.val().dims();
        Self {
            w: values(&l.weight),
            b: l.bias.as_ref().map(values),
            input,
            output,
        }
    }

    /// `out = x W + b` for one row.
    fn apply(&self, x: &[f32], out: &mut Vec<f32>) {
        out.clear();
        match &self.b {
            Some(b) => out.extend_from_slice(b),
            None => out.resize(self.output, 0.0),
        }
        let x = &x[..self.input.min(x.len())];
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            unsafe { accumulate_avx2(x, &self.w, out) };
            return;
        }
        accumulate(x, &self.w, out);
    }
}

/// `out += x W`, row by row of `W`, each output summed in the order of `x`.
#[inline(always)]
fn accumulate(x: &[f32], w: &[f32], out: &mut [f32]) {
    let n = out.len();
    for (i, &xi) in x.iter().enumerate() {
        for (o, &wv) in out.iter_mut().zip(&w[i * n..(i + 1) * n]) {
            *o += xi * wv;
        }
    }
}

/// The same loop compiled for AVX2 (8 lanes instead of SSE2's 4). Without FMA the
/// multiplies and adds round exactly as the scalar loop does, so results are bit-identical
/// on every x86-64 CPU.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn accumulate_avx2(x: &[f32], w: &[f32], out: &mut [f32]) {
    accumulate(x, w, out)
}

/// tanh as a rational function (the minimax approximation Eigen uses for `float`): libm's
/// `tanhf` was half of an MPDA decision's time. Plain multiplies, adds and one divide, so
/// it rounds the same on every CPU; it stays within about 1e-7 of the exact value.
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    if x.abs() < 4e-4 {
        return x;
    }
    let x = x.clamp(-7.905_311, 7.905_311);
    let x2 = x * x;
    let mut p = x2 * -2.760_768_5e-16 + 2.000_188e-13;
    p = x2 * p + -8.604_672e-11;
    p = x2 * p + 5.122_297e-8;
    p = x2 * p + 1.485_722_4e-5;
    p = x2 * p + 6.372_619_3e-4;
    p = x2 * p + 4.893_524_6e-3;
    let mut q = x2 * 1.198_258_4e-6 + 1.185_347e-4;
    q = x2 * q + 2.268_434_6e-3;
    q = x2 * q + 4.893_525e-3;
    x * p / q
}

fn activate(act: Activation, v: &mut [f32]) {
    match act {
        Activation::LeakyRelu => v.iter_mut().for_each(|x| {
            if *x < 0.0 {
                *x *= 0.2
            }
        }),
        Activation::Tanh => v.iter_mut().for_each(|x| *x = tanh(*x)),
    }
}

#[derive(Debug, Clone)]
struct HostMlp {
    layers: Vec<Dense>,
    act: Activation,
    activate_output: bool,
}

impl HostMlp {
    fn new(m: &Mlp) -> Self {
        Self {
            layers: m.layers.iter().map(Dense::new).collect(),
            act: m.act,
            activate_output: m.activate_output,
        }
    }

    /// Runs one row through the layers; the result is left in `a`.
    fn apply(&self, x: &[f32], a: &mut Vec<f32>, b: &mut Vec<f32>) {
        let last = self.layers.len() - 1;
        a.clear();
        a.extend_from_slice(x);
        for (i, l) in self.layers.iter().enumerate() {
            l.apply(a, b);
            if i < last || self.activate_output {
                activate(self.act, b);
            }
            std::mem::swap(a, b);
        }
    }
}

#[derive(Debug, Clone)]
struct HostGru {
    input: Dense,
    hidden: Dense,
    size: usize,
}

impl HostGru {
    fn new(g: &GruCell) -> Self {
        Self {
            input: Dense::new(&g.input),
            hidden: Dense::new(&g.hidden),
            size: g.size,
        }
    }

    fn step(&self, x: &[f32], h: &mut [f32], xi: &mut Vec<f32>, hh: &mut Vec<f32>) {
        self.input.apply(x, xi);
        self.hidden.apply(h, hh);
        let n = self.size;
        let sig = |v: f32| 1.0 / (1.0 + (-v).exp());
        for k in 0..n {
            let r = sig(xi[k] + hh[k]);
            let z = sig(xi[n + k] + hh[n + k]);
            let c = tanh(xi[2 * n + k] + r * hh[2 * n + k]);
            h[k] = (1.0 - z) * c + z * h[k];
        }
    }
}

#[derive(Debug, Clone)]
enum HostEncoder {
    Decima {
        prep: HostMlp,
        f: HostMlp,
        g: HostMlp,
    },
    Gat {
        proj: Dense,
        att_src: Vec<Vec<f32>>,
        att_dst: Vec<Vec<f32>>,
        bias: Vec<f32>,
        heads: usize,
    },
    Gcn {
        layers: Vec<Dense>,
        act: Activation,
    },
}

/// Reused buffers.
#[derive(Debug, Clone, Default)]
struct Scratch {
    emb: Vec<f32>,
    next: Vec<f32>,
    fx: Vec<f32>,
    row: Vec<f32>,
    a: Vec<f32>,
    b: Vec<f32>,
    c: Vec<f32>,
    s_src: Vec<f32>,
    s_dst: Vec<f32>,
    children: Vec<u32>,
    child_start: Vec<u32>,
    updated: Vec<u32>,
    job_sum: Vec<f32>,
    global: Vec<f32>,
    deg: Vec<f32>,
    stage_logp: Vec<f32>,
    limit_logp: Vec<f32>,
    levels: Vec<u32>,
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
    limit_head: HostMlp,
    critic: Option<HostMlp>,
    s: Scratch,
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

fn log_softmax(v: &mut [f32]) {
    let m = v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let z: f32 = v.iter().map(|x| (x - m).exp()).sum();
    let lz = z.ln();
    v.iter_mut().for_each(|x| *x = *x - m - lz);
}

impl FastPolicy {
    pub fn new(p: &Policy, cfg: &PolicyConfig) -> Self {
        let encoder = match cfg.encoder {
            EncoderKind::Decima => {
                let e = p.decima.as_ref().expect("decima encoder");
                HostEncoder::Decima {
                    prep: HostMlp::new(&e.prep),
                    f: HostMlp::new(&e.f),
                    g: HostMlp::new(&e.g),
                }
            }
            EncoderKind::Gat => {
                let e = p.gat.as_ref().expect("gat encoder");
                HostEncoder::Gat {
                    proj: Dense::new(&e.proj),
                    att_src: e.att_src.iter().map(values).collect(),
                    att_dst: e.att_dst.iter().map(values).collect(),
                    bias: values(&e.bias),
                    heads: e.heads,
                }
            }
            EncoderKind::Gcn => {
                let e = p.gcn.as_ref().expect("gcn encoder");
                HostEncoder::Gcn {
                    layers: e.layers.iter().map(Dense::new).collect(),
                    act: e.act,
                }
            }
        };
        Self {
            cfg: cfg.clone(),
            encoder,
            job_mlp: HostMlp::new(&p.job_mlp),
            global_mlp: p.global_mlp.as_ref().map(HostMlp::new),
            gru: p.gru.as_ref().map(HostGru::new),
            stage_head: HostMlp::new(&p.stage_head),
            limit_head: HostMlp::new(&p.limit_head),
            critic: p.critic.as_ref().map(HostMlp::new),
            s: Scratch::default(),
        }
    }

    /// Node embeddings of graph 0 of `h` into `s.emb` (`[nodes * dim]`).
    fn encode(&mut self, h: &HostBatch) {
        let n = h.nodes();
        let d = self.cfg.dim;
        let f = self.cfg.input_features;
        let steps = self.cfg.steps;
        let s = &mut self.s;
        let raw = |i: usize| &h.x[i * NODE_FEATURES..i * NODE_FEATURES + f];
        // Children lists (CSR) from the (child, parent) edges.
        s.child_start.clear();
        s.child_start.resize(n + 1, 0);
        for &p in &h.edge_parent {
            s.child_start[p as usize + 1] += 1;
        }
        for i in 0..n {
            s.child_start[i + 1] += s.child_start[i];
        }
        s.children.clear();
        s.children.resize(h.edge_child.len(), 0);
        s.next.clear();
        s.next.extend(s.child_start[..n].iter().map(|&x| x as f32));
        for (&c, &p) in h.edge_child.iter().zip(&h.edge_parent) {
            let at = &mut s.next[p as usize];
            s.children[*at as usize] = c as u32;
            *at += 1.0;
        }
        let kids = |s: &Scratch, i: usize| s.child_start[i] as usize..s.child_start[i + 1] as usize;
        let at_step = |i: usize, k: usize| (h.height[i] as usize).min(steps) == k;
        s.emb.clear();
        match &self.encoder {
            HostEncoder::Decima { prep, f: fm, g } => {
                for i in 0..n {
                    prep.apply(raw(i), &mut s.a, &mut s.b);
                    s.emb.extend_from_slice(&s.a);
                }
                for k in 1..=steps {
                    // Only the children of this step's nodes need f, from the embeddings at
                    // the start of the step; the updates are applied after all are computed.
                    s.fx.clear();
                    s.updated.clear();
                    for i in (0..n).filter(|&i| at_step(i, k)) {
                        s.row.clear();
                        s.row.resize(d, 0.0);
                        for e in kids(s, i) {
                            let c = s.children[e] as usize;
                            fm.apply(&s.emb[c * d..(c + 1) * d], &mut s.a, &mut s.b);
                            for (r, v) in s.row.iter_mut().zip(&s.a) {
                                *r += v;
                            }
                        }
                        g.apply(&s.row, &mut s.a, &mut s.b);
                        s.updated.push(i as u32);
                        s.fx.extend_from_slice(&s.a);
                    }
                    for (&i, upd) in s.updated.iter().zip(s.fx.chunks_exact(d)) {
                        let i = i as usize;
                        for (x, v) in s.emb[i * d..(i + 1) * d].iter_mut().zip(upd) {
                            *x += v;
                        }
                    }
                }
            }
            HostEncoder::Gat {
                proj,
                att_src,
                att_dst,
                bias,
                heads,
            } => {
                let hd = heads * d;
                for i in 0..n {
                    proj.apply(raw(i), &mut s.a);
                    s.emb.extend_from_slice(&s.a);
                }
                for k in 1..=steps {
                    let (a_src, a_dst) = (
                        &att_src[(k - 1) % att_src.len()],
                        &att_dst[(k - 1) % att_dst.len()],
                    );
                    s.s_src.clear();
                    s.s_dst.clear();
                    for i in 0..n {
                        for hh in 0..*heads {
                            let x = &s.emb[i * hd + hh * d..i * hd + (hh + 1) * d];
                            let dot = |a: &[f32]| {
                                x.iter()
                                    .zip(&a[hh * d..(hh + 1) * d])
                                    .map(|(p, q)| p * q)
                                    .sum::<f32>()
                            };
                            s.s_src.push(dot(a_src));
                            s.s_dst.push(dot(a_dst));
                        }
                    }
                    s.next.clear();
                    s.next.extend_from_slice(&s.emb);
                    for i in (0..n).filter(|&i| at_step(i, k)) {
                        for hh in 0..*heads {
                            let e = |c: usize| {
                                let v = s.s_dst[i * heads + hh] + s.s_src[c * heads + hh];
                                if v < 0.0 { 0.2 * v } else { v }
                            };
                            let range = kids(s, i);
                            let m = range
                                .clone()
                                .map(|q| e(s.children[q] as usize))
                                .fold(f32::NEG_INFINITY, f32::max);
                            let z: f32 = range
                                .clone()
                                .map(|q| (e(s.children[q] as usize) - m).exp())
                                .sum();
                            let out = &mut s.next[i * hd + hh * d..i * hd + (hh + 1) * d];
                            for (o, b) in out.iter_mut().zip(&bias[hh * d..(hh + 1) * d]) {
                                *o += b;
                            }
                            for q in range {
                                let c = s.children[q] as usize;
                                let alpha = (e(c) - m).exp() / z;
                                for (o, v) in out
                                    .iter_mut()
                                    .zip(&s.emb[c * hd + hh * d..c * hd + (hh + 1) * d])
                                {
                                    *o += alpha * v;
                                }
                            }
                        }
                    }
                    std::mem::swap(&mut s.emb, &mut s.next);
                }
                // Mean over heads, then tanh, into `[n * d]`.
                s.next.clear();
                for i in 0..n {
                    for j in 0..d {
                        let m: f32 = (0..*heads)
                            .map(|hh| s.emb[i * hd + hh * d + j])
                            .sum::<f32>()
                            / *heads as f32;
                        s.next.push(tanh(m));
                    }
                }
                std::mem::swap(&mut s.emb, &mut s.next);
            }
            HostEncoder::Gcn { layers, act } => {
                s.deg.clear();
                s.deg.resize(n, 1.0);
                for (&c, &p) in h.edge_child.iter().zip(&h.edge_parent) {
                    s.deg[c as usize] += 1.0;
                    s.deg[p as usize] += 1.0;
                }
                for i in 0..n {
                    s.emb.extend_from_slice(raw(i));
                }
                let mut width = f;
                for l in layers {
                    // xW + b for every node, then the normalised sum over neighbours and self.
                    s.fx.clear();
                    for i in 0..n {
                        l.apply(&s.emb[i * width..(i + 1) * width], &mut s.a);
                        s.fx.extend_from_slice(&s.a);
                    }
                    let o = l.output;
                    s.next.clear();
                    s.next.resize(n * o, 0.0);
                    for i in 0..n {
                        let w = 1.0 / s.deg[i];
                        for j in 0..o {
                            s.next[i * o + j] += w * s.fx[i * o + j];
                        }
                    }
                    for (&c, &p) in h.edge_child.iter().zip(&h.edge_parent) {
                        let (c, p) = (c as usize, p as usize);
                        let w = 1.0 / (s.deg[c] * s.deg[p]).sqrt();
                        for j in 0..o {
                            s.next[p * o + j] += w * s.fx[c * o + j];
                            s.next[c * o + j] += w * s.fx[p * o + j];
                        }
                    }
                    activate(*act, &mut s.next);
                    std::mem::swap(&mut s.emb, &mut s.next);
                    width = o;
                }
            }
        }
    }

    /// Job summaries (`s.job_sum`, `[jobs * dim]`) and the global summary (`s.global`).
    fn summarise(&mut self, h: &HostBatch) {
        let (n, jobs) = (h.nodes(), h.jobs());
        let (d, f) = (self.cfg.dim, self.cfg.input_features);
        let s = &mut self.s;
        let node_in = f + d;
        let node_row = |s: &mut Scratch, i: usize| {
            s.row.clear();
            s.row
                .extend_from_slice(&h.x[i * NODE_FEATURES..i * NODE_FEATURES + f]);
            s.row.extend_from_slice(&s.emb[i * d..(i + 1) * d]);
        };
        s.job_sum.clear();
        s.job_sum.resize(jobs * d, 0.0);
        match self.cfg.job_summary {
            JobSummaryKind::NodeMlpThenSum => {
                for i in (0..n).filter(|&i| h.unfinished[i] > 0.0) {
                    node_row(s, i);
                    self.job_mlp.apply(&s.row, &mut s.a, &mut s.b);
                    let j = h.node_job[i] as usize;
                    for (o, v) in s.job_sum[j * d..(j + 1) * d].iter_mut().zip(&s.a) {
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
                    self.job_mlp
                        .apply(&s.c[j * node_in..(j + 1) * node_in], &mut s.a, &mut s.b);
                    s.job_sum[j * d..(j + 1) * d].copy_from_slice(&s.a);
                }
            }
        }
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
        self.encode(h);
        self.summarise(h);
        let (d, f) = (self.cfg.dim, self.cfg.input_features);
        let s = &mut self.s;
        s.stage_logp.clear();
        for &v in &h.valid_nodes {
            let (v, j) = (v as usize, h.node_job[v as usize] as usize);
            s.row.clear();
            s.row
                .extend_from_slice(&h.x[v * NODE_FEATURES..v * NODE_FEATURES + f]);
            s.row.extend_from_slice(&s.emb[v * d..(v + 1) * d]);
            s.row.extend_from_slice(&s.job_sum[j * d..(j + 1) * d]);
            s.row.extend_from_slice(&s.global);
            self.stage_head.apply(&s.row, &mut s.a, &mut s.b);
            s.stage_logp.push(s.a[0]);
        }
        log_softmax(&mut s.stage_logp);
        &s.stage_logp
    }

    /// Log-probabilities of job `job`'s valid levels (its rows of the batch's pairs). Call
    /// after [`stage_logp`](Self::stage_logp) on the same batch.
    pub fn limit_logp(&mut self, h: &HostBatch, job: usize) -> &[f32] {
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
            self.limit_head.apply(&s.row, &mut s.a, &mut s.b);
            s.limit_logp.push(s.a[0]);
            s.levels.push(level);
        }
        log_softmax(&mut s.limit_logp);
        &s.limit_logp
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
        let k = pick(self.limit_logp(h, job), u_level);
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
                .zip(x.iter().chain(&s.emb[i * d..(i + 1) * d]))
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

#[cfg(test)]
mod tests {
    #[test]
    fn rational_tanh_is_accurate() {
        let mut worst = 0.0f32;
        for i in -200_000..=200_000 {
            let x = i as f32 * 1e-4;
            worst = worst.max((super::tanh(x) - x.tanh()).abs());
        }
        assert!(worst < 5e-7, "max error {worst}");
    }
}
