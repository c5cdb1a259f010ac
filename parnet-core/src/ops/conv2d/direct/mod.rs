//! Direct convolution: every pass reads a zero-bordered channels-last copy of its image through
//! tables of offsets, with one register-blocked micro-kernel ([`kernel`]) and no im2col or GEMM
//! packing.
//!
//! - forward ([`forward`]): tiles of 6 output pixels x 16 output channels, summed over (tap,
//!   input channel) against packed weights;
//! - input gradient (stride 1): the forward applied to `dY` with the flipped, transposed weights
//!   (see `backward.rs`);
//! - weight gradient ([`weight`]): tiles of 6 (tap, input channel) rows x 16 output channels,
//!   summed over output pixels against the channels-last `dY`.
//!
//! Any stride, padding, kernel size and group count is handled; results are bit-identical for
//! any thread count.

pub(crate) mod forward;
pub(crate) mod kernel;
pub(crate) mod layout;
#[cfg(test)]
mod tests;
pub(crate) mod weight;

use super::Conv2dGeometry;

use std::sync::atomic::{AtomicBool, Ordering};

/// Fewer output pixels than this (1x1 maps of the SE gates, tiny batches) keep the GEMM path.
const MIN_PIXELS: usize = 2 * kernel::MR;

static GEMM_ONLY: AtomicBool = AtomicBool::new(false);

/// How convolutions are computed (a process-wide setting, for benchmarks and checks).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvAlgorithm {
    /// The direct kernels where they apply (every convolution with a spatial kernel, stride or
    /// padding), GEMM for the rest: the default.
    Auto,
    /// im2col and GEMM for every convolution.
    Gemm,
}

/// Selects the convolution algorithm for the whole process.
pub fn set_conv_algorithm(algorithm: ConvAlgorithm) {
    GEMM_ONLY.store(algorithm == ConvAlgorithm::Gemm, Ordering::Relaxed);
}

/// The current convolution algorithm.
pub fn conv_algorithm() -> ConvAlgorithm {
    if GEMM_ONLY.load(Ordering::Relaxed) {
        ConvAlgorithm::Gemm
    } else {
        ConvAlgorithm::Auto
    }
}

/// Whether `geo` takes the direct path: not a plain per-image matrix product (1x1, stride 1, no
/// padding: GEMM reads those images in place) and enough output pixels to fill tiles.
pub(crate) fn applies(geo: &Conv2dGeometry) -> bool {
    conv_algorithm() == ConvAlgorithm::Auto
        && !geo.is_pointwise()
        && geo.batch * geo.out_h * geo.out_w >= MIN_PIXELS
}
