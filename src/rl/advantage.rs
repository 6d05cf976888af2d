//! Advantages: generalised advantage estimation with the critic (PPO, A2C), and Decima's
//! input-dependent baseline (REINFORCE); and [`samples`], which turns an iteration's
//! trajectories into the learner's samples by whichever of the two is configured.

use super::config::{AdvantageKind, TrainSettings};
use super::learner::Sample;
use super::rollout::Trajectory;

/// How much the rest of an episode counts, seen from one decision earlier: `gamma` per
/// decision, times exp(-dt / tau) for the simulated time dt between the two decisions when a
/// time constant tau is set. Per-decision discounting alone weighs the future by how often
/// the scheduler happens to be asked, which varies tenfold between a quiet and a busy
/// cluster; time discounting does not, and it limits how far into a stream an action is
/// credited (spark-sched-sim discounts the same way; on Decima's stream it did not help,
/// see docs/training.md).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Discount {
    pub gamma: f64,
    pub time_constant_ms: Option<f64>,
}

impl Discount {
    /// No discounting: Decima's undiscounted returns.
    pub const NONE: Discount = Discount {
        gamma: 1.0,
        time_constant_ms: None,
    };

    /// The factor between decision `i`'s return and decision `i + 1`'s (or the episode's end).
    fn after(&self, t: &Trajectory, i: usize) -> f64 {
        match self.time_constant_ms {
            None => self.gamma,
            Some(tau) => {
                let next = t.times_ms.get(i + 1).copied().unwrap_or(t.end_ms);
                let dt = next.saturating_sub(t.times_ms[i]) as f64;
                self.gamma * (-dt / tau).exp()
            }
        }
    }
}

/// Advantages and value targets of one trajectory by GAE(gamma, lambda). The episode's end
/// is terminal (value 0), as in Decima and MPDA, also when a time limit cut it.
pub fn gae(
    t: &Trajectory,
    discount: Discount,
    lambda: f64,
    adv: &mut Vec<f32>,
    ret: &mut Vec<f32>,
) {
    let n = t.len();
    adv.clear();
    adv.resize(n, 0.0);
    ret.clear();
    ret.resize(n, 0.0);
    let mut next_value = 0.0f64;
    let mut running = 0.0f64;
    for i in (0..n).rev() {
        let v = f64::from(t.values[i]);
        let gamma = discount.after(t, i);
        let delta = f64::from(t.rewards[i]) + gamma * next_value - v;
        running = delta + gamma * lambda * running;
        adv[i] = running as f32;
        ret[i] = (running + v) as f32;
        next_value = v;
    }
}

/// Returns-to-go: what Decima's REINFORCE weighs each action by (undiscounted there).
pub fn returns_to_go(t: &Trajectory, discount: Discount, out: &mut Vec<f64>) {
    out.clear();
    out.resize(t.len(), 0.0);
    let mut acc = 0.0;
    for i in (0..t.len()).rev() {
        acc = f64::from(t.rewards[i]) + discount.after(t, i) * acc;
        out[i] = acc;
    }
}

/// Piecewise-linear interpolation of `(xs, ys)` at `x`, constant beyond the ends (numpy's
/// `interp`). `xs` is ascending.
fn interp(xs: &[u64], ys: &[f64], x: u64) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    let i = xs.partition_point(|&v| v <= x);
    if i == 0 {
        return ys[0];
    }
    if i == xs.len() {
        return ys[xs.len() - 1];
    }
    let (x0, x1) = (xs[i - 1] as f64, xs[i] as f64);
    let (y0, y1) = (ys[i - 1], ys[i]);
    if x1 == x0 {
        y1
    } else {
        y0 + (y1 - y0) * (x as f64 - x0) / (x1 - x0)
    }
}

