//! Reductions to a scalar: `sum` and `mean`.

use crate::autograd::{BackwardCtx, BackwardOp};
use crate::kernels::parallel::sum_f64;
use crate::tensor::{Buffer, Tensor};

/// Sum of all elements, as a one-element tensor of shape `[]`.
pub fn sum(x: &Tensor) -> Tensor {
    let s = sum_f64(x.data()) as f32;
    Tensor::from_op(Buffer::from_vec(vec![s]), Vec::<usize>::new(), &[x], || {
        ReduceBackward { scale: 1.0 }
    })
}

/// Mean of all elements, as a one-element tensor of shape `[]`.
pub fn mean(x: &Tensor) -> Tensor {
    let n = x.numel().max(1) as f64;
    let m = (sum_f64(x.data()) / n) as f32;
    Tensor::from_op(Buffer::from_vec(vec![m]), Vec::<usize>::new(), &[x], || {
        ReduceBackward {
            scale: (1.0 / n) as f32,
        }
    })
}

/// d(sum * scale)/dx = scale everywhere.
struct ReduceBackward {
    scale: f32,
}

impl BackwardOp for ReduceBackward {
    fn name(&self) -> &'static str {
        "sum/mean"
    }

    fn backward(&self, ctx: &BackwardCtx<'_>) -> Vec<Option<Buffer>> {
        let g = ctx.grad_output[0] * self.scale;
        vec![Some(Buffer::filled(ctx.inputs[0].numel(), g))]
    }
}

/// Plain reference of `sum`.
pub fn sum_reference<T: num_traits::Float>(x: &[T]) -> T {
    x.iter().fold(T::zero(), |a, &b| a + b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn sum_and_mean_match_reference(dims in prop::collection::vec(1usize..7, 1..4), seed in any::<u64>()) {
            let n: usize = dims.iter().product();
            let x = random_values(n, 3.0, seed);
            let t = Tensor::from_vec(to_f32(&x), dims.clone()).unwrap();
            assert_close("sum", sum(&t).data(), &[sum_reference(&x)], 1e-6, 1e-5);
            assert_close("mean", mean(&t).data(), &[sum_reference(&x) / n as f64], 1e-6, 1e-6);
            check_gradients("sum", &[GradInput::new(x.clone(), &dims)], |t| sum(&t[0]),
                |v| vec![sum_reference(&v[0])], GradTolerance::default(), seed);
            check_gradients("mean", &[GradInput::new(x, &dims)], |t| mean(&t[0]),
                |v| vec![sum_reference(&v[0]) / n as f64], GradTolerance::default(), seed);
        }
    }
}
