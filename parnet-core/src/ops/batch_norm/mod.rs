//! `batch_norm2d`: per-channel batch normalisation of an `[N, C, H, W]` tensor, in training mode
//! (batch statistics, differentiated through) and eval mode (running statistics, constants), plus
//! the PyTorch running-statistics update.
//!
//! Statistics are accumulated in one pass per channel (sums of shifted values and of their squares,
//! f32 over blocks of 256 values, added into f64), then a second pass normalises (from cache when
//! a channel fits). The backward likewise makes one reduction pass and one pass writing `dx`.
//! Work is split one rayon task per channel; every reduction runs in a fixed order inside its
//! task, so the results do not depend on the number of threads.

mod backward;
mod forward;
mod gap;
mod reference;
#[cfg(test)]
mod tests;

pub use gap::{
    batch_norm2d_train_gap, batch_norm2d_train_gap_reference, batch_norm2d_train_gap_synced,
};
pub use reference::{
    batch_norm2d_eval_reference, batch_norm2d_train_reference, batch_stats_reference,
};

use crate::error::{Result, invalid, shape_error};
use crate::replicas::{BatchSync, combine_moments};
use crate::tensor::{Buffer, Tensor};
use backward::BatchNormBackward;
pub(crate) use forward::{ChannelMoments, channel_moments, plane, shifted_moments};

/// Per-channel statistics of a training batch: mean and UNBIASED variance (n-1), as PyTorch uses
/// for `running_var`.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchStats {
    pub mean: Vec<f32>,
    pub var_unbiased: Vec<f32>,
}

impl BatchStats {
    /// Mean and unbiased variance of channels of `m` values each.
    pub(crate) fn from_moments(moments: &[ChannelMoments], m: usize) -> BatchStats {
        BatchStats {
            mean: moments.iter().map(|s| s.mean as f32).collect(),
            var_unbiased: moments
                .iter()
                .map(|s| (s.sq_dev_sum / (m - 1) as f64) as f32)
                .collect(),
        }
    }
}

/// The statistics of one training batch as a normalisation uses them, per channel. Ops that
/// normalise the same tensor share them ([`batch_norm2d_train_gap`] computes them for the fused
/// block merge), so the tensor is read once for its statistics.
#[derive(Clone, Debug)]
pub struct BatchMoments {
    pub(crate) channels: Vec<ChannelMoments>,
    /// For the running-statistics update.
    pub stats: BatchStats,
}

impl BatchMoments {
    pub(crate) fn new(channels: Vec<ChannelMoments>, m: usize) -> BatchMoments {
        let stats = BatchStats::from_moments(&channels, m);
        BatchMoments { channels, stats }
    }

    pub fn channels(&self) -> usize {
        self.channels.len()
    }
}

/// Training mode: normalise with the batch mean and BIASED batch variance; `x` `[N, C, H, W]`,
/// `gamma`/`beta` `[C]`. Gradients flow to `x` (through the batch statistics), `gamma` and `beta`.
///
/// Rejects `N * H * W < 2` (as PyTorch does: the variance of one value is meaningless).
pub fn batch_norm2d_train(
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    eps: f32,
) -> Result<(Tensor, BatchStats)> {
    batch_norm2d_train_synced(x, gamma, beta, eps, None)
}

/// [`batch_norm2d_train`] whose statistics are those of the global batch of every replica of
/// `sync` (synchronised batch norm; `None`: this batch alone, the same bits as
/// [`batch_norm2d_train`]). The backward reduces its gradient sums across the replicas too, for
/// `dx`; `dgamma` and `dbeta` stay this replica's (the step sums parameter gradients).
pub fn batch_norm2d_train_synced(
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    eps: f32,
    sync: BatchSync,
) -> Result<(Tensor, BatchStats)> {
    let (n, c, h, w) = check_training_shapes("batch_norm2d_train", x, gamma, beta, eps)?;
    let dims = (n, c, h * w);
    let mut out = Buffer::for_overwrite(x.numel());
    let (moments, m) = match sync {
        None => {
            let moments =
                forward::train_forward(x.data(), dims, gamma.data(), beta.data(), eps, &mut out);
            (moments, n * h * w)
        }
        Some(replicas) => forward::train_forward_synced(
            x.data(),
            dims,
            gamma.data(),
            beta.data(),
            eps,
            replicas,
            &mut out,
        ),
    };
    let stats = BatchStats::from_moments(&moments, m);
    let y = Tensor::from_op(out, x.shape().clone(), &[x, gamma, beta], || {
        BatchNormBackward {
            mean: moments.iter().map(|s| s.mean_hi).collect(),
            mean_lo: moments.iter().map(|s| s.mean_lo).collect(),
            invstd: moments.iter().map(|s| s.invstd).collect(),
            through_stats: true,
            count: m as f64,
            sync,
        }
    });
    Ok((y, stats))
}

/// Makes `moments` (each over this replica's `m` values of its channel, with `eps`) those of the
/// global batch of every replica of `sync`; returns the count they are over now (`m` if `None`).
pub(crate) fn synchronise(
    moments: &mut [ChannelMoments],
    m: usize,
    eps: f32,
    sync: BatchSync,
) -> usize {
    let Some(replicas) = sync else { return m };
    let local: Vec<(f64, f64)> = moments.iter().map(|s| (s.mean, s.sq_dev_sum)).collect();
    let (global, total) = combine_moments(replicas, &local, m);
    for (s, (mean, sq_dev_sum)) in moments.iter_mut().zip(global) {
        *s = channel_moments(mean, sq_dev_sum, total as f64, eps);
    }
    total
}

