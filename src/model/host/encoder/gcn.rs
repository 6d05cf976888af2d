//! The host side of `model/encoder/gcn.rs`: Kipf & Welling's graph convolution,
//! `H' = act(D^-1/2 (A + I) D^-1/2 H W)`, over the undirected stage graph.

use super::{EncoderScratch, features};
use crate::model::batch::HostBatch;
use crate::model::host::layers::{Dense, activate};
use crate::model::layers::Activation;

/// `GcnEncoder`'s weights, exported by `GcnEncoder::host`.
#[derive(Debug, Clone)]
pub struct HostGcn {
    layers: Vec<Dense>,
    inputs: usize,
    act: Activation,
}

impl HostGcn {
    /// `layers` in order, the first reading a node's first `inputs` features; `act` after
    /// every layer.
    pub fn new(layers: Vec<Dense>, inputs: usize, act: Activation) -> Self {
        Self {
            layers,
            inputs,
            act,
        }
    }

    pub(crate) fn encode(&self, h: &HostBatch, s: &mut EncoderScratch) {
        let n = h.nodes();
        s.deg.clear();
        s.deg.resize(n, 1.0);
        for (&c, &p) in h.edge_child.iter().zip(&h.edge_parent) {
            s.deg[c as usize] += 1.0;
            s.deg[p as usize] += 1.0;
        }
        s.emb.clear();
        for i in 0..n {
            s.emb.extend_from_slice(features(h, self.inputs, i));
        }
        let mut width = self.inputs;
        for l in &self.layers {
            // xW + b for every node, then the normalised sum over neighbours and self.
            s.fx.clear();
            for i in 0..n {
                l.apply(&s.emb[i * width..(i + 1) * width], &mut s.a);
                s.fx.extend_from_slice(&s.a);
            }
            let o = l.output();
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
            activate(self.act, &mut s.next);
            std::mem::swap(&mut s.emb, &mut s.next);
            width = o;
        }
    }
}
