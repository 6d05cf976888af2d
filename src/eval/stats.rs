//! Statistics of paired comparisons: a seeded bootstrap of ratios of means, and empirical
//! CDFs thinned for plotting.

use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;
use serde::Serialize;

use crate::sim::stats::percentile;

/// A ratio of means with a bootstrap percentile interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RatioCi {
    pub ratio: f64,
    pub low: f64,
    pub high: f64,
}

/// `mean(x) / mean(baseline)` for every `x` in `samples`, each with a 95% paired bootstrap
/// interval: a resample draws episodes (with replacement) and keeps each episode's values
/// of every scheduler together, so the interval reflects the per-episode pairing rather
/// than two independent spreads. All samples share the same resamples, drawn from `seed`,
/// so the intervals are reproducible and comparable with each other.
pub fn paired_ratio_ci(
    samples: &[&[f64]],
    baseline: &[f64],
    resamples: usize,
    seed: u64,
) -> Vec<RatioCi> {
    let n = baseline.len();
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let mut ratios: Vec<Vec<f64>> = vec![Vec::with_capacity(resamples); samples.len()];
    if n > 0 {
        let mut rng = Pcg64Mcg::seed_from_u64(seed);
        let mut idx = vec![0usize; n];
        for _ in 0..resamples {
            idx.iter_mut().for_each(|i| *i = rng.random_range(0..n));
            let base: f64 = idx.iter().map(|&i| baseline[i]).sum();
            for (s, r) in samples.iter().zip(&mut ratios) {
                r.push(idx.iter().map(|&i| s[i]).sum::<f64>() / base);
            }
        }
    }
    samples
        .iter()
        .zip(&mut ratios)
        .map(|(s, r)| {
            r.sort_by(f64::total_cmp);
            RatioCi {
                ratio: mean(s) / mean(baseline),
                low: percentile(r, 2.5),
                high: percentile(r, 97.5),
            }
        })
        .collect()
}

/// The empirical CDF of `values` as at most `max_points` (value, fraction ≤ value) points,
/// taken at evenly spaced quantiles so that the curve keeps its shape, tails included,
/// whatever the sample size.
pub fn cdf_points(values: &[f64], max_points: usize) -> Vec<(f64, f64)> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 || max_points == 0 {
        return Vec::new();
    }
    let step = (n as f64 / max_points as f64).max(1.0);
    let mut out = Vec::with_capacity(max_points.min(n) + 1);
    let mut k = 0.0;
    while (k as usize) < n {
        let i = k as usize;
        out.push((v[i], (i + 1) as f64 / n as f64));
        k += step;
    }
    if out.last().map(|p| p.1) != Some(1.0) {
        out.push((v[n - 1], 1.0));
    }
    out
}

/// Mean and sample standard deviation.
pub fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len();
    if n == 0 {
        return (f64::NAN, f64::NAN);
    }
    let m = v.iter().sum::<f64>() / n as f64;
    let var = if n > 1 {
        v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1) as f64
    } else {
        0.0
    };
    (m, var.sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratio_against_itself_is_exactly_one() {
        let x = [3.0, 5.0, 11.0, 2.5];
        let r = paired_ratio_ci(&[&x], &x, 1000, 7);
        assert_eq!(
            r[0],
            RatioCi {
                ratio: 1.0,
                low: 1.0,
                high: 1.0
            }
        );
    }

    #[test]
    fn a_constant_factor_gives_a_tight_interval_and_noise_widens_it() {
        let base = [10.0, 20.0, 30.0, 40.0, 50.0];
        let half: Vec<f64> = base.iter().map(|x| x * 0.5).collect();
        let noisy = [4.0, 13.0, 12.0, 25.0, 20.0];
        let r = paired_ratio_ci(&[&half, &noisy], &base, 2000, 1);
        assert!((r[0].low - 0.5).abs() < 1e-12 && (r[0].high - 0.5).abs() < 1e-12);
        assert!(r[1].low < r[1].ratio && r[1].ratio < r[1].high);
        assert_eq!(r, paired_ratio_ci(&[&half, &noisy], &base, 2000, 1));
    }

    #[test]
    fn cdf_thins_but_keeps_the_ends() {
        let v: Vec<f64> = (0..1000).map(f64::from).collect();
        let c = cdf_points(&v, 100);
        assert!(c.len() <= 101);
        assert_eq!(c[0], (0.0, 0.001));
        assert_eq!(*c.last().unwrap(), (999.0, 1.0));
        assert!(c.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 < w[1].1));
        assert_eq!(cdf_points(&[2.0], 10), vec![(2.0, 1.0)]);
        assert!(cdf_points(&[], 10).is_empty());
    }
}
