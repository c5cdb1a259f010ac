//! Pointwise activations: [`relu`], [`silu`] (`x * sigmoid(x)`) and [`sigmoid`].
//!
//! Each op keeps nothing extra for its backward: relu and silu read their input, sigmoid its
//! output. The ops run the slice kernels of [`crate::kernels::activation`] over fixed chunks on
//! rayon, so results do not depend on the thread count.

pub mod relu;
pub mod sigmoid;
pub mod silu;

pub use relu::{relu, relu_reference};
pub use sigmoid::{sigmoid, sigmoid_reference};
pub use silu::{silu, silu_reference};

pub use crate::kernels::activation::Activation;

use rayon::prelude::*;

use crate::kernels::parallel::ELEMENTWISE_CHUNK;
use crate::tensor::Buffer;

impl Activation {
    /// The activation applied to `x`.
    pub fn apply(self, x: &crate::Tensor) -> crate::Tensor {
        match self {
            Activation::Silu => silu(x),
            Activation::Relu => relu(x),
        }
    }
}

/// Runs a slice kernel `kernel(x_chunk, out_chunk)` over fixed chunks in parallel.
fn map_chunks(x: &[f32], kernel: impl Fn(&[f32], &mut [f32]) + Sync) -> Buffer {
    let mut out = Buffer::for_overwrite(x.len());
    out.par_chunks_mut(ELEMENTWISE_CHUNK)
        .zip(x.par_chunks(ELEMENTWISE_CHUNK))
        .for_each(|(o, x)| kernel(x, o));
    out
}

/// Runs a backward kernel `kernel(saved_chunk, grad_out_chunk, grad_in_chunk)` over fixed chunks
/// in parallel.
fn backward_chunks(
    saved: &[f32],
    grad_output: &[f32],
    kernel: impl Fn(&[f32], &[f32], &mut [f32]) + Sync,
) -> Buffer {
    let mut grad_input = Buffer::for_overwrite(saved.len());
    grad_input
        .par_chunks_mut(ELEMENTWISE_CHUNK)
        .zip(saved.par_chunks(ELEMENTWISE_CHUNK))
        .zip(grad_output.par_chunks(ELEMENTWISE_CHUNK))
        .for_each(|((gi, s), go)| kernel(s, go, gi));
    grad_input
}

#[cfg(test)]
pub(crate) mod test_shapes {
    use proptest::prelude::*;

    /// Random shapes of rank 1 to 4 for forward tests (up to a few thousand elements, enough to
    /// span several vector widths and remainders).
    pub fn forward_dims() -> impl Strategy<Value = Vec<usize>> {
        prop::collection::vec(1usize..12, 1..5)
    }

    /// Small shapes for finite-difference checks.
    pub fn gradient_dims() -> impl Strategy<Value = Vec<usize>> {
        prop::collection::vec(1usize..5, 1..4)
    }
}
