//! MPDA's graph attention encoder: per head, project the features, then run attention
//! message passing along the bottom-up schedule, adding each step's message residually;
//! average the heads and apply tanh. With `share_attention` (MPDA's release), one set of
//! attention vectors serves every step, making it one GAT layer applied recurrently.

use burn::module::{Module, Param};
use burn::nn::{Initializer, Linear, LinearConfig};
use burn::tensor::activation::leaky_relu;
use burn::tensor::{Device, IndexingUpdateOp, Tensor};

use crate::model::batch::GraphTensors;
use crate::model::host::encoder::HostGat;
use crate::model::layers::{host_dense, host_values, tanh};
use crate::model::segment::{segment_softmax, segment_sum};

#[derive(Module, Debug)]
pub struct GatEncoder {
    proj: Linear,
    /// Attention vectors `[heads, dim]` for the sender (child) and the receiver (parent):
    /// one set, or one per step.
    att_src: Vec<Param<Tensor<2>>>,
    att_dst: Vec<Param<Tensor<2>>>,
    bias: Param<Tensor<2>>,
    #[module(skip)]
    inputs: usize,
    #[module(skip)]
    heads: usize,
    #[module(skip)]
    dim: usize,
}

impl GatEncoder {
    pub fn new(
        inputs: usize,
        heads: usize,
        dim: usize,
        steps: usize,
        share: bool,
        dev: &Device,
    ) -> Self {
        let sets = if share { 1 } else { steps.max(1) };
        let init = Initializer::XavierUniform { gain: 1.0 };
        let att = || {
            (0..sets)
                .map(|_| init.init_with([heads, dim], Some(dim), Some(1), dev))
                .collect()
        };
        Self {
            proj: LinearConfig::new(inputs, heads * dim)
                .with_bias(false)
                .init(dev),
            att_src: att(),
            att_dst: att(),
            bias: Initializer::Zeros.init([heads, dim], dev),
            inputs,
            heads,
            dim,
        }
    }

    pub fn forward(&self, t: &GraphTensors) -> Tensor<2> {
        let n = t.nodes;
        let (heads, dim) = (self.heads, self.dim);
        let mut h: Tensor<3> = self
            .proj
            .forward(t.x.clone().narrow(1, 0, self.inputs))
            .reshape([n, heads, dim]);
        let bias: Tensor<3> = self.bias.val().unsqueeze_dim(0);
        // A step's receivers are updated at that step only, so until then they hold their
        // projection. With one set of attention vectors, every node's receiver score is
        // computed once from the projection: a step then gathers `[edges, heads]` scores
        // rather than `[edges, heads, dim]` rows, whose backward zero-fills and scatters a
        // whole `[nodes, heads, dim]` gradient per step.
        let dst_scores = (self.att_dst.len() == 1)
            .then(|| (h.clone() * self.att_dst[0].val().unsqueeze_dim::<3>(0)).sum_dim(2));
        for (k, st) in t.steps.iter().enumerate() {
            let a_src: Tensor<3> = self.att_src[k % self.att_src.len()].val().unsqueeze_dim(0);
            let hc = h.clone().select(0, st.child.clone());
            let s_src = (hc.clone() * a_src).sum_dim(2);
            let s_dst = match &dst_scores {
                Some(scores) => scores.clone().select(0, st.parent.clone()),
                None => {
                    let a_dst: Tensor<3> =
                        self.att_dst[k % self.att_dst.len()].val().unsqueeze_dim(0);
                    (h.clone().select(0, st.parent.clone()) * a_dst).sum_dim(2)
                }
            };
            let e = leaky_relu(s_dst + s_src, 0.2);
            let alpha = segment_softmax(e, st.parent_local.clone(), st.len);
            let msg = segment_sum(hc * alpha, st.parent_local.clone(), st.len);
            h = h.select_assign(
                0,
                st.nodes.clone(),
                msg + bias.clone(),
                IndexingUpdateOp::Add,
            );
        }
        tanh(h.mean_dim(1).reshape([n, dim]))
    }

    /// The weights for the host forward pass (`model/host/encoder/gat.rs`).
    pub fn host(&self) -> HostGat {
        HostGat::new(
            host_dense(&self.proj),
            self.att_src.iter().map(host_values).collect(),
            self.att_dst.iter().map(host_values).collect(),
            host_values(&self.bias),
            self.inputs,
            self.heads,
            self.dim,
        )
    }
}
