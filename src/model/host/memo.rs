//! What does not change between decisions, kept: each job's node embeddings and job
//! summary, keyed by everything they are computed from.
//!
//! Why: a decision re-encoded every job, so its cost grew with the number of concurrent
//! jobs (0.24 ms at 50 jobs, 1.6 ms at 400 with the shipped MPDA model). Messages pass only
//! along a job's own edges, so a job's embeddings and summary depend on its own nodes'
//! features, done flags and edges alone; between two decisions most jobs change none of
//! these. The key holds those inputs bit for bit (a hash finds the entry, a full comparison
//! confirms it), so a hit returns exactly what a recompute would: the jobs that missed are
//! encoded together in a batch of their own, through the same code in the same order, and
//! results are bit-identical to encoding the whole observation.
//!
//! What stays per decision: the key of every job (a pass over its feature rows), the global
//! summary over all jobs, and the heads over every schedulable stage, whose inputs include
//! the global summary.

use std::collections::HashMap;

use super::encoder::bucket;
use crate::model::batch::{HostBatch, NODE_FEATURES};

/// A job's inputs (the key) and outputs.
#[derive(Debug, Clone, Default)]
struct Entry {
    key: Vec<u32>,
    hash: u64,
    /// `[nodes * dim]`.
    emb: Vec<f32>,
    /// `[dim]`.
    job_sum: Vec<f32>,
    /// The decision that last used it.
    used: u64,
}

/// The memo, and the buffers of one decision's lookups.
#[derive(Debug, Clone, Default)]
pub(crate) struct JobMemo {
    index: HashMap<u64, u32>,
    entries: Vec<Entry>,
    /// Entries free for reuse.
    spare: Vec<u32>,
    decision: u64,
    key: Vec<u32>,
    /// Per job of the observation: its first node, node count, and entry (`u32::MAX`: a
    /// miss, encoded this decision).
    jobs: Vec<(u32, u32, u32)>,
    /// The observation's edges bucketed by job (counting sort, edge order kept).
    edge_start: Vec<u32>,
    edges: Vec<u32>,
    cursor: Vec<u32>,
    /// The jobs that missed, as a batch of their own; per miss its job, key hash and range
    /// of `miss_keys`.
    pub(crate) miss: HostBatch,
    miss_jobs: Vec<(u32, u64, u32, u32)>,
    miss_keys: Vec<u32>,
    pub(crate) hits: u64,
    pub(crate) misses: u64,
}

