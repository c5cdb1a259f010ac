//! `sigmoid(x) = 1 / (1 + e^-x)`. Saturates cleanly: `sigmoid(-100) = 0`, `sigmoid(100) = 1`.

use super::{backward_chunks, exp_f32, map_chunks};
use crate::autograd::{BackwardCtx, BackwardOp};
use crate::kernels::simd::avx2_kernel;
use crate::tensor::{Buffer, Tensor};

/// `1 / (1 + e^-x)` elementwise, any shape.
pub fn sigmoid(x: &Tensor) -> Tensor {
    let out = map_chunks(x.data(), sigmoid_forward);
    Tensor::from_op(out, x.shape().clone(), &[x], || SigmoidBackward)
}

/// `1 / (1 + e^-x)`; `e^-x = inf` for `x < -88.4` gives exactly 0, never NaN. Relative error
/// a few ulp.
#[inline(always)]
pub fn sigmoid_scalar(x: f32) -> f32 {
    1.0 / (1.0 + exp_f32(-x))
}

avx2_kernel! {
/// `out[i] = sigmoid(x[i])` (single-threaded slice kernel).
pub fn sigmoid_forward / sigmoid_forward_portable(x: &[f32], out: &mut [f32]) {
    assert_eq!(x.len(), out.len(), "sigmoid_forward: length mismatch");
    out.iter_mut()
        .zip(x)
        .for_each(|(o, &x)| *o = sigmoid_scalar(x));
}
}

avx2_kernel! {
/// `x[i] = sigmoid(x[i])` in place.
pub fn sigmoid_in_place / sigmoid_in_place_portable(x: &mut [f32]) {
    x.iter_mut().for_each(|v| *v = sigmoid_scalar(*v));
}
}

avx2_kernel! {
/// `grad_in[i] = grad_out[i] * y[i] * (1 - y[i])`, from the forward output `y`.
pub fn sigmoid_backward / sigmoid_backward_portable(y: &[f32], grad_out: &[f32], grad_in: &mut [f32]) {
    assert!(
        y.len() == grad_out.len() && y.len() == grad_in.len(),
        "sigmoid_backward: length mismatch"
    );
    grad_in
        .iter_mut()
        .zip(y.iter().zip(grad_out))
        .for_each(|(gi, (&y, &go))| *gi = go * (y * (1.0 - y)));
}
}

struct SigmoidBackward;

impl BackwardOp for SigmoidBackward {
    fn name(&self) -> &'static str {
        "sigmoid"
    }

    fn backward(&self, ctx: &BackwardCtx<'_>) -> Vec<Option<Buffer>> {
        vec![Some(backward_chunks(
            ctx.output.data(),
            ctx.grad_output,
            sigmoid_backward,
        ))]
    }
}

/// Plain reference: `1 / (1 + e^-x)`.
pub fn sigmoid_reference<T: num_traits::Float>(x: &[T]) -> Vec<T> {
    x.iter()
        .map(|&v| T::one() / (T::one() + (-v).exp()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::test_shapes::{forward_dims, gradient_dims};
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
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn forward_matches_reference(dims in forward_dims(), seed in any::<u64>()) {
            let n: usize = dims.iter().product();
            let x = random_values(n, 20.0, seed);
            let t = Tensor::from_vec(to_f32(&x), dims).unwrap();
            // A few ulp: exp (< 1 ulp) plus one add and one division.
            assert_close("sigmoid", sigmoid(&t).data(), &sigmoid_reference(&x), 5e-7, 0.0);
        }

        #[test]
        fn backward_matches_finite_differences(dims in gradient_dims(), seed in any::<u64>()) {
            let n: usize = dims.iter().product();
            check_gradients("sigmoid", &[GradInput::new(random_values(n, 4.0, seed), &dims)],
                |t| sigmoid(&t[0]), |v| sigmoid_reference(&v[0]), GRAD_TOL, seed);
        }
    }

    #[test]
    fn saturates_without_nan() {
        let x = Tensor::from_vec(
            vec![
                -1000.0,
                -100.0,
                -88.5,
                -30.0,
                0.0,
                30.0,
                100.0,
                f32::INFINITY,
                f32::NEG_INFINITY,
            ],
            [9],
        )
        .unwrap();
        let y = sigmoid(&x);
        let y = y.data();
        assert!(y.iter().all(|v| v.is_finite()), "{y:?}");
        assert_eq!(y[0], 0.0);
        assert_eq!(y[1], 0.0);
        assert!(y[2] < 1e-38);
        assert_close(
            "sigmoid(-30)",
            &y[3..4],
            &[(-30f64).exp() / (1.0 + (-30f64).exp())],
            5e-7,
            0.0,
        );
        assert_eq!(y[4], 0.5);
        assert_eq!(&y[5..8], &[1.0, 1.0, 1.0]);
        assert_eq!(y[8], 0.0);
    }

    #[test]
    fn in_place_matches_forward() {
        let x = to_f32(&random_values(1000, 10.0, 7));
        let mut a = vec![0.0; x.len()];
        sigmoid_forward(&x, &mut a);
        let mut b = x.clone();
        sigmoid_in_place(&mut b);
        assert_eq!(a, b);
    }

    #[test]
    fn dispatched_and_portable_kernels_agree_bitwise() {
        // On an AVX2 machine the public kernels run the AVX2 compilation; it must give the same
        // bits as the portable one (4099: not a multiple of any vector width).
        let mut x = to_f32(&random_values(4099, 30.0, 11));
        x[..6].copy_from_slice(&[-100.0, 100.0, -88.5, 88.5, 0.0, -0.0]);
        let g = to_f32(&random_values(x.len(), 1.0, 12));
        let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        let (mut a, mut b) = (vec![0.0; x.len()], vec![0.0; x.len()]);
        sigmoid_forward(&x, &mut a);
        sigmoid_forward_portable(&x, &mut b);
        assert_eq!(bits(&a), bits(&b));
        let (mut c, mut d) = (x.clone(), x.clone());
        sigmoid_in_place(&mut c);
        sigmoid_in_place_portable(&mut d);
        assert_eq!(bits(&c), bits(&d));
        assert_eq!(bits(&a), bits(&c));
        sigmoid_backward(&x, &g, &mut a);
        sigmoid_backward_portable(&x, &g, &mut b);
        assert_eq!(bits(&a), bits(&b));
    }
}
