//! Classification losses and metrics over `[N, K]` logits: [`log_softmax`], label-smoothed
//! [`cross_entropy`] (PyTorch semantics) and [`accuracy_topk`].
//!
//! Each row is handled by one rayon task at most and reduced in a fixed order; the batch mean sums
//! per-row losses in row order, so results do not depend on the number of threads.

mod accuracy;
mod cross_entropy;
mod log_softmax;

pub use accuracy::accuracy_topk;
pub use cross_entropy::{cross_entropy, cross_entropy_reference};
pub use log_softmax::{log_softmax, log_softmax_reference};

use crate::error::{Result, shape_error};
use crate::tensor::Tensor;

/// `(N, K)` of a 2-D tensor with `K >= 1`.
fn rows_and_classes(op: &'static str, x: &Tensor) -> Result<(usize, usize)> {
    match *x.dims() {
        [n, k] if k >= 1 => Ok((n, k)),
        _ => Err(shape_error(
            op,
            "expected 2-D logits [N, K] with K >= 1",
            &[x.dims()],
        )),
    }
}

/// `log(sum(exp(row)))`, stable: the row maximum is factored out and the sum runs in f64.
fn log_sum_exp(row: &[f32]) -> f64 {
    let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v)) as f64;
    if max == f64::NEG_INFINITY {
        return max;
    }
    let sum: f64 = row.iter().map(|&v| (v as f64 - max).exp()).sum();
    max + sum.ln()
}

/// `log(sum(exp(row)))` for the references, generic and stable.
fn log_sum_exp_reference<T: num_traits::Float>(row: &[T]) -> T {
    let max = row.iter().fold(T::neg_infinity(), |m, &v| m.max(v));
    max + row.iter().fold(T::zero(), |s, &v| s + (v - max).exp()).ln()
}