/// FNV-1a over 32-bit words, 64-bit state: the bucket of a key, which is compared in full.
fn hash(words: &[u32]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &w in words {
        h = (h ^ u64::from(w)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

impl JobMemo {
    /// Looks every job of graph 0 of `h` up (`inputs`: the feature columns the policy
    /// reads) and builds [`miss`](Self::miss) from the jobs that missed.
    pub(crate) fn lookup(&mut self, h: &HostBatch, inputs: usize) {
        self.decision += 1;
        let (n, jobs) = (h.nodes(), h.jobs());
        // Node ranges: a job's stages are contiguous in an observation.
        self.jobs.clear();
        let mut i = 0;
        while i < n {
            let j = h.node_job[i];
            let start = i;
            while i < n && h.node_job[i] == j {
                i += 1;
            }
            debug_assert_eq!(j as usize, self.jobs.len(), "jobs in node order");
            self.jobs.push((start as u32, (i - start) as u32, u32::MAX));
        }
        debug_assert_eq!(self.jobs.len(), jobs);
        bucket(
            jobs,
            h.edge_child
                .iter()
                .map(|&c| h.node_job[c as usize] as usize),
            0..h.edge_child.len() as u32,
            &mut self.edge_start,
            &mut self.edges,
            &mut self.cursor,
        );
        self.miss.clear();
        self.miss.graphs = 1;
        self.miss_jobs.clear();
        self.miss_keys.clear();
        for j in 0..jobs {
            let (n0, nn, _) = self.jobs[j];
            self.key.clear();
            self.key.push(nn);
            for v in n0..n0 + nn {
                let v = v as usize;
                self.key.extend(
                    h.x[v * NODE_FEATURES..v * NODE_FEATURES + inputs]
                        .iter()
                        .map(|x| x.to_bits()),
                );
                self.key.push(h.unfinished[v].to_bits());
            }
            let edges = self.edge_start[j] as usize..self.edge_start[j + 1] as usize;
            for &e in &self.edges[edges.clone()] {
                let e = e as usize;
                self.key.push(h.edge_child[e] as u32 - n0);
                self.key.push(h.edge_parent[e] as u32 - n0);
            }
            let k = hash(&self.key);
            if let Some(&slot) = self.index.get(&k)
                && self.entries[slot as usize].key == self.key
            {
                self.entries[slot as usize].used = self.decision;
                self.jobs[j].2 = slot;
                self.hits += 1;
                continue;
            }
            self.misses += 1;
            let k0 = self.miss_keys.len() as u32;
            self.miss_keys.extend_from_slice(&self.key);
            self.miss_jobs
                .push((j as u32, k, k0, self.miss_keys.len() as u32));
            self.push_miss(h, j, edges);
        }
    }

    /// Appends job `j` of `h` to the miss batch as its next job.
    fn push_miss(&mut self, h: &HostBatch, j: usize, edges: std::ops::Range<usize>) {
        let (n0, nn, _) = self.jobs[j];
        let (n0, nn) = (n0 as usize, nn as usize);
        let m = &mut self.miss;
        let shift = m.nodes() as i64 - n0 as i64;
        let mj = m.jobs() as i64;
        m.x.extend_from_slice(&h.x[n0 * NODE_FEATURES..(n0 + nn) * NODE_FEATURES]);
        m.unfinished.extend_from_slice(&h.unfinished[n0..n0 + nn]);
        m.height.extend_from_slice(&h.height[n0..n0 + nn]);
        m.node_job.extend(std::iter::repeat_n(mj, nn));
        m.node_graph.extend(std::iter::repeat_n(0, nn));
        for &e in &self.edges[edges] {
            m.edge_child.push(h.edge_child[e as usize] + shift);
            m.edge_parent.push(h.edge_parent[e as usize] + shift);
        }
        m.job_graph.push(0);
    }

    /// Stores the misses' results (`emb`: the miss batch's `[nodes * dim]`, `job_sum`: its
    /// `[jobs * dim]`), then writes every job's embeddings and summary into `emb_out`
    /// (`[nodes * dim]` of the observation) and `sum_out` (`[jobs * dim]`).
    pub(crate) fn store_and_gather(
        &mut self,
        dim: usize,
        emb: &[f32],
        job_sum: &[f32],
        emb_out: &mut Vec<f32>,
        sum_out: &mut Vec<f32>,
    ) {
        let mut node = 0;
        for (m, &(j, k, k0, k1)) in self.miss_jobs.iter().enumerate() {
            let (_, nn, _) = self.jobs[j as usize];
            let nn = nn as usize;
            let slot = match self.spare.pop() {
                Some(s) => s,
                None => {
                    self.entries.push(Entry::default());
                    self.entries.len() as u32 - 1
                }
            };
            let e = &mut self.entries[slot as usize];
            e.key.clear();
            e.key
                .extend_from_slice(&self.miss_keys[k0 as usize..k1 as usize]);
            e.hash = k;
            e.emb.clear();
            e.emb.extend_from_slice(&emb[node * dim..(node + nn) * dim]);
            e.job_sum.clear();
            e.job_sum
                .extend_from_slice(&job_sum[m * dim..(m + 1) * dim]);
            e.used = self.decision;
            node += nn;
            self.index.insert(k, slot);
            self.jobs[j as usize].2 = slot;
        }
        emb_out.clear();
        sum_out.clear();
        for &(_, _, slot) in &self.jobs {
            let e = &self.entries[slot as usize];
            emb_out.extend_from_slice(&e.emb);
            sum_out.extend_from_slice(&e.job_sum);
        }
        // Entries unused for 16 decisions go once they outnumber the jobs 8 to 1: a
        // finished job's, or a state its job has left. Keeping more found more (76% of jobs
        // against 71% at 400 jobs) but ran slower (a larger table).
        let live = self.entries.len() - self.spare.len();
        if live > 8 * self.jobs.len() + 64 {
            for (slot, e) in self.entries.iter_mut().enumerate() {
                if e.used + 16 < self.decision && !e.key.is_empty() {
                    if self.index.get(&e.hash) == Some(&(slot as u32)) {
                        self.index.remove(&e.hash);
                    }
                    e.key.clear();
                    self.spare.push(slot as u32);
                }
            }
        }
    }
}
