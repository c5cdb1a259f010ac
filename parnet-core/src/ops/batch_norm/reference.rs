//! Plain references of batch norm, generic over f32/f64: straightforward loops over a contiguous
//! `[N, C, H, W]` slice, `dims = [N, C, H, W]`.

use num_traits::Float;

fn index(dims: [usize; 4], i: usize, ch: usize, p: usize) -> usize {
    let [_, c, h, w] = dims;
    (i * c + ch) * h * w + p
}

/// Per-channel `(mean, biased variance, unbiased variance)` of `x`.
fn moments<T: Float>(x: &[T], dims: [usize; 4]) -> (Vec<T>, Vec<T>, Vec<T>) {
    let [n, c, h, w] = dims;
    let m = T::from(n * h * w).unwrap();
    let mut mean = vec![T::zero(); c];
    let mut var = vec![T::zero(); c];
    let mut var_unbiased = vec![T::zero(); c];
    for ch in 0..c {
        let values = || (0..n).flat_map(move |i| (0..h * w).map(move |p| x[index(dims, i, ch, p)]));
        let mu = values().fold(T::zero(), |a, v| a + v) / m;
        let ss = values().fold(T::zero(), |a, v| a + (v - mu) * (v - mu));
        mean[ch] = mu;
        var[ch] = ss / m;
        var_unbiased[ch] = ss / (m - T::one());
    }
    (mean, var, var_unbiased)
}

/// Per-channel batch mean and unbiased variance (what [`super::BatchStats`] holds).
pub fn batch_stats_reference<T: Float>(x: &[T], dims: [usize; 4]) -> (Vec<T>, Vec<T>) {
    let (mean, _, var_unbiased) = moments(x, dims);
    (mean, var_unbiased)
}

/// Training-mode batch norm: `(x - mean) / sqrt(var + eps) * gamma + beta` with the batch's mean
/// and biased variance per channel.
pub fn batch_norm2d_train_reference<T: Float>(
    x: &[T],
    dims: [usize; 4],
    gamma: &[T],
    beta: &[T],
    eps: T,
) -> Vec<T> {
    let (mean, var, _) = moments(x, dims);
    batch_norm2d_eval_reference(x, dims, gamma, beta, &mean, &var, eps)
}

/// Eval-mode batch norm: `(x - mean) / sqrt(var + eps) * gamma + beta` with given statistics.
pub fn batch_norm2d_eval_reference<T: Float>(
    x: &[T],
    dims: [usize; 4],
    gamma: &[T],
    beta: &[T],
    mean: &[T],
    var: &[T],
    eps: T,
) -> Vec<T> {
    let [n, c, h, w] = dims;
    let mut out = vec![T::zero(); x.len()];
    for i in 0..n {
        for ch in 0..c {
            for p in 0..h * w {
                let k = index(dims, i, ch, p);
                out[k] = (x[k] - mean[ch]) / (var[ch] + eps).sqrt() * gamma[ch] + beta[ch];
            }
        }
    }
    out
}
