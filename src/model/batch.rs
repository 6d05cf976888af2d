//! The graph batch: many observations (from many episodes) concatenated into one
//! block-diagonal graph, in edge-list form.
//!
//! `HostBatch` fills flat host vectors that are cleared and reused, so building a batch
//! allocates nothing once the buffers have grown; `GraphTensors` moves them to a device.

use burn::tensor::{Device, Int, Tensor, TensorData};

use super::decode::LevelRows;
use super::partition::{self, PART_FEATURES};
use super::policy::PolicyConfig;
use crate::sim::Observation;

/// Decima's five node features, MPDA's in- and out-degree, then four features of Spark's
/// engine ([`spark_features`]). A policy reads a prefix: `input_features` = 5 (Decima),
/// 7 (MPDA) or 11 (MPDA plus Spark's), so models trained on fewer see exactly what they did.
pub const NODE_FEATURES: usize = 11;
/// Bytes that make one unit of the data feature (1 GB).
const DATA_SCALE: f64 = 1e9;
/// Decima's job features: the first three node features.
pub const JOB_FEATURES: usize = 3;
/// Decima scales the parallelism level by a hard-coded 50, whatever the cluster size.
pub const LEVEL_SCALE: f32 = 50.0;
/// Degrees are small integers; this keeps their features near the others' range.
const DEGREE_SCALE: f32 = 4.0;
/// The cluster-wide part of an observation, one row per graph (`HostBatch::cluster_x`):
/// the executors being placed (Decima's feature 2) and the mean speed of the free slots
/// (feature 10).
pub const CLUSTER_FEATURES: usize = 2;
/// The node feature columns that are not the node's own: whether the executors come from
/// the node's job, how many are being placed, and the free slots' speed. They change at
/// almost every decision for every job, so a model with a key-query stage head
/// (`PolicyConfig::key_dim`) reads them in its heads, and its node rows hold zeros there:
/// a job's embedding then depends on the job alone and is kept between decisions.
pub const CLUSTER_COLUMNS: [usize; 3] = [1, 2, 10];

/// Decima's five node features of stage `s` (`ActorAgent.translate_state`), with its
/// constants: the job's executors, whether the executors come from this job, the
/// executors being placed, the remaining work and the remaining tasks. Feature
/// engineering belongs to the model: the simulator only says what the cluster looks like.
pub fn decima_features(obs: &Observation, s: usize) -> [f32; 5] {
    let st = &obs.stages[s];
    let job = obs.job_of(s);
    [
        job.exec_map as f32 / 20.0,
        if obs.is_source(st.job as usize) {
            2.0
        } else {
            -2.0
        },
        obs.num_source_exec as f32 / 20.0,
        (f64::from(st.remaining_tasks()) * st.last_task_ms / 100_000.0) as f32,
        st.remaining_tasks() as f32 / 200.0,
    ]
}

/// The opt-in features of Spark's engine for stage `s`: the data its unstarted tasks will
/// read (GB), its skew above even (largest task over the mean, minus 1, capped at 8, over
/// 4), whether it waits for a more local slot, and the mean speed of the free slots being
/// placed (capacity: 1 on identical executors). All zero but the speed (1) on Decima's
/// engine, which has no such data.
pub fn spark_features(obs: &Observation, s: usize) -> [f32; 4] {
    spark_features_at(obs, s, free_slot_speed(obs))
}

/// [`spark_features`] with the free slots' speed already computed (it is the same for
/// every stage of an observation).
fn spark_features_at(obs: &Observation, s: usize, speed: f32) -> [f32; 4] {
    let st = &obs.stages[s];
    match obs.stage_data.get(s) {
        None => [0.0, 0.0, 0.0, speed],
        Some(d) => {
            let left = f64::from(st.remaining_tasks()) / f64::from(st.num_tasks.max(1));
            [
                (d.bytes * left / DATA_SCALE) as f32,
                ((d.skew - 1.0).clamp(0.0, 8.0) / 4.0) as f32,
                if d.locality_wait { 1.0 } else { 0.0 },
                speed,
            ]
        }
    }
}

