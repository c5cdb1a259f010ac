//! Forward kernels: per-channel moments (f64, one pass over memory with a shift) and the
//! per-channel affine map, one rayon task per channel.

use rayon::prelude::*;

use super::planes_by_channel;

/// Independent f64 accumulators per reduction, so the loop vectorises; the order is fixed.
const LANES: usize = 8;

/// `(sum(f(a[i], b[i]).0), sum(f(a[i], b[i]).1))` in f64 over [`LANES`] lanes per sum, combined
/// in lane order.
#[inline]
pub(super) fn lane_sums(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> (f64, f64)) -> (f64, f64) {
    debug_assert_eq!(a.len(), b.len());
    let (mut acc0, mut acc1) = ([0.0f64; LANES], [0.0f64; LANES]);
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (mut tail0, mut tail1) = (0.0f64, 0.0f64);
    for (&x, &y) in ca.remainder().iter().zip(cb.remainder()) {
        let (u, v) = f(x, y);
        tail0 += u;
        tail1 += v;
    }
    for (x, y) in ca.zip(cb) {
        for l in 0..LANES {
            let (u, v) = f(x[l], y[l]);
            acc0[l] += u;
            acc1[l] += v;
        }
    }
    (
        acc0.iter().sum::<f64>() + tail0,
        acc1.iter().sum::<f64>() + tail1,
    )
}

/// `(mean, sum((x - mean)^2))` of the values of `planes` (`m` values in all, `m >= 1`), in one
/// pass over memory: sums of `d = x - shift` and `d^2` in f64, with `shift` the first value.
///
/// With the shift inside the data range, `sum(d^2) - sum(d)^2 / m` loses only about
/// `(mean - shift)^2 / var` f64 ulps (Chan, Golub & LeVeque's shifted-data algorithm), far below
/// f32 resolution; the result is clamped at 0.
pub(super) fn shifted_moments<'a>(planes: impl Iterator<Item = &'a [f32]>, m: usize) -> (f64, f64) {
    let mut planes = planes.peekable();
    let shift = planes
        .peek()
        .and_then(|p| p.first())
        .map_or(0.0, |&v| v as f64);
    let (mut sum, mut sum_sq) = (0.0f64, 0.0f64);
    for p in planes {
        let (s, s2) = lane_sums(p, p, |v, _| {
            let d = v as f64 - shift;
            (d, d * d)
        });
        sum += s;
        sum_sq += s2;
    }
    let m = m as f64;
    let mean = shift + sum / m;
    (mean, (sum_sq - sum * sum / m).max(0.0))
}

/// Plane `i` (batch index) of channel `ch` of a contiguous `[N, C, HW]` buffer.
#[inline]
pub(super) fn plane(data: &[f32], c: usize, hw: usize, i: usize, ch: usize) -> &[f32] {
    &data[(i * c + ch) * hw..][..hw]
}

/// The statistics of one channel of a training batch.
pub(super) struct ChannelMoments {
    /// Batch mean (f64).
    pub mean: f64,
    /// The mean split as `mean_hi + mean_lo` (f32 each): kernels form `x - mean` as
    /// `(x - mean_hi) - mean_lo`, exact to about f32 resolution of the deviation even when the
    /// mean is large next to the spread.
    pub mean_hi: f32,
    pub mean_lo: f32,
    /// `sum((x - mean)^2)` over the channel's `M = N * H * W` values.
    pub sq_dev_sum: f64,
    /// `1 / sqrt(sq_dev_sum / M + eps)`.
    pub invstd: f32,
}

/// Training forward: `out = (x - mean_c) * invstd_c * gamma_c + beta_c` with the batch's mean and
/// biased variance; `dims = (N, C, H*W)`, `N * H * W >= 1`. Returns the moments of every channel.
pub(super) fn train_forward(
    x: &[f32],
    (n, c, hw): (usize, usize, usize),
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
    out: &mut [f32],
) -> Vec<ChannelMoments> {
    let m = (n * hw) as f64;
    planes_by_channel(out, c, hw)
        .into_par_iter()
        .enumerate()
        .map(|(ch, out_planes)| {
            let planes = (0..n).map(|i| plane(x, c, hw, i, ch));
            let (mean, sq_dev_sum) = shifted_moments(planes.clone(), n * hw);
            let invstd = (1.0 / (sq_dev_sum / m + eps as f64).sqrt()) as f32;
            let mean_hi = mean as f32;
            let mean_lo = (mean - mean_hi as f64) as f32;
            let scale = gamma[ch] * invstd;
            let shift = beta[ch];
            for (o, p) in out_planes.into_iter().zip(planes) {
                for (o, &v) in o.iter_mut().zip(p) {
                    *o = ((v - mean_hi) - mean_lo) * scale + shift;
                }
            }
            ChannelMoments {
                mean,
                mean_hi,
                mean_lo,
                sq_dev_sum,
                invstd,
            }
        })
        .collect()
}

/// Eval forward: `out = (x - mean_c) * invstd_c * gamma_c + beta_c` with given per-channel
/// constants; `dims = (N, C, H*W)`.
pub(super) fn affine_forward(
    x: &[f32],
    (n, c, hw): (usize, usize, usize),
    mean: &[f32],
    invstd: &[f32],
    gamma: &[f32],
    beta: &[f32],
    out: &mut [f32],
) {
    if hw == 0 {
        return;
    }
    out.par_chunks_mut(hw).enumerate().for_each(|(i, o)| {
        let ch = i % c;
        let (mu, scale, shift) = (mean[ch], gamma[ch] * invstd[ch], beta[ch]);
        let p = plane(x, c, hw, i / c, ch);
        for (o, &v) in o.iter_mut().zip(p) {
            *o = (v - mu) * scale + shift;
        }
    });
    debug_assert_eq!(out.len(), n * c * hw);
}
