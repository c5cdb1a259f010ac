//! `conv2d`: 2-D convolution (cross-correlation, as in PyTorch) of NCHW images, with stride,
//! symmetric zero padding, groups and an optional bias, in one op.
//!
//! Layout: x `[N, Cin, H, W]`, weight `[Cout, Cin/groups, KH, KW]`, bias `[Cout]`, output
//! `[N, Cout, Ho, Wo]` with `Ho = (H + 2p - KH) / s + 1` (likewise `Wo`).
//!
//! The kernels (graph-free, on slices) are public so fused layers and benches can call them:
//! [`conv2d_forward`], [`conv2d_backward_input`], [`conv2d_backward_weight`],
//! [`conv2d_backward_bias`]. They take one of two paths:
//! - direct ([`direct`]): every convolution with a spatial kernel, a stride or padding. A
//!   zero-bordered channels-last copy of the image is read through offset tables by one
//!   register-blocked micro-kernel, for the forward, the stride-1 input gradient (a transposed
//!   convolution) and the weight gradient; no im2col and no GEMM packing;
//! - GEMM: 1x1 stride-1 unpadded convolutions, where the image is the GEMM's right-hand side as
//!   it lies, tiny outputs, the strided input gradient (`col2im(W^T dY)`), and every convolution
//!   when [`set_conv_algorithm`] selects [`ConvAlgorithm::Gemm`]: the engine GEMM over
//!   [`im2col`](crate::kernels::im2col) on bands of output rows.
//!
//! Work is split with rayon over images and bands under a partition that depends only on the
//! shapes, so results are bit-identical for any thread count.

mod backward;
mod direct;
mod forward;
mod reference;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;

pub use backward::{conv2d_backward_bias, conv2d_backward_input, conv2d_backward_weight};
pub use direct::{ConvAlgorithm, conv_algorithm, set_conv_algorithm};
pub use forward::conv2d_forward;
pub use reference::conv2d_reference;

use crate::autograd::{BackwardCtx, BackwardOp};
use crate::error::{Result, invalid, shape_error};
use crate::kernels::im2col::PatchGeometry;
use crate::tensor::{Buffer, Tensor};

const OP: &str = "conv2d";

/// Stride, symmetric zero padding and groups of a convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dParams {
    pub stride: usize,
    pub padding: usize,
    pub groups: usize,
}

impl Conv2dParams {
    pub fn new(stride: usize, padding: usize, groups: usize) -> Self {
        Conv2dParams {
            stride,
            padding,
            groups,
        }
    }
}

impl Default for Conv2dParams {
    /// Stride 1, no padding, one group.
    fn default() -> Self {
        Conv2dParams::new(1, 0, 1)
    }
}

/// The validated shapes of a convolution: built by [`Conv2dGeometry::new`], which rejects every
/// inconsistent combination, so the kernels can rely on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dGeometry {
    pub batch: usize,
    pub in_channels: usize,
    pub height: usize,
    pub width: usize,
    pub out_channels: usize,
    pub kernel_h: usize,
    pub kernel_w: usize,
    pub params: Conv2dParams,
    pub out_h: usize,
    pub out_w: usize,
}

impl Conv2dGeometry {
    /// Checks `x_dims = [N, Cin, H, W]`, `w_dims = [Cout, Cin/groups, KH, KW]` and the params.
    pub fn new(x_dims: [usize; 4], w_dims: [usize; 4], params: Conv2dParams) -> Result<Self> {
        let [batch, in_channels, height, width] = x_dims;
        let [out_channels, in_per_group, kernel_h, kernel_w] = w_dims;
        let Conv2dParams {
            stride,
            padding,
            groups,
        } = params;
        if stride == 0 {
            return Err(invalid(OP, "stride must be at least 1"));
        }
        if groups == 0 {
            return Err(invalid(OP, "groups must be at least 1"));
        }
        if in_channels % groups != 0 || out_channels % groups != 0 {
            return Err(shape_error(
                OP,
                format!("groups {groups} must divide the input and output channels"),
                &[&x_dims, &w_dims],
            ));
        }
        if in_per_group * groups != in_channels {
            return Err(shape_error(
                OP,
                format!(
                    "weight has {in_per_group} input channels per group, the input {in_channels} \
                     channels in {groups} groups"
                ),
                &[&x_dims, &w_dims],
            ));
        }
        if kernel_h == 0
            || kernel_w == 0
            || out_channels == 0
            || in_channels == 0
            || height == 0
            || width == 0
        {
            return Err(shape_error(
                OP,
                "kernel, channel and image sizes must be non-zero (the batch may be empty)",
                &[&x_dims, &w_dims],
            ));
        }
        if height + 2 * padding < kernel_h || width + 2 * padding < kernel_w {
            return Err(shape_error(
                OP,
                format!("kernel larger than the input padded by {padding}: output size <= 0"),
                &[&x_dims, &w_dims],
            ));
        }
        Ok(Conv2dGeometry {
            batch,
            in_channels,
            height,
            width,
            out_channels,
            kernel_h,
            kernel_w,
            params,
            out_h: (height + 2 * padding - kernel_h) / stride + 1,
            out_w: (width + 2 * padding - kernel_w) / stride + 1,
        })
    }

    pub fn x_dims(&self) -> [usize; 4] {
        [self.batch, self.in_channels, self.height, self.width]
    }

    pub fn weight_dims(&self) -> [usize; 4] {
        [
            self.out_channels,
            self.in_per_group(),
            self.kernel_h,
            self.kernel_w,
        ]
    }

