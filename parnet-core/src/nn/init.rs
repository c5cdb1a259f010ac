//! Parameter initialisation (PyTorch's defaults, seeded).

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::tensor::Buffer;

/// A seeded source of initial values. Each parameter draws from its own stream derived from
/// (seed, parameter name), so adding a layer never changes the others' initial values.
#[derive(Clone, Copy, Debug)]
pub struct Init {
    pub seed: u64,
}

impl Init {
    pub fn new(seed: u64) -> Init {
        Init { seed }
    }

    fn rng_for(&self, name: &str) -> ChaCha8Rng {
        // FNV-1a of the name, mixed with the seed.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in name.bytes() {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        ChaCha8Rng::seed_from_u64(h ^ self.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }

    /// `len` values uniform in `[-bound, bound)`: PyTorch's default for conv and linear weights
    /// (kaiming-uniform with a = sqrt(5) gives bound = 1/sqrt(fan_in)) and linear biases.
    pub fn uniform(&self, name: &str, len: usize, bound: f32) -> Buffer {
        let mut rng = self.rng_for(name);
        Buffer::from_fn(len, |_| rng.random_range(-bound..bound))
    }
}
