//! Task durations: which measurement key an executor count maps to, and which wave a
//! task samples from. Mirrors decima-sim's `Node.sample_executor_key` and `Node.schedule`.
//!
//! The random numbers are counter-based: a task's draws depend only on the episode seed
//! and the task's identity (job, stage, task index), never on the order in which tasks
//! start. So two schedulers run on the same episode see the same draws for every task
//! (common random numbers): the comparison is paired down to the task, and results cannot
//! depend on thread scheduling.

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

/// The data points around `n`: `(l, r)` with `l < n < r`, `(n, n)` at a point, and the
/// nearest end point outside the range (Decima's `executor_interval_map`).
pub fn interval(points: &[u32], n: u32) -> (u32, u32) {
    let (first, last) = (points[0], points[points.len() - 1]);
    if n <= first {
        (first, first)
    } else if n >= last {
        (last, last)
    } else {
        let r = points.partition_point(|&p| p < n);
        if points[r] == n {
            (n, n)
        } else {
            (points[r - 1], points[r])
        }
    }
}

/// Chooses between the data points `l <= r` around `n` with uniform `u`.
pub fn choose(l: u32, r: u32, n: u32, mode: KeyInterpolation, u: u64) -> u32 {
    if l == r {
        return l;
    }
    // Decima: rand_pt = randint(1, r - l + 1); left if rand_pt <= n - l.
    let pt = 1 + below(u, r - l);
    let left = match mode {
        KeyInterpolation::Decima => pt <= n - l,
        KeyInterpolation::Linear => pt <= r - n,
    };
    if left { l } else { r }
}

impl KeyTable {
    pub fn new(points: &[u32], exec_cap: u32, mode: KeyInterpolation) -> Self {
        let top = exec_cap.max(*points.last().expect("validated non-empty"));
        let intervals = (0..=top).map(|n| interval(points, n)).collect();
        Self { intervals, mode }
    }

    /// Picks the measurement key for a job holding `n` executors, from uniform `u`.
    pub fn sample(&self, n: u32, u: u64) -> u32 {
        let (l, r) = self.intervals[(n as usize).min(self.intervals.len() - 1)];
        choose(l, r, n, self.mode, u)
    }

    /// Picks among a stage's own measured executor counts instead of the fixed data points.
    pub fn sample_measured(&self, keys: &[u32], n: u32, u: u64) -> u32 {
        let (l, r) = interval(keys, n);
        choose(l, r, n, self.mode, u)
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

/// Maps a uniform 64-bit value to `0..n` (multiply-shift; bias below n / 2^64).
fn below(u: u64, n: u32) -> u32 {
    ((u128::from(u) * u128::from(n)) >> 64) as u32
}

/// Samples one task duration, in ms, from uniform `u`, and reports its wave.
pub fn sample_duration(
    pools: &StagePools,
    key: u32,
    history: History,
    warmup_ms: u32,
    u: u64,
) -> (u32, Wave) {
    let k = pools.key_index(key);
    let draw = |v: &[u32]| v[below(u, v.len() as u32) as usize];
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
    use crate::seed::task_draws;

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
        let trials = 20_000;
        let left = (0..trials)
            .filter(|&i| t.sample(n, task_draws(7, 0, 0, i).0) == 5)
            .count();
        left as f64 / trials as f64
    }

    #[test]
    fn decima_interpolation_is_inverted_and_linear_is_not() {
        // n = 9 between 5 and 10: Decima picks 5 with probability 0.8, linear with 0.2.
        assert!((left_share(KeyInterpolation::Decima, 9) - 0.8).abs() < 0.02);
        assert!((left_share(KeyInterpolation::Linear, 9) - 0.2).abs() < 0.02);
    }

    #[test]
    fn measured_keys_never_extrapolate() {
        assert_eq!(interval(&[1, 2], 0), (1, 1));
        assert_eq!(interval(&[1, 2], 1), (1, 1));
        assert_eq!(interval(&[1, 2], 2), (2, 2));
        assert_eq!(interval(&[1, 2], 50), (2, 2));
        assert_eq!(interval(&[2, 5, 10], 7), (5, 10));
    }

    #[test]
    fn below_is_uniform_enough() {
        let mut counts = [0u32; 7];
        for i in 0..70_000 {
            counts[below(task_draws(1, 2, 3, i).1, 7) as usize] += 1;
        }
        assert!(
            counts.iter().all(|&c| (9_500..10_500).contains(&c)),
            "{counts:?}"
        );
    }
}
