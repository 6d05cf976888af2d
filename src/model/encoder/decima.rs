//! Decima's graph convolution: `e_v = x_v + g(sum over children c of f(e_c))`, computed
//! bottom-up in one sweep: a node is updated at the step equal to its height, after all its
//! children are final (Decima's `msg_passing_path` schedule).

use burn::module::Module;
use burn::tensor::{Device, IndexingUpdateOp, Tensor};

use crate::model::batch::GraphTensors;
use crate::model::host::encoder::HostDecima;
use crate::model::layers::{Activation, Mlp};
use crate::model::segment::segment_sum;

#[derive(Module, Debug)]
pub struct DecimaEncoder {
    prep: Mlp,
    f: Mlp,
    g: Mlp,
    #[module(skip)]
    inputs: usize,
}

impl DecimaEncoder {
    pub fn new(inputs: usize, hidden: &[usize], dim: usize, dev: &Device) -> Self {
        let act = Activation::LeakyRelu;
        Self {
            prep: Mlp::new(inputs, hidden, dim, act, true, dev),
            f: Mlp::new(dim, hidden, dim, act, true, dev),
            g: Mlp::new(dim, hidden, dim, act, true, dev),
            inputs,
        }
    }

    pub fn forward(&self, t: &GraphTensors) -> Tensor<2> {
        let mut x = self.prep.forward(t.x.clone().narrow(1, 0, self.inputs));
        for st in &t.steps {
            // f on the children of this step's nodes, summed per node, then g on the nodes:
            // nodes not updated now get nothing (not even g's bias).
            let msg = self.f.forward(x.clone().select(0, st.child.clone()));
            let agg = segment_sum(msg, st.parent_local.clone(), st.len);
            x = x.select_assign(
                0,
                st.nodes.clone(),
                self.g.forward(agg),
                IndexingUpdateOp::Add,
            );
        }
        x
    }

    /// The weights for the host forward pass (`model/host/encoder/decima.rs`).
    pub fn host(&self) -> HostDecima {
        HostDecima::new(self.prep.host(), self.f.host(), self.g.host(), self.inputs)
    }
}
