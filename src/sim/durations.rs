//! Task durations: which measurement key an executor count maps to, and which wave a
//! task samples from. Mirrors decima-sim's `Node.sample_executor_key` and `Node.schedule`.

use rand::Rng;

use super::KeyInterpolation;
use super::stats::Wave;
use crate::workload::trace::StagePools;

/// Maps the number of executors in a job to a pair of measurement data points.
#[derive(Debug, Clone)]
pub struct KeyTable {
    /// `intervals[n]` = (left, right) data points for a job holding `n` executors.
    intervals: Vec<(u32, u32)>,
    mode: KeyInterpolation,
}

impl KeyTable {
    pub fn new(points: &[u32], exec_cap: u32, mode: KeyInterpolation) -> Self {
        let top = exec_cap.max(*points.last().expect("validated non-empty"));
        let intervals = (0..=top)
            .map(|n| {
                if n <= points[0] {
                    (points[0], points[0])
                } else if let Some(&last) = points.last().filter(|&&l| n >= l) {
                    (last, last)
                } else {
                    let r = points.partition_point(|&p| p < n);
                    if points[r] == n {
                        (n, n)
                    } else {
                        (points[r - 1], points[r])
                    }
                }
            })
            .collect();
        Self { intervals, mode }
    }

    /// Picks the measurement key for a job holding `n` executors.
    pub fn sample<R: Rng>(&self, n: u32, rng: &mut R) -> u32 {
        let (l, r) = self.intervals[(n as usize).min(self.intervals.len() - 1)];
        if l == r {
            return l;
        }
        // Decima: rand_pt = randint(1, r - l + 1); left if rand_pt <= n - l.
        let pt = rng.random_range(1..=r - l);
        let left = match self.mode {
            KeyInterpolation::Decima => pt <= n - l,
            KeyInterpolation::Linear => pt <= r - n,
        };
        if left { l } else { r }
    }
}

/// What the executor ran before, which decides the wave of its next task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum History {
    /// No previous task in this job (new to the job, or it idled in a pool since).
    NewToJob,
    /// Its previous task was on the same stage.
    SameStage,
    /// Its previous task was on another stage of the same job.
    OtherStage,
}

/// Samples one task duration, in ms, and reports which wave it came from.
pub fn sample_duration<R: Rng>(
    pools: &StagePools,
    key: u32,
    history: History,
    warmup_ms: u32,
    rng: &mut R,
) -> (u32, Wave) {
    let k = pools.key_index(key);
    let mut draw = |v: &[u32]| v[rng.random_range(0..v.len())];
    let (first, rest, fresh) = (pools.first(k), pools.rest(k), pools.fresh(k));
    match history {
        History::NewToJob if !fresh.is_empty() => (draw(fresh), Wave::Fresh),
        // Trace validation guarantees first or fresh is non-empty for every key.
        History::NewToJob => (draw(first) + warmup_ms, Wave::Fresh),
        History::SameStage if !rest.is_empty() => (draw(rest), Wave::Rest),
        _ if !first.is_empty() => (draw(first), Wave::First),
        _ => (draw(fresh), Wave::First),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    const POINTS: [u32; 8] = [5, 10, 20, 40, 50, 60, 80, 100];

    #[test]
    fn intervals_follow_decima() {
        let t = KeyTable::new(&POINTS, 120, KeyInterpolation::Decima);
        assert_eq!(t.intervals[0], (5, 5));
        assert_eq!(t.intervals[5], (5, 5));
        assert_eq!(t.intervals[9], (5, 10));
        assert_eq!(t.intervals[10], (10, 10));
        assert_eq!(t.intervals[45], (40, 50));
        assert_eq!(t.intervals[100], (100, 100));
        assert_eq!(t.intervals[120], (100, 100));
    }

    fn left_share(mode: KeyInterpolation, n: u32) -> f64 {
        let t = KeyTable::new(&POINTS, 50, mode);
        let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(7);
        let trials = 20_000;
        let left = (0..trials).filter(|_| t.sample(n, &mut rng) == 5).count();
        left as f64 / trials as f64
    }

    #[test]
    fn decima_interpolation_is_inverted_and_linear_is_not() {
        // n = 9 between 5 and 10: Decima picks 5 with probability 0.8, linear with 0.2.
        assert!((left_share(KeyInterpolation::Decima, 9) - 0.8).abs() < 0.02);
        assert!((left_share(KeyInterpolation::Linear, 9) - 0.2).abs() < 0.02);
    }
}
