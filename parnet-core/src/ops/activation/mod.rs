//! Pointwise activations: [`relu`], [`silu`] (`x * sigmoid(x)`) and [`sigmoid`].
//!
//! Each op keeps nothing extra for its backward: relu and silu read their input, sigmoid its
//! output. The single-threaded slice kernels (`*_forward`, `*_backward`, `*_in_place`) are public so
//! that fused layers can apply an activation inside their own parallel loops. The ops themselves
//! run the kernels over fixed chunks on rayon, so results do not depend on the thread count.

pub mod fast_exp;
pub mod relu;
pub mod sigmoid;
pub mod silu;

pub use fast_exp::exp_f32;
pub use relu::{relu, relu_backward, relu_forward, relu_in_place, relu_reference};
pub use sigmoid::{
    sigmoid, sigmoid_backward, sigmoid_forward, sigmoid_in_place, sigmoid_reference,
};
pub use silu::{silu, silu_backward, silu_forward, silu_in_place, silu_reference};

use rayon::prelude::*;

use crate::ops::parallel::ELEMENTWISE_CHUNK;
use crate::tensor::Buffer;

/// The block activation. The paper uses SiLU; the released configs build ReLU (spec 2.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    Silu,
    Relu,
}

impl Activation {
    pub fn parse(s: &str) -> crate::error::Result<Activation> {
        match s.to_ascii_lowercase().as_str() {
            "silu" | "swish" => Ok(Activation::Silu),
            "relu" => Ok(Activation::Relu),
            other => Err(crate::error::invalid(
                "activation",
                format!("unknown activation {other:?} (expected silu or relu)"),
            )),
        }
    }

    /// The activation applied to `x`.
    pub fn apply(self, x: &crate::Tensor) -> crate::Tensor {
        match self {
            Activation::Silu => silu(x),
            Activation::Relu => relu(x),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Activation::Silu => "silu",
            Activation::Relu => "relu",
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
