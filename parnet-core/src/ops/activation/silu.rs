//! `silu(x) = x * sigmoid(x)` (swish). `silu(-100) = -0`, `silu(100) = 100`, never NaN for finite x.

use super::{backward_chunks, map_chunks};
use crate::autograd::{BackwardCtx, BackwardOp};
use crate::kernels::activation::{silu_backward, silu_forward};
use crate::tensor::{Buffer, Tensor};

/// `x * sigmoid(x)` elementwise, any shape.
pub fn silu(x: &Tensor) -> Tensor {
    let out = map_chunks(x.data(), silu_forward);
    Tensor::from_op(out, x.shape().clone(), &[x], || SiluBackward)
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
}
