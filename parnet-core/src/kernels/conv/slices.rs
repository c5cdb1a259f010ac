//! The convolution passes on plain slices, with every shape and length checked: for fused
//! layers, benches and tests that call the kernels without the autograd graph.

use super::{Conv2dGeometry, Conv2dParams};
use crate::error::{Result, shape_error};

/// Forward: `out` (`[N, Cout, Ho, Wo]`, overwritten) = conv of `x` (`x_dims`) with `w`
/// (`w_dims`) plus `bias` (`[Cout]`). Rejects inconsistent shapes or lengths.
pub fn conv2d_forward(
    x: &[f32],
    x_dims: [usize; 4],
    w: &[f32],
    w_dims: [usize; 4],
    bias: Option<&[f32]>,
    params: Conv2dParams,
    out: &mut [f32],
) -> Result<()> {
    let geo = Conv2dGeometry::new(x_dims, w_dims, params)?;
    Conv2dGeometry::check_len("input", x.len(), &x_dims)?;
    Conv2dGeometry::check_len("weight", w.len(), &w_dims)?;
    Conv2dGeometry::check_len("output", out.len(), &geo.out_dims())?;
    if let Some(b) = bias
        && b.len() != geo.out_channels
    {
        return Err(shape_error(
            "conv2d",
            format!(
                "bias has {} values for {} channels",
                b.len(),
                geo.out_channels
            ),
            &[&w_dims],
        ));
    }
    super::forward(&geo, x, w, bias, out);
    Ok(())
}

/// Input gradient: `grad_x` (`x_dims`, overwritten) from `grad_out` (`[N, Cout, Ho, Wo]`) and
/// `w` (`w_dims`).
pub fn conv2d_backward_input(
    grad_out: &[f32],
    w: &[f32],
    w_dims: [usize; 4],
    x_dims: [usize; 4],
    params: Conv2dParams,
    grad_x: &mut [f32],
) -> Result<()> {
    let geo = Conv2dGeometry::new(x_dims, w_dims, params)?;
    Conv2dGeometry::check_len("output gradient", grad_out.len(), &geo.out_dims())?;
    Conv2dGeometry::check_len("weight", w.len(), &w_dims)?;
    Conv2dGeometry::check_len("input gradient", grad_x.len(), &x_dims)?;
    super::backward_input(&geo, grad_out, w, grad_x);
    Ok(())
}

/// Weight gradient: `grad_w` (`w_dims`, overwritten) from `x` (`x_dims`) and `grad_out`
/// (`[N, Cout, Ho, Wo]`).
pub fn conv2d_backward_weight(
    x: &[f32],
    x_dims: [usize; 4],
    grad_out: &[f32],
    w_dims: [usize; 4],
    params: Conv2dParams,
    grad_w: &mut [f32],
) -> Result<()> {
    let geo = Conv2dGeometry::new(x_dims, w_dims, params)?;
    Conv2dGeometry::check_len("input", x.len(), &x_dims)?;
    Conv2dGeometry::check_len("output gradient", grad_out.len(), &geo.out_dims())?;
    Conv2dGeometry::check_len("weight gradient", grad_w.len(), &w_dims)?;
    super::backward_weight(&geo, x, None, grad_out, grad_w);
    Ok(())
}

/// Bias gradient: `grad_b[c]` (overwritten) = sum of `grad_out[:, c, :, :]` over
/// `out_dims = [N, Cout, Ho, Wo]`, accumulated in f64 in a fixed order.
pub fn conv2d_backward_bias(
    grad_out: &[f32],
    out_dims: [usize; 4],
    grad_b: &mut [f32],
) -> Result<()> {
    Conv2dGeometry::check_len("output gradient", grad_out.len(), &out_dims)?;
    Conv2dGeometry::check_len("bias gradient", grad_b.len(), &out_dims[1..2])?;
    super::gemm_path::backward::bias_grad(grad_out, out_dims, grad_b);
    Ok(())
}
