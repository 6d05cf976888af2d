//! The graph batch: many observations (from many episodes) concatenated into one
//! block-diagonal graph, in edge-list form.
//!
//! `HostBatch` fills flat host vectors that are cleared and reused, so building a batch
//! allocates nothing once the buffers have grown; `GraphTensors` moves them to a device.

use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::sim::Observation;

/// Decima's five node features plus MPDA's in- and out-degree.
pub const NODE_FEATURES: usize = 7;
/// Decima's job features: the first three node features.
pub const JOB_FEATURES: usize = 3;
/// Decima scales the parallelism level by a hard-coded 50, whatever the cluster size.
pub const LEVEL_SCALE: f32 = 50.0;
/// Degrees are small integers; this keeps their features near the others' range.
const DEGREE_SCALE: f32 = 4.0;

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
    pub job_graph: Vec<i64>,
    /// Per job: its smallest valid limit (levels below it map to it).
    pub job_min_limit: Vec<u32>,
    /// Per graph: first job and job count (jobs in arrival order).
    pub graph_jobs: Vec<(u32, u32)>,
    /// Per graph: first node and node count.
    pub graph_nodes: Vec<(u32, u32)>,
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
        self.job_graph.clear();
        self.job_min_limit.clear();
        self.graph_jobs.clear();
        self.graph_nodes.clear();
        self.valid_nodes.clear();
        self.valid_node_graph.clear();
        self.graph_valid.clear();
        self.pair_job.clear();
        self.pair_level.clear();
        self.job_pairs.clear();
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
        for (s, st) in obs.stages.iter().enumerate() {
            let f = obs.decima_features(s);
            self.x.extend_from_slice(&f);
            self.x.push(st.in_degree as f32 / DEGREE_SCALE);
            self.x.push(st.out_degree as f32 / DEGREE_SCALE);
            self.unfinished.push(if st.done { 0.0 } else { 1.0 });
            self.height.push(0);
            self.node_job.push(i64::from(job0 + st.job));
            self.node_graph.push(g);
        }
        for &[p, c] in &obs.edges {
            self.edge_child.push(i64::from(node0 + c));
            self.edge_parent.push(i64::from(node0 + p));
        }
        // Heights by relaxation: at most the DAG's depth passes over the edges.
        let h = &mut self.height[node0 as usize..];
        loop {
            let mut changed = false;
            for &[p, c] in &obs.edges {
                if h[p as usize] < h[c as usize] + 1 {
                    h[p as usize] = h[c as usize] + 1;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        let v0 = self.valid_nodes.len() as u32;
        for &s in &obs.schedulable {
            self.valid_nodes.push(i64::from(node0 + s));
            self.valid_node_graph.push(g);
        }
        self.graph_valid.push((v0, obs.schedulable.len() as u32));
        for (j, job) in obs.jobs.iter().enumerate() {
            let f = obs.decima_features(job.first_stage as usize);
            self.job_x.extend_from_slice(&f[..JOB_FEATURES]);
            self.job_graph.push(g);
            self.job_min_limit.push(job.min_limit);
            let p0 = self.pair_job.len() as u32;
            if job.stage_range().any(|s| obs.stages[s].schedulable) {
                let lo = job.min_limit.min(levels).max(1);
                for level in lo..=levels {
                    self.pair_job.push(i64::from(job0 + j as u32));
                    self.pair_level.push(level);
                }
            }
            self.job_pairs.push((p0, self.pair_job.len() as u32 - p0));
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
    /// `None` when the batch has no edges.
    pub edges: Option<(Tensor<1, Int>, Tensor<1, Int>)>,
    /// `step_masks[d]` is `[nodes, 1]`: 1 for the nodes updated at step `d`.
    pub step_masks: Vec<Tensor<2>>,
    /// GCN: (source, destination, coefficient `[E', 1]`), self-loops included.
    pub gcn_edges: Option<(Tensor<1, Int>, Tensor<1, Int>, Tensor<2>)>,
    pub job_x: Tensor<2>,
    pub job_graph: Tensor<1, Int>,
    /// GRU: per step, the job index of each graph and a `[graphs, 1]` mask of real steps.
    pub gru_steps: Vec<(Tensor<1, Int>, Tensor<2>)>,
    pub valid_nodes: Tensor<1, Int>,
    pub valid_node_graph: Tensor<1, Int>,
    pub pair_job: Tensor<1, Int>,
    /// `[pairs, 1]`: level / 50.
    pub pair_level: Tensor<2>,
}

impl GraphTensors {
    pub fn new(h: &HostBatch, needs: Needs, dev: &Device) -> Self {
        let (n, j) = (h.nodes(), h.jobs());
        let edges = (!h.edge_child.is_empty())
            .then(|| (ints(&h.edge_child, dev), ints(&h.edge_parent, dev)));
        let mut mask = vec![0f32; n];
        let step_masks = (1..=needs.steps)
            .map(|d| {
                for (m, &ht) in mask.iter_mut().zip(&h.height) {
                    // Nodes deeper than the last step are updated there, with what has arrived.
                    let at = (ht as usize).min(needs.steps);
                    *m = if at == d { 1.0 } else { 0.0 };
                }
                floats(&mask, [n, 1], dev)
            })
            .collect();
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
            edges,
            step_masks,
            gcn_edges,
            job_x: floats(&h.job_x, [j, JOB_FEATURES], dev),
            job_graph: ints(&h.job_graph, dev),
            gru_steps,
            valid_nodes: ints(&h.valid_nodes, dev),
            valid_node_graph: ints(&h.valid_node_graph, dev),
            pair_job: ints(&h.pair_job, dev),
            pair_level: floats(&levels, [levels.len(), 1], dev),
        }
    }
}
