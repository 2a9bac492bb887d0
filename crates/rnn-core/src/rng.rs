//! The engine's seeded random generator: ChaCha8 from `rand_chacha`, so that the same seed and
//! the same thread count give bit-identical training, and the state can be saved in a checkpoint
//! (seed + word position) and restored exactly.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A seeded, serialisable random generator.
#[derive(Debug, Clone)]
pub struct Rng {
    inner: ChaCha8Rng,
}

/// Everything needed to restore a generator exactly (written into checkpoints).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RngState {
    pub seed: u64,
    /// ChaCha word position, as a decimal string in JSON (it is a u128).
    #[serde(with = "u128_string")]
    pub word_pos: u128,
}

mod u128_string {
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(v: &u128, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.to_string())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u128, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl Rng {
    /// A generator seeded from a 64-bit seed.
    pub fn new(seed: u64) -> Self {
        Rng { inner: ChaCha8Rng::seed_from_u64(seed) }
    }

    /// Restores a generator saved with [`Rng::state`].
    pub fn from_state(state: RngState) -> Self {
        let mut inner = ChaCha8Rng::seed_from_u64(state.seed);
        inner.set_word_pos(state.word_pos);
        Rng { inner }
    }

    /// The state to save; `seed` must be the seed this generator was created with.
    pub fn state(&self, seed: u64) -> RngState {
        RngState { seed, word_pos: self.inner.get_word_pos() }
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f32 {
        self.inner.random::<f32>()
    }

    /// Uniform in [0, 1) with f64 precision (sampling from a distribution).
    pub fn uniform_f64(&mut self) -> f64 {
        self.inner.random::<f64>()
    }

    /// Uniform in [lo, hi).
    pub fn uniform_range(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.uniform()
    }

    /// Uniform integer in 0..n (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        self.inner.random_range(0..n)
    }

    /// Standard normal, by Box–Muller (deterministic, two uniforms per draw).
    pub fn normal(&mut self) -> f32 {
        let u1 = 1.0 - self.uniform_f64(); // (0, 1]: ln is finite
        let u2 = self.uniform_f64();
        ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
    }

    /// Fisher–Yates shuffle.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trip_continues_the_same_stream() {
        let mut a = Rng::new(42);
        for _ in 0..17 {
            a.uniform();
        }
        let saved = a.state(42);
        let json = serde_json::to_string(&saved).unwrap();
        let mut b = Rng::from_state(serde_json::from_str(&json).unwrap());
        for _ in 0..100 {
            assert_eq!(a.uniform().to_bits(), b.uniform().to_bits());
        }
    }

    #[test]
    fn different_seeds_differ() {
        let (mut a, mut b) = (Rng::new(1), Rng::new(2));
        let same = (0..32).filter(|_| a.uniform() == b.uniform()).count();
        assert!(same < 32);
    }
}
