//! Forward kernels: per-channel moments (f32 block sums added into f64, one pass over memory with a
//! shift) and the per-channel affine map, one rayon task per channel.

use rayon::prelude::*;

use super::planes_by_channel;
use crate::kernels::batch_norm::{affine_plane, shifted_sums};
use crate::replicas::Replicas;

/// `(mean, sum((x - mean)^2))` of the values of `planes` (`m` values in all, `m >= 1`), in one
/// pass over memory: sums of `d = x - shift` and `d^2` ([`shifted_sums`]), with `shift` the first
/// value.
///
/// With the shift inside the data range, `sum(d^2) - sum(d)^2 / m` loses only about
/// `(mean - shift)^2 / var` f64 ulps (Chan, Golub & LeVeque's shifted-data algorithm), far below
/// f32 resolution; the result is clamped at 0.
pub(crate) fn shifted_moments<'a>(planes: impl Iterator<Item = &'a [f32]>, m: usize) -> (f64, f64) {
    shifted_moments_with(planes, m, |_, _| {})
}

/// [`shifted_moments`], also handing `plane_mean(i, mean)` the mean of each plane `i` (from the
/// same sums).
fn shifted_moments_with<'a>(
    planes: impl Iterator<Item = &'a [f32]>,
    m: usize,
    mut plane_mean: impl FnMut(usize, f64),
) -> (f64, f64) {
    let mut planes = planes.peekable();
    let shift = planes.peek().and_then(|p| p.first()).map_or(0.0, |&v| v);
    let (mut sum, mut sum_sq) = (0.0f64, 0.0f64);
    for (i, p) in planes.enumerate() {
        let (s, s2) = shifted_sums(p, shift);
        sum += s;
        sum_sq += s2;
        plane_mean(i, shift as f64 + s / p.len().max(1) as f64);
    }
    let m = m as f64;
    let mean = shift as f64 + sum / m;
    (mean, (sum_sq - sum * sum / m).max(0.0))
}

/// The moments of one channel from its planes (`plane_means.len()` planes of `hw >= 1` values),
/// and the mean of each plane, in one pass over memory; the moments have [`shifted_moments`]'s
/// bits.
pub(super) fn moments_and_plane_means<'a>(
    planes: impl Iterator<Item = &'a [f32]>,
    hw: usize,
    eps: f32,
    plane_means: &mut [f64],
) -> ChannelMoments {
    let m = plane_means.len() * hw;
    let (mean, sq_dev_sum) = shifted_moments_with(planes, m, |i, mean| plane_means[i] = mean);
    channel_moments(mean, sq_dev_sum, m as f64, eps)
}

/// [`ChannelMoments`] from a channel's mean and `sum((x - mean)^2)` over its `m` values.
pub(crate) fn channel_moments(mean: f64, sq_dev_sum: f64, m: f64, eps: f32) -> ChannelMoments {
    let mean_hi = mean as f32;
    ChannelMoments {
        mean,
        mean_hi,
        mean_lo: (mean - mean_hi as f64) as f32,
        sq_dev_sum,
        invstd: (1.0 / (sq_dev_sum / m + eps as f64).sqrt()) as f32,
    }
}

/// Plane `i` (batch index) of channel `ch` of a contiguous `[N, C, HW]` buffer.
#[inline]
pub(crate) fn plane(data: &[f32], c: usize, hw: usize, i: usize, ch: usize) -> &[f32] {
    &data[(i * c + ch) * hw..][..hw]
}

/// The statistics of one channel of a training batch.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ChannelMoments {
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
            let moments = channel_moments(mean, sq_dev_sum, m, eps);
            let scale = gamma[ch] * moments.invstd;
            let shift = beta[ch];
            for (o, p) in out_planes.into_iter().zip(planes) {
                affine_plane(p, moments.mean_hi, moments.mean_lo, scale, shift, o);
            }
            moments
        })
        .collect()
}

/// [`train_forward`] with the statistics of the global batch of every replica of `replicas`:
/// every channel's local moments first, then one exchange for all channels, then the affine map.
/// Returns the moments and the global count per channel.
pub(super) fn train_forward_synced(
    x: &[f32],
    (n, c, hw): (usize, usize, usize),
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
    replicas: &'static dyn Replicas,
    out: &mut [f32],
) -> (Vec<ChannelMoments>, usize) {
    let m = n * hw;
    let mut moments: Vec<ChannelMoments> = (0..c)
        .into_par_iter()
        .map(|ch| {
            let (mean, sq_dev_sum) = shifted_moments((0..n).map(|i| plane(x, c, hw, i, ch)), m);
            channel_moments(mean, sq_dev_sum, m as f64, eps)
        })
        .collect();
    let total = super::synchronise(&mut moments, m, eps, Some(replicas));
    out.par_chunks_mut(hw).enumerate().for_each(|(k, o)| {
        let (i, ch) = (k / c, k % c);
        let s = &moments[ch];
        let scale = gamma[ch] * s.invstd;
        affine_plane(
            plane(x, c, hw, i, ch),
            s.mean_hi,
            s.mean_lo,
            scale,
            beta[ch],
            o,
        );
    });
    (moments, total)
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
        affine_plane(plane(x, c, hw, i / c, ch), mu, 0.0, scale, shift, o);
    });
    debug_assert_eq!(out.len(), n * c * hw);
}
