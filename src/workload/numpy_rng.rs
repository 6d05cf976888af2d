//! A bit-exact copy of numpy's legacy `RandomState` (MT19937) for the few draws Decima
//! makes when it generates a job sequence: `randint(n)` and `exponential(scale)`.
//!
//! Why: with it, `mpda` produces exactly the job mix and arrival times that decima-sim
//! produces for the same seed, so a result can be compared episode by episode with a
//! published one. Task durations use the simulator's own generator; Decima draws those
//! from numpy's global RNG in an order no reimplementation can sensibly copy.

const N: usize = 624;
const M: usize = 397;

#[derive(Clone)]
pub struct NumpyRandomState {
    key: [u32; N],
    pos: usize,
}

impl NumpyRandomState {
    /// `numpy.random.RandomState(seed)` for an integer seed below 2^32.
    pub fn new(seed: u32) -> Self {
        let mut key = [0u32; N];
        let mut s = seed;
        for (pos, k) in key.iter_mut().enumerate() {
            *k = s;
            s = 1_812_433_253u32
                .wrapping_mul(s ^ (s >> 30))
                .wrapping_add(pos as u32 + 1);
        }
        Self { key, pos: N }
    }

    fn generate(&mut self) {
        const UPPER: u32 = 0x8000_0000;
        const LOWER: u32 = 0x7fff_ffff;
        const MATRIX_A: u32 = 0x9908_b0df;
        for i in 0..N {
            let y = (self.key[i] & UPPER) | (self.key[(i + 1) % N] & LOWER);
            let mut v = self.key[(i + M) % N] ^ (y >> 1);
            if y & 1 == 1 {
                v ^= MATRIX_A;
            }
            self.key[i] = v;
        }
        self.pos = 0;
    }

    pub fn next_u32(&mut self) -> u32 {
        if self.pos == N {
            self.generate();
        }
        let mut y = self.key[self.pos];
        self.pos += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    /// `random_sample()`: 53-bit uniform double in [0, 1).
    pub fn next_double(&mut self) -> f64 {
        let a = f64::from(self.next_u32() >> 5);
        let b = f64::from(self.next_u32() >> 6);
        (a * 67_108_864.0 + b) / 9_007_199_254_740_992.0
    }

    /// `randint(n)`: uniform in `0..n` by masked rejection, as legacy numpy does it.
    pub fn randint(&mut self, n: u32) -> u32 {
        assert!(n > 0, "randint needs a non-empty range");
        let rng = n - 1;
        if rng == 0 {
            return 0;
        }
        let mask = u32::MAX >> rng.leading_zeros();
        loop {
            let v = self.next_u32() & mask;
            if v <= rng {
                return v;
            }
        }
    }

    /// `exponential(scale)`, computed as `-ln(1 - U) * scale` like legacy numpy.
    pub fn exponential(&mut self, scale: f64) -> f64 {
        scale * -(1.0 - self.next_double()).ln()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_reference_mt19937_outputs() {
        // numpy.random.RandomState(5489).randint(2**32 - 1 ...) is the canonical MT19937
        // stream for seed 5489: first outputs 3499211612, 581869302, 3890346734.
        let mut r = NumpyRandomState::new(5489);
        assert_eq!(r.next_u32(), 3_499_211_612);
        assert_eq!(r.next_u32(), 581_869_302);
        assert_eq!(r.next_u32(), 3_890_346_734);
    }

    #[test]
    fn randint_stays_in_range() {
        let mut r = NumpyRandomState::new(1);
        for n in 1..40 {
            for _ in 0..50 {
                assert!(r.randint(n) < n);
            }
        }
    }
}