/// Decima's advantages for a group of rollouts of the same job sequence: each action's
/// return-to-go minus the average, over the group, of the return-to-go at the same
/// simulated time (each rollout's returns interpolated between its decision times). The
/// baseline depends on the input (the job sequence and task draws) but not on the action,
/// which is what makes it unbiased and so effective with common random numbers.
///
/// Returns each rollout's advantages and its returns-to-go (the critic's targets, when the
/// model has a critic), both per decision.
pub fn decima_advantages(
    group: &[&Trajectory],
    discount: Discount,
) -> (Vec<Vec<f32>>, Vec<Vec<f64>>) {
    let returns: Vec<Vec<f64>> = group
        .iter()
        .map(|t| {
            let mut r = Vec::new();
            returns_to_go(t, discount, &mut r);
            r
        })
        .collect();
    // Several decisions can share a time; keep the last return at each time so that the
    // interpolation sees a function of time.
    let curves: Vec<(Vec<u64>, Vec<f64>)> = group
        .iter()
        .zip(&returns)
        .map(|(t, r)| {
            let mut xs: Vec<u64> = Vec::with_capacity(t.len());
            let mut ys: Vec<f64> = Vec::with_capacity(t.len());
            for (&x, &y) in t.times_ms.iter().zip(r) {
                if xs.last() == Some(&x) {
                    *ys.last_mut().expect("paired") = y;
                } else {
                    xs.push(x);
                    ys.push(y);
                }
            }
            (xs, ys)
        })
        .collect();
    let k = group.len() as f64;
    let advantages = group
        .iter()
        .zip(&returns)
        .map(|(t, r)| {
            t.times_ms
                .iter()
                .zip(r)
                .map(|(&x, &ret)| {
                    let base: f64 =
                        curves.iter().map(|(xs, ys)| interp(xs, ys, x)).sum::<f64>() / k;
                    (ret - base) as f32
                })
                .collect()
        })
        .collect();
    (advantages, returns)
}

/// The samples of one iteration's trajectories, with advantages and value targets by the
/// configured estimator (GAE per trajectory, or Decima's baseline per group of rollouts of
/// the same sequence), then normalised over the whole iteration if configured.
///
/// It lives beside the estimators rather than in the training loop because the order in
/// which samples are assembled is part of the result: the learner shuffles them by index,
/// so this order, like the arithmetic, must not change for checkpoints to stay identical.
pub fn samples(t: &TrainSettings, trajs: &[Trajectory]) -> Vec<Sample> {
    let mut samples = Vec::with_capacity(trajs.iter().map(Trajectory::len).sum());
    let discount = Discount {
        gamma: t.gamma,
        time_constant_ms: t.discount_time_s.map(|s| s * 1000.0),
    };
    match t.advantage_kind() {
        AdvantageKind::Gae => {
            let (mut adv, mut ret) = (Vec::new(), Vec::new());
            for (i, tr) in trajs.iter().enumerate() {
                gae(tr, discount, t.gae_lambda, &mut adv, &mut ret);
                for s in 0..tr.len() {
                    samples.push(Sample {
                        traj: i as u32,
                        step: s as u32,
                        advantage: adv[s],
                        target: ret[s],
                    });
                }
            }
        }
        AdvantageKind::Rollouts => {
            // A critic, when there is one, still learns the return-to-go: its loss is
            // then a diagnostic, and it is ready for a later switch to GAE.
            for q in 0..t.sequences {
                let idx: Vec<usize> = (0..trajs.len())
                    .filter(|&i| trajs[i].sequence == q)
                    .collect();
                let group: Vec<&Trajectory> = idx.iter().map(|&i| &trajs[i]).collect();
                let (advantages, returns) = decima_advantages(&group, discount);
                for ((&i, adv), ret) in idx.iter().zip(advantages).zip(returns) {
                    for (s, a) in adv.into_iter().enumerate() {
                        samples.push(Sample {
                            traj: i as u32,
                            step: s as u32,
                            advantage: a,
                            target: ret[s] as f32,
                        });
                    }
                }
            }
        }
    }
    if t.normalize_advantages && samples.len() > 1 {
        let n = samples.len() as f64;
        let mean = samples.iter().map(|s| f64::from(s.advantage)).sum::<f64>() / n;
        let var = samples
            .iter()
            .map(|s| (f64::from(s.advantage) - mean).powi(2))
            .sum::<f64>()
            / n;
        let sd = var.sqrt().max(1e-8);
        for s in &mut samples {
            s.advantage = ((f64::from(s.advantage) - mean) / sd) as f32;
        }
    }
    samples
}

