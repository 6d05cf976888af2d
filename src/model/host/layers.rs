//! The host's building blocks, mirroring `model/layers.rs`: a dense layer, an MLP and a GRU
//! cell over plain `f32` buffers, and the activations. The Burn modules export their
//! weights into these (`Mlp::host`, `GruCell::host`, `layers::host_dense`).

use crate::model::layers::Activation;

/// `y = x W + b`, with `W` stored `[input][output]` as in Burn.
#[derive(Debug, Clone)]
pub struct Dense {
    w: Vec<f32>,
    b: Option<Vec<f32>>,
    input: usize,
    output: usize,
}

impl Dense {
    /// `w` is `[input * output]`, row-major `[input][output]` (Burn's layout); `b` is
    /// `[output]` when the layer has a bias.
    pub fn new(w: Vec<f32>, b: Option<Vec<f32>>, input: usize, output: usize) -> Self {
        debug_assert_eq!(w.len(), input * output, "weights are [input][output]");
        debug_assert!(b.as_ref().is_none_or(|b| b.len() == output));
        Self {
            w,
            b,
            input,
            output,
        }
    }

    /// Width of the layer's output.
    pub fn output(&self) -> usize {
        self.output
    }

    /// `out = x W + b` for one row.
    pub(crate) fn apply(&self, x: &[f32], out: &mut Vec<f32>) {
        out.clear();
        match &self.b {
            Some(b) => out.extend_from_slice(b),
            None => out.resize(self.output, 0.0),
        }
        let x = &x[..self.input.min(x.len())];
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            unsafe { accumulate_avx2(x, &self.w, out) };
            return;
        }
        accumulate(x, &self.w, out);
    }

    /// [`apply`](Self::apply) on each row of `x` (`[rows * input]`), into `out` (`[rows *
    /// output]`), in one pass: bit-identical to row-by-row calls, without their per-call cost.
    pub(crate) fn apply_rows(&self, x: &[f32], out: &mut Vec<f32>) {
        let rows = x.len() / self.input;
        out.clear();
        for _ in 0..rows {
            match &self.b {
                Some(b) => out.extend_from_slice(b),
                None => out.resize(out.len() + self.output, 0.0),
            }
        }
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            unsafe { accumulate_rows_avx2(x, self.input, &self.w, out) };
            return;
        }
        accumulate_rows(x, self.input, &self.w, out);
    }

    /// `out += t * W[i]`: input `i`'s term, added as [`apply`](Self::apply) adds it.
    fn add_input(&self, i: usize, t: f32, out: &mut [f32]) {
        let n = self.output;
        for (o, &wv) in out.iter_mut().zip(&self.w[i * n..(i + 1) * n]) {
            *o += t * wv;
        }
    }
}

/// `out += x W`, each output summed in the order of `x`. Eight outputs at a time are
/// kept in a local block over the whole of `x`, which the compiler holds in a register,
/// instead of loading and storing `out` once per input; the sums are the same, in the same
/// order.
#[inline(always)]
fn accumulate(x: &[f32], w: &[f32], out: &mut [f32]) {
    const LANES: usize = 8;
    let n = out.len();
    let blocks = n / LANES * LANES;
    for o0 in (0..blocks).step_by(LANES) {
        let mut acc = [0.0f32; LANES];
        acc.copy_from_slice(&out[o0..o0 + LANES]);
        for (i, &xi) in x.iter().enumerate() {
            let wr = &w[i * n + o0..i * n + o0 + LANES];
            for k in 0..LANES {
                acc[k] += xi * wr[k];
            }
        }
        out[o0..o0 + LANES].copy_from_slice(&acc);
    }
    for (o, v) in out.iter_mut().enumerate().skip(blocks) {
        for (i, &xi) in x.iter().enumerate() {
            *v += xi * w[i * n + o];
        }
    }
}

