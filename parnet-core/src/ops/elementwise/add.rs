//! `add(a, b)`: elementwise sum of two tensors of the same shape.

use crate::autograd::{BackwardCtx, BackwardOp};
use crate::error::{Result, shape_error};
use crate::kernels::parallel::zip_map_into;
use crate::tensor::{Buffer, Tensor};

/// `a + b`; both operands must have the same shape.
pub fn add(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    if a.shape() != b.shape() {
        return Err(shape_error(
            "add",
            "operands must have the same shape",
            &[a.dims(), b.dims()],
        ));
    }
    let mut out = Buffer::for_overwrite(a.numel());
    zip_map_into(&mut out, a.data(), b.data(), |x, y| x + y);
    Ok(Tensor::from_op(out, a.shape().clone(), &[a, b], || {
        AddBackward
    }))
}

struct AddBackward;

impl BackwardOp for AddBackward {
    fn name(&self) -> &'static str {
        "add"
    }

    fn backward(&self, ctx: &BackwardCtx<'_>) -> Vec<Option<Buffer>> {
        (0..2)
            .map(|i| {
                ctx.needs_grad(i)
                    .then(|| Buffer::from_slice(ctx.grad_output))
            })
            .collect()
    }

    fn passes_gradient_through(&self) -> bool {
        true
    }
}

/// Plain reference: `a + b`.
pub fn add_reference<T: num_traits::Float>(a: &[T], b: &[T]) -> Vec<T> {
    a.iter().zip(b).map(|(&x, &y)| x + y).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn forward_and_backward_match_reference(dims in prop::collection::vec(1usize..6, 1..5), seed in any::<u64>()) {
            let n: usize = dims.iter().product();
            let a = random_values(n, 2.0, seed);
            let b = random_values(n, 2.0, seed + 1);
            let ta = Tensor::from_vec(to_f32(&a), dims.clone()).unwrap();
            let tb = Tensor::from_vec(to_f32(&b), dims.clone()).unwrap();
            assert_close("add", add(&ta, &tb).unwrap().data(), &add_reference(&a, &b), 1e-6, 1e-6);
            check_gradients("add", &[GradInput::new(a, &dims), GradInput::new(b, &dims)],
                |t| add(&t[0], &t[1]).unwrap(), |v| add_reference(&v[0], &v[1]),
                GradTolerance::default(), seed);
        }
    }

    #[test]
    fn gradient_accumulates_over_uses() {
        // y = x + x: dy/dx = 2.
        let x = Tensor::from_vec(vec![1.0, 2.0], [2]).unwrap().into_leaf();
        let y = add(&x, &x).unwrap();
        y.backward_with(Buffer::from_vec(vec![1.0, 1.0])).unwrap();
        assert_eq!(&x.grad().unwrap()[..], &[2.0, 2.0]);
    }

    #[test]
    fn rejects_mismatched_shapes() {
        let a = Tensor::zeros([2, 3]);
        let b = Tensor::zeros([3, 2]);
        let err = add(&a, &b).unwrap_err().to_string();
        assert!(err.contains("[2, 3]") && err.contains("[3, 2]"), "{err}");
    }
}
