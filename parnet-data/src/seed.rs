//! Seed derivation: every random choice is a function of (run seed, epoch, sample index).

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The RNG type used for every random choice in the crate.
pub type SampleRng = ChaCha8Rng;

/// SplitMix64 finaliser: a bijective, well-mixing map on u64.
pub fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Hashes a sequence of words into one seed (order matters).
pub fn hash_words(words: &[u64]) -> u64 {
    words
        .iter()
        .fold(0x243F_6A88_85A3_08D3, |acc, &w| mix64(acc ^ mix64(w)))
}

/// The RNG for sample `index` in `epoch` of a run seeded with `seed`, under a purpose tag
/// (`stream`) so that e.g. augmentation and synthesis never share a stream.
pub fn sample_rng(seed: u64, stream: u64, epoch: u64, index: u64) -> SampleRng {
    SampleRng::seed_from_u64(hash_words(&[seed, stream, epoch, index]))
}

/// Stream tags for [`sample_rng`].
pub mod streams {
    /// Per-sample augmentation in the loader.
    pub const AUGMENT: u64 = 1;
    /// Epoch permutation.
    pub const SHUFFLE: u64 = 2;
    /// Train/validation split.
    pub const SPLIT: u64 = 3;
    /// Synthetic image drawing.
    pub const SYNTHETIC: u64 = 4;
}

/// A seeded Fisher-Yates permutation of `0..n`.
pub fn permutation(n: usize, rng: &mut SampleRng) -> Vec<usize> {
    use rand::RngExt;
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = rng.random_range(0..=i);
        order.swap(i, j);
    }
    order
}

/// A standard normal sample (Box-Muller), from any RNG.
pub fn standard_normal<R: rand::Rng + ?Sized>(rng: &mut R) -> f64 {
    use rand::RngExt;
    // u1 in (0, 1] so that ln(u1) is finite.
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}
