//! `max_pool2d(x, params)`: max pooling with PyTorch semantics (`nn.MaxPool2d`, floor mode,
//! dilation 1): `[N, C, H, W] -> [N, C, Ho, Wo]` with `Ho = (H + 2p - k) / s + 1` (same for W).
//! Padding acts as `-inf` (it never wins), and every window holds at least one real value because
//! `p <= k / 2`. The ResNet stem uses `k = 3, s = 2, p = 1` ([`MaxPool2dParams::RESNET_STEM`]).
//!
//! Ties go to the first maximum in row-major window order, as in PyTorch's CPU kernel; a NaN in a
//! window makes the output NaN (the first NaN takes the gradient). The backward routes each output's gradient to
//! that argmax; the argmax is recomputed from the saved input rather than stored, so nothing but
//! the input is kept. Overlapping windows add their contributions in output order, per plane, so
//! results do not depend on the thread count.

use rayon::prelude::*;

use super::nchw;
use crate::autograd::{BackwardCtx, BackwardOp};
use crate::error::{Result, invalid, shape_error};
use crate::kernels::parallel::planes_per_task;
use crate::tensor::{Buffer, Tensor};

const OP: &str = "max_pool2d";

/// Square window `kernel`, `stride` and symmetric `padding` of a max pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaxPool2dParams {
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
}

impl MaxPool2dParams {
    /// The ResNet stem's pool: 3x3, stride 2, padding 1.
    pub const RESNET_STEM: MaxPool2dParams = MaxPool2dParams {
        kernel: 3,
        stride: 2,
        padding: 1,
    };

    pub fn new(kernel: usize, stride: usize, padding: usize) -> Self {
        MaxPool2dParams {
            kernel,
            stride,
            padding,
        }
    }

    /// Output length along one axis of input length `len` (requires `len + 2p >= k`).
    pub fn out_len(&self, len: usize) -> usize {
        (len + 2 * self.padding - self.kernel) / self.stride + 1
    }

    /// The input rows (or columns) `[start, end)` of window `i`, clipped to `[0, len)`.
    fn window(&self, i: usize, len: usize) -> (usize, usize) {
        let start = (i * self.stride).saturating_sub(self.padding);
        let end = (i * self.stride + self.kernel - self.padding).min(len);
        (start, end)
    }
}

/// Max pool of a `[N, C, H, W]` tensor. Errors unless rank 4, `kernel, stride >= 1`,
/// `padding <= kernel / 2` and `H + 2p >= kernel` (same for W).
pub fn max_pool2d(x: &Tensor, params: MaxPool2dParams) -> Result<Tensor> {
    let (n, c, h, w) = nchw(OP, x)?;
    let MaxPool2dParams {
        kernel,
        stride,
        padding,
    } = params;
    if kernel == 0 || stride == 0 || padding > kernel / 2 {
        return Err(invalid(
            OP,
            format!(
                "kernel {kernel} and stride {stride} must be positive and padding {padding} at most kernel / 2"
            ),
        ));
    }
    if h + 2 * padding < kernel || w + 2 * padding < kernel {
        return Err(shape_error(
            OP,
            format!("the padded input is smaller than the {kernel}x{kernel} window"),
            &[x.dims()],
        ));
    }
    let (ho, wo) = (params.out_len(h), params.out_len(w));
    let (in_plane, out_plane) = (h * w, ho * wo);
    let ppt = planes_per_task(in_plane);
    let mut out = Buffer::for_overwrite(n * c * out_plane);
    out.par_chunks_mut(ppt * out_plane)
        .zip(x.data().par_chunks(ppt * in_plane))
        .for_each(|(o, x)| max_pool2d_forward(x, h, w, params, o));
    Ok(Tensor::from_op(out, [n, c, ho, wo], &[x], || {
        MaxPool2dBackward { params }
    }))
}

