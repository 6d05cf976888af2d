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
        let n = h.nodes();
        self.start.clear();
        self.start.resize(n + 1, 0);
        for &p in &h.edge_parent {
            self.start[p as usize + 1] += 1;
        }
        for i in 0..n {
            self.start[i + 1] += self.start[i];
        }
        self.list.clear();
        self.list.resize(h.edge_child.len(), 0);
        self.cursor.clear();
        self.cursor.extend_from_slice(&self.start[..n]);
        for (&c, &p) in h.edge_child.iter().zip(&h.edge_parent) {
            let at = &mut self.cursor[p as usize];
            self.list[*at as usize] = c as u32;
            *at += 1;
        }
    }

    /// Node `i`'s children, in edge order.
    fn of(&self, i: usize) -> &[u32] {
        &self.list[self.start[i] as usize..self.start[i + 1] as usize]
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
