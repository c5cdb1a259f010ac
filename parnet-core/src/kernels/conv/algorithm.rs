//! The one place where each pass of a convolution picks its algorithm.
//!
//! - forward and weight gradient: direct ([`super::direct`]) for every convolution with a
//!   spatial kernel, a stride or padding and at least [`MIN_PIXELS`] output pixels; GEMM over
//!   im2col for the rest (1x1 stride-1 unpadded convolutions are a GEMM on the image as it lies;
//!   the 1x1 maps of the SE gates are too small to tile);
//! - input gradient: at stride 1 (square kernel, padding below the kernel size) the forward of
//!   the transposed convolution ([`super::transposed`]), which then takes the forward's choice;
//!   otherwise `col2im(W^T dY)` through GEMM;
//! - [`set_conv_algorithm`]`(Gemm)` sends every pass through GEMM (benchmarks and checks).

use std::sync::atomic::{AtomicBool, Ordering};

use super::Conv2dGeometry;
use super::direct::kernel::MR;

/// Fewer output pixels than this (1x1 maps of the SE gates, tiny batches) keep the GEMM path.
const MIN_PIXELS: usize = 2 * MR;

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

/// Whether the forward and the weight gradient of `geo` take the direct path.
pub(crate) fn uses_direct(geo: &Conv2dGeometry) -> bool {
    conv_algorithm() == ConvAlgorithm::Auto
        && !geo.is_pointwise()
        && geo.batch * geo.out_h * geo.out_w >= MIN_PIXELS
}

/// Whether the input gradient is a stride-1 convolution of `dY` with the flipped, transposed
/// weights (padding `K - 1 - p`), which reuses the forward and needs no col2im.
pub(crate) fn input_grad_is_transposed_conv(geo: &Conv2dGeometry) -> bool {
    geo.params.stride == 1 && geo.kernel_h == geo.kernel_w && geo.params.padding < geo.kernel_h
}
