//! The seeding scheme: every random number in mpda comes from a generator derived here
//! from a seed the user gave, by one of the rules below. There is no global generator, so
//! results never depend on threads, ranks or the order in which episodes run.
//!
//! | what | derived from | rule |
//! |---|---|---|
//! | job sequence of an episode (arrivals) | episode seed | numpy's legacy `RandomState(seed as u32)`, in Decima's call order (`workload::arrivals`) |
//! | a task's executor key and duration sample | episode seed, job, stage, task | [`task_draws`]: counter-based, so every scheduler sees the same draws for the same task |
//! | a scheduler's own choices (`random`, sampled learned policies) | episode seed | [`stream_rng`]`(seed, stream::...)`, one stream constant per user |
//! | network initialisation | `model.seed` | `Pcg64Mcg::seed_from_u64(seed)` |
//! | training: sequence, cut time, action samples, minibatch order | `train.seed`, iteration, index | [`mix_words`] over `[seed, iteration, index, purpose...]` (`rl::plan`) |
//! | bootstrap resamples | `run.bootstrap_seed` | `Pcg64Mcg::seed_from_u64(seed)` |
//!
//! Episode i of an evaluation uses seed `first_seed + i`.

use rand::SeedableRng;
use rand_pcg::Pcg64Mcg;

/// The golden-ratio increment of splitmix64.
const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

/// splitmix64: one step (increment, then the finaliser), a bijection with full avalanche.
pub fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(GOLDEN);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A 64-bit key for several words (splitmix64 chained over them): independent streams
/// keyed by, e.g., (seed, iteration, index).
pub fn mix_words(words: &[u64]) -> u64 {
    words
        .iter()
        .fold(GOLDEN, |z, &w| splitmix64(z.wrapping_add(w)))
}

/// The stream constants XORed into an episode seed, one per consumer, so that two consumers
/// of the same episode seed never share a random sequence.
pub mod stream {
    /// Task durations (`task_draws`); "mpda" in ASCII.
    pub const TASK_DURATIONS: u64 = 0x6d70_6461;
    /// The `random` heuristic's choices.
    pub const RANDOM_SCHEDULER: u64 = 0x005E_ED0F_7A4D_0001;
    /// A learned scheduler's sampled actions.
    pub const LEARNED_ACTIONS: u64 = 0x1ea7_ed00_0000_0001;
    /// Spark's engine: which hosts hold an input task's blocks, and which partition a key
    /// hashes to.
    pub const CLUSTER_DATA: u64 = 0xda7a_0000_0000_0001;
}

/// A counter-based uniform for one entity of an episode (`words` name it), on `stream`:
/// like [`task_draws`], independent of the order in which entities are visited.
pub fn entity_draw(seed: u64, stream: u64, words: [u64; 3]) -> u64 {
    let x = splitmix64(splitmix64(seed ^ stream) ^ words[0]);
    splitmix64(splitmix64(x ^ words[1]) ^ words[2])
}

/// A scheduler's generator for an episode: its own stream of the episode seed.
pub fn stream_rng(seed: u64, stream: u64) -> Pcg64Mcg {
    Pcg64Mcg::seed_from_u64(seed ^ stream)
}

/// The two uniforms of one task (executor key, then sample index), from its identity
/// alone: counter-based, so they never depend on the order in which tasks start.
pub fn task_draws(seed: u64, job: u32, stage: u32, task: u32) -> (u64, u64) {
    let x = splitmix64(splitmix64(seed ^ stream::TASK_DURATIONS) ^ u64::from(job));
    let x = splitmix64(x ^ (u64::from(stage) << 32 | u64::from(task)));
    (splitmix64(x ^ 1), splitmix64(x ^ 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference values of splitmix64 (Vigna's `splitmix64.c`, state 0 then 1 step).
    #[test]
    fn splitmix64_matches_the_reference() {
        assert_eq!(splitmix64(0), 0xe220_a839_7b1d_cdaf);
        assert_eq!(splitmix64(GOLDEN), 0x6e78_9e6a_a1b9_65f4);
    }

    /// `mix_words` is the chained form the trainer always used.
    #[test]
    fn mix_words_chains_splitmix() {
        let old = |words: &[u64]| {
            let mut z = GOLDEN;
            for &w in words {
                z = z.wrapping_add(w).wrapping_add(GOLDEN);
                z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                z ^= z >> 31;
            }
            z
        };
        for w in [&[][..], &[1], &[7, 3, 2], &[u64::MAX, 0, 5, 2, 9]] {
            assert_eq!(mix_words(w), old(w));
        }
    }
}