/// Longest paths to a leaf over `edges` (`[parent, child]`), by relaxation from `h`. The
/// edges are visited last to first: engines list them child after child, and Spark numbers
/// a stage after its parents, so one pass usually settles every height and a second
/// confirms it (in edge order it took a pass per level of the DAG).
fn relax_heights(h: &mut [u32], edges: &[[u32; 2]]) {
    loop {
        let mut changed = false;
        for &[p, c] in edges.iter().rev() {
            if h[p as usize] < h[c as usize] + 1 {
                h[p as usize] = h[c as usize] + 1;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
}

/// The mean speed of the free slots being placed (1 on identical executors).
fn free_slot_speed(obs: &Observation) -> f32 {
    let (mut free, mut weighted) = (0.0, 0.0);
    for h in &obs.hosts {
        free += f64::from(h.free_slots);
        weighted += f64::from(h.free_slots) * h.speed;
    }
    (if free > 0.0 { weighted / free } else { 1.0 }) as f32
}

#[derive(Debug, Clone, Default)]
pub struct HostBatch {
    pub graphs: usize,
    /// `[nodes * NODE_FEATURES]`, row-major.
    pub x: Vec<f32>,
    /// 1 for stages not yet done (summaries sum over these), else 0.
    pub unfinished: Vec<f32>,
    /// Longest path to a leaf: Decima's bottom-up schedule updates a node at this step.
    pub height: Vec<u32>,
    pub node_job: Vec<i64>,
    pub node_graph: Vec<i64>,
    /// Edges as (child, parent): messages flow from the leaves up, as in Decima.
    pub edge_child: Vec<i64>,
    pub edge_parent: Vec<i64>,
    /// `[jobs * JOB_FEATURES]`.
    pub job_x: Vec<f32>,
    /// `[graphs * CLUSTER_FEATURES]`: the executors being placed and the free slots' speed.
    pub cluster_x: Vec<f32>,
    pub job_graph: Vec<i64>,
    /// Per job: its smallest valid limit (levels below it map to it).
    pub job_min_limit: Vec<u32>,
    /// Per graph: first job and job count (jobs in arrival order).
    pub graph_jobs: Vec<(u32, u32)>,
    /// Per graph: first node and node count.
    pub graph_nodes: Vec<(u32, u32)>,
    /// Per graph: first edge and edge count.
    pub graph_edges: Vec<(u32, u32)>,
    /// Schedulable nodes (batch node indices), graph after graph.
    pub valid_nodes: Vec<i64>,
    pub valid_node_graph: Vec<i64>,
    /// Per graph: range into `valid_nodes`.
    pub graph_valid: Vec<(u32, u32)>,
    /// Rows of the limit head: (job, level) pairs with valid levels, job after job.
    pub pair_job: Vec<i64>,
    pub pair_level: Vec<u32>,
    /// Per job: range into the pairs (empty for jobs with no schedulable stage).
    pub job_pairs: Vec<(u32, u32)>,
    /// Rows of the partition head (models with `partition_levels`): per row, the batch
    /// index of its valid node (into `valid_nodes`), and its level's features
    /// (`[rows * PART_FEATURES]`), valid node after valid node, levels in the model's order.
    pub part_valid: Vec<i64>,
    pub part_x: Vec<f32>,
    /// Per valid node: range into the partition rows (empty when the stage gets no
    /// partition decision). Empty altogether for models without the branch.
    pub valid_parts: Vec<(u32, u32)>,
}

impl HostBatch {
    pub fn clear(&mut self) {
        self.graphs = 0;
        self.x.clear();
        self.unfinished.clear();
        self.height.clear();
        self.node_job.clear();
        self.node_graph.clear();
        self.edge_child.clear();
        self.edge_parent.clear();
        self.job_x.clear();
        self.cluster_x.clear();
        self.job_graph.clear();
        self.job_min_limit.clear();
        self.graph_jobs.clear();
        self.graph_nodes.clear();
        self.graph_edges.clear();
        self.valid_nodes.clear();
        self.valid_node_graph.clear();
        self.graph_valid.clear();
        self.pair_job.clear();
        self.pair_level.clear();
        self.job_pairs.clear();
        self.part_valid.clear();
        self.part_x.clear();
        self.valid_parts.clear();
    }

    pub fn nodes(&self) -> usize {
        self.node_job.len()
    }

    pub fn jobs(&self) -> usize {
        self.job_graph.len()
    }

    /// Appends one observation as a new graph. `levels` is the number of parallelism
    /// levels the limit head scores (levels `1..=levels`).
    pub fn push(&mut self, obs: &Observation, levels: u32) {
        let g = self.graphs as i64;
        self.graphs += 1;
        let node0 = self.nodes() as u32;
        let job0 = self.jobs() as u32;
        self.graph_nodes.push((node0, obs.stages.len() as u32));
        self.graph_jobs.push((job0, obs.jobs.len() as u32));
        let speed = free_slot_speed(obs);
        self.cluster_x
            .extend_from_slice(&[obs.num_source_exec as f32 / 20.0, speed]);
        for (s, st) in obs.stages.iter().enumerate() {
            let f = decima_features(obs, s);
            self.x.extend_from_slice(&f);
            self.x.push(st.in_degree as f32 / DEGREE_SCALE);
            self.x.push(st.out_degree as f32 / DEGREE_SCALE);
            self.x.extend_from_slice(&spark_features_at(obs, s, speed));
            self.unfinished.push(if st.done { 0.0 } else { 1.0 });
            self.height.push(0);
            self.node_job.push(i64::from(job0 + st.job));
            self.node_graph.push(g);
        }
        self.graph_edges
            .push((self.edge_child.len() as u32, obs.edges.len() as u32));
        for &[p, c] in &obs.edges {
            self.edge_child.push(i64::from(node0 + c));
            self.edge_parent.push(i64::from(node0 + p));
        }
        // Heights by relaxation: at most a DAG's depth passes over its edges. Each job's
        // edges on their own when they come job after job (every engine's observations), so
        // a pass costs the job's edges, not the whole observation's.
        let h = &mut self.height[node0 as usize..];
        let job_of = |e: &[u32; 2]| obs.stages[e[1] as usize].job;
        if obs.edges.is_sorted_by_key(job_of) {
            for run in obs.edges.chunk_by(|a, b| job_of(a) == job_of(b)) {
                relax_heights(h, run);
            }
        } else {
            relax_heights(h, &obs.edges);
        }
        let v0 = self.valid_nodes.len() as u32;
        for &s in &obs.schedulable {
            self.valid_nodes.push(i64::from(node0 + s));
            self.valid_node_graph.push(g);
        }
        self.graph_valid.push((v0, obs.schedulable.len() as u32));
        for (j, job) in obs.jobs.iter().enumerate() {
            let f = decima_features(obs, job.first_stage as usize);
            self.job_x.extend_from_slice(&f[..JOB_FEATURES]);
            self.job_graph.push(g);
            self.job_min_limit.push(job.min_limit);
            let p0 = self.pair_job.len() as u32;
            if job.stage_range().any(|s| obs.stages[s].schedulable) {
                let lo = job.min_limit.min(levels).max(1);
                let n = (levels - lo + 1) as usize;
                self.pair_job
                    .extend(std::iter::repeat_n(i64::from(job0 + j as u32), n));
                self.pair_level.extend(lo..=levels);
            }
            self.job_pairs.push((p0, self.pair_job.len() as u32 - p0));
        }
    }

    /// Appends one observation as a new graph for `cfg`'s heads: its limit levels and, for
    /// a model with a partition branch, the partition rows of its eligible stages.
    pub fn push_for(&mut self, obs: &Observation, cfg: &PolicyConfig) {
        let node0 = self.nodes();
        self.push(obs, cfg.levels as u32);
        if cfg.key_dim.is_some() {
            for row in self.x[node0 * NODE_FEATURES..].chunks_exact_mut(NODE_FEATURES) {
                for c in CLUSTER_COLUMNS {
                    row[c] = 0.0;
                }
            }
        }
        let Some(levels) = &cfg.partition_levels else {
            return;
        };
        for &s in &obs.schedulable {
            let at = self.part_valid.len() as u32;
            let v = self.valid_parts.len() as i64;
            if partition::push_level_features(obs, s as usize, levels, &mut self.part_x) {
                self.part_valid.extend(std::iter::repeat_n(v, levels.len()));
            }
            self.valid_parts
                .push((at, self.part_valid.len() as u32 - at));
        }
    }

    /// Appends graph `g` of `src` as a new graph: how training gathers a minibatch of stored
    /// decisions without rebuilding them from observations.
    pub fn extend_graph(&mut self, src: &HostBatch, g: usize) {
        self.extend_graph_limits_of(src, g, None);
    }

    /// [`extend_graph`](Self::extend_graph), keeping the limit rows of job `only` (an index
    /// among the graph's jobs) alone when given. Training needs the limit distribution of
    /// the chosen job only; the other jobs' rows were 95% of a batch's work.
    pub fn extend_graph_limits_of(&mut self, src: &HostBatch, g: usize, only: Option<usize>) {
        let gi = self.graphs as i64;
        self.graphs += 1;
        let (n0, nn) = src.graph_nodes[g];
        let (j0, jn) = src.graph_jobs[g];
        let (e0, en) = src.graph_edges[g];
        let (v0, vn) = src.graph_valid[g];
        let (n0, nn, j0, jn) = (n0 as usize, nn as usize, j0 as usize, jn as usize);
        let node_shift = self.nodes() as i64 - n0 as i64;
        let job_shift = self.jobs() as i64 - j0 as i64;
        self.graph_nodes.push((self.nodes() as u32, nn as u32));
        self.graph_jobs.push((self.jobs() as u32, jn as u32));
        self.graph_edges.push((self.edge_child.len() as u32, en));
        self.graph_valid.push((self.valid_nodes.len() as u32, vn));
        self.x
            .extend_from_slice(&src.x[n0 * NODE_FEATURES..(n0 + nn) * NODE_FEATURES]);
        self.unfinished
            .extend_from_slice(&src.unfinished[n0..n0 + nn]);
        self.height.extend_from_slice(&src.height[n0..n0 + nn]);
        self.node_job
            .extend(src.node_job[n0..n0 + nn].iter().map(|&j| j + job_shift));
        self.node_graph.extend(std::iter::repeat_n(gi, nn));
        let edges = e0 as usize..(e0 + en) as usize;
        self.edge_child.extend(
            src.edge_child[edges.clone()]
                .iter()
                .map(|&v| v + node_shift),
        );
        self.edge_parent
            .extend(src.edge_parent[edges].iter().map(|&v| v + node_shift));
        let valid = v0 as usize..(v0 + vn) as usize;
        self.valid_nodes.extend(
            src.valid_nodes[valid.clone()]
                .iter()
                .map(|&v| v + node_shift),
        );
        self.valid_node_graph
            .extend(std::iter::repeat_n(gi, vn as usize));
        self.job_x
            .extend_from_slice(&src.job_x[j0 * JOB_FEATURES..(j0 + jn) * JOB_FEATURES]);
        self.cluster_x
            .extend_from_slice(&src.cluster_x[g * CLUSTER_FEATURES..(g + 1) * CLUSTER_FEATURES]);
        self.job_graph.extend(std::iter::repeat_n(gi, jn));
        self.job_min_limit
            .extend_from_slice(&src.job_min_limit[j0..j0 + jn]);
        for (j, &(p0, pn)) in src.job_pairs[j0..j0 + jn].iter().enumerate() {
            let at = self.pair_job.len() as u32;
            if only.is_some_and(|k| k != j) {
                self.job_pairs.push((at, 0));
                continue;
            }
            self.job_pairs.push((at, pn));
            let rows = p0 as usize..(p0 + pn) as usize;
            self.pair_job
                .extend(src.pair_job[rows.clone()].iter().map(|&j| j + job_shift));
            self.pair_level.extend_from_slice(&src.pair_level[rows]);
        }
        if !src.valid_parts.is_empty() {
            let shift = self.valid_parts.len() as i64 - i64::from(v0);
            for &(r0, rn) in &src.valid_parts[valid.clone()] {
                let at = self.part_valid.len() as u32;
                let rows = r0 as usize..(r0 + rn) as usize;
                self.part_valid
                    .extend(src.part_valid[rows.clone()].iter().map(|&v| v + shift));
                self.part_x.extend_from_slice(
                    &src.part_x[rows.start * PART_FEATURES..rows.end * PART_FEATURES],
                );
                self.valid_parts.push((at, rn));
            }
        }
    }

    /// The joint head's rows ([`ActionHead::Joint`](super::policy::ActionHead)): one per
    /// (valid node, valid level of its job), valid node after valid node, levels in their
    /// pairs' order. Appends each row's valid node (an index into `valid_nodes`) to `valid`
    /// and its pair to `pair`.
    pub fn joint_rows(&self, valid: &mut Vec<i64>, pair: &mut Vec<i64>) {
        for (i, &v) in self.valid_nodes.iter().enumerate() {
            let (p0, pn) = self.job_pairs[self.node_job[v as usize] as usize];
            valid.extend(std::iter::repeat_n(i as i64, pn as usize));
            pair.extend((p0..p0 + pn).map(i64::from));
        }
    }

    /// Where each valid node's joint rows ([`joint_rows`](Self::joint_rows)) start, in
    /// `valid_nodes` order.
    pub fn joint_row_starts(&self) -> Vec<u32> {
        let mut at = 0;
        self.valid_nodes
            .iter()
            .map(|&v| {
                let start = at;
                at += self.job_pairs[self.node_job[v as usize] as usize].1;
                start
            })
            .collect()
    }

    /// Where the level log-probabilities of valid node `valid` (an index into
    /// `valid_nodes`) lie in a policy's level output laid out as `rows`: its job's pairs
    /// (two branches), or its own joint rows (one joint head).
    pub fn level_range(&self, valid: usize, rows: LevelRows) -> std::ops::Range<usize> {
        let pairs = |i: usize| self.job_pairs[self.node_job[self.valid_nodes[i] as usize] as usize];
        match rows {
            LevelRows::PerJob => {
                let (p0, pn) = pairs(valid);
                p0 as usize..(p0 + pn) as usize
            }
            LevelRows::PerStage => {
                let start: usize = (0..valid).map(|i| pairs(i).1 as usize).sum();
                start..start + pairs(valid).1 as usize
            }
        }
    }

    /// The limit a chosen level stands for: levels below the job's minimum mean the minimum.
    pub fn limit_for_level(&self, job: usize, level: u32) -> u32 {
        level.max(self.job_min_limit[job])
    }
}

fn ints(v: &[i64], dev: &Device) -> Tensor<1, Int> {
    Tensor::from_data(TensorData::new(v.to_vec(), [v.len()]), dev)
}

fn floats<const D: usize>(v: &[f32], shape: [usize; D], dev: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(v.to_vec(), shape), dev)
}

/// What the encoders need beyond the plain edge list.
#[derive(Debug, Clone, Copy, Default)]
pub struct Needs {
    /// Symmetric-normalised undirected edges with self-loops (Kipf's GCN).
    pub gcn: bool,
    /// Padded per-graph job sequences (a GRU over jobs).
    pub gru: bool,
    /// Message-passing steps (bottom-up schedule masks).
    pub steps: usize,
    /// The joint head's (stage, level) rows.
    pub joint: bool,
}

/// The joint head's rows on a device ([`HostBatch::joint_rows`]).
#[derive(Debug, Clone)]
pub struct JointRows {
    /// Per row, its valid node (an index into `valid_nodes`).
    pub valid: Tensor<1, Int>,
    /// Per row, its (job, level) pair.
    pub pair: Tensor<1, Int>,
}

/// The nodes a message-passing step updates, and the edges into them. A step touches only
/// its own nodes and edges, so a sweep of all steps costs one pass over the graph rather
/// than one per step.
#[derive(Debug, Clone)]
pub struct StepGraph {
    /// Nodes updated at this step (batch node indices).
    pub nodes: Tensor<1, Int>,
    /// Edges into those nodes: child and parent batch node indices.
    pub child: Tensor<1, Int>,
    pub parent: Tensor<1, Int>,
    /// The parent's position in `nodes`.
    pub parent_local: Tensor<1, Int>,
    pub len: usize,
}

/// Groups nodes by the step that updates them: a node of height `h >= 1` at step
/// `min(h, steps)` (deeper nodes are updated at the last step with what has arrived).
fn step_graphs(h: &HostBatch, steps: usize, dev: &Device) -> Vec<StepGraph> {
    let step_of = |i: usize| (h.height[i] as usize).min(steps);
    let mut local = vec![0i64; h.nodes()];
    let mut out = Vec::new();
    for d in 1..=steps {
        let nodes: Vec<i64> = (0..h.nodes())
            .filter(|&i| step_of(i) == d)
            .map(|i| i as i64)
            .collect();
        if nodes.is_empty() {
            continue;
        }
        for (k, &i) in nodes.iter().enumerate() {
            local[i as usize] = k as i64;
        }
        let (mut child, mut parent, mut parent_local) = (Vec::new(), Vec::new(), Vec::new());
        for (&c, &p) in h.edge_child.iter().zip(&h.edge_parent) {
            if step_of(p as usize) == d {
                child.push(c);
                parent.push(p);
                parent_local.push(local[p as usize]);
            }
        }
        out.push(StepGraph {
            len: nodes.len(),
            nodes: ints(&nodes, dev),
            child: ints(&child, dev),
            parent: ints(&parent, dev),
            parent_local: ints(&parent_local, dev),
        });
    }
    out
}

/// A batch on a device.
#[derive(Debug, Clone)]
pub struct GraphTensors {
    pub graphs: usize,
    pub nodes: usize,
    pub jobs: usize,
    pub x: Tensor<2>,
    pub unfinished: Tensor<2>,
    pub node_job: Tensor<1, Int>,
    pub node_graph: Tensor<1, Int>,
    /// The bottom-up schedule, one entry per step that updates some node.
    pub steps: Vec<StepGraph>,
    /// GCN: (source, destination, coefficient `[E', 1]`), self-loops included.
    pub gcn_edges: Option<(Tensor<1, Int>, Tensor<1, Int>, Tensor<2>)>,
    pub job_x: Tensor<2>,
    /// `[graphs, CLUSTER_FEATURES]`.
    pub cluster_x: Tensor<2>,
    pub job_graph: Tensor<1, Int>,
    /// GRU: per step, the job index of each graph and a `[graphs, 1]` mask of real steps.
    pub gru_steps: Vec<(Tensor<1, Int>, Tensor<2>)>,
    pub valid_nodes: Tensor<1, Int>,
    pub valid_node_graph: Tensor<1, Int>,
    pub pair_job: Tensor<1, Int>,
    /// `[pairs, 1]`: level / 50.
    pub pair_level: Tensor<2>,
    /// The partition rows (`HostBatch::part_valid`, `part_x`), when the batch has any.
    pub parts: Option<(Tensor<1, Int>, Tensor<2>)>,
    /// The joint head's rows, for a policy with one.
    pub joint: Option<JointRows>,
}

impl GraphTensors {
    pub fn new(h: &HostBatch, needs: Needs, dev: &Device) -> Self {
        let (n, j) = (h.nodes(), h.jobs());
        let steps = step_graphs(h, needs.steps, dev);
        let gcn_edges = needs.gcn.then(|| {
            let mut deg = vec![1f32; n];
            for (&c, &p) in h.edge_child.iter().zip(&h.edge_parent) {
                deg[c as usize] += 1.0;
                deg[p as usize] += 1.0;
            }
            let (mut src, mut dst, mut coef) = (Vec::new(), Vec::new(), Vec::new());
            for (i, d) in deg.iter().enumerate() {
                src.push(i as i64);
                dst.push(i as i64);
                coef.push(1.0 / d);
            }
            for (&c, &p) in h.edge_child.iter().zip(&h.edge_parent) {
                let w = 1.0 / (deg[c as usize] * deg[p as usize]).sqrt();
                src.extend([c, p]);
                dst.extend([p, c]);
                coef.extend([w, w]);
            }
            let m = coef.len();
            (ints(&src, dev), ints(&dst, dev), floats(&coef, [m, 1], dev))
        });
        let gru_steps = if needs.gru {
            let t_max = h.graph_jobs.iter().map(|g| g.1).max().unwrap_or(0);
            (0..t_max)
                .map(|t| {
                    let idx: Vec<i64> = h
                        .graph_jobs
                        .iter()
                        .map(|&(first, len)| i64::from(first + t.min(len.saturating_sub(1))))
                        .collect();
                    let m: Vec<f32> = h
                        .graph_jobs
                        .iter()
                        .map(|g| if t < g.1 { 1.0 } else { 0.0 })
                        .collect();
                    (ints(&idx, dev), floats(&m, [h.graphs, 1], dev))
                })
                .collect()
        } else {
            Vec::new()
        };
        let levels: Vec<f32> = h
            .pair_level
            .iter()
            .map(|&l| l as f32 / LEVEL_SCALE)
            .collect();
        Self {
            graphs: h.graphs,
            nodes: n,
            jobs: j,
            x: floats(&h.x, [n, NODE_FEATURES], dev),
            unfinished: floats(&h.unfinished, [n, 1], dev),
            node_job: ints(&h.node_job, dev),
            node_graph: ints(&h.node_graph, dev),
            steps,
            gcn_edges,
            job_x: floats(&h.job_x, [j, JOB_FEATURES], dev),
            cluster_x: floats(&h.cluster_x, [h.graphs, CLUSTER_FEATURES], dev),
            job_graph: ints(&h.job_graph, dev),
            gru_steps,
            valid_nodes: ints(&h.valid_nodes, dev),
            valid_node_graph: ints(&h.valid_node_graph, dev),
            pair_job: ints(&h.pair_job, dev),
            pair_level: floats(&levels, [levels.len(), 1], dev),
            parts: (!h.part_valid.is_empty()).then(|| {
                (
                    ints(&h.part_valid, dev),
                    floats(&h.part_x, [h.part_valid.len(), PART_FEATURES], dev),
                )
            }),
            joint: needs.joint.then(|| {
                let (mut valid, mut pair) = (Vec::new(), Vec::new());
                h.joint_rows(&mut valid, &mut pair);
                JointRows {
                    valid: ints(&valid, dev),
                    pair: ints(&pair, dev),
                }
            }),
        }
    }
}
