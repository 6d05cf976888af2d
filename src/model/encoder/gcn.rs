//! Kipf & Welling's graph convolution (`H' = act(D^-1/2 (A + I) D^-1/2 H W)`) over the
//! undirected stage graph: the encoder of the branching A3C variant.

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Tensor};

use crate::model::batch::GraphTensors;
use crate::model::host::encoder::HostGcn;
use crate::model::layers::{Activation, host_dense};
use crate::model::segment::segment_sum;

#[derive(Module, Debug)]
pub struct GcnEncoder {
    layers: Vec<Linear>,
    #[module(skip)]
    inputs: usize,
    #[module(skip)]
    act: Activation,
}

impl GcnEncoder {
    pub fn new(inputs: usize, hidden: &[usize], dim: usize, act: Activation, dev: &Device) -> Self {
        let mut dims = vec![inputs];
        dims.extend_from_slice(hidden);
        dims.push(dim);
        Self {
            layers: dims
                .windows(2)
                .map(|w| LinearConfig::new(w[0], w[1]).init(dev))
                .collect(),
            inputs,
            act,
        }
    }

    pub fn forward(&self, t: &GraphTensors) -> Tensor<2> {
        let (src, dst, coef) = t
            .gcn_edges
            .clone()
            .expect("GCN batch built with Needs::gcn");
        let mut x = t.x.clone().narrow(1, 0, self.inputs);
        for l in &self.layers {
            let hw = l.forward(x).select(0, src.clone()) * coef.clone();
            x = self.act.apply(segment_sum(hw, dst.clone(), t.nodes));
        }
        x
    }

    /// The weights for the host forward pass (`model/host/encoder/gcn.rs`).
    pub fn host(&self) -> HostGcn {
        HostGcn::new(
            self.layers.iter().map(host_dense).collect(),
            self.inputs,
            self.act,
        )
    }
}
