//! `interleave_channels(a, b)`: `out[:, 2k] = a[:, k]`, `out[:, 2k + 1] = b[:, k]`,
//! `[N, C, H, W] x 2 -> [N, 2C, H, W]` (PARNET-SPEC 2.5 step 2; not a plain concat).

use super::{gather_planes, plane};
use crate::autograd::{BackwardCtx, BackwardOp};
use crate::error::{Result, shape_error};
use crate::tensor::{Buffer, Tensor};

/// Interleaving concat of two `[N, C, H, W]` tensors of the same shape into `[N, 2C, H, W]`.
pub fn interleave_channels(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let Some((n, c, h, w)) = a.shape().nchw() else {
        return Err(shape_error(
            "interleave_channels",
            "expected two rank-4 [N, C, H, W] tensors",
            &[a.dims(), b.dims()],
        ));
    };
    if a.shape() != b.shape() {
        return Err(shape_error(
            "interleave_channels",
            "operands must have the same shape",
            &[a.dims(), b.dims()],
        ));
    }
    let mut out = Buffer::for_overwrite(2 * a.numel());
    interleave_channels_forward(a.data(), b.data(), c, h * w, &mut out);
    Ok(Tensor::from_op(out, [n, 2 * c, h, w], &[a, b], || {
        InterleaveBackward
    }))
}

/// `out` plane `(n, 2k)` = `a` plane `(n, k)`, `(n, 2k + 1)` = `b` plane `(n, k)`, with `channels`
/// = C planes of `plane_len` floats per sample in `a` and `b` (parallel over planes).
pub fn interleave_channels_forward(
    a: &[f32],
    b: &[f32],
    channels: usize,
    plane_len: usize,
    out: &mut [f32],
) {
    assert!(
        a.len() == b.len()
            && out.len() == 2 * a.len()
            && a.len().is_multiple_of((channels * plane_len).max(1)),
        "interleave_channels_forward: length mismatch"
    );
    gather_planes(out, plane_len, |p| {
        let (n, co) = (p / (2 * channels), p % (2 * channels));
        let src = if co % 2 == 0 { a } else { b };
        plane(src, n * channels + co / 2, plane_len)
    });
}

struct InterleaveBackward;

impl BackwardOp for InterleaveBackward {
    fn name(&self) -> &'static str {
        "interleave_channels"
    }

    fn backward(&self, ctx: &BackwardCtx<'_>) -> Vec<Option<Buffer>> {
        let (_, c, h, w) = ctx.inputs[0].shape().nchw().expect("checked in forward");
        let plane_len = h * w;
        let dy = ctx.grad_output;
        (0..2)
            .map(|parity| {
                ctx.needs_grad(parity).then(|| {
                    let mut g = Buffer::for_overwrite(ctx.inputs[parity].numel());
                    gather_planes(&mut g, plane_len, |p| {
                        let (n, k) = (p / c, p % c);
                        plane(dy, n * 2 * c + 2 * k + parity, plane_len)
                    });
                    g
                })
            })
            .collect()
    }
}

/// Plain reference straight from the definition; `dims = [N, C, H, W]` of `a` and `b`.
pub fn interleave_channels_reference<T: num_traits::Float>(
    a: &[T],
    b: &[T],
    dims: &[usize],
) -> Vec<T> {
    let [n, c, h, w] = dims[..] else {
        panic!("interleave_channels_reference: dims must be [N, C, H, W]")
    };
    let hw = h * w;
    let mut out = vec![T::zero(); 2 * n * c * hw];
    for ni in 0..n {
        for k in 0..c {
            for i in 0..hw {
                out[(ni * 2 * c + 2 * k) * hw + i] = a[(ni * c + k) * hw + i];
                out[(ni * 2 * c + 2 * k + 1) * hw + i] = b[(ni * c + k) * hw + i];
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

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn forward_matches_reference(dims in prop::collection::vec(1usize..12, 4), seed in any::<u64>()) {
            let len: usize = dims.iter().product();
            let (a, b) = (random_values(len, 2.0, seed), random_values(len, 2.0, seed + 1));
            let ta = Tensor::from_vec(to_f32(&a), dims.clone()).unwrap();
            let tb = Tensor::from_vec(to_f32(&b), dims.clone()).unwrap();
            let y = interleave_channels(&ta, &tb).unwrap();
            prop_assert_eq!(y.dims(), &[dims[0], 2 * dims[1], dims[2], dims[3]]);
            // A permutation: exact.
            assert_close("interleave", y.data(), &interleave_channels_reference(&a, &b, &dims), 0.0, 0.0);
        }

        #[test]
        fn backward_matches_finite_differences(dims in prop::collection::vec(1usize..4, 4), seed in any::<u64>()) {
            let len: usize = dims.iter().product();
            let (a, b) = (random_values(len, 2.0, seed), random_values(len, 2.0, seed + 1));
            check_gradients("interleave", &[GradInput::new(a, &dims), GradInput::new(b, &dims)],
                |t| interleave_channels(&t[0], &t[1]).unwrap(),
                |v| interleave_channels_reference(&v[0], &v[1], &dims), GRAD_TOL, seed);
        }
    }

    #[test]
    fn hand_written_interleave() {
        // PARNET-SPEC 12: interleave(a, b)[2k] = a[k], [2k + 1] = b[k]. N = 2, C = 3, one pixel.
        // a = 1, 2, 3 | 4, 5, 6 and b = 10, 20, 30 | 40, 50, 60 (sample | sample).
        let a = Tensor::from_vec(vec![1., 2., 3., 4., 5., 6.], [2, 3, 1, 1]).unwrap();
        let b = Tensor::from_vec(vec![10., 20., 30., 40., 50., 60.], [2, 3, 1, 1]).unwrap();
        let y = interleave_channels(&a, &b).unwrap();
        assert_eq!(y.dims(), &[2, 6, 1, 1]);
        assert_eq!(
            y.data(),
            &[1., 10., 2., 20., 3., 30., 4., 40., 5., 50., 6., 60.]
        );
    }

    #[test]
    fn hand_written_interleave_with_planes_and_gradient() {
        // N = 1, C = 2, 1x2 planes: a = [a0 | a1], b = [b0 | b1].
        let a = Tensor::from_vec(vec![1., 2., 3., 4.], [1, 2, 1, 2])
            .unwrap()
            .into_leaf();
        let b = Tensor::from_vec(vec![5., 6., 7., 8.], [1, 2, 1, 2])
            .unwrap()
            .into_leaf();
        let y = interleave_channels(&a, &b).unwrap();
        assert_eq!(y.data(), &[1., 2., 5., 6., 3., 4., 7., 8.]);
        // The gradient of plane 2k goes to a[k], of plane 2k + 1 to b[k].
        y.backward_with(Buffer::from_vec(vec![0., 1., 2., 3., 4., 5., 6., 7.]))
            .unwrap();
        assert_eq!(&a.grad().unwrap()[..], &[0., 1., 4., 5.]);
        assert_eq!(&b.grad().unwrap()[..], &[2., 3., 6., 7.]);
    }

    #[test]
    fn rejects_bad_shapes() {
        for (da, db) in [
            (vec![1, 2, 3, 3], vec![1, 3, 3, 3]),
            (vec![2, 3, 3], vec![2, 3, 3]),
        ] {
            let err = interleave_channels(&Tensor::zeros(da.clone()), &Tensor::zeros(db.clone()))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("interleave_channels") && err.contains(&format!("{da:?}")),
                "{err}"
            );
        }
    }
}
