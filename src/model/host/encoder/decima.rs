//! The host side of `model/encoder/decima.rs`: Decima's graph convolution,
//! `e_v = x_v + g(sum over children c of f(e_c))`, bottom-up in one sweep.

use super::{EncoderScratch, features, updated_at};
use crate::model::batch::HostBatch;
use crate::model::host::layers::HostMlp;

/// `DecimaEncoder`'s weights, exported by `DecimaEncoder::host`.
#[derive(Debug, Clone)]
pub struct HostDecima {
    prep: HostMlp,
    f: HostMlp,
    g: HostMlp,
    inputs: usize,
}

impl HostDecima {
    /// `prep` maps a node's first `inputs` features to its initial embedding; `f` and `g`
    /// are the message and update MLPs.
    pub fn new(prep: HostMlp, f: HostMlp, g: HostMlp, inputs: usize) -> Self {
        Self { prep, f, g, inputs }
    }

    pub(crate) fn encode(&self, h: &HostBatch, steps: usize, s: &mut EncoderScratch) {
        let n = h.nodes();
        let d = self.prep.output();
        s.children.build(h);
        s.emb.clear();
        for i in 0..n {
            self.prep
                .apply(features(h, self.inputs, i), &mut s.a, &mut s.b);
            s.emb.extend_from_slice(&s.a);
        }
        for k in 1..=steps {
            // Only the children of this step's nodes need f, from the embeddings at the
            // start of the step; the updates are applied after all are computed.
            s.fx.clear();
            s.updated.clear();
            for i in (0..n).filter(|&i| updated_at(h, steps, i, k)) {
                s.row.clear();
                s.row.resize(d, 0.0);
                for &c in s.children.of(i) {
                    let c = c as usize;
                    self.f.apply(&s.emb[c * d..(c + 1) * d], &mut s.a, &mut s.b);
                    for (r, v) in s.row.iter_mut().zip(&s.a) {
                        *r += v;
                    }
                }
                self.g.apply(&s.row, &mut s.a, &mut s.b);
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
}
