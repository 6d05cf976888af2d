//! Host encoders, one per file, each the plain-Rust twin of the Burn encoder of the same
//! name in `model/encoder/`: `decima.rs`, `gat.rs`, `gcn.rs`. Each Burn encoder exports its
//! weights into its twin (`DecimaEncoder::host`, ...); `tests/model.rs` checks that the two
//! agree. Each maps graph 0 of a `HostBatch` to one embedding per stage, `[nodes * dim]`,
//! into buffers reused from one decision to the next.

pub mod decima;
pub mod gat;
pub mod gcn;

pub use decima::HostDecima;
pub use gat::HostGat;
pub use gcn::HostGcn;

use crate::model::batch::{HostBatch, NODE_FEATURES};

/// The policy's encoder, whichever design it is.
#[derive(Debug, Clone)]
pub enum HostEncoder {
    Decima(HostDecima),
    Gat(HostGat),
    Gcn(HostGcn),
}

impl HostEncoder {
    /// Node embeddings of graph 0 of `h` into `s` (read them with
    /// [`EncoderScratch::embeddings`]); `steps` is the config's message-passing depth.
    pub(crate) fn encode(&self, h: &HostBatch, steps: usize, s: &mut EncoderScratch) {
        match self {
            HostEncoder::Decima(e) => e.encode(h, steps, s),
            HostEncoder::Gat(e) => e.encode(h, steps, s),
            HostEncoder::Gcn(e) => e.encode(h, s),
        }
    }
}

/// Buffers the encoders reuse, so that encoding allocates nothing once they have grown.
#[derive(Debug, Clone, Default)]
pub(crate) struct EncoderScratch {
    /// The result: `[nodes * dim]`.
    emb: Vec<f32>,
    next: Vec<f32>,
    fx: Vec<f32>,
    row: Vec<f32>,
    a: Vec<f32>,
    b: Vec<f32>,
    s_src: Vec<f32>,
    s_dst: Vec<f32>,
    updated: Vec<u32>,
    deg: Vec<f32>,
    children: Children,
}

impl EncoderScratch {
    /// The embeddings of the last [`HostEncoder::encode`], `[nodes * dim]`.
    pub(crate) fn embeddings(&self) -> &[f32] {
        &self.emb
    }
}

/// Each node's children, in compressed rows (CSR), built from the batch's (child, parent)
/// edges: the message-passing encoders visit a node's children in edge order.
#[derive(Debug, Clone, Default)]
struct Children {
    /// `start[i]..start[i + 1]` is node `i`'s range of `list`.
    start: Vec<u32>,
    list: Vec<u32>,
    cursor: Vec<u32>,
}

impl Children {
    fn build(&mut self, h: &HostBatch) {
        bucket(
            h.nodes(),
            h.edge_parent.iter().map(|&p| p as usize),
            h.edge_child.iter().map(|&c| c as u32),
            &mut self.start,
            &mut self.list,
            &mut self.cursor,
        );
    }

    /// Node `i`'s children, in edge order.
    fn of(&self, i: usize) -> &[u32] {
        &self.list[self.start[i] as usize..self.start[i + 1] as usize]
    }
}

/// A counting sort into compressed rows: item `k` (value `values[k]`) goes to bucket
/// `keys[k]`; `start[b]..start[b + 1]` is bucket `b`'s range of `list`, items in their
/// original order. `cursor` is scratch.
pub(crate) fn bucket(
    buckets: usize,
    keys: impl Iterator<Item = usize> + Clone,
    values: impl Iterator<Item = u32>,
    start: &mut Vec<u32>,
    list: &mut Vec<u32>,
    cursor: &mut Vec<u32>,
) {
    start.clear();
    start.resize(buckets + 1, 0);
    let mut items = 0;
    for k in keys.clone() {
        start[k + 1] += 1;
        items += 1;
    }
    for b in 0..buckets {
        start[b + 1] += start[b];
    }
    list.clear();
    list.resize(items, 0);
    cursor.clear();
    cursor.extend_from_slice(&start[..buckets]);
    for (k, v) in keys.zip(values) {
        list[cursor[k] as usize] = v;
        cursor[k] += 1;
    }
}

/// Node `i`'s first `inputs` features.
fn features(h: &HostBatch, inputs: usize, i: usize) -> &[f32] {
    &h.x[i * NODE_FEATURES..i * NODE_FEATURES + inputs]
}

/// Whether node `i` is updated at step `k` of the bottom-up schedule: at the step equal to
/// its height, the highest nodes at the last step.
fn updated_at(h: &HostBatch, steps: usize, i: usize, k: usize) -> bool {
    (h.height[i] as usize).min(steps) == k
}