    pub fn out_dims(&self) -> [usize; 4] {
        [self.batch, self.out_channels, self.out_h, self.out_w]
    }

    pub fn in_per_group(&self) -> usize {
        self.in_channels / self.params.groups
    }

    pub fn out_per_group(&self) -> usize {
        self.out_channels / self.params.groups
    }

    /// Columns of one group's weight matrix: `Cin/groups * KH * KW`.
    pub fn taps_per_group(&self) -> usize {
        self.in_per_group() * self.kernel_h * self.kernel_w
    }

    /// FLOPs of the forward (2 per multiply-add, padding taps included):
    /// `2 N Cout Ho Wo (Cin/groups) KH KW`. The backward (input + weight) is twice this.
    pub fn forward_flops(&self) -> f64 {
        2.0 * (self.batch * self.out_channels * self.out_h * self.out_w) as f64
            * self.taps_per_group() as f64
    }

    /// Whether the convolution is a plain matrix product per image (1x1, stride 1, no padding).
    pub(crate) fn is_pointwise(&self) -> bool {
        self.kernel_h == 1
            && self.kernel_w == 1
            && self.params.stride == 1
            && self.params.padding == 0
    }

    /// The patch geometry of one group of one image.
    pub(crate) fn patches(&self) -> PatchGeometry {
        PatchGeometry {
            channels: self.in_per_group(),
            height: self.height,
            width: self.width,
            kernel_h: self.kernel_h,
            kernel_w: self.kernel_w,
            stride: self.params.stride,
            padding: self.params.padding,
            out_h: self.out_h,
            out_w: self.out_w,
        }
    }

    /// Checks a slice length against the element count of `dims`.
    pub(crate) fn check_len(what: &str, len: usize, dims: &[usize]) -> Result<()> {
        let want: usize = dims.iter().product();
        if len != want {
            return Err(shape_error(
                OP,
                format!("{what} has {len} values, its shape needs {want}"),
                &[dims],
            ));
        }
        Ok(())
    }
}

fn dims4(what: &str, t: &Tensor) -> Result<[usize; 4]> {
    t.dims().try_into().map_err(|_| {
        shape_error(
            OP,
            format!("{what} must be 4-D (NCHW / [Cout, Cin/groups, KH, KW])"),
            &[t.dims()],
        )
    })
}

/// 2-D convolution. x: `[N, Cin, H, W]`; weight: `[Cout, Cin/groups, KH, KW]`; bias: `[Cout]`.
/// Output `[N, Cout, (H + 2p - KH)/s + 1, (W + 2p - KW)/s + 1]`. Zero padding, symmetric.
pub fn conv2d(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    params: Conv2dParams,
) -> Result<Tensor> {
    let geo = Conv2dGeometry::new(dims4("input", x)?, dims4("weight", weight)?, params)?;
    if let Some(b) = bias
        && b.dims() != [geo.out_channels]
    {
        return Err(shape_error(
            OP,
            format!("bias must have shape [{}]", geo.out_channels),
            &[weight.dims(), b.dims()],
        ));
    }
    let mut out = Buffer::for_overwrite(geo.out_dims().iter().product());
    let (w, b) = (weight.data(), bias.map(|b| b.data()));
    let input_layout = if direct::applies(&geo) && geo.batch > 0 {
        let layout = direct::forward::input_layout(&geo, x.data());
        direct::forward::forward_from(&geo, &layout, w, b, &mut out);
        // The weight gradient reads the same copy.
        weight.requires_grad().then_some(layout)
    } else {
        forward::forward_unchecked(&geo, x.data(), w, b, &mut out);
        None
    };
    let inputs: Vec<&Tensor> = [Some(x), Some(weight), bias]
        .into_iter()
        .flatten()
        .collect();
    Ok(Tensor::from_op(out, geo.out_dims(), &inputs, || {
        Conv2dBackward { geo, input_layout }
    }))
}

/// Backward of [`conv2d`]: inputs are `[x, weight]` or `[x, weight, bias]`.
struct Conv2dBackward {
    geo: Conv2dGeometry,
    /// The direct path's channels-last copy of `x`, when the weight needs a gradient.
    input_layout: Option<direct::layout::ChannelsLast>,
}

impl BackwardOp for Conv2dBackward {
    fn name(&self) -> &'static str {
        OP
    }

    fn backward(&self, ctx: &BackwardCtx<'_>) -> Vec<Option<Buffer>> {
        let geo = &self.geo;
        let (x, w) = (ctx.inputs[0].data(), ctx.inputs[1].data());
        let dy = ctx.grad_output;
        let mut grads = Vec::with_capacity(ctx.inputs.len());
        grads.push(ctx.needs_grad(0).then(|| {
            let mut dx = Buffer::for_overwrite(x.len());
            backward::backward_input_unchecked(geo, dy, w, &mut dx);
            dx
        }));
        grads.push(ctx.needs_grad(1).then(|| {
            let mut dw = Buffer::for_overwrite(w.len());
            match &self.input_layout {
                Some(layout) => direct::weight::backward_weight_from(geo, layout, dy, &mut dw),
                None => backward::backward_weight_unchecked(geo, x, dy, &mut dw),
            }
            dw
        }));
        if ctx.inputs.len() == 3 {
            grads.push(ctx.needs_grad(2).then(|| {
                let mut db = Buffer::for_overwrite(geo.out_channels);
                backward::backward_bias_unchecked(geo, dy, &mut db);
                db
            }));
        }
        grads
    }
}
