//! Adam, with its state in a small, deterministic file format.
//!
//! Burn's optimizer keeps its state in a hash map and writes it in hash order, so two
//! identical runs wrote different optimizer files; checkpoints must be bit-identical for
//! the same seed. These networks have a few thousand parameters, so the update runs on the
//! host, parameter by parameter in a fixed order.

use std::collections::BTreeMap;

use burn::module::{Module, ModuleMapper, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Tensor, TensorData};

const MAGIC: &[u8] = b"mpda-adam/1\n";

#[derive(Debug, Clone, PartialEq)]
pub struct Adam {
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    /// Steps taken (for the bias correction).
    pub step: u64,
    /// First and second moments per parameter id.
    moments: BTreeMap<u64, (Vec<f32>, Vec<f32>)>,
}

impl Default for Adam {
    fn default() -> Self {
        Self {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            step: 0,
            moments: BTreeMap::new(),
        }
    }
}

struct Update<'a> {
    adam: &'a mut Adam,
    grads: &'a GradientsParams,
    lr: f32,
    c1: f32,
    c2: f32,
}

impl ModuleMapper for Update<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let id = param.id.val();
        let Some(g) = self.grads.get::<D>(param.id) else {
            return param;
        };
        let g = g.into_data().try_to_vec::<f32>().expect("f32 gradients");
        let (b1, b2, eps, lr, c1, c2) = (
            self.adam.beta1,
            self.adam.beta2,
            self.adam.eps,
            self.lr,
            self.c1,
            self.c2,
        );
        let (m, v) = self
            .adam
            .moments
            .entry(id)
            .or_insert_with(|| (vec![0.0; g.len()], vec![0.0; g.len()]));
        param.map(|t| {
            let dims = t.dims();
            let tracked = t.is_require_grad();
            let dev = t.device();
            let mut w = t.into_data().try_to_vec::<f32>().expect("f32 parameters");
            for i in 0..w.len() {
                m[i] = b1 * m[i] + (1.0 - b1) * g[i];
                v[i] = b2 * v[i] + (1.0 - b2) * g[i] * g[i];
                w[i] -= lr * (m[i] / c1) / ((v[i] / c2).sqrt() + eps);
            }
            Tensor::from_data(TensorData::new(w, dims), &dev).set_require_grad(tracked)
        })
    }
}

impl Adam {
    /// One update of every parameter of `module` that has a gradient.
    pub fn step<M: Module>(&mut self, lr: f64, module: M, grads: &GradientsParams) -> M {
        self.step += 1;
        let t = self.step as i32;
        let c1 = 1.0 - self.beta1.powi(t);
        let c2 = 1.0 - self.beta2.powi(t);
        module.map(&mut Update {
            adam: self,
            grads,
            lr: lr as f32,
            c1,
            c2,
        })
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let n: usize = self.moments.values().map(|(m, _)| m.len()).sum();
        let mut out = Vec::with_capacity(MAGIC.len() + 32 + 16 * self.moments.len() + 8 * n);
        out.extend_from_slice(MAGIC);
        for x in [self.beta1, self.beta2, self.eps] {
            out.extend_from_slice(&x.to_le_bytes());
        }
        out.extend_from_slice(&self.step.to_le_bytes());
        out.extend_from_slice(&(self.moments.len() as u64).to_le_bytes());
        for (id, (m, v)) in &self.moments {
            out.extend_from_slice(&id.to_le_bytes());
            out.extend_from_slice(&(m.len() as u64).to_le_bytes());
            for x in m.iter().chain(v) {
                out.extend_from_slice(&x.to_le_bytes());
            }
        }
        out
    }

    /// Reads [`to_bytes`](Self::to_bytes)' format.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        let mut r = Reader { b: bytes, at: 0 };
        if r.take(MAGIC.len())? != MAGIC {
            return Err("not an mpda Adam state (bad header)".into());
        }
        let beta1 = r.f32()?;
        let beta2 = r.f32()?;
        let eps = r.f32()?;
        let step = r.u64()?;
        let count = r.u64()?;
        let mut moments = BTreeMap::new();
        for _ in 0..count {
            let id = r.u64()?;
            let len = usize::try_from(r.u64()?).map_err(|_| "length out of range")?;
            if len > bytes.len() {
                return Err(format!("parameter {id}: length {len} exceeds the file"));
            }
            let m = (0..len).map(|_| r.f32()).collect::<Result<Vec<_>, _>>()?;
            let v = (0..len).map(|_| r.f32()).collect::<Result<Vec<_>, _>>()?;
            moments.insert(id, (m, v));
        }
        if r.at != bytes.len() {
            return Err(format!("{} trailing bytes", bytes.len() - r.at));
        }
        Ok(Self {
            beta1,
            beta2,
            eps,
            step,
            moments,
        })
    }
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.b.len())
            .ok_or_else(|| format!("truncated at byte {}", self.at))?;
        let s = &self.b[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    fn f32(&mut self) -> Result<f32, String> {
        Ok(f32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_and_bad_bytes_are_errors() {
        let mut a = Adam {
            step: 7,
            ..Adam::default()
        };
        a.moments.insert(3, (vec![1.0, -2.0], vec![0.5, 0.25]));
        a.moments.insert(1, (vec![0.0], vec![9.0]));
        let b = a.to_bytes();
        assert_eq!(Adam::from_bytes(&b).unwrap(), a);
        assert!(Adam::from_bytes(&b[..b.len() - 1]).is_err());
        assert!(Adam::from_bytes(b"garbage").is_err());
        let mut long = b.clone();
        long.push(0);
        assert!(Adam::from_bytes(&long).is_err());
    }
}
