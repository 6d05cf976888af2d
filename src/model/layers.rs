//! Small building blocks: an MLP with a configurable activation, and a GRU cell. Each
//! exports its weights to its host twin in `model/host/layers.rs`.

use burn::module::{Module, Param};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::{leaky_relu, sigmoid};
use burn::tensor::{Device, Int, Tensor};
use serde::{Deserialize, Serialize};

use crate::model::host::layers::{Dense, HostGru, HostMlp};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// Decima: leaky ReLU with slope 0.2.
    LeakyRelu,
    /// MPDA: tanh everywhere.
    Tanh,
}

/// tanh as `2 sigmoid(2x) - 1`, computed once. The same function, but Burn's CPU backend
/// computes tanh with libm's scalar `tanhf` (through `expm1f`), which was 30% of a training
/// step's time, and the backward of Burn's sigmoid computes the sigmoid again from its
/// input (its `expf` was 13%). So the value is computed off the graph, and the gradient
/// rides on `y + (x - x) (1 - y^2)`: `x - x` is exactly zero, so the value is exactly `y`,
/// and the derivative is tanh's, `1 - y^2`, from the value already computed.
pub fn tanh<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    let y = sigmoid(x.clone().detach().mul_scalar(2.0))
        .mul_scalar(2.0)
        .sub_scalar(1.0);
    let slope = y.clone().powi_scalar(2).neg().add_scalar(1.0);
    y + (x.clone() - x.detach()) * slope
}

impl Activation {
    pub fn apply<const D: usize>(self, x: Tensor<D>) -> Tensor<D> {
        match self {
            Activation::LeakyRelu => leaky_relu(x, 0.2),
            Activation::Tanh => tanh(x),
        }
    }
}

/// Fully connected layers `input -> hidden... -> output`. Decima applies its activation on
/// every layer, the output included (`activate_output`); heads end with a linear layer.
/// A logit head feeding a softmax has no output bias: a constant shift cancels in the
/// softmax, so that bias could never learn (its gradient is exactly zero).
#[derive(Module, Debug)]
pub struct Mlp {
    layers: Vec<Linear>,
    #[module(skip)]
    act: Activation,
    #[module(skip)]
    activate_output: bool,
}

impl Mlp {
    pub fn new(
        input: usize,
        hidden: &[usize],
        output: usize,
        act: Activation,
        activate_output: bool,
        dev: &Device,
    ) -> Self {
        Self::with_output_bias(input, hidden, output, act, activate_output, true, dev)
    }

    /// A logit head for a softmax: linear output without bias.
    pub fn logits(input: usize, hidden: &[usize], act: Activation, dev: &Device) -> Self {
        Self::with_output_bias(input, hidden, 1, act, false, false, dev)
    }

    /// Keys for a dot product with a query: linear output without bias (a bias would add
    /// the same `bias . query` to every key's score, which cancels in the softmax).
    pub fn keys(
        input: usize,
        hidden: &[usize],
        output: usize,
        act: Activation,
        dev: &Device,
    ) -> Self {
        Self::with_output_bias(input, hidden, output, act, false, false, dev)
    }

    fn with_output_bias(
        input: usize,
        hidden: &[usize],
        output: usize,
        act: Activation,
        activate_output: bool,
        output_bias: bool,
        dev: &Device,
    ) -> Self {
        let mut dims = vec![input];
        dims.extend_from_slice(hidden);
        dims.push(output);
        let last = dims.len() - 2;
        let layers = dims
            .windows(2)
            .enumerate()
            .map(|(i, w)| {
                LinearConfig::new(w[0], w[1])
                    .with_bias(i < last || output_bias)
                    .init(dev)
            })
            .collect();
        Self {
            layers,
            act,
            activate_output,
        }
    }

    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        self.forward_from(0, x)
    }

    /// `x` through layers `first..`.
    fn forward_from(&self, first: usize, mut x: Tensor<2>) -> Tensor<2> {
        let last = self.layers.len() - 1;
        for (i, l) in self.layers.iter().enumerate().skip(first) {
            x = l.forward(x);
            if i < last || self.activate_output {
                x = self.act.apply(x);
            }
        }
        x
    }

    /// The rows `[prefix[rows[r]], tail[r]]`, without building them: the first layer runs
    /// once per prefix row and its tail columns' term is added per row. For many rows that
    /// share few prefixes (a joint head's (stage, level) rows) this is most of the first
    /// layer's work saved. Equal to `forward` on the joined rows up to rounding.
    pub fn forward_shared_prefix(
        &self,
        prefix: Tensor<2>,
        rows: Tensor<1, Int>,
        tail: Tensor<2>,
    ) -> Tensor<2> {
        let first = &self.layers[0];
        let w = first.weight.val();
        let (p, t) = (prefix.dims()[1], tail.dims()[1]);
        let [input, _] = w.dims();
        debug_assert_eq!(
            p + t,
            input,
            "the prefix and tail make the first layer's input"
        );
        let mut x = prefix.matmul(w.clone().narrow(0, 0, p)).select(0, rows)
            + tail.matmul(w.narrow(0, p, t));
        if let Some(b) = &first.bias {
            x = x + b.val().unsqueeze_dim(0);
        }
        if self.layers.len() > 1 || self.activate_output {
            x = self.act.apply(x);
        }
        self.forward_from(1, x)
    }

    /// The weights for the host forward pass.
    pub fn host(&self) -> HostMlp {
        HostMlp::new(
            self.layers.iter().map(host_dense).collect(),
            self.act,
            self.activate_output,
        )
    }
}

/// A GRU cell (Keras/PyTorch convention, reset gate applied to the hidden projection).
#[derive(Module, Debug)]
pub struct GruCell {
    input: Linear,
    hidden: Linear,
    #[module(skip)]
    size: usize,
}

impl GruCell {
    pub fn new(input: usize, size: usize, dev: &Device) -> Self {
        Self {
            input: LinearConfig::new(input, 3 * size).init(dev),
            hidden: LinearConfig::new(size, 3 * size).init(dev),
            size,
        }
    }

    pub fn size(&self) -> usize {
        self.size
    }

    /// One step: `x [B, input]`, `h [B, size]` -> `[B, size]`.
    pub fn forward(&self, x: Tensor<2>, h: Tensor<2>) -> Tensor<2> {
        let xi = self.input.forward(x).chunk(3, 1);
        let hh = self.hidden.forward(h.clone()).chunk(3, 1);
        let r = sigmoid(xi[0].clone() + hh[0].clone());
        let z = sigmoid(xi[1].clone() + hh[1].clone());
        let n = tanh(xi[2].clone() + r * hh[2].clone());
        let one = Tensor::ones_like(&z);
        (one - z.clone()) * n + z * h
    }

    /// The weights for the host forward pass.
    pub fn host(&self) -> HostGru {
        HostGru::new(host_dense(&self.input), host_dense(&self.hidden), self.size)
    }
}

/// A parameter's values, row-major, for the host forward pass.
pub(crate) fn host_values<const D: usize>(p: &Param<Tensor<D>>) -> Vec<f32> {
    p.val()
        .into_data()
        .try_to_vec::<f32>()
        .expect("f32 parameters")
}

/// A linear layer's weights for the host forward pass (`W` stays `[input][output]`, as
/// Burn stores it).
pub(crate) fn host_dense(l: &Linear) -> Dense {
    let [input, output] = l.weight.val().dims();
    Dense::new(
        host_values(&l.weight),
        l.bias.as_ref().map(host_values),
        input,
        output,
    )
}
