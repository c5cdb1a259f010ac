//! Convolution kernels (graph-free, on slices), shared by the `conv2d` op, the fused layers and
//! the benches. NCHW images `[N, Cin, H, W]`, weights `[Cout, Cin/groups, KH, KW]`.
//!
//! - [`geometry`]: [`Conv2dParams`] and the validated [`Conv2dGeometry`];
//! - [`algorithm`]: which path each pass takes (the one place that decides);
//! - [`direct`]: the direct kernels (a zero-bordered channels-last copy read through offset
//!   tables by one register-blocked micro-kernel);
//! - `gemm_path`: im2col + GEMM, col2im for the strided input gradient, the bias gradient;
//! - `transposed`: the stride-1 input gradient as a forward convolution;
//! - `partials`: how weight gradients are split into partial sums;
//! - [`slices`]: the passes with every length checked.
//!
//! Work is split with rayon over images and bands under a partition that depends only on the
//! shapes, so results are bit-identical for any thread count.

pub mod algorithm;
pub(crate) mod direct;
mod gemm_path;
pub mod geometry;
mod partials;
pub mod slices;
mod transposed;

pub use algorithm::{ConvAlgorithm, conv_algorithm, set_conv_algorithm};
pub(crate) use direct::layout::ChannelsLast;
pub use geometry::{Conv2dGeometry, Conv2dParams};
pub use slices::{
    conv2d_backward_bias, conv2d_backward_input, conv2d_backward_weight, conv2d_forward,
};

use crate::kernels::simd::Isa;
use algorithm::{input_grad_is_transposed_conv, uses_direct};

/// The forward on slices whose lengths match `geo`: `out` overwritten.
pub(crate) fn forward(
    geo: &Conv2dGeometry,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    out: &mut [f32],
) {
    forward_keeping_input(geo, x, w, bias, out, false);
}

/// [`forward`]; with `keep_input`, also returns the direct path's channels-last copy of `x`
/// (when that path was taken), which [`backward_weight`] can read instead of making its own.
pub(crate) fn forward_keeping_input(
    geo: &Conv2dGeometry,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    out: &mut [f32],
    keep_input: bool,
) -> Option<ChannelsLast> {
    if geo.batch == 0 {
        return None;
    }
    let isa = Isa::current();
    if uses_direct(geo) && keep_input {
        let layout = direct::forward::input_layout(geo, x);
        direct::forward::forward_from(isa, geo, &layout, w, bias, out);
        Some(layout)
    } else if uses_direct(geo) {
        direct::forward::forward(isa, geo, x, w, bias, out);
        None
    } else {
        gemm_path::forward::forward(geo, x, w, bias, out);
        None
    }
}

/// The input gradient `dx` (overwritten) from `dy` and `w`, on slices whose lengths match `geo`.
pub(crate) fn backward_input(geo: &Conv2dGeometry, dy: &[f32], w: &[f32], dx: &mut [f32]) {
    if geo.batch == 0 {
        return;
    }
    if input_grad_is_transposed_conv(geo) {
        let flipped = transposed::flipped_weights(geo, w);
        forward(
            &transposed::transposed_geometry(geo),
            dy,
            &flipped,
            None,
            dx,
        );
    } else {
        gemm_path::backward::input_grad_col2im(geo, dy, w, dx);
    }
}

/// The weight gradient `dw` (overwritten) from `x` and `dy`, on slices whose lengths match
/// `geo`; `kept` is the copy of `x` that [`forward_keeping_input`] returned, if any.
pub(crate) fn backward_weight(
    geo: &Conv2dGeometry,
    x: &[f32],
    kept: Option<&ChannelsLast>,
    dy: &[f32],
    dw: &mut [f32],
) {
    if geo.batch == 0 {
        dw.fill(0.0);
    } else if let Some(layout) = kept {
        direct::weight::backward_weight_from(Isa::current(), geo, layout, dy, dw);
    } else if uses_direct(geo) {
        direct::weight::backward_weight(Isa::current(), geo, x, dy, dw);
    } else {
        gemm_path::backward::weight_grad(geo, x, dy, dw);
    }
}

/// The bias gradient `db` (overwritten) from `dy`.
pub(crate) fn backward_bias(geo: &Conv2dGeometry, dy: &[f32], db: &mut [f32]) {
    gemm_path::backward::bias_grad(dy, geo.out_dims(), db);
}
