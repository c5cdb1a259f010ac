//! `sigmoid(x) = 1 / (1 + e^-x)`. Saturates cleanly: `sigmoid(-100) = 0`, `sigmoid(100) = 1`.

use super::{backward_chunks, map_chunks};
use crate::autograd::{BackwardCtx, BackwardOp};
use crate::kernels::activation::{sigmoid_backward, sigmoid_forward};
use crate::tensor::{Buffer, Tensor};

/// `1 / (1 + e^-x)` elementwise, any shape.
pub fn sigmoid(x: &Tensor) -> Tensor {
    let out = map_chunks(x.data(), sigmoid_forward);
    Tensor::from_op(out, x.shape().clone(), &[x], || SigmoidBackward)
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
}
