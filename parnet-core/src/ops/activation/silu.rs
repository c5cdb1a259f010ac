//! `silu(x) = x * sigmoid(x)` (swish). `silu(-100) = -0`, `silu(100) = 100`, never NaN for finite x.

use super::exp_f32;
use super::{backward_chunks, map_chunks};
use crate::autograd::{BackwardCtx, BackwardOp};
use crate::kernels::simd::avx2_kernel;
use crate::tensor::{Buffer, Tensor};

/// `x * sigmoid(x)` elementwise, any shape.
pub fn silu(x: &Tensor) -> Tensor {
    let out = map_chunks(x.data(), silu_forward);
    Tensor::from_op(out, x.shape().clone(), &[x], || SiluBackward)
}

/// `x / (1 + e^-x)`; for `x < -88.4`, `e^-x = inf` and the result is `-0`.
#[inline(always)]
pub fn silu_scalar(x: f32) -> f32 {
    x / (1.0 + exp_f32(-x))
}

/// `grad_out * silu'(x)` = `grad_out * s * (1 + x (1 - s))` with `s = sigmoid(x)`.
#[inline(always)]
pub(crate) fn silu_grad_scalar(x: f32, grad_out: f32) -> f32 {
    let s = 1.0 / (1.0 + exp_f32(-x));
    grad_out * (s * (1.0 + x * (1.0 - s)))
}

avx2_kernel! {
/// `out[i] = silu(x[i])` (single-threaded slice kernel).
pub fn silu_forward / silu_forward_portable(x: &[f32], out: &mut [f32]) {
    assert_eq!(x.len(), out.len(), "silu_forward: length mismatch");
    out.iter_mut()
        .zip(x)
        .for_each(|(o, &x)| *o = silu_scalar(x));
}
}

avx2_kernel! {
/// `x[i] = silu(x[i])` in place.
pub fn silu_in_place / silu_in_place_portable(x: &mut [f32]) {
    x.iter_mut().for_each(|v| *v = silu_scalar(*v));
}
}

avx2_kernel! {
/// `grad_in[i] = grad_out[i] * s * (1 + x (1 - s))` with `s = sigmoid(x[i])`, from the forward
/// input `x` (the sigmoid is recomputed rather than stored).
pub fn silu_backward / silu_backward_portable(x: &[f32], grad_out: &[f32], grad_in: &mut [f32]) {
    assert!(
        x.len() == grad_out.len() && x.len() == grad_in.len(),
        "silu_backward: length mismatch"
    );
    grad_in
        .iter_mut()
        .zip(x.iter().zip(grad_out))
        .for_each(|(gi, (&x, &go))| *gi = silu_grad_scalar(x, go));
}
}

struct SiluBackward;

impl BackwardOp for SiluBackward {
    fn name(&self) -> &'static str {
        "silu"
    }

    fn backward(&self, ctx: &BackwardCtx<'_>) -> Vec<Option<Buffer>> {
        vec![Some(backward_chunks(
            ctx.inputs[0].data(),
            ctx.grad_output,
            silu_backward,
        ))]
    }
}

/// Plain reference: `x / (1 + e^-x)`.
pub fn silu_reference<T: num_traits::Float>(x: &[T]) -> Vec<T> {
    x.iter().map(|&v| v / (T::one() + (-v).exp())).collect()
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
            assert_close("silu", silu(&t).data(), &silu_reference(&x), 5e-7, 0.0);
        }

        #[test]
        fn backward_matches_finite_differences(dims in gradient_dims(), seed in any::<u64>()) {
            let n: usize = dims.iter().product();
            check_gradients("silu", &[GradInput::new(random_values(n, 6.0, seed), &dims)],
                |t| silu(&t[0]), |v| silu_reference(&v[0]), GRAD_TOL, seed);
        }
    }

    #[test]
    fn saturates_without_nan() {
        let x = Tensor::from_vec(vec![-1000.0, -100.0, -88.5, 0.0, 100.0, 1000.0], [6])
            .unwrap()
            .into_leaf();
        let y = silu(&x);
        let v = y.data();
        assert!(v.iter().all(|v| v.is_finite()), "{v:?}");
        assert_eq!(&v[..4], &[0.0, 0.0, 0.0, 0.0]);
        assert!(v[0].is_sign_negative() && v[1].is_sign_negative());
        assert_eq!(&v[4..], &[100.0, 1000.0]);
        y.backward_with(Buffer::from_vec(vec![1.0; 6])).unwrap();
        let g = x.grad().unwrap();
        assert!(g.iter().all(|v| v.is_finite()), "{g:?}");
        assert_eq!(&g[..2], &[0.0, 0.0]);
        assert_eq!(g[3], 0.5);
        assert_eq!(&g[4..], &[1.0, 1.0]);
    }

    #[test]
    fn in_place_matches_forward() {
        let x = to_f32(&random_values(1000, 10.0, 7));
        let mut a = vec![0.0; x.len()];
        silu_forward(&x, &mut a);
        let mut b = x.clone();
        silu_in_place(&mut b);
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
        silu_forward(&x, &mut a);
        silu_forward_portable(&x, &mut b);
        assert_eq!(bits(&a), bits(&b));
        let (mut c, mut d) = (x.clone(), x.clone());
        silu_in_place(&mut c);
        silu_in_place_portable(&mut d);
        assert_eq!(bits(&c), bits(&d));
        assert_eq!(bits(&a), bits(&c));
        silu_backward(&x, &g, &mut a);
        silu_backward_portable(&x, &g, &mut b);
        assert_eq!(bits(&a), bits(&b));
    }
}