/// Eval mode: normalise with running statistics (constants, no gradient to them); `x`
/// `[N, C, H, W]`, `gamma`/`beta` `[C]`, `running_mean`/`running_var` of length `C`. Gradients
/// flow to `x`, `gamma` and `beta`.
pub fn batch_norm2d_eval(
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    running_mean: &[f32],
    running_var: &[f32],
    eps: f32,
) -> Result<Tensor> {
    const OP: &str = "batch_norm2d_eval";
    let (n, c, h, w) = check_shapes(OP, x, gamma, beta, eps)?;
    if running_mean.len() != c || running_var.len() != c {
        return Err(shape_error(
            OP,
            format!(
                "running_mean and running_var must have C = {c} values, got {} and {}",
                running_mean.len(),
                running_var.len()
            ),
            &[x.dims()],
        ));
    }
    if let Some(v) = running_var
        .iter()
        .find(|&&v| (v + eps).is_nan() || v + eps <= 0.0)
    {
        return Err(invalid(
            OP,
            format!("running_var + eps must be positive, got running_var {v} with eps {eps}"),
        ));
    }
    let invstd: Vec<f32> = running_var
        .iter()
        .map(|&v| (1.0 / (v as f64 + eps as f64).sqrt()) as f32)
        .collect();
    let mut out = Buffer::for_overwrite(x.numel());
    forward::affine_forward(
        x.data(),
        (n, c, h * w),
        running_mean,
        &invstd,
        gamma.data(),
        beta.data(),
        &mut out,
    );
    Ok(Tensor::from_op(
        out,
        x.shape().clone(),
        &[x, gamma, beta],
        || BatchNormBackward {
            mean: running_mean.to_vec(),
            mean_lo: vec![0.0; c],
            invstd,
            through_stats: false,
            count: (n * h * w) as f64,
            sync: None,
        },
    ))
}

/// PyTorch's running-statistics update: `new = (1 - momentum) * old + momentum * batch`, with the
/// batch's unbiased variance for `running_var` (computed in f64, stored as f32).
///
/// # Panics
/// If the slices do not all have the same length (a caller bug: the layer owns all four).
pub fn update_running_stats(
    running_mean: &mut [f32],
    running_var: &mut [f32],
    stats: &BatchStats,
    momentum: f32,
) {
    assert!(
        running_mean.len() == stats.mean.len()
            && running_var.len() == stats.var_unbiased.len()
            && running_mean.len() == running_var.len(),
        "update_running_stats: lengths differ (running_mean {}, running_var {}, batch {} / {})",
        running_mean.len(),
        running_var.len(),
        stats.mean.len(),
        stats.var_unbiased.len()
    );
    let m = momentum as f64;
    let blend = |old: &mut f32, new: f32| *old = ((1.0 - m) * *old as f64 + m * new as f64) as f32;
    running_mean
        .iter_mut()
        .zip(&stats.mean)
        .for_each(|(o, &b)| blend(o, b));
    running_var
        .iter_mut()
        .zip(&stats.var_unbiased)
        .for_each(|(o, &b)| blend(o, b));
}

/// Checks `x` `[N, C, H, W]`, `gamma`/`beta` `[C]` and `eps >= 0`; returns `(N, C, H, W)`.
pub(crate) fn check_shapes(
    op: &'static str,
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    eps: f32,
) -> Result<(usize, usize, usize, usize)> {
    let Some((n, c, h, w)) = x.shape().nchw() else {
        return Err(shape_error(op, "x must be [N, C, H, W]", &[x.dims()]));
    };
    if gamma.dims() != [c] || beta.dims() != [c] {
        return Err(shape_error(
            op,
            format!("gamma and beta must be [C] = [{c}] for x"),
            &[x.dims(), gamma.dims(), beta.dims()],
        ));
    }
    if !eps.is_finite() || eps < 0.0 {
        return Err(invalid(
            op,
            format!("eps must be finite and >= 0, got {eps}"),
        ));
    }
    Ok((n, c, h, w))
}

/// [`check_shapes`] for batch statistics: also rejects `N * H * W < 2` (as PyTorch does: the
/// variance of one value is meaningless).
pub(crate) fn check_training_shapes(
    op: &'static str,
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    eps: f32,
) -> Result<(usize, usize, usize, usize)> {
    let (n, c, h, w) = check_shapes(op, x, gamma, beta, eps)?;
    if n * h * w < 2 {
        return Err(invalid(
            op,
            format!(
                "expected more than 1 value per channel when training, got input {:?}",
                x.dims()
            ),
        ));
    }
    Ok((n, c, h, w))
}

/// The `H * W` planes of a contiguous `[N, C, H, W]` buffer, grouped by channel: entry `c` holds
/// the `N` planes of channel `c` in batch order, so one rayon task can own a whole channel.
pub(crate) fn planes_by_channel(data: &mut [f32], c: usize, hw: usize) -> Vec<Vec<&mut [f32]>> {
    let mut per_channel: Vec<Vec<&mut [f32]>> = (0..c).map(|_| Vec::new()).collect();
    if hw == 0 || c == 0 {
        return per_channel;
    }
    for (i, plane) in data.chunks_mut(hw).enumerate() {
        per_channel[i % c].push(plane);
    }
    per_channel
}
