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
//! the global summary. A key-query model (`PolicyConfig::key_dim`) keeps more: each job's
//! term of its summed global summary, and the key of each of its stages that has been
//! schedulable, so that its per-job work per decision is a lookup, a sum and a dot product.

use std::collections::HashMap;

use super::encoder::bucket;
use super::layers::HostMlp;
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
    /// Key-query models (`PolicyConfig::key_dim`) only, else empty: the job's term of the
    /// global summary (`[dim]`), and its nodes' stage keys (`[nodes * key_dim]`), each
    /// computed the first time its node is schedulable (`has_key`).
    global: Vec<f32>,
    keys: Vec<f32>,
    has_key: Vec<bool>,
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

/// What the jobs that missed computed, in miss order (the miss batch's node and job
/// order), for [`JobMemo::store_and_gather`]. `global` and `keys` are empty but for
/// key-query models.
pub(crate) struct MissResults<'a> {
    pub dim: usize,
    /// `[miss nodes * dim]`.
    pub emb: &'a [f32],
    /// `[miss jobs * dim]`.
    pub job_sum: &'a [f32],
    /// `[miss jobs * dim]`: each job's term of the global summary.
    pub global: &'a [f32],
    pub key_dim: usize,
}

/// Buffers for computing a key.
pub(crate) struct KeyScratch<'a> {
    pub row: &'a mut Vec<f32>,
    pub a: &'a mut Vec<f32>,
    pub b: &'a mut Vec<f32>,
}

/// The bucket of a key, which is compared in full: a multiply-xor hash over pairs of
/// 32-bit words in four independent lanes (a serial FNV-1a over every word is one long
/// chain of dependent multiplications).
fn hash(words: &[u32]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut lanes = [K, K.rotate_left(17), K.rotate_left(31), K.rotate_left(47)];
    let mut chunks = words.chunks_exact(8);
    for c in &mut chunks {
        for (l, p) in lanes.iter_mut().zip(c.chunks_exact(2)) {
            let w = u64::from(p[0]) | u64::from(p[1]) << 32;
            *l = (*l ^ w).wrapping_mul(K).rotate_left(29);
        }
    }
    let mut h =
        lanes[0] ^ lanes[1].rotate_left(7) ^ lanes[2].rotate_left(13) ^ lanes[3].rotate_left(19);
    for &w in chunks.remainder() {
        h = (h ^ u64::from(w)).wrapping_mul(K).rotate_left(29);
    }
    (h ^ words.len() as u64).wrapping_mul(K) ^ (h >> 32)
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
        miss: MissResults,
        emb_out: Option<&mut Vec<f32>>,
        sum_out: &mut Vec<f32>,
    ) {
        let MissResults {
            dim,
            emb,
            job_sum,
            global,
            key_dim,
        } = miss;
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
            e.global.clear();
            if !global.is_empty() {
                e.global.extend_from_slice(&global[m * dim..(m + 1) * dim]);
            }
            e.keys.clear();
            e.has_key.clear();
            if key_dim > 0 {
                e.keys.resize(nn * key_dim, 0.0);
                e.has_key.resize(nn, false);
            }
            e.used = self.decision;
            node += nn;
            self.index.insert(k, slot);
            self.jobs[j as usize].2 = slot;
        }
        sum_out.clear();
        for &(_, _, slot) in &self.jobs {
            sum_out.extend_from_slice(&self.entries[slot as usize].job_sum);
        }
        if let Some(out) = emb_out {
            self.gather_embeddings(out);
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

    /// Every job's node embeddings, in the observation's node order, into `out`
    /// (`[nodes * dim]`). Call after [`store_and_gather`](Self::store_and_gather).
    pub(crate) fn gather_embeddings(&self, out: &mut Vec<f32>) {
        out.clear();
        for &(_, _, slot) in &self.jobs {
            out.extend_from_slice(&self.entries[slot as usize].emb);
        }
    }

    /// The global summary of a summed design: every job's term, added in job order (the
    /// order of a full recompute, so the sum is bit-identical to it).
    pub(crate) fn sum_global(&self, out: &mut [f32]) {
        out.fill(0.0);
        for &(_, _, slot) in &self.jobs {
            for (o, v) in out.iter_mut().zip(&self.entries[slot as usize].global) {
                *o += v;
            }
        }
    }

    /// The stage key of node `v` of `h` (`[key_dim]`), of a key-query model whose stage
    /// head is `head`: computed from the row [its first `f` features, its embedding, its
    /// job's summary] (as `FastPolicy` builds it without a memo) the first time it is
    /// asked for, then kept with the job's entry.
    pub(crate) fn key(
        &mut self,
        h: &HostBatch,
        v: usize,
        f: usize,
        head: &HostMlp,
        s: KeyScratch,
    ) -> &[f32] {
        let job = h.node_job[v] as usize;
        let (n0, _, slot) = self.jobs[job];
        let local = v - n0 as usize;
        let e = &mut self.entries[slot as usize];
        // A job has at least one node; its keys are `[nodes * key_dim]`.
        let (d, k) = (e.job_sum.len(), e.keys.len() / e.has_key.len());
        if !e.has_key[local] {
            let KeyScratch { row, a, b } = s;
            row.clear();
            row.extend_from_slice(&h.x[v * NODE_FEATURES..v * NODE_FEATURES + f]);
            row.extend_from_slice(&e.emb[local * d..(local + 1) * d]);
            row.extend_from_slice(&e.job_sum);
            head.apply(row, a, b);
            e.keys[local * k..(local + 1) * k].copy_from_slice(a);
            e.has_key[local] = true;
        }
        &e.keys[local * k..(local + 1) * k]
    }
}
