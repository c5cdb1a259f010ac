//! `linear(x, weight, bias)`: `y = x · weightᵀ + bias`, PyTorch layout.
//!
//! Every product goes through [`crate::kernels::gemm`] (transposes are strided views, no copies),
//! split into fixed blocks of rows, one rayon task per block, so results do not depend on the
//! number of threads.

use rayon::prelude::*;

use crate::autograd::{BackwardCtx, BackwardOp};
use crate::error::{Result, shape_error};
use crate::kernels::{MatMut, MatRef, gemm};
use crate::tensor::{Buffer, Tensor};

/// Output rows per rayon task.
const ROW_BLOCK: usize = 32;

/// `x` `[N, In]`, `weight` `[Out, In]` (PyTorch layout), `bias` `[Out]`; returns `[N, Out]`.
/// Gradients flow to all three.
pub fn linear(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    const OP: &str = "linear";
    let (&[n, k], &[out_features, in_features]) = (x.dims(), weight.dims()) else {
        return Err(shape_error(
            OP,
            "x must be [N, In] and weight [Out, In]",
            &[x.dims(), weight.dims()],
        ));
    };
    if k != in_features {
        return Err(shape_error(
            OP,
            format!("x has {k} features but weight expects {in_features}"),
            &[x.dims(), weight.dims()],
        ));
    }
    if let Some(b) = bias
        && b.dims() != [out_features]
    {
        return Err(shape_error(
            OP,
            format!("bias must be [Out] = [{out_features}]"),
            &[weight.dims(), b.dims()],
        ));
    }

    // out = x · weightᵀ (+ bias, broadcast over rows and accumulated by the GEMM).
    let (mut out, beta) = match bias {
        Some(b) => (
            Buffer::from_fn(n * out_features, |i| b.data()[i % out_features]),
            1.0,
        ),
        None => (Buffer::zeros(n * out_features), 0.0),
    };
    let w_t = MatRef::row_major(weight.data(), out_features, k).t();
    matmul_row_blocks(&mut out, out_features, x.data(), k, w_t, beta);

    let mut inputs = vec![x, weight];
    inputs.extend(bias);
    Ok(Tensor::from_op(out, [n, out_features], &inputs, || {
        LinearBackward
    }))
}

/// `c = a · b + beta * c` where `a` is row-major `[rows, a_cols]` and `c` row-major
/// `[rows, c_cols]`, one rayon task per [`ROW_BLOCK`] rows.
fn matmul_row_blocks(
    c: &mut [f32],
    c_cols: usize,
    a: &[f32],
    a_cols: usize,
    b: MatRef<'_>,
    beta: f32,
) {
    if c_cols == 0 || c.is_empty() {
        return;
    }
    c.par_chunks_mut(ROW_BLOCK * c_cols)
        .enumerate()
        .for_each(|(blk, c_blk)| {
            let rows = c_blk.len() / c_cols;
            let a_blk = &a[blk * ROW_BLOCK * a_cols..][..rows * a_cols];
            gemm(
                1.0,
                MatRef::row_major(a_blk, rows, a_cols),
                b,
                beta,
                MatMut::row_major(c_blk, rows, c_cols),
            );
        });
}

/// Inputs `(x, weight[, bias])`: `dx = dy · W`, `dW = dyᵀ · x`, `db = sum over the batch of dy`.
struct LinearBackward;

impl BackwardOp for LinearBackward {
    fn name(&self) -> &'static str {
        "linear"
    }

    fn backward(&self, ctx: &BackwardCtx<'_>) -> Vec<Option<Buffer>> {
        let (x, w, dy) = (&ctx.inputs[0], &ctx.inputs[1], ctx.grad_output);
        let (n, k) = (x.dims()[0], x.dims()[1]);
        let out_features = w.dims()[0];

        let dx = ctx.needs_grad(0).then(|| {
            let mut dx = Buffer::zeros(n * k);
            let w_view = MatRef::row_major(w.data(), out_features, k);
            matmul_row_blocks(&mut dx, k, dy, out_features, w_view, 0.0);
            dx
        });
        let dw = ctx.needs_grad(1).then(|| {
            // dW[o, :] = sum_n dy[n, o] * x[n, :]; row block of dW = (columns of dy)ᵀ · x.
            let mut dw = Buffer::zeros(out_features * k);
            if k > 0 {
                let x_view = MatRef::row_major(x.data(), n, k);
                dw.par_chunks_mut(ROW_BLOCK * k)
                    .enumerate()
                    .for_each(|(blk, dw_blk)| {
                        let rows = dw_blk.len() / k;
                        let o0 = blk * ROW_BLOCK;
                        let dy_t = MatRef {
                            data: &dy[o0..],
                            rows,
                            cols: n,
                            row_stride: 1,
                            col_stride: out_features,
                        };
                        gemm(1.0, dy_t, x_view, 0.0, MatMut::row_major(dw_blk, rows, k));
                    });
            }
            dw
        });
        let db = (ctx.inputs.len() > 2 && ctx.needs_grad(2)).then(|| {
            let mut acc = vec![0.0f64; out_features];
            for row in dy.chunks_exact(out_features.max(1)) {
                acc.iter_mut().zip(row).for_each(|(a, &g)| *a += g as f64);
            }
            Buffer::from_fn(out_features, |o| acc[o] as f32)
        });
        let mut grads = vec![dx, dw];
        if ctx.inputs.len() > 2 {
            grads.push(db);
        }
        grads
    }
}

/// Plain reference: `y[n, o] = sum_i x[n, i] * weight[o, i] + bias[o]`, with `x` `[N, In]` and
/// `weight` `[Out, In]` row-major.
pub fn linear_reference<T: num_traits::Float>(
    x: &[T],
    weight: &[T],
    bias: Option<&[T]>,
    n: usize,
    in_features: usize,
    out_features: usize,
) -> Vec<T> {
    let mut y = vec![T::zero(); n * out_features];
    for r in 0..n {
        for o in 0..out_features {
            let mut acc = bias.map_or(T::zero(), |b| b[o]);
            for i in 0..in_features {
                acc = acc + x[r * in_features + i] * weight[o * in_features + i];
            }
            y[r * out_features + o] = acc;
        }
    }
    y
}

#[cfg(test)]
mod tests;
