//! `scale(x, alpha) = alpha * x`; the gradient is `alpha * dy`.

use crate::autograd::{BackwardCtx, BackwardOp};
use crate::kernels::parallel::map_into;
use crate::tensor::{Buffer, Tensor};

/// `alpha * x` elementwise, any shape.
pub fn scale(x: &Tensor, alpha: f32) -> Tensor {
    let mut out = Buffer::for_overwrite(x.numel());
    map_into(&mut out, x.data(), |v| alpha * v);
    Tensor::from_op(out, x.shape().clone(), &[x], || ScaleBackward { alpha })
}

/// `out[i] = alpha * x[i]` (single-threaded slice kernel).
pub fn scale_forward(x: &[f32], alpha: f32, out: &mut [f32]) {
    assert_eq!(x.len(), out.len(), "scale_forward: length mismatch");
    out.iter_mut().zip(x).for_each(|(o, &x)| *o = alpha * x);
}

struct ScaleBackward {
    alpha: f32,
}

impl BackwardOp for ScaleBackward {
    fn name(&self) -> &'static str {
        "scale"
    }

    fn backward(&self, ctx: &BackwardCtx<'_>) -> Vec<Option<Buffer>> {
        let alpha = self.alpha;
        let mut grad_in = Buffer::for_overwrite(ctx.grad_output.len());
        map_into(&mut grad_in, ctx.grad_output, |g| alpha * g);
        vec![Some(grad_in)]
    }
}

/// Plain reference: `alpha * x`.
pub fn scale_reference<T: num_traits::Float>(x: &[T], alpha: T) -> Vec<T> {
    x.iter().map(|&v| alpha * v).collect()
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
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn forward_and_backward_match_reference(
            dims in prop::collection::vec(1usize..6, 1..5),
            alpha in -4.0f32..4.0,
            seed in any::<u64>(),
        ) {
            let n: usize = dims.iter().product();
            let x = random_values(n, 2.0, seed);
            let t = Tensor::from_vec(to_f32(&x), dims.clone()).unwrap();
            // One f32 multiplication: correctly rounded.
            assert_close("scale", scale(&t, alpha).data(), &scale_reference(&x, alpha as f64), 6e-8, 0.0);
            let mut direct = vec![0.0; n];
            scale_forward(t.data(), alpha, &mut direct);
            let y = scale(&t, alpha);
            prop_assert_eq!(&direct[..], y.data());
            check_gradients("scale", &[GradInput::new(x, &dims)],
                |t| scale(&t[0], alpha), |v| scale_reference(&v[0], alpha as f64),
                GRAD_TOL, seed);
        }
    }
}