/// [`accumulate`] on each row.
#[inline(always)]
fn accumulate_rows(x: &[f32], input: usize, w: &[f32], out: &mut [f32]) {
    let n = w.len() / input;
    for (xr, or) in x.chunks_exact(input).zip(out.chunks_exact_mut(n)) {
        accumulate(xr, w, or);
    }
}

/// [`accumulate_rows`] compiled for AVX2, as [`accumulate_avx2`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn accumulate_rows_avx2(x: &[f32], input: usize, w: &[f32], out: &mut [f32]) {
    accumulate_rows(x, input, w, out)
}

/// The same loop compiled for AVX2 (8 lanes instead of SSE2's 4). Without FMA the
/// multiplies and adds round exactly as the scalar loop does, so results are bit-identical
/// on every x86-64 CPU.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn accumulate_avx2(x: &[f32], w: &[f32], out: &mut [f32]) {
    accumulate(x, w, out)
}

/// tanh as a rational function (the minimax approximation Eigen uses for `float`): libm's
/// `tanhf` was half of an MPDA decision's time. Plain multiplies, adds and one divide, so
/// it rounds the same on every CPU; it stays within about 1e-7 of the exact value.
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    if x.abs() < 4e-4 {
        return x;
    }
    let x = x.clamp(-7.905_311, 7.905_311);
    let x2 = x * x;
    let mut p = x2 * -2.760_768_5e-16 + 2.000_188e-13;
    p = x2 * p + -8.604_672e-11;
    p = x2 * p + 5.122_297e-8;
    p = x2 * p + 1.485_722_4e-5;
    p = x2 * p + 6.372_619_3e-4;
    p = x2 * p + 4.893_524_6e-3;
    let mut q = x2 * 1.198_258_4e-6 + 1.185_347e-4;
    q = x2 * q + 2.268_434_6e-3;
    q = x2 * q + 4.893_525e-3;
    x * p / q
}

/// `act` in place, as `Activation::apply` does on the Burn side.
pub(crate) fn activate(act: Activation, v: &mut [f32]) {
    match act {
        Activation::LeakyRelu => v.iter_mut().for_each(|x| {
            if *x < 0.0 {
                *x *= 0.2
            }
        }),
        Activation::Tanh => v.iter_mut().for_each(|x| *x = tanh(*x)),
    }
}

/// The host side of `layers::Mlp`.
#[derive(Debug, Clone)]
pub struct HostMlp {
    layers: Vec<Dense>,
    act: Activation,
    activate_output: bool,
}

impl HostMlp {
    pub fn new(layers: Vec<Dense>, act: Activation, activate_output: bool) -> Self {
        assert!(!layers.is_empty(), "an MLP has at least one layer");
        Self {
            layers,
            act,
            activate_output,
        }
    }

    /// Width of the MLP's output.
    pub fn output(&self) -> usize {
        self.layers.last().map_or(0, Dense::output)
    }

    /// Runs one row through the layers; the result is left in `a`.
    pub(crate) fn apply(&self, x: &[f32], a: &mut Vec<f32>, b: &mut Vec<f32>) {
        let last = self.layers.len() - 1;
        a.clear();
        a.extend_from_slice(x);
        for (i, l) in self.layers.iter().enumerate() {
            l.apply(a, b);
            if i < last || self.activate_output {
                activate(self.act, b);
            }
            std::mem::swap(a, b);
        }
    }

