//! Convolution through GEMM: im2col on bands of output rows for the forward and the weight
//! gradient, col2im for the strided input gradient, and the bias gradient.

pub(crate) mod backward;
pub(crate) mod forward;