/// Index (within an `h x w` plane) of the maximum of output `(i, j)`'s window: the first maximum
/// in row-major order, or the first NaN.
#[inline]
fn window_argmax(plane: &[f32], w: usize, rows: (usize, usize), cols: (usize, usize)) -> usize {
    let mut best = rows.0 * w + cols.0;
    let mut max = f32::NEG_INFINITY;
    for r in rows.0..rows.1 {
        let row = &plane[r * w..][cols.0..cols.1];
        for (k, &v) in row.iter().enumerate() {
            if v > max || (v.is_nan() && !max.is_nan()) {
                max = v;
                best = r * w + cols.0 + k;
            }
        }
    }
    best
}

/// Pools whole `h x w` planes: `x.len() = P * h * w`, `out.len() = P * Ho * Wo`
/// (single-threaded slice kernel; `params` already validated for `h, w`).
pub fn max_pool2d_forward(x: &[f32], h: usize, w: usize, params: MaxPool2dParams, out: &mut [f32]) {
    let (ho, wo) = (params.out_len(h), params.out_len(w));
    assert!(
        x.len().is_multiple_of(h * w) && out.len() == x.len() / (h * w) * ho * wo,
        "max_pool2d_forward: lengths {} -> {} do not fit planes of {h}x{w}",
        x.len(),
        out.len()
    );
    for (xp, op) in x.chunks_exact(h * w).zip(out.chunks_exact_mut(ho * wo)) {
        for (i, orow) in op.chunks_exact_mut(wo).enumerate() {
            let rows = params.window(i, h);
            for (j, o) in orow.iter_mut().enumerate() {
                *o = xp[window_argmax(xp, w, rows, params.window(j, w))];
            }
        }
    }
}

/// Adds each output gradient to its window's argmax in the input `x` (recomputed) and writes
/// zeros elsewhere: `x.len() = grad_in.len() = P * h * w`, `grad_out.len() = P * Ho * Wo`.
pub fn max_pool2d_backward(
    x: &[f32],
    grad_out: &[f32],
    h: usize,
    w: usize,
    params: MaxPool2dParams,
    grad_in: &mut [f32],
) {
    let (ho, wo) = (params.out_len(h), params.out_len(w));
    assert!(
        x.len() == grad_in.len()
            && x.len().is_multiple_of(h * w)
            && grad_out.len() == x.len() / (h * w) * ho * wo,
        "max_pool2d_backward: lengths {} and {} -> {} do not fit planes of {h}x{w}",
        x.len(),
        grad_out.len(),
        grad_in.len()
    );
    for ((xp, gp), ip) in x
        .chunks_exact(h * w)
        .zip(grad_out.chunks_exact(ho * wo))
        .zip(grad_in.chunks_exact_mut(h * w))
    {
        ip.fill(0.0);
        for (i, grow) in gp.chunks_exact(wo).enumerate() {
            let rows = params.window(i, h);
            for (j, &g) in grow.iter().enumerate() {
                ip[window_argmax(xp, w, rows, params.window(j, w))] += g;
            }
        }
    }
}

struct MaxPool2dBackward {
    params: MaxPool2dParams,
}

impl BackwardOp for MaxPool2dBackward {
    fn name(&self) -> &'static str {
        OP
    }

    fn backward(&self, ctx: &BackwardCtx<'_>) -> Vec<Option<Buffer>> {
        let x = &ctx.inputs[0];
        let (_, _, h, w) = x.shape().nchw().expect("checked in forward");
        let out_plane = self.params.out_len(h) * self.params.out_len(w);
        let ppt = planes_per_task(h * w);
        let mut grad_in = Buffer::for_overwrite(x.numel());
        grad_in
            .par_chunks_mut(ppt * h * w)
            .zip(x.data().par_chunks(ppt * h * w))
            .zip(ctx.grad_output.par_chunks(ppt * out_plane))
            .for_each(|((gi, x), go)| max_pool2d_backward(x, go, h, w, self.params, gi));
        vec![Some(grad_in)]
    }
}

