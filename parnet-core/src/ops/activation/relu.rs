//! `relu(x) = max(x, 0)`. NaN propagates; the gradient at exactly 0 is 0 (as in PyTorch).

use super::{backward_chunks, map_chunks};
use crate::autograd::{BackwardCtx, BackwardOp};
use crate::kernels::activation::{relu_backward, relu_forward};
use crate::tensor::{Buffer, Tensor};

/// `max(x, 0)` elementwise, any shape.
pub fn relu(x: &Tensor) -> Tensor {
    let out = map_chunks(x.data(), relu_forward);
    Tensor::from_op(out, x.shape().clone(), &[x], || ReluBackward)
}

struct ReluBackward;

impl BackwardOp for ReluBackward {
    fn name(&self) -> &'static str {
        "relu"
    }

    fn backward(&self, ctx: &BackwardCtx<'_>) -> Vec<Option<Buffer>> {
        vec![Some(backward_chunks(
            ctx.inputs[0].data(),
            ctx.grad_output,
            relu_backward,
        ))]
    }
}

/// Plain reference: `max(x, 0)`.
pub fn relu_reference<T: num_traits::Float>(x: &[T]) -> Vec<T> {
    x.iter()
        .map(|&v| if v > T::zero() { v } else { T::zero() })
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

    /// Random values with |x| >= 0.05, so that finite differences never straddle the kink at 0.
    fn away_from_zero(n: usize, seed: u64) -> Vec<f64> {
        random_values(n, 2.0, seed)
            .into_iter()
            .map(|v| {
                if v.abs() < 0.05 {
                    (v.signum() * 0.05) as f32 as f64
                } else {
                    v
                }
            })
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn forward_matches_reference(dims in forward_dims(), seed in any::<u64>()) {
            let n: usize = dims.iter().product();
            let x = random_values(n, 4.0, seed);
            let t = Tensor::from_vec(to_f32(&x), dims).unwrap();
            // relu is exact.
            assert_close("relu", relu(&t).data(), &relu_reference(&x), 0.0, 0.0);
        }

        #[test]
        fn backward_matches_finite_differences(dims in gradient_dims(), seed in any::<u64>()) {
            let n: usize = dims.iter().product();
            check_gradients("relu", &[GradInput::new(away_from_zero(n, seed), &dims)],
                |t| relu(&t[0]), |v| relu_reference(&v[0]), GRAD_TOL, seed);
        }
    }

    #[test]
    fn nan_propagates_and_gradient_at_zero_is_zero() {
        let x = Tensor::from_vec(vec![f32::NAN, 0.0, -1.0, 2.0], [4])
            .unwrap()
            .into_leaf();
        let y = relu(&x);
        assert!(y.data()[0].is_nan());
        assert_eq!(&y.data()[1..], &[0.0, 0.0, 2.0]);
        y.backward_with(Buffer::from_vec(vec![1.0; 4])).unwrap();
        assert_eq!(&x.grad().unwrap()[1..], &[0.0, 0.0, 1.0]);
    }
}
