//! Gradient parts between ranks: each part's gradients flat on the host in the policy's
//! parameter order, with its step statistics, and their sum in part order.

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};

use super::wire::{Raw, Reader, put};
use super::{Group, RlError, group_err};
use crate::model::Policy;
use crate::rl::learner::StepStats;

/// The gradients and stats of minibatch parts, flat on the host, in the policy's parameter
/// order: what ranks exchange in a gradient step.
#[derive(Debug, Default)]
pub struct GradParts {
    /// Per parameter, in visiting order: its gradient, if the part produced one.
    parts: Vec<(StepStats, Vec<Option<Vec<f32>>>)>,
}

struct Flatten<'a> {
    grads: &'a GradientsParams,
    out: Vec<Option<Vec<f32>>>,
}

impl ModuleVisitor for Flatten<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.out.push(self.grads.get::<D>(param.id).map(|g| {
            g.into_data()
                .try_to_vec::<f32>()
                .expect("f32 gradients (the learner's float type)")
        }));
    }
}

struct Rebuild<'a> {
    sums: std::vec::IntoIter<Option<Vec<f32>>>,
    device: &'a Device,
    out: GradientsParams,
}

impl ModuleVisitor for Rebuild<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(Some(v)) = self.sums.next() {
            let dims = param.val().dims();
            let t = Tensor::<D>::from_data(TensorData::new(v, dims), self.device);
            self.out.register(param.id, t);
        }
    }
}

/// The number of float parameters (to check that a decoded part fits the policy).
struct Count(usize);

impl ModuleVisitor for Count {
    fn visit_float<const D: usize>(&mut self, _: &Param<Tensor<D>>) {
        self.0 += 1;
    }
}

/// What one part says of its step, in the order it is sent.
fn stats_fields(st: &StepStats) -> [f64; 6] {
    [
        st.policy_loss,
        st.value_loss,
        st.entropy,
        st.approx_kl,
        st.clip_fraction,
        st.grad_norm,
    ]
}

impl GradParts {
    /// This rank's parts, as computed.
    pub fn new(policy: &Policy, local: &[(GradientsParams, StepStats)]) -> Self {
        let parts = local
            .iter()
            .map(|(g, st)| {
                let mut f = Flatten {
                    grads: g,
                    out: Vec::new(),
                };
                policy.visit(&mut f);
                (*st, f.out)
            })
            .collect();
        Self { parts }
    }

    /// Bytes: the part count, then per part its six stats and, per parameter, its gradient
    /// as a vector ([`put`]), or `u64::MAX` for none.
    pub fn encode(&self) -> Vec<u8> {
        let floats: usize = self
            .parts
            .iter()
            .flat_map(|(_, p)| p.iter().flatten())
            .map(Vec::len)
            .sum();
        let mut out = Vec::with_capacity(8 + 4 * floats + 64 * self.parts.len());
        (self.parts.len() as u64).put(&mut out);
        for (st, params) in &self.parts {
            for x in stats_fields(st) {
                x.put(&mut out);
            }
            (params.len() as u64).put(&mut out);
            for p in params {
                match p {
                    None => u64::MAX.put(&mut out),
                    Some(v) => put(&mut out, v),
                }
            }
        }
        out
    }

    /// The parts `rank` sent, checked against the policy's parameter count.
    pub fn decode(bytes: &[u8], rank: usize, params: usize) -> Result<Self, RlError> {
        let ended = |e: String| group_err(format!("the gradients rank {rank} sent: {e}"));
        let mut r = Reader::new(bytes);
        let n = r.one::<u64>().map_err(ended)? as usize;
        let mut parts = Vec::with_capacity(n.min(1 << 16));
        for _ in 0..n {
            let mut s = [0.0; 6];
            for x in &mut s {
                *x = r.one().map_err(ended)?;
            }
            let [
                policy_loss,
                value_loss,
                entropy,
                approx_kl,
                clip_fraction,
                grad_norm,
            ] = s;
            let st = StepStats {
                policy_loss,
                value_loss,
                entropy,
                approx_kl,
                clip_fraction,
                grad_norm,
            };
            let count = r.one::<u64>().map_err(ended)? as usize;
            if count != params {
                return Err(group_err(format!(
                    "rank {rank} sent gradients of {count} parameters, this policy has {params}"
                )));
            }
            let mut ps = Vec::with_capacity(count);
            for _ in 0..count {
                let len = r.one::<u64>().map_err(ended)?;
                if len == u64::MAX {
                    ps.push(None);
                    continue;
                }
                let raw = r.bytes(4 * len as usize).map_err(ended)?;
                ps.push(Some(raw.chunks_exact(4).map(f32::get).collect()));
            }
            parts.push((st, ps));
        }
        if r.rest() > 0 {
            return Err(group_err(format!(
                "rank {rank} sent {} bytes after its gradients",
                r.rest()
            )));
        }
        Ok(Self { parts })
    }

