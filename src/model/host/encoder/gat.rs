//! The host side of `model/encoder/gat.rs`: MPDA's graph attention, per head, along the
//! bottom-up schedule with residual messages; the heads averaged, then tanh.

use super::{EncoderScratch, features, updated_at};
use crate::model::batch::HostBatch;
use crate::model::host::layers::{Dense, tanh};

/// `GatEncoder`'s weights, exported by `GatEncoder::host`.
#[derive(Debug, Clone)]
pub struct HostGat {
    proj: Dense,
    /// Attention vectors, each `[heads * dim]`: one set, or one per step.
    att_src: Vec<Vec<f32>>,
    att_dst: Vec<Vec<f32>>,
    /// `[heads * dim]`.
    bias: Vec<f32>,
    inputs: usize,
    heads: usize,
    dim: usize,
}

impl HostGat {
    /// `proj` maps a node's first `inputs` features to `heads * dim`; `att_src` and
    /// `att_dst` hold as many sets as the Burn encoder (one, or one per step).
    pub fn new(
        proj: Dense,
        att_src: Vec<Vec<f32>>,
        att_dst: Vec<Vec<f32>>,
        bias: Vec<f32>,
        inputs: usize,
        heads: usize,
        dim: usize,
    ) -> Self {
        debug_assert_eq!(proj.output(), heads * dim);
        Self {
            proj,
            att_src,
            att_dst,
            bias,
            inputs,
            heads,
            dim,
        }
    }

    pub(crate) fn encode(&self, h: &HostBatch, steps: usize, s: &mut EncoderScratch) {
        let n = h.nodes();
        let (heads, d) = (self.heads, self.dim);
        let hd = heads * d;
        s.children.build(h);
        s.emb.clear();
        for i in 0..n {
            self.proj.apply(features(h, self.inputs, i), &mut s.a);
            s.emb.extend_from_slice(&s.a);
        }
        for k in 1..=steps {
            let (a_src, a_dst) = (
                &self.att_src[(k - 1) % self.att_src.len()],
                &self.att_dst[(k - 1) % self.att_dst.len()],
            );
            s.s_src.clear();
            s.s_dst.clear();
            for i in 0..n {
                for hh in 0..heads {
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
            for i in (0..n).filter(|&i| updated_at(h, steps, i, k)) {
                let children = s.children.of(i);
                for hh in 0..heads {
                    let e = |c: usize| {
                        let v = s.s_dst[i * heads + hh] + s.s_src[c * heads + hh];
                        if v < 0.0 { 0.2 * v } else { v }
                    };
                    let m = children
                        .iter()
                        .map(|&c| e(c as usize))
                        .fold(f32::NEG_INFINITY, f32::max);
                    let z: f32 = children.iter().map(|&c| (e(c as usize) - m).exp()).sum();
                    let out = &mut s.next[i * hd + hh * d..i * hd + (hh + 1) * d];
                    for (o, b) in out.iter_mut().zip(&self.bias[hh * d..(hh + 1) * d]) {
                        *o += b;
                    }
                    for &c in children {
                        let c = c as usize;
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
                let m: f32 =
                    (0..heads).map(|hh| s.emb[i * hd + hh * d + j]).sum::<f32>() / heads as f32;
                s.next.push(tanh(m));
            }
        }
        std::mem::swap(&mut s.emb, &mut s.next);
    }
}