    /// The first output of the rows `[prefix, t]`, one per `t` of `lasts`, appended to
    /// `out`: the first layer's sum over the shared prefix is done once (a joint head's rows
    /// of one stage differ in the level alone). Each row's sums run in the order
    /// [`apply`](Self::apply)'s do, so the results are bit-identical to it.
    pub(crate) fn apply_each_last(
        &self,
        prefix: &[f32],
        lasts: impl Iterator<Item = f32>,
        out: &mut Vec<f32>,
        [a, b, shared]: [&mut Vec<f32>; 3],
    ) {
        let first = &self.layers[0];
        debug_assert_eq!(prefix.len() + 1, first.input, "one input after the prefix");
        first.apply(prefix, shared);
        // The first layer's rows, then each further layer on all rows at once.
        a.clear();
        for t in lasts {
            let at = a.len();
            a.extend_from_slice(shared);
            first.add_input(prefix.len(), t, &mut a[at..]);
        }
        let last = self.layers.len() - 1;
        if last > 0 || self.activate_output {
            activate(self.act, a);
        }
        for (i, l) in self.layers.iter().enumerate().skip(1) {
            l.apply_rows(a, b);
            if i < last || self.activate_output {
                activate(self.act, b);
            }
            std::mem::swap(a, b);
        }
        let width = self.output();
        out.extend(a.iter().step_by(width));
    }
}

/// The host side of `layers::GruCell`.
#[derive(Debug, Clone)]
pub struct HostGru {
    input: Dense,
    hidden: Dense,
    size: usize,
}

impl HostGru {
    /// `input` and `hidden` project to `3 * size`: reset, update and candidate, in that
    /// order, as the Burn cell chunks them.
    pub fn new(input: Dense, hidden: Dense, size: usize) -> Self {
        debug_assert_eq!(input.output(), 3 * size);
        debug_assert_eq!(hidden.output(), 3 * size);
        Self {
            input,
            hidden,
            size,
        }
    }

    /// One step: `h` becomes the new hidden state; `xi` and `hh` are scratch.
    pub(crate) fn step(&self, x: &[f32], h: &mut [f32], xi: &mut Vec<f32>, hh: &mut Vec<f32>) {
        self.input.apply(x, xi);
        self.hidden.apply(h, hh);
        let n = self.size;
        let sig = |v: f32| 1.0 / (1.0 + (-v).exp());
        for k in 0..n {
            let r = sig(xi[k] + hh[k]);
            let z = sig(xi[n + k] + hh[n + k]);
            let c = tanh(xi[2 * n + k] + r * hh[2 * n + k]);
            h[k] = (1.0 - z) * c + z * h[k];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The joint head's shortcut gives exactly the plain rows' bits, whatever the depth.
    #[test]
    fn shared_prefix_rows_equal_plain_rows_bit_for_bit() {
        let mut v = 0.37f32;
        let mut next = move || {
            v = (v * 7.31 + 0.113).fract();
            v - 0.5
        };
        for (dims, act) in [
            (vec![9, 7, 5, 1], Activation::LeakyRelu),
            (vec![9, 4, 1], Activation::Tanh),
            (vec![9, 3], Activation::Tanh),
        ] {
            let layers: Vec<Dense> = dims
                .windows(2)
                .map(|w| {
                    let wts = (0..w[0] * w[1]).map(|_| next()).collect();
                    let b = (0..w[1]).map(|_| next()).collect();
                    Dense::new(wts, Some(b), w[0], w[1])
                })
                .collect();
            let mlp = HostMlp::new(layers, act, false);
            let prefix: Vec<f32> = (0..8).map(|_| next() * 3.0).collect();
            let lasts = [0.02f32, 0.5, 1.0, -0.3];
            let (mut a, mut b, mut c, mut got) = (vec![], vec![], vec![], vec![]);
            mlp.apply_each_last(
                &prefix,
                lasts.iter().copied(),
                &mut got,
                [&mut a, &mut b, &mut c],
            );
            for (t, g) in lasts.iter().zip(&got) {
                let mut row = prefix.clone();
                row.push(*t);
                mlp.apply(&row, &mut a, &mut b);
                assert_eq!(a[0].to_bits(), g.to_bits(), "{dims:?}: {} vs {g}", a[0]);
            }
        }
    }

    #[test]
    fn rational_tanh_is_accurate() {
        let mut worst = 0.0f32;
        for i in -200_000..=200_000 {
            let x = i as f32 * 1e-4;
            worst = worst.max((super::tanh(x) - x.tanh()).abs());
        }
        assert!(worst < 5e-7, "max error {worst}");
    }
}
