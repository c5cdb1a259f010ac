//! `conv2d`: 2-D convolution (cross-correlation, as in PyTorch) of NCHW images, with stride,
//! symmetric zero padding, groups and an optional bias, in one op.
//!
//! Layout: x `[N, Cin, H, W]`, weight `[Cout, Cin/groups, KH, KW]`, bias `[Cout]`, output
//! `[N, Cout, Ho, Wo]` with `Ho = (H + 2p - KH) / s + 1` (likewise `Wo`).
//!
//! The op records the graph and calls the kernels of [`crate::kernels::conv`] (direct or GEMM,
//! chosen there per pass), whose slice-level passes are re-exported here: [`conv2d_forward`],
//! [`conv2d_backward_input`], [`conv2d_backward_weight`], [`conv2d_backward_bias`]. The plain
//! [`conv2d_reference`] and the tests that hold the kernels to it sit beside the op.

#[cfg(test)]
mod direct_tests;
mod reference;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;

pub use crate::kernels::conv::{
    Conv2dGeometry, Conv2dParams, ConvAlgorithm, conv_algorithm, conv2d_backward_bias,
    conv2d_backward_input, conv2d_backward_weight, conv2d_forward, set_conv_algorithm,
};
pub use reference::conv2d_reference;

use crate::autograd::{BackwardCtx, BackwardOp};
use crate::error::{Result, shape_error};
use crate::kernels::conv::{self, ChannelsLast};
use crate::tensor::{Buffer, Tensor};

const OP: &str = "conv2d";

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
    // The weight gradient reads the forward's copy of the input, when it made one.
    let input_layout =
        conv::forward_keeping_input(&geo, x.data(), w, b, &mut out, weight.requires_grad());
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
    input_layout: Option<ChannelsLast>,
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
            conv::backward_input(geo, dy, w, &mut dx);
            dx
        }));
        grads.push(ctx.needs_grad(1).then(|| {
            let mut dw = Buffer::for_overwrite(w.len());
            conv::backward_weight(geo, x, self.input_layout.as_ref(), dy, &mut dw);
            dw
        }));
        if ctx.inputs.len() == 3 {
            grads.push(ctx.needs_grad(2).then(|| {
                let mut db = Buffer::for_overwrite(geo.out_channels);
                conv::backward_bias(geo, dy, &mut db);
                db
            }));
        }
        grads
    }
}
