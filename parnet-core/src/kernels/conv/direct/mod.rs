//! Direct convolution: every pass reads a zero-bordered channels-last copy of its image through
//! tables of offsets, with one register-blocked micro-kernel ([`kernel`]) and no im2col or GEMM
//! packing.
//!
//! - forward ([`forward`]): tiles of 6 output pixels x 16 output channels, summed over (tap,
//!   input channel) against packed weights;
//! - input gradient (stride 1): the forward applied to `dY` with the flipped, transposed weights
//!   (see `super::transposed`);
//! - weight gradient ([`weight`]): tiles of 6 (tap, input channel) rows x 16 output channels,
//!   summed over output pixels against the channels-last `dY`.
//!
//! Any stride, padding, kernel size and group count is handled; results are bit-identical for
//! any thread count.

pub(crate) mod forward;
pub(crate) mod kernel;
pub(crate) mod layout;
pub(crate) mod weight;
