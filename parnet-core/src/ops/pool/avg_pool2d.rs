//! `avg_pool2d_2x2(x)`: 2x2 average pool, stride 2, no padding, floor mode:
//! `[N, C, H, W] -> [N, C, H/2, W/2]`, `out[i, j] = mean(x[2i..2i+2, 2j..2j+2])`. With odd H (W)
//! the last row (column) is dropped and gets a zero gradient.

use rayon::prelude::*;

use super::nchw;
use crate::autograd::{BackwardCtx, BackwardOp};
use crate::error::{Result, shape_error};
use crate::kernels::parallel::planes_per_task;
use crate::tensor::{Buffer, Tensor};

/// 2x2 average pool with stride 2. Errors unless rank 4 with `H >= 2` and `W >= 2`.
pub fn avg_pool2d_2x2(x: &Tensor) -> Result<Tensor> {
    let (n, c, h, w) = nchw("avg_pool2d_2x2", x)?;
    if h < 2 || w < 2 {
        return Err(shape_error(
            "avg_pool2d_2x2",
            "H and W must be at least 2",
            &[x.dims()],
        ));
    }
    let (in_plane, out_plane) = (h * w, (h / 2) * (w / 2));
    let ppt = planes_per_task(in_plane);
    let mut out = Buffer::for_overwrite(n * c * out_plane);
    out.par_chunks_mut(ppt * out_plane)
        .zip(x.data().par_chunks(ppt * in_plane))
        .for_each(|(o, x)| avg_pool2d_2x2_forward(x, h, w, o));
    Ok(Tensor::from_op(out, [n, c, h / 2, w / 2], &[x], || {
        AvgPool2dBackward
    }))
}

/// Pools whole `h x w` planes: `x.len() = P * h * w`, `out.len() = P * (h/2) * (w/2)`
/// (single-threaded slice kernel; `h, w >= 2`).
pub fn avg_pool2d_2x2_forward(x: &[f32], h: usize, w: usize, out: &mut [f32]) {
    let (ho, wo) = (h / 2, w / 2);
    assert!(
        ho > 0
            && wo > 0
            && x.len().is_multiple_of(h * w)
            && out.len() == x.len() / (h * w) * ho * wo,
        "avg_pool2d_2x2_forward: lengths {} -> {} do not fit planes of {h}x{w}",
        x.len(),
        out.len()
    );
    for (xp, op) in x.chunks_exact(h * w).zip(out.chunks_exact_mut(ho * wo)) {
        for (i, orow) in op.chunks_exact_mut(wo).enumerate() {
            let top = &xp[2 * i * w..][..2 * wo];
            let bottom = &xp[(2 * i + 1) * w..][..2 * wo];
            for (o, (t, b)) in orow
                .iter_mut()
                .zip(top.chunks_exact(2).zip(bottom.chunks_exact(2)))
            {
                *o = ((t[0] + t[1]) + (b[0] + b[1])) * 0.25;
            }
        }
    }
}

/// Spreads `grad_out / 4` over each 2x2 window; dropped rows/columns get 0. `grad_out.len() =
/// P * (h/2) * (w/2)`, `grad_in.len() = P * h * w` (single-threaded slice kernel).
pub fn avg_pool2d_2x2_backward(grad_out: &[f32], h: usize, w: usize, grad_in: &mut [f32]) {
    let (ho, wo) = (h / 2, w / 2);
    assert!(
        ho > 0
            && wo > 0
            && grad_in.len().is_multiple_of(h * w)
            && grad_out.len() == grad_in.len() / (h * w) * ho * wo,
        "avg_pool2d_2x2_backward: lengths {} -> {} do not fit planes of {h}x{w}",
        grad_out.len(),
        grad_in.len()
    );
    for (gp, ip) in grad_out
        .chunks_exact(ho * wo)
        .zip(grad_in.chunks_exact_mut(h * w))
    {
        for (r, irow) in ip.chunks_exact_mut(w).enumerate() {
            if r >= 2 * ho {
                irow.fill(0.0);
                continue;
            }
            let grow = &gp[(r / 2) * wo..][..wo];
            let (pairs, rest) = irow.split_at_mut(2 * wo);
            for (pair, &g) in pairs.chunks_exact_mut(2).zip(grow) {
                let v = g * 0.25;
                pair[0] = v;
                pair[1] = v;
            }
            rest.fill(0.0);
        }
    }
}

struct AvgPool2dBackward;