#[cfg(test)]
mod tests {
    use super::*;

    fn traj(times: &[u64], rewards: &[f32], values: &[f32]) -> Trajectory {
        Trajectory {
            times_ms: times.to_vec(),
            rewards: rewards.to_vec(),
            values: values.to_vec(),
            taken: vec![
                crate::rl::rollout::Taken {
                    valid: 0,
                    job: 0,
                    level: 0,
                    part: 0,
                };
                times.len()
            ],
            ..Trajectory::default()
        }
    }

    #[test]
    fn gae_with_lambda_one_is_return_minus_value() {
        let t = traj(&[0, 1, 2], &[-1.0, -2.0, -3.0], &[-5.0, -4.0, -1.0]);
        let (mut a, mut r) = (Vec::new(), Vec::new());
        gae(&t, Discount::NONE, 1.0, &mut a, &mut r);
        assert_eq!(r, vec![-6.0, -5.0, -3.0]);
        assert_eq!(a, vec![-1.0, -1.0, -2.0]);
        // lambda = 0: one-step TD errors.
        gae(&t, Discount::NONE, 0.0, &mut a, &mut r);
        assert_eq!(a, vec![-1.0 - 4.0 + 5.0, -2.0 - 1.0 + 4.0, -3.0 + 1.0]);
    }

    #[test]
    fn decima_baseline_centres_identical_rollouts_and_ranks_better_ones() {
        let a = traj(&[0, 10, 20], &[-1.0, -1.0, -1.0], &[]);
        let b = traj(&[0, 10, 20], &[-1.0, -1.0, -1.0], &[]);
        let (adv, _) = decima_advantages(&[&a, &b], Discount::NONE);
        assert!(adv.iter().flatten().all(|&x| x == 0.0));
        let worse = traj(&[0, 10, 20], &[-3.0, -3.0, -3.0], &[]);
        let (adv, _) = decima_advantages(&[&a, &worse], Discount::NONE);
        assert!(adv[0][0] > 0.0 && adv[1][0] < 0.0);
        assert!((adv[0][0] + adv[1][0]).abs() < 1e-6);
    }

    #[test]
    fn time_discount_weighs_by_simulated_time_not_by_decision_count() {
        // Two decisions 0 and 1,000 ms apart, end at 3,000 ms; tau = 1,000 ms.
        let mut t = traj(&[0, 1000], &[-1.0, -2.0], &[]);
        t.end_ms = 3000;
        let d = Discount {
            gamma: 1.0,
            time_constant_ms: Some(1000.0),
        };
        let mut r = Vec::new();
        returns_to_go(&t, d, &mut r);
        let e = (-1.0f64).exp();
        assert!((r[1] + 2.0).abs() < 1e-12);
        assert!((r[0] - (-1.0 - 2.0 * e)).abs() < 1e-12);
        // Same rewards, decisions 2,000 ms apart: the second one counts less.
        let mut far = traj(&[0, 2000], &[-1.0, -2.0], &[]);
        far.end_ms = 3000;
        let mut rf = Vec::new();
        returns_to_go(&far, d, &mut rf);
        assert!(rf[0] > r[0]);
        // gamma still applies per decision on top of the time discount.
        let both = Discount { gamma: 0.5, ..d };
        returns_to_go(&t, both, &mut r);
        assert!((r[0] - (-1.0 - 0.5 * 2.0 * e)).abs() < 1e-12);
        // GAE with lambda = 1 and zero values gives the same returns.
        let mut z = t.clone();
        z.values = vec![0.0, 0.0];
        let (mut a, mut g) = (Vec::new(), Vec::new());
        gae(&z, both, 1.0, &mut a, &mut g);
        assert!((f64::from(g[0]) - r[0]).abs() < 1e-6);
    }

    #[test]
    fn interpolation_is_numpy_interp() {
        let xs = [0u64, 10, 20];
        let ys = [0.0, 10.0, 30.0];
        assert_eq!(interp(&xs, &ys, 5), 5.0);
        assert_eq!(interp(&xs, &ys, 15), 20.0);
        assert_eq!(interp(&xs, &ys, 25), 30.0);
        assert_eq!(interp(&xs, &ys, 0), 0.0);
    }
}