    /// Every rank's parts in part order: rank 0's, then rank 1's, and so on.
    pub fn gather(group: &dyn Group, policy: &Policy, mine: &Self) -> Result<Self, RlError> {
        let mut params = Count(0);
        policy.visit(&mut params);
        let mut parts = Vec::new();
        for (rank, b) in group.all_gather(&mine.encode())?.iter().enumerate() {
            parts.extend(Self::decode(b, rank, params.0)?.parts);
        }
        Ok(Self { parts })
    }

    /// The sum of all parts, added in part order (f32 on the host: the same roundings as
    /// one process adding its shards' gradient tensors in order), as gradients on `device`,
    /// with the summed stats.
    pub fn sum(
        self,
        policy: &Policy,
        device: &Device,
    ) -> Result<(GradientsParams, StepStats), RlError> {
        let mut parts = self.parts.into_iter();
        let (mut stats, mut acc) = parts
            .next()
            .ok_or_else(|| group_err("no rank computed a gradient"))?;
        for (st, p) in parts {
            stats += st;
            for (a, g) in acc.iter_mut().zip(p) {
                match (a.as_mut(), g) {
                    (Some(a), Some(g)) => {
                        if a.len() != g.len() {
                            return Err(group_err(
                                "ranks sent gradients of different shapes for one parameter",
                            ));
                        }
                        for (x, y) in a.iter_mut().zip(&g) {
                            *x += *y;
                        }
                    }
                    (None, Some(g)) => *a = Some(g),
                    (_, None) => {}
                }
            }
        }
        let mut rebuild = Rebuild {
            sums: acc.into_iter(),
            device,
            out: GradientsParams::new(),
        };
        policy.visit(&mut rebuild);
        Ok((rebuild.out, stats))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts() -> GradParts {
        let st = StepStats {
            policy_loss: 0.5,
            value_loss: -1.25,
            entropy: 3.0,
            approx_kl: 1e-3,
            clip_fraction: 0.1,
            grad_norm: 0.0,
        };
        GradParts {
            parts: vec![
                (
                    st,
                    vec![Some(vec![1.0, -2.5]), None, Some(vec![f32::MIN_POSITIVE])],
                ),
                (st, vec![None, None, Some(vec![7.0])]),
            ],
        }
    }

    #[test]
    fn gradient_parts_survive_their_encoding_bit_for_bit() {
        let p = parts();
        let back = GradParts::decode(&p.encode(), 1, 3).unwrap();
        assert_eq!(back.parts.len(), 2);
        for (a, b) in p.parts.iter().zip(&back.parts) {
            assert_eq!(a.0, b.0);
            assert_eq!(a.1, b.1);
        }
    }

    #[test]
    fn damaged_gradient_messages_are_errors_naming_the_rank() {
        let bytes = parts().encode();
        let short = GradParts::decode(&bytes[..bytes.len() - 1], 3, 3).unwrap_err();
        assert!(short.to_string().contains("rank 3"), "{short}");
        let other = GradParts::decode(&bytes, 2, 4).unwrap_err();
        assert!(
            other
                .to_string()
                .contains("rank 2 sent gradients of 3 parameters")
        );
        let mut long = bytes.clone();
        long.push(0);
        assert!(GradParts::decode(&long, 1, 3).is_err());
    }
}
