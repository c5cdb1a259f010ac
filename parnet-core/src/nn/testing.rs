//! Helpers for tests of whole modules (hidden from the docs).

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::Module;

/// Gives every BN (and every other 1-D parameter) non-trivial values: γ in [0.5, 1.5), β, biases
/// and running means in [-0.5, 0.5), running variances in [0.5, 2). Seeded.
pub fn perturb_batch_norms(module: &dyn Module, seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    module.visit_params(&mut |p| {
        if p.shape().rank() == 1 {
            let gamma = p.name().ends_with(".weight");
            p.update(|v, _| {
                v.iter_mut().for_each(|x| {
                    *x = if gamma {
                        rng.random_range(0.5..1.5)
                    } else {
                        rng.random_range(-0.5..0.5)
                    }
                })
            });
        }
    });
    module.visit_buffers(&mut |b| {
        let mut d = b.data.lock().unwrap();
        if b.name.ends_with("running_mean") {
            d.iter_mut().for_each(|x| *x = rng.random_range(-0.5..0.5));
        } else if b.name.ends_with("running_var") {
            d.iter_mut().for_each(|x| *x = rng.random_range(0.5..2.0));
        }
    });
}