/// Plain reference of the max pool (`-inf` padding, first maximum wins), `dims = [N, C, H, W]`.
pub fn max_pool2d_reference<T: num_traits::Float>(
    x: &[T],
    dims: &[usize],
    params: MaxPool2dParams,
) -> Vec<T> {
    let [n, c, h, w] = dims[..] else {
        panic!("max_pool2d_reference: dims must be [N, C, H, W]")
    };
    let MaxPool2dParams {
        kernel: k,
        stride: s,
        padding: p,
    } = params;
    let (ho, wo) = ((h + 2 * p - k) / s + 1, (w + 2 * p - k) / s + 1);
    let mut out = Vec::with_capacity(n * c * ho * wo);
    for plane in x.chunks(h * w).take(n * c) {
        for i in 0..ho {
            for j in 0..wo {
                let mut max = T::neg_infinity();
                for di in 0..k {
                    for dj in 0..k {
                        // Padded coordinates; positions outside the input are -inf and never win.
                        let r = (i * s + di) as isize - p as isize;
                        let col = (j * s + dj) as isize - p as isize;
                        if r < 0 || col < 0 || r >= h as isize || col >= w as isize {
                            continue;
                        }
                        let v = plane[r as usize * w + col as usize];
                        if v > max || (v.is_nan() && !max.is_nan()) {
                            max = v;
                        }
                    }
                }
                out.push(max);
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

    /// The gradient is a 0/1 routing of the upstream values (sums of at most k*k of them in f32),
    /// and the f64 central differences of a piecewise-linear function away from its kinks are
    /// exact up to rounding, so the check is much tighter than the default.
    const GRAD_TOL: GradTolerance = GradTolerance {
        rtol: 1e-5,
        atol: 1e-6,
        eps: 1e-6,
    };

    /// `[N, C, H, W]` and valid pool parameters for it (`H, W >= k - 2p` holds by construction).
    fn pool_case(max_spatial: usize) -> impl Strategy<Value = (Vec<usize>, MaxPool2dParams)> {
        (1usize..5, 1usize..4)
            .prop_flat_map(|(k, s)| (Just(k), Just(s), 0..=k / 2))
            .prop_flat_map(move |(k, s, p)| {
                let min = k.saturating_sub(2 * p).max(1);
                (
                    (
                        1usize..3,
                        1usize..4,
                        min..min + max_spatial,
                        min..min + max_spatial,
                    ),
                    Just(MaxPool2dParams::new(k, s, p)),
                )
            })
            .prop_map(|((n, c, h, w), params)| (vec![n, c, h, w], params))
    }

    /// Distinct values `m * 2^-6` (m a seeded permutation centred on 0), exact in f32: no two
    /// values in a window are within 2 eps of each other, so the argmax is stable under the
    /// finite-difference steps.
    fn distinct_values(len: usize, seed: u64) -> Vec<f64> {
        let keys = random_values(len, 1.0, seed);
        let mut order: Vec<usize> = (0..len).collect();
        order.sort_by(|&a, &b| keys[a].total_cmp(&keys[b]));
        let mut values = vec![0.0; len];
        for (rank, &i) in order.iter().enumerate() {
            values[i] = (rank as f64 - len as f64 / 2.0) / 64.0;
        }
        values
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn forward_matches_reference((dims, params) in pool_case(30), seed in any::<u64>()) {
            let x = random_values(dims.iter().product(), 3.0, seed);
            let t = Tensor::from_vec(to_f32(&x), dims.clone()).unwrap();
            let y = max_pool2d(&t, params).unwrap();
            let (ho, wo) = (params.out_len(dims[2]), params.out_len(dims[3]));
            prop_assert_eq!(y.dims(), &[dims[0], dims[1], ho, wo]);
            // A max selects an input value: exact.
            assert_close("max_pool2d", y.data(), &max_pool2d_reference(&x, &dims, params), 0.0, 0.0);
        }

        #[test]
        fn backward_matches_finite_differences((dims, params) in pool_case(7), seed in any::<u64>()) {
            let x = distinct_values(dims.iter().product(), seed);
            check_gradients("max_pool2d", &[GradInput::new(x, &dims)],
                |t| max_pool2d(&t[0], params).unwrap(),
                |v| max_pool2d_reference(&v[0], &dims, params), GRAD_TOL, seed);
        }
    }

    #[test]
    fn resnet_stem_pool_hand_computed() {
        // One 4x4 plane of negative values: the -inf padding never wins (zero padding would).
        #[rustfmt::skip]
        let x = vec![
            -1.0, -2.0, -3.0, -4.0,
            -5.0, -6.0, -7.0, -8.0,
            -9.0, -1.5, -2.5, -3.5,
            -4.5, -5.5, -6.5, -0.5,
        ];
        let t = Tensor::from_vec(x, [1, 1, 4, 4]).unwrap().into_leaf();
        let y = max_pool2d(&t, MaxPool2dParams::RESNET_STEM).unwrap();
        assert_eq!(y.dims(), &[1, 1, 2, 2]);
        // Windows: rows/cols {0,1} x {0,1}, {0,1} x {1,2,3}, {1,2,3} x {0,1}, {1,2,3} x {1,2,3}.
        assert_eq!(y.data(), &[-1.0, -2.0, -1.5, -0.5]);
        y.backward_with(Buffer::from_vec(vec![1.0, 2.0, 4.0, 8.0]))
            .unwrap();
        #[rustfmt::skip]
        let expected = [
            1.0, 2.0, 0.0, 0.0,
            0.0, 0.0, 0.0, 0.0,
            0.0, 4.0, 0.0, 0.0,
            0.0, 0.0, 0.0, 8.0,
        ];
        assert_eq!(&t.grad().unwrap()[..], &expected);
    }

    #[test]
    fn ties_route_to_the_first_maximum_and_overlaps_add() {
        // All equal: every window's first element (row-major, inside the input) takes the
        // gradient. Windows of the 3x3/2/1 pool on 3x3 start at (0,0), (0,1), (1,0), (1,1).
        let t = Tensor::from_vec(vec![7.0; 9], [1, 1, 3, 3])
            .unwrap()
            .into_leaf();
        let y = max_pool2d(&t, MaxPool2dParams::RESNET_STEM).unwrap();
        assert_eq!(y.data(), &[7.0; 4]);
        y.backward_with(Buffer::from_vec(vec![1.0, 2.0, 4.0, 8.0]))
            .unwrap();
        assert_eq!(
            &t.grad().unwrap()[..],
            &[1.0, 2.0, 0.0, 4.0, 8.0, 0.0, 0.0, 0.0, 0.0]
        );
        // One shared maximum in the centre collects all four overlapping windows.
        let mut v = vec![0.0; 9];
        v[4] = 1.0;
        let t = Tensor::from_vec(v, [1, 1, 3, 3]).unwrap().into_leaf();
        let y = max_pool2d(&t, MaxPool2dParams::RESNET_STEM).unwrap();
        y.backward_with(Buffer::from_vec(vec![1.0, 2.0, 4.0, 8.0]))
            .unwrap();
        assert_eq!(t.grad().unwrap()[4], 15.0);
    }

    #[test]
    fn nan_propagates_like_pytorch() {
        let x = vec![1.0, f32::NAN, 3.0, 2.0];
        let t = Tensor::from_vec(x.clone(), [1, 1, 2, 2]).unwrap();
        let y = max_pool2d(&t, MaxPool2dParams::new(2, 2, 0)).unwrap();
        assert!(y.data()[0].is_nan());
        assert!(max_pool2d_reference(&x, &[1, 1, 2, 2], MaxPool2dParams::new(2, 2, 0))[0].is_nan());
    }

    #[test]
    fn rejects_bad_shapes_and_parameters() {
        let x = Tensor::zeros([1, 1, 4, 4]);
        for params in [
            MaxPool2dParams::new(0, 1, 0),
            MaxPool2dParams::new(3, 0, 1),
            MaxPool2dParams::new(3, 2, 2),
        ] {
            let err = max_pool2d(&x, params).unwrap_err().to_string();
            assert!(
                err.contains("max_pool2d") && err.contains("invalid"),
                "{err}"
            );
        }
        for dims in [vec![1, 1, 2, 8], vec![4, 4, 4]] {
            let err = max_pool2d(&Tensor::zeros(dims.clone()), MaxPool2dParams::new(5, 1, 1))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("max_pool2d") && err.contains(&format!("{dims:?}")),
                "{err}"
            );
        }
    }
}
