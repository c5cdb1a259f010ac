//! Tests of the sweep: counts (by hand, against the built layers, against ParNet-CIFAR) and
//! the sweep's coverage in `counts`; forward, names, gradients, stream parallelism and deploy
//! form in `model`.

mod counts;
mod model;

use super::SweepSpec;
use crate::Tensor;
use crate::testing::{random_values, to_f32};

pub(super) fn spec(streams: usize, blocks: usize, width: usize) -> SweepSpec {
    SweepSpec::new(streams, blocks, width, 10).unwrap()
}

pub(super) fn images(n: usize, size: usize, seed: u64) -> Tensor {
    let len = n * 3 * size * size;
    Tensor::from_vec(to_f32(&random_values(len, 1.0, seed)), [n, 3, size, size]).unwrap()
}

pub(super) fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}