impl BackwardOp for AvgPool2dBackward {
    fn name(&self) -> &'static str {
        "avg_pool2d_2x2"
    }

    fn backward(&self, ctx: &BackwardCtx<'_>) -> Vec<Option<Buffer>> {
        let (_, _, h, w) = ctx.inputs[0].shape().nchw().expect("checked in forward");
        let (in_plane, out_plane) = (h * w, (h / 2) * (w / 2));
        let ppt = planes_per_task(in_plane);
        let mut grad_in = Buffer::for_overwrite(ctx.inputs[0].numel());
        grad_in
            .par_chunks_mut(ppt * in_plane)
            .zip(ctx.grad_output.par_chunks(ppt * out_plane))
            .for_each(|(gi, go)| avg_pool2d_2x2_backward(go, h, w, gi));
        vec![Some(grad_in)]
    }
}

/// Plain reference of the 2x2 stride-2 floor-mode average pool, `dims = [N, C, H, W]`.
pub fn avg_pool2d_2x2_reference<T: num_traits::Float>(x: &[T], dims: &[usize]) -> Vec<T> {
    let [n, c, h, w] = dims[..] else {
        panic!("avg_pool2d_2x2_reference: dims must be [N, C, H, W]")
    };
    let (ho, wo) = (h / 2, w / 2);
    let quarter = T::from(0.25).unwrap();
    let mut out = Vec::with_capacity(n * c * ho * wo);
    for p in 0..n * c {
        let at = |r: usize, col: usize| x[p * h * w + r * w + col];
        for i in 0..ho {
            for j in 0..wo {
                let s = at(2 * i, 2 * j)
                    + at(2 * i, 2 * j + 1)
                    + at(2 * i + 1, 2 * j)
                    + at(2 * i + 1, 2 * j + 1);
                out.push(s * quarter);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;
    use proptest::prelude::*;

    /// The analytic gradients carry only f32 rounding (relative ~1e-7) and the f64 central
    /// differences of these smooth (or piecewise linear) functions are accurate to ~1e-9, so the
    /// check is 100x tighter than the default (which would let a 0.1% error through).
    const GRAD_TOL: GradTolerance = GradTolerance {
        rtol: 1e-5,
        atol: 1e-6,
        eps: 1e-6,
    };

    fn pool_dims(max_spatial: usize) -> impl Strategy<Value = Vec<usize>> {
        (1usize..4, 1usize..5, 2..max_spatial, 2..max_spatial)
            .prop_map(|(n, c, h, w)| vec![n, c, h, w])
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn forward_matches_reference(dims in pool_dims(40), seed in any::<u64>()) {
            let x = random_values(dims.iter().product(), 3.0, seed);
            let t = Tensor::from_vec(to_f32(&x), dims.clone()).unwrap();
            let y = avg_pool2d_2x2(&t).unwrap();
            prop_assert_eq!(y.dims(), &[dims[0], dims[1], dims[2] / 2, dims[3] / 2]);
            // Three f32 additions of values of magnitude <= 3.
            assert_close("avg_pool2d_2x2", y.data(), &avg_pool2d_2x2_reference(&x, &dims), 1e-6, 1e-6);
        }

        #[test]
        fn backward_matches_finite_differences(dims in pool_dims(7), seed in any::<u64>()) {
            let x = random_values(dims.iter().product(), 3.0, seed);
            check_gradients("avg_pool2d_2x2", &[GradInput::new(x, &dims)],
                |t| avg_pool2d_2x2(&t[0]).unwrap(),
                |v| avg_pool2d_2x2_reference(&v[0], &dims), GRAD_TOL, seed);
        }
    }

    #[test]
    fn hand_computed_odd_plane() {
        // One 3x5 plane: the last row and column are dropped.
        let x: Vec<f32> = (0..15).map(|v| v as f32).collect();
        let t = Tensor::from_vec(x, [1, 1, 3, 5]).unwrap().into_leaf();
        let y = avg_pool2d_2x2(&t).unwrap();
        assert_eq!(y.dims(), &[1, 1, 1, 2]);
        // (0 + 1 + 5 + 6) / 4 = 3, (2 + 3 + 7 + 8) / 4 = 5.
        assert_eq!(y.data(), &[3.0, 5.0]);
        y.backward_with(Buffer::from_vec(vec![4.0, 8.0])).unwrap();
        #[rustfmt::skip]
        let expected = [
            1.0, 1.0, 2.0, 2.0, 0.0,
            1.0, 1.0, 2.0, 2.0, 0.0,
            0.0, 0.0, 0.0, 0.0, 0.0,
        ];
        assert_eq!(&t.grad().unwrap()[..], &expected);
    }

    #[test]
    fn rejects_bad_shapes() {
        for dims in [vec![1, 1, 1, 4], vec![1, 1, 4, 1], vec![4, 4, 4]] {
            let err = avg_pool2d_2x2(&Tensor::zeros(dims.clone()))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("avg_pool2d_2x2") && err.contains(&format!("{dims:?}")),
                "{err}"
            );
        }
    }
}
