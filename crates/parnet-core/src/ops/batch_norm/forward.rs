//! Forward kernels: per-channel moments (f64, two-pass) and the per-channel affine map, one rayon
//! task per channel.

use rayon::prelude::*;

use super::planes_by_channel;

/// Independent f64 accumulators per reduction, so the loop vectorises; the order is fixed.
const LANES: usize = 8;

/// `sum(f(a[i]))` in f64 over [`LANES`] lanes, combined in lane order.
#[inline]
pub(super) fn lane_sum(a: &[f32], f: impl Fn(f32) -> f64) -> f64 {
    let mut acc = [0.0f64; LANES];
    let chunks = a.chunks_exact(LANES);
    let tail: f64 = chunks.remainder().iter().map(|&x| f(x)).sum();
    for c in chunks {
        for l in 0..LANES {
            acc[l] += f(c[l]);
        }
    }
    acc.iter().sum::<f64>() + tail
}

/// `sum(f(a[i], b[i]))` in f64 over [`LANES`] lanes, combined in lane order.
#[inline]
pub(super) fn lane_sum2(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f64) -> f64 {
    debug_assert_eq!(a.len(), b.len());
    let mut acc = [0.0f64; LANES];
    let ca = a.chunks_exact(LANES);
    let cb = b.chunks_exact(LANES);
    let tail: f64 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(&x, &y)| f(x, y))
        .sum();
    for (x, y) in ca.zip(cb) {
        for l in 0..LANES {
            acc[l] += f(x[l], y[l]);
        }
    }
    acc.iter().sum::<f64>() + tail
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
    /// The mean rounded to f32, as subtracted in the forward and backward kernels.
    pub mean_f32: f32,
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
            let mean = planes
                .clone()
                .map(|p| lane_sum(p, |v| v as f64))
                .sum::<f64>()
                / m;
            let sq_dev_sum: f64 = planes
                .clone()
                .map(|p| {
                    lane_sum(p, |v| {
                        let d = v as f64 - mean;
                        d * d
                    })
                })
                .sum();
            let invstd = (1.0 / (sq_dev_sum / m + eps as f64).sqrt()) as f32;
            let mean_f32 = mean as f32;
            let scale = gamma[ch] * invstd;
            let shift = beta[ch];
            for (o, p) in out_planes.into_iter().zip(planes) {
                for (o, &v) in o.iter_mut().zip(p) {
                    *o = (v - mean_f32) * scale + shift;
                }
            }
            ChannelMoments {
                mean,
                mean_f32,
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
