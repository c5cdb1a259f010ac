//! `log_softmax(x)` over the last dimension of a 2-D tensor.

use rayon::prelude::*;

use super::{log_sum_exp, log_sum_exp_reference, rows_and_classes};
use crate::autograd::{BackwardCtx, BackwardOp};
use crate::error::Result;
use crate::tensor::{Buffer, Tensor};

/// `x` `[N, K]` → `[N, K]`, `y[n, k] = x[n, k] - log(sum_j exp(x[n, j]))`. Differentiable.
pub fn log_softmax(x: &Tensor) -> Result<Tensor> {
    let (_, k) = rows_and_classes("log_softmax", x)?;
    let mut out = Buffer::for_overwrite(x.numel());
    out.par_chunks_mut(k)
        .zip(x.data().par_chunks(k))
        .for_each(|(o, row)| {
            let lse = log_sum_exp(row);
            o.iter_mut()
                .zip(row)
                .for_each(|(o, &v)| *o = (v as f64 - lse) as f32);
        });
    Ok(Tensor::from_op(out, x.shape().clone(), &[x], || {
        LogSoftmaxBackward
    }))
}

/// `dx = dy - softmax * sum(dy)` per row, with `softmax = exp(y)` from the saved output.
struct LogSoftmaxBackward;

impl BackwardOp for LogSoftmaxBackward {
    fn name(&self) -> &'static str {
        "log_softmax"
    }

    fn backward(&self, ctx: &BackwardCtx<'_>) -> Vec<Option<Buffer>> {
        let k = ctx.output.dims()[1];
        let mut dx = Buffer::for_overwrite(ctx.output.numel());
        dx.par_chunks_mut(k)
            .zip(ctx.output.data().par_chunks(k))
            .zip(ctx.grad_output.par_chunks(k))
            .for_each(|((dx, y), dy)| {
                let total = dy.iter().map(|&g| g as f64).sum::<f64>() as f32;
                for ((d, &y), &g) in dx.iter_mut().zip(y).zip(dy) {
                    *d = g - y.exp() * total;
                }
            });
        vec![Some(dx)]
    }
}

/// Plain reference of [`log_softmax`] on a row-major `[n, k]` slice.
pub fn log_softmax_reference<T: num_traits::Float>(x: &[T], k: usize) -> Vec<T> {
    x.chunks(k)
        .flat_map(|row| {
            let lse = log_sum_exp_reference(row);
            row.iter().map(move |&v| v - lse)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn forward_and_backward_match_reference(n in 1usize..6, k in 1usize..12,
                                                scale in prop::sample::select(vec![1.0f64, 30.0]),
                                                seed in any::<u64>()) {
            let x = random_values(n * k, scale, seed);
            let t = Tensor::from_vec(to_f32(&x), [n, k]).unwrap();
            assert_close("log_softmax", log_softmax(&t).unwrap().data(),
                &log_softmax_reference(&x, k), 1e-6, 1e-5);
            check_gradients("log_softmax", &[GradInput::new(x, &[n, k])],
                |t| log_softmax(&t[0]).unwrap(), |v| log_softmax_reference(&v[0], k),
                GradTolerance::default(), seed);
        }
    }

    #[test]
    fn is_stable_for_large_logits() {
        let t = Tensor::from_vec(vec![1000.0, 0.0, -1000.0], [1, 3]).unwrap();
        let y = log_softmax(&t).unwrap();
        assert_eq!(y.data(), &[0.0, -1000.0, -2000.0]);
    }

    #[test]
    fn rejects_non_2d_input() {
        let e = log_softmax(&Tensor::zeros([2, 3, 4]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("[2, 3, 4]"), "{e}");
    }
}
